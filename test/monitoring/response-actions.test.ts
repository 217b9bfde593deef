/**
 * Response actions against real containers on the local dockerd, with a real store and
 * the real audit log: quarantine leaves the container paused and off every network (as
 * `docker inspect` reports it) and a second quarantine changes nothing; stop keeps an
 * unmanaged container, stopped; pause pauses; a target that vanished is skipped; an
 * engine that does not answer makes failed attempts that are retried with backoff, then
 * a failure for good (or success once it answers). Stop of a managed container stops its
 * deployment; revoke goes to the requester, never to a gateway identity.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AuditLog, type AuditEntry } from "../../src/audit/index.js";
import { ManualClock, silentLogger } from "../../src/core/index.js";
import { AlertService, ResponseActions, type ActionName, type ResponseDeps } from "../../src/monitoring/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { Store } from "../../src/store/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun, testEngine } from "../support/docker.js";
import { tempDir } from "../support/gateway.js";
import { context, hitOn, rule } from "./alert-fixtures.js";

const run = newTestRun();
const engine = testEngine();
const LOOP = ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"];

let image = "";
let network = "";
let tmp: ReturnType<typeof tempDir>;
let store: Store;
let clock: ManualClock;
let audit: AuditLog;
let alerts: AlertService;
let engineFor: (node: string) => DockerEngine;
let stops: [string, string, string][];
let revokes: [string, string][];
let actions: ResponseActions;

function deps(): ResponseDeps {
  return {
    store,
    audit,
    clock,
    logger: silentLogger,
    engine: (node) => engineFor(node),
    stopDeployment: async (ns, name, reason) => {
      stops.push([ns, name, reason]);
    },
    revokeIdentity: async (identity, reason) => {
      revokes.push([identity, reason]);
      return { revoked: ["0a", "0b"] };
    },
  };
}

beforeAll(async () => {
  image = await buildBusyboxImage(engine, run);
  network = `pc-test-net-${run.id}`;
  await dockerCli(["network", "create", "--label", "io.portcullis.test=1", "--label", run.selector, network]);
}, 60_000);
afterAll(async () => {
  await cleanupTestRun(engine, run, image).catch(() => undefined);
}, 60_000);

beforeEach(() => {
  tmp = tempDir("portcullis-actions-");
  store = Store.open(tmp.dir);
  clock = new ManualClock(Date.now());
  audit = new AuditLog(store, clock, { trustDomain: "portcullis.local", hmacKey: randomBytes(32) });
  audit.genesis("portcullis.local", "ab".repeat(32));
  alerts = new AlertService(store, audit, clock);
  engineFor = () => engine;
  stops = [];
  revokes = [];
  actions = new ResponseActions(deps(), { retryBaseMs: 1_000, retryMaxMs: 4_000, maxAttempts: 3 });
});
afterEach(async () => {
  await actions.stop();
  await audit.close().catch(() => undefined);
  store.close();
  tmp.cleanup();
});

/** A running busybox container of this run, on the run's network; returns its name. */
async function container(suffix: string): Promise<string> {
  const name = `pc-test-${run.id}-${suffix}`;
  await dockerCli(["run", "-d", "--name", name, "--label", "io.portcullis.test=1", "--label", run.selector, "--network", network, image, ...LOOP]);
  return name;
}

async function inspect(name: string): Promise<{ State: { Paused: boolean; Running: boolean; Status: string }; NetworkSettings: { Networks: Record<string, unknown> } }> {
  return (JSON.parse(await dockerCli(["inspect", "--type", "container", name])) as never[])[0]!;
}

/** Raises an alert of a rule with these actions about an unmanaged container. */
function raiseOn(name: string, acts: readonly ActionName[], ruleName = "test-rule", managed?: { namespace: string; deployment: string }) {
  const r = rule(ruleName, { actions: acts });
  return store.transaction(() => alerts.raise(hitOn(r, context("local", "id-of-" + name, name, managed), clock.now().getTime()), `ev-${name}`)).alert;
}

function actionEntries(): AuditEntry[] {
  audit.flush();
  return [...audit.entries(0, Number.MAX_SAFE_INTEGER)].filter((e) => e.head.type === "monitor.action");
}

