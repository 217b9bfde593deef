/**
 * Quarantine with a real gateway, real deployments and the local dockerd: a replica held
 * by a rule's `quarantine` action stays paused and off its network through reconciler
 * passes, nothing replaces it, the deployment's view says quarantined, and signed
 * requests that would change the deployment are refused with PC_MONITOR_QUARANTINED;
 * a stop from inside the gateway still scales it to 0 and leaves the held container; a
 * held container keeps its secret directory even when stopped. Releasing removes the
 * held container (and its directory) and the next pass creates a fresh replica that
 * runs. A paused replica is left alone too. A `revoke` action revokes the certificates
 * of the deployment's requester.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, expect } from "vitest";
import type { RuleHit } from "../../src/monitoring/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mtlsGet } from "../support/tls-client.js";
import {
  auditEntries,
  busyboxManifest,
  deploymentContainers,
  developerIn,
  eventually,
  getDeployment,
  pinnedRef,
  postSigned,
  signRequest,
  type ApiClient,
} from "../runtime/deploy-support.js";
import { containerEvent, context, quietMonitoring, rule } from "./alert-fixtures.js";

const run = newTestRun();
const engine = new DockerEngine();
const docker = new Docker();
const NS = `quar-${run.id}`;
const RESOURCES = { cpus: 0.1, memory: "32Mi", pids: 32 };
/** Where the gateway mounts the tmpfs for secret files, on the first deploy with secrets. */
const TMPFS_ROOT = mkdtempSync(join(tmpdir(), "portcullis-quarantine-secrets-"));

let tg: TestGateway;
let dev: ApiClient;
let imageRef = "";
let image = "";
let gatewayId = "";

interface Inspected {
  Id: string;
  State: { Paused: boolean; Running: boolean; Status: string };
  NetworkSettings: { Networks: Record<string, unknown> };
}

async function inspect(name: string): Promise<Inspected | undefined> {
  try {
    return (JSON.parse(await dockerCli(["inspect", "--type", "container", name])) as Inspected[])[0];
  } catch {
    return undefined;
  }
}

async function deploy(name: string, replicas: number, client: ApiClient = dev, extra: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const m = busyboxManifest(NS, name, imageRef, { resources: RESOURCES, replicas, network: { mode: "namespace" }, ...extra });
  const r = await postSigned(tg.api, client, NS, await signRequest(client, "create", m));
  expect(r.status, r.body ?? r.error).toBe(200);
  return m;
}

/** Raises an alert of a rule with `actions` about one replica, inside a transaction, and runs the actions. */
async function actOn(deployment: string, ordinal: number, actions: RuleHit["rule"]["actions"], ruleName: string): Promise<string> {
  const rep = tg.gw.store.deployments.replicasOf(NS, deployment).find((r) => r.ordinal === ordinal)!;
  const rev = tg.gw.store.deployments.revision(NS, deployment, rep.revision)!;
  const ctx = context(rep.node, rep.containerId ?? "", rep.containerName, { namespace: NS, deployment, revision: rep.revision, requester: rev.requester });
  const at = Date.now();
  const ev = containerEvent(rep.node, rep.containerId ?? "", rep.containerName, at, "exec_start: sh -c id");
  const hit: RuleHit = { rule: rule(ruleName, { severity: "critical", actions }), context: ctx, evidence: { kind: "event", event: ev }, at, summary: `docker exec into ${NS}/${rep.containerName}` };
  const { alert } = tg.gw.store.transaction(() => tg.gw.alerts.raise(hit, ev.id));
  await eventually(async () => {
    await tg.gw.responseActions.runPending();
    const a = tg.gw.alerts.get(alert.id);
    return a.actions.every((x) => x.state !== "pending") ? a : undefined;
  }, 20_000, "the response actions settled");
  return alert.id;
}