describeDocker("response actions on real containers", () => {
  itDocker("quarantine: paused and off every network (docker inspect); the networks kept; audited with rule, alert and event", async () => {
    const name = await container("q1");
    expect(Object.keys((await inspect(name)).NetworkSettings.Networks)).toEqual([network]);
    const alert = raiseOn(name, ["quarantine"], "exec-into-container");
    expect(await actions.runPending()).toBe(1);
    const st = await inspect(name);
    expect(st.State.Paused).toBe(true);
    expect(st.State.Running).toBe(true);
    expect(st.NetworkSettings.Networks).toEqual({});
    const q = store.quarantines.active(name);
    expect(q).toMatchObject({ containerName: name, node: "local", alertId: alert.id, rule: "exec-into-container", networks: [network], releasedAt: null });
    expect(q?.containerId).toMatch(/^[0-9a-f]{64}$/);
    const [act] = alerts.get(alert.id).actions;
    expect(act).toMatchObject({ action: "quarantine", state: "done", attempts: 1 });
    expect(act!.result).toContain(`off network(s) ${network}`);
    const entry = actionEntries()[0]!;
    expect(entry.head).toMatchObject({ outcome: "allowed", actor: "service:gateway", resource: "containers" });
    expect(entry.body.target).toBe(name);
    expect(entry.body.reasons?.[0]).toMatch(new RegExp(`^quarantine done: .*\\(rule exec-into-container, alert ${alert.id}, event ev-${name}\\)$`));
    // Done actions are not run again.
    expect(await actions.runPending()).toBe(0);
  }, {}, 60_000);

  itDocker("quarantining a held container again is a no-op: one record, still paused, networks unchanged", async () => {
    const name = await container("q2");
    raiseOn(name, ["quarantine"], "rule-one");
    await actions.runPending();
    const first = store.quarantines.active(name)!;
    const second = raiseOn(name, ["quarantine"], "rule-two");
    expect(await actions.runPending()).toBe(1);
    expect(store.quarantines.list({ all: true })).toHaveLength(1);
    expect(store.quarantines.active(name)).toEqual(first);
    const [act] = alerts.get(second.id).actions;
    expect(act).toMatchObject({ state: "done" });
    expect(act!.result).toMatch(/^already quarantined \(qr-[0-9a-f]{16}/);
    const st = await inspect(name);
    expect(st.State.Paused).toBe(true);
    expect(st.NetworkSettings.Networks).toEqual({});
  }, {}, 60_000);

  itDocker("stop of an unmanaged container stops it and keeps it; pause pauses", async () => {
    const stopped = await container("stop");
    const paused = await container("pause");
    const a = raiseOn(stopped, ["stop"]);
    const b = raiseOn(paused, ["pause"]);
    expect(await actions.runPending()).toBe(2);
    const s = await inspect(stopped);
    expect(s.State.Running).toBe(false);
    expect(s.State.Status).toBe("exited");
    expect(alerts.get(a.id).actions[0]).toMatchObject({ state: "done", result: `container ${stopped} stopped (kept)` });
    expect((await inspect(paused)).State.Paused).toBe(true);
    expect(alerts.get(b.id).actions[0]).toMatchObject({ state: "done", result: `container ${paused} paused` });
    expect(stops).toEqual([]);
  }, {}, 60_000);

  itDocker("a target that no longer exists is skipped, with why", async () => {
    const name = await container("gone");
    const alert = raiseOn(name, ["pause", "quarantine", "stop"]);
    await dockerCli(["rm", "-f", name]);
    expect(await actions.runPending()).toBe(3);
    expect(alerts.get(alert.id).actions.map((a) => [a.action, a.state, a.result])).toEqual([
      ["pause", "skipped", `container ${name} no longer exists`],
      ["quarantine", "skipped", `container ${name} no longer exists`],
      ["stop", "skipped", `container ${name} no longer exists`],
    ]);
    expect(store.quarantines.active(name)).toBeUndefined();
    expect(actionEntries().map((e) => e.head.outcome)).toEqual(["allowed", "allowed", "allowed"]);
  }, {}, 60_000);

  itDocker("an engine that does not answer: failed attempts retried with growing delays, then failed for good", async () => {
    const down = new DockerEngine({ socketPath: join(tmp.dir, "no-dockerd.sock"), requestTimeoutMs: 2_000 });
    engineFor = () => down;
    const name = await container("down");
    const alert = raiseOn(name, ["pause"]);
    expect(await actions.runPending()).toBe(1);
    let [act] = alerts.get(alert.id).actions;
    expect(act).toMatchObject({ state: "pending", attempts: 1 });
    expect(act!.result).toMatch(/^attempt 1 failed, tried again later: PC_RUNTIME_ENGINE_UNAVAILABLE/);
    // Not due yet: the first retry waits retryBaseMs, the second twice as long.
    expect(await actions.runPending()).toBe(0);
    clock.advance(1_000);
    expect(await actions.runPending()).toBe(1);
    expect(alerts.get(alert.id).actions[0]).toMatchObject({ state: "pending", attempts: 2 });
    clock.advance(1_999);
    expect(await actions.runPending()).toBe(0);
    clock.advance(1);
    expect(await actions.runPending()).toBe(1);
    [act] = alerts.get(alert.id).actions;
    expect(act).toMatchObject({ state: "failed", attempts: 3 });
    expect(act!.result).toMatch(/^failed after 3 attempt\(s\): PC_RUNTIME_ENGINE_UNAVAILABLE/);
    clock.advance(60_000);
    expect(await actions.runPending()).toBe(0);
    expect(actionEntries().map((e) => [e.head.outcome, e.body.target])).toEqual([["error", name], ["error", name], ["error", name]]);
    // Nothing happened to the container.
    expect((await inspect(name)).State.Paused).toBe(false);
  }, {}, 60_000);

  itDocker("a failed attempt is retried, and succeeds once the engine answers", async () => {
    const down = new DockerEngine({ socketPath: join(tmp.dir, "no-dockerd.sock"), requestTimeoutMs: 2_000 });
    engineFor = () => down;
    const name = await container("later");
    const alert = raiseOn(name, ["quarantine"]);
    await actions.runPending();
    expect(alerts.get(alert.id).actions[0]).toMatchObject({ state: "pending", attempts: 1 });
    engineFor = () => engine;
    clock.advance(1_000);
    expect(await actions.runPending()).toBe(1);
    expect(alerts.get(alert.id).actions[0]).toMatchObject({ state: "done", attempts: 2 });
    expect((await inspect(name)).State.Paused).toBe(true);
  }, {}, 60_000);

  itDocker("start() resumes pending actions left by a previous run (a restart)", async () => {
    const name = await container("resume");
    const alert = raiseOn(name, ["pause"]);
    actions.start();
    const deadline = Date.now() + 10_000;
    while (alerts.get(alert.id).actions[0]!.state === "pending" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alerts.get(alert.id).actions[0]).toMatchObject({ state: "done" });
    expect((await inspect(name)).State.Paused).toBe(true);
  }, {}, 60_000);
});

describe("response actions that need no engine", () => {
  function deployment(namespace: string, name: string, requester: string): void {
    store.deployRequests.insert({
      jti: `jti-${name}`, requester, operation: "create", namespace, name, digest: "sha256:00", jws: "x.y.z", jwsSha256: "00",
      signerCertificatePem: "", receivedAt: 1, expiresAt: 2, result: null,
    });
    store.deployments.insertRevision({ namespace, name, revision: 1, manifest: "{}", digest: "sha256:00", imageId: "sha256:00", runtime: "runc", jti: `jti-${name}`, requester, createdAt: 1 });
    store.deployments.insert(namespace, name, 1, 2, 1);
    store.deployments.insertReplica({ containerName: `pc-x-${namespace}-${name}-r1-0`, namespace, name, revision: 1, ordinal: 0, node: "local" }, 1);
  }

  it("stop of a managed container stops its deployment; a deployment that is gone is skipped", async () => {
    deployment("payments", "api", "user:dev1");
    const a = raiseOn("pc-x-payments-api-r1-0", ["stop"], "crash-loop", { namespace: "payments", deployment: "api" });
    const b = raiseOn("pc-x-payments-old-r1-0", ["stop"], "crash-loop", { namespace: "payments", deployment: "old" });
    await actions.runPending();
    expect(stops).toEqual([["payments", "api", `monitoring rule crash-loop (alert ${a.id})`]]);
    expect(alerts.get(a.id).actions[0]).toMatchObject({ state: "done", result: "deployment payments/api stopped (desired replicas 0)" });
    expect(alerts.get(b.id).actions[0]).toMatchObject({ state: "skipped", result: "deployment payments/old no longer exists" });
  });

  it("revoke goes to the requester of the container's revision; skipped for unmanaged containers and gateway identities", async () => {
    deployment("payments", "api", "user:dev1");
    deployment("payments", "svc", "service:gateway");
    const a = raiseOn("pc-x-payments-api-r1-0", ["revoke"], "image-mismatch", { namespace: "payments", deployment: "api" });
    const b = raiseOn("pc-x-payments-svc-r1-0", ["revoke"], "image-mismatch", { namespace: "payments", deployment: "svc" });
    const c = raiseOn("stray", ["revoke"], "image-mismatch");
    await actions.runPending();
    expect(revokes).toEqual([["user:dev1", "keyCompromise"]]);
    expect(alerts.get(a.id).actions[0]).toMatchObject({ state: "done", result: "revoked 2 certificate(s) of user:dev1" });
    expect(alerts.get(b.id).actions[0]).toMatchObject({ state: "skipped", result: "requester service:gateway is a gateway service identity" });
    expect(alerts.get(c.id).actions[0]).toMatchObject({ state: "skipped", result: "no requester: the container is not managed by this gateway" });
    const revokeEntry = actionEntries().find((e) => e.body.target === "pc-x-payments-api-r1-0")!;
    expect(revokeEntry.head).toMatchObject({ resource: "certificates", namespace: "payments", outcome: "allowed" });
  });
});