describeDocker("quarantine against a real gateway and deployment", () => {
  beforeAll(async () => {
    // The reconciler runs only when the test says so.
    tg = await startTestGateway({ start: { secretsTmpfsRoot: TMPFS_ROOT, reconcileIntervalMs: 3_600_000, rollout: { pollMs: 100, settleMs: 500 } } });
    quietMonitoring(tg.gw);
    gatewayId = tg.gw.deployments.gatewayId;
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = await pinnedRef(image);
    dev = developerIn(tg, NS);
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`).catch(() => undefined);
    await dockerCli(["network", "rm", `pc-ns-${NS}`]).catch(() => undefined);
    await cleanupTestRun(engine, run, image).catch(() => undefined);
    try {
      execFileSync("umount", [TMPFS_ROOT]);
    } catch {
      // never mounted
    }
    rmSync(TMPFS_ROOT, { recursive: true, force: true });
  }, 60_000);

  itDocker("holds a replica: reconciler passes leave it paused, nothing replaces it, requests are refused; release brings a fresh replica", async () => {
    const manifest = await deploy("api", 2);
    const before = await deploymentContainers(docker, gatewayId, "api");
    expect(before.map((c) => c.state)).toEqual(["running", "running"]);
    const held = before.find((c) => c.ordinal === 0)!;
    const other = before.find((c) => c.ordinal === 1)!;
    const networksBefore = Object.keys((await inspect(held.name))!.NetworkSettings.Networks);
    expect(networksBefore).toEqual([`pc-ns-${NS}`]);

    const alertId = await actOn("api", 0, ["alert", "quarantine"], "exec-into-container");
    expect(tg.gw.alerts.get(alertId).actions).toEqual([expect.objectContaining({ action: "quarantine", state: "done" })]);
    let st = (await inspect(held.name))!;
    expect(st.State.Paused).toBe(true);
    expect(st.NetworkSettings.Networks).toEqual({});
    expect(tg.gw.quarantines.list()).toEqual([expect.objectContaining({ container: held.name, namespace: NS, deployment: "api", alert: alertId, rule: "exec-into-container", networks: networksBefore })]);

    // Reconciler passes: the held container stays as it is, and no replica is created for it.
    for (let i = 0; i < 2; i++) {
      const report = await tg.gw.reconciler.reconcileOnce();
      expect(report.replicasStarted).toBe(0);
      expect(report.orphansRemoved).toBe(0);
      expect(report.rolloutsResumed).toBe(0);
    }
    st = (await inspect(held.name))!;
    expect(st.Id).toBe(held.id);
    expect(st.State.Paused).toBe(true);
    expect(st.NetworkSettings.Networks).toEqual({});
    const during = await deploymentContainers(docker, gatewayId, "api");
    expect(during.map((c) => [c.name, c.id])).toEqual(before.map((c) => [c.name, c.id]));
    expect(auditEntries(tg, "deploy.replica_replaced").filter((e) => e.body.target === held.name)).toEqual([]);

    // The deployment says so.
    const view = (await getDeployment(tg.api, dev, NS, "api")) as unknown as {
      ready: number;
      quarantined: { container: string; since: string; alert: string; rule: string }[];
      containers: { container: string; state: string }[];
    };
    expect(view.quarantined).toEqual([{ container: held.name, since: expect.any(String), alert: alertId, rule: "exec-into-container" }]);
    expect(view.containers.find((c) => c.container === held.name)?.state).toBe("quarantined");
    expect(view.containers.find((c) => c.container === other.name)?.state).toBe("running");
    expect(view.ready).toBe(1);

    // Signed changes are refused, and change nothing.
    const scale = await postSigned(tg.api, dev, NS, await signRequest(dev, "scale", { ...manifest, spec: { ...(manifest.spec as object), replicas: 3 } }));
    expect(scale.status, scale.body).toBe(409);
    expect(JSON.parse(scale.body!)).toMatchObject({ code: "PC_MONITOR_QUARANTINED" });
    const del = await postSigned(tg.api, dev, NS, await signRequest(dev, "delete", manifest));
    expect(del.status, del.body).toBe(409);
    expect(JSON.parse(del.body!)).toMatchObject({ code: "PC_MONITOR_QUARANTINED" });
    expect(tg.gw.store.deployments.get(NS, "api")).toMatchObject({ replicas: 2, state: "active", revision: 1 });
    expect(auditEntries(tg, "deploy.request_refused").filter((e) => e.reason === "PC_MONITOR_QUARANTINED")).toHaveLength(2);
    expect((await deploymentContainers(docker, gatewayId, "api")).map((c) => c.id)).toEqual(before.map((c) => c.id));

    // Release: the held container goes; the next pass creates a fresh replica that runs.
    const released = await tg.gw.quarantines.release(held.name, { identity: "user:admin" }, "forensics copied to the case file");
    expect(released).toMatchObject({ container: held.name, releasedBy: "user:admin", releasedAt: expect.any(String) });
    expect(await inspect(held.name)).toBeUndefined();
    expect(tg.gw.quarantines.list()).toEqual([]);
    const rel = auditEntries(tg, "monitor.quarantine_released");
    expect(rel).toHaveLength(1);
    expect(rel[0]!.body).toMatchObject({ target: held.name });
    expect(rel[0]!.reason).toContain("forensics copied to the case file");
    const report = await tg.gw.reconciler.reconcileOnce();
    expect(report.replicasStarted).toBe(1);
    const fresh = (await inspect(held.name))!;
    expect(fresh.Id).not.toBe(held.id);
    expect(fresh.State).toMatchObject({ Running: true, Paused: false });
    expect(Object.keys(fresh.NetworkSettings.Networks)).toEqual([`pc-ns-${NS}`]);
    const after = await eventually(async () => {
      const v = (await getDeployment(tg.api, dev, NS, "api")) as unknown as { ready: number; quarantined: unknown[] };
      return v.ready === 2 ? v : undefined;
    }, 15_000, "both replicas ready");
    expect(after.quarantined).toEqual([]);
    // A second release of the same container: nothing held.
    await expect(tg.gw.quarantines.release(held.name, { identity: "user:admin" }, "again")).rejects.toMatchObject({ code: "PC_MONITOR_QUARANTINE_NOT_FOUND" });
    // Requests are accepted again.
    const del2 = await postSigned(tg.api, dev, NS, await signRequest(dev, "delete", manifest));
    expect(del2.status, del2.body).toBe(200);
  }, {}, 180_000);

  itDocker("a stop from inside the gateway scales to 0 and leaves the held container; release then drops it", async () => {
    await deploy("halt", 2);
    const [held, other] = await deploymentContainers(docker, gatewayId, "halt");
    await actOn("halt", 0, ["alert", "quarantine"], "runtime-mismatch");
    await tg.gw.deployments.stopUsing(NS, "halt", "monitoring rule test", "service:gateway");
    expect(tg.gw.store.deployments.get(NS, "halt")?.replicas).toBe(0);
    expect(await inspect(other!.name)).toBeUndefined();
    expect((await inspect(held!.name))?.State.Paused).toBe(true);
    const report = await tg.gw.reconciler.reconcileOnce();
    expect(report.rolloutsResumed).toBe(0);
    expect((await inspect(held!.name))?.State.Paused).toBe(true);
    await tg.gw.quarantines.release(held!.name, { identity: "user:admin" }, "done");
    expect(await inspect(held!.name)).toBeUndefined();
    await tg.gw.reconciler.reconcileOnce();
    expect(await deploymentContainers(docker, gatewayId, "halt")).toEqual([]);
    expect(tg.gw.store.deployments.replicasOf(NS, "halt")).toEqual([]);
  }, {}, 120_000);

  itDocker("a held container keeps its secret directory, even stopped; the release removes both", async () => {
    await tg.gw.secrets.create(NS, "db", Buffer.from("pc-quarantine-secret"), { id: "user:admin" });
    await deploy("vault", 1, dev, { secrets: [{ name: "db", path: "/run/secrets/db" }] });
    const [c] = await deploymentContainers(docker, gatewayId, "vault");
    const dir = join(TMPFS_ROOT, gatewayId, c!.name);
    expect(existsSync(dir)).toBe(true);
    await actOn("vault", 0, ["alert", "quarantine"], "exec-into-container");
    // Stopped while held (an engine restart would do the same): neither restarted nor cleaned up.
    await dockerCli(["stop", "-t", "1", c!.name]);
    expect((await inspect(c!.name))?.State.Running).toBe(false);
    const report = await tg.gw.reconciler.reconcileOnce();
    expect(report.secretDirsRemoved).toBe(0);
    expect(report.replicasStarted).toBe(0);
    expect(existsSync(dir)).toBe(true);
    expect((await inspect(c!.name))?.Id).toBe(c!.id);
    await tg.gw.quarantines.release(c!.name, { identity: "user:admin" }, "done");
    expect(await inspect(c!.name)).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    expect((await tg.gw.reconciler.reconcileOnce()).replicasStarted).toBe(1);
    expect((await inspect(c!.name))?.State.Running).toBe(true);
    expect(existsSync(dir)).toBe(true);
  }, {}, 120_000);

  itDocker("pause: the reconciler leaves a paused replica alone (the engine reports it running)", async () => {
    await deploy("still", 1);
    const [c] = await deploymentContainers(docker, gatewayId, "still");
    await actOn("still", 0, ["alert", "pause"], "memory-near-limit");
    expect((await inspect(c!.name))?.State).toMatchObject({ Paused: true, Running: true });
    const report = await tg.gw.reconciler.reconcileOnce();
    expect(report.replicasStarted).toBe(0);
    expect((await inspect(c!.name))).toMatchObject({ Id: c!.id, State: { Paused: true } });
    expect(tg.gw.quarantines.list()).toEqual([]);
  }, {}, 120_000);

  itDocker("revoke: the certificates of the deployment's requester are revoked, and it can no longer call the API", async () => {
    const c = tg.issueClient("user:dev2");
    tg.gw.policy.bind("user:dev2", "developer", NS, { identity: "user:admin" });
    const dev2: ApiClient = { ...dev, certPem: c.certPem, keyPem: c.keyPem };
    await deploy("rogue", 1, dev2);
    const who = await mtlsGet(tg.api, "/v1/whoami", { ca: tg.caPem, cert: c.certPem, key: c.keyPem });
    expect(who.status).toBe(200);
    const alertId = await actOn("rogue", 0, ["alert", "revoke"], "image-mismatch");
    expect(tg.gw.alerts.get(alertId).actions).toEqual([expect.objectContaining({ action: "revoke", state: "done", result: expect.stringMatching(/^revoked 1 certificate\(s\) of user:dev2$/) })]);
    expect(tg.gw.pki.list("user:dev2").every((x) => x.revokedAt !== null)).toBe(true);
    expect(tg.gw.pki.list("user:dev1").every((x) => x.revokedAt === null)).toBe(true);
    const refused = await mtlsGet(tg.api, "/v1/whoami", { ca: tg.caPem, cert: c.certPem, key: c.keyPem });
    expect(refused.ok === false || refused.status === 401).toBe(true);
  }, {}, 120_000);
});
