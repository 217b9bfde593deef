/**
 * Alerts and quarantines over the API of a real gateway, with a real deployment on the
 * local dockerd and alerts raised from real Docker events (`docker exec` into a replica,
 * `docker run` of a stray container), as the monitor raises them:
 * - list, get and ack, with the filters; a second ack is 409 PC_MONITOR_ALERT_ACKED;
 * - namespace authorization: a security admin of the namespace reads and acks its
 *   alerts; one of another namespace sees none of them, is refused the namespace's list
 *   (403) and gets 404 on one of them; a reader who may not update gets 403 on ack; a
 *   developer (no alerts:read) sees nothing; alerts without a namespace need cluster-wide
 *   rights; the deliveries list is cluster-wide;
 * - quarantines: listed per namespace, released (the container removed) by who may
 *   delete them in the container's namespace, 404 for others.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { parseRecordedEvent, type MonitorEvent, type RuleHit } from "../../src/monitoring/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { apiCall, auditEntries, busyboxManifest, developerIn, eventually, pinnedRef, postSigned, signRequest, type ApiClient } from "../runtime/deploy-support.js";
import { context, quietMonitoring, rule } from "../monitoring/alert-fixtures.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS_A = `alrt-a-${run.id}`;
const NS_B = `alrt-b-${run.id}`;

let tg: TestGateway;
let image = "";
let gatewayId = "";
let dev: ApiClient;
let admin: ApiClient;
let alice: ApiClient; // security-admin in A
let bob: ApiClient; // security-admin in B
let carol: ApiClient; // auditor in A: reads, never updates
let replicas: string[] = [];
let stray = "";
const ids: { exec: string; quarantine: string; drift: string } = { exec: "", quarantine: "", drift: "" };

function client(identity: string): ApiClient {
  const c = tg.issueClient(identity);
  return { trustDomain: tg.gw.config.trustDomain, caPem: tg.caPem, certPem: c.certPem, keyPem: c.keyPem };
}

async function call<T>(c: ApiClient, method: string, path: string, body?: unknown): Promise<{ status: number; body: T & { code?: string } }> {
  const r = await apiCall(tg.api, c, method, path, body, { timeoutMs: 30_000 });
  if (r.error !== undefined) throw new Error(`${method} ${path}: ${r.error}`);
  return { status: r.status, body: JSON.parse(r.body) as T & { code?: string } };
}

/** The engine's own events of a container since `sinceMs`, as `docker events` prints them, parsed as monitoring does. */
async function dockerEvents(container: string, sinceMs: number, action: string): Promise<MonitorEvent> {
  return eventually(async () => {
    const out = await dockerCli(["events", "--since", (sinceMs / 1000).toFixed(3), "--until", (Date.now() / 1000).toFixed(3), "--filter", `container=${container}`, "--format", "{{json .}}"]);
    const evs = out.split("\n").filter((l) => l.trim() !== "").map((l, i) => parseRecordedEvent(l, i + 1));
    return evs.find((e) => e.action === action || e.action.startsWith(`${action}:`));
  }, 10_000, `a ${action} event of ${container}`);
}

function raise(hit: RuleHit, cause: string): string {
  return tg.gw.store.transaction(() => tg.gw.alerts.raise(hit, cause)).alert.id;
}

describeDocker("alerts and quarantines over the API", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { reconcileIntervalMs: 3_600_000, rollout: { pollMs: 100, settleMs: 300 } } });
    quietMonitoring(tg.gw);
    gatewayId = tg.gw.deployments.gatewayId;
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    dev = developerIn(tg, NS_A);
    tg.gw.namespaces.create(NS_B, {}, { identity: "user:admin" });
    admin = { trustDomain: tg.gw.config.trustDomain, caPem: tg.caPem, certPem: tg.admin.certPem, keyPem: tg.admin.keyPem };
    alice = client("user:alice");
    bob = client("user:bob");
    carol = client("user:carol");
    tg.gw.policy.bind("user:alice", "security-admin", NS_A, { identity: "user:admin" });
    tg.gw.policy.bind("user:bob", "security-admin", NS_B, { identity: "user:admin" });
    tg.gw.policy.bind("user:carol", "auditor", NS_A, { identity: "user:admin" });

    const m = busyboxManifest(NS_A, "api", await pinnedRef(image), { replicas: 2, resources: { cpus: 0.1, memory: "32Mi", pids: 32 } });
    const r = await postSigned(tg.api, dev, NS_A, await signRequest(dev, "create", m));
    expect(r.status, r.body ?? r.error).toBe(200);
    const reps = tg.gw.store.deployments.replicasOf(NS_A, "api");
    replicas = reps.map((x) => x.containerName);
    const requester = tg.gw.store.deployments.revision(NS_A, "api", 1)!.requester;
    const ctxOf = (i: number) => context("local", reps[i]!.containerId!, reps[i]!.containerName, { namespace: NS_A, deployment: "api", revision: 1, requester });

    // docker exec into replica 0: the real exec_create event, as the exec rule sees it.
    const t0 = Date.now() - 1_000;
    await dockerCli(["exec", replicas[0]!, "id"]);
    const exec = await dockerEvents(replicas[0]!, t0, "exec_create");
    ids.exec = raise({ rule: rule("exec-into-container", { severity: "critical" }), context: ctxOf(0), evidence: { kind: "event", event: exec }, at: exec.timeMs, summary: `docker exec into ${NS_A}/${replicas[0]} (${exec.action})` }, exec.id);
    // The same into replica 1, with a rule that quarantines.
    await dockerCli(["exec", replicas[1]!, "id"]);
    const exec1 = await dockerEvents(replicas[1]!, t0, "exec_create");
    ids.quarantine = raise({ rule: rule("exec-quarantine", { severity: "high", actions: ["quarantine"] }), context: ctxOf(1), evidence: { kind: "event", event: exec1 }, at: exec1.timeMs, summary: `docker exec into ${NS_A}/${replicas[1]}` }, exec1.id);
    // A stray container on the node: a drift alert, with no namespace.
    stray = `pc-test-${run.id}-stray`;
    await dockerCli(["run", "-d", "--name", stray, "--label", "io.portcullis.test=1", "--label", run.selector, "--network", "none", image, "sleep", "600"]);
    const created = await dockerEvents(stray, t0, "create");
    ids.drift = raise({ rule: rule("container-drift", { severity: "medium" }), context: undefined, evidence: { kind: "event", event: created }, at: created.timeMs, summary: `a container the gateway did not create: ${stray}` }, created.id);

    await eventually(async () => {
      await tg.gw.responseActions.runPending();
      return tg.gw.alerts.get(ids.quarantine).actions[0]?.state === "done" ? true : undefined;
    }, 20_000, "the quarantine done");
  }, 120_000);

  afterAll(async () => {
    await tg?.close();
    await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`).catch(() => undefined);
    await cleanupTestRun(engine, run, image).catch(() => undefined);
  }, 60_000);

  type A = { id: string; rule: string; severity: string; namespace: string | null; container: string | null; status: string; count: number; evidence: { first: { kind: string; event: MonitorEvent } }; actions: { action: string; state: string }[]; ack?: { by: string; note: string } };

  itDocker("lists, filters and gets alerts; the evidence is the engine's event", async () => {
    const all = await call<{ items: A[] }>(admin, "GET", "/v1/alerts");
    expect(all.status).toBe(200);
    expect(all.body.items.map((a) => a.id).sort()).toEqual([ids.exec, ids.quarantine, ids.drift].sort());
    const crit = await call<{ items: A[] }>(admin, "GET", `/v1/alerts?namespace=${NS_A}&severity=critical`);
    expect(crit.body.items.map((a) => a.id)).toEqual([ids.exec]);
    const high = await call<{ items: A[] }>(admin, "GET", "/v1/alerts?severity=high&open=true");
    expect(high.body.items.map((a) => a.id).sort()).toEqual([ids.exec, ids.quarantine].sort());
    const byRule = await call<{ items: A[] }>(admin, "GET", "/v1/alerts?rule=container-drift");
    expect(byRule.body.items).toEqual([expect.objectContaining({ id: ids.drift, namespace: null, container: expect.any(String) })]);
    const one = await call<A>(admin, "GET", `/v1/alerts/${ids.exec}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: ids.exec, rule: "exec-into-container", severity: "critical", namespace: NS_A, container: replicas[0], status: "open", count: 1, actions: [] });
    expect(one.body.evidence.first).toMatchObject({ kind: "event", event: { type: "container", node: "local", attributes: { name: replicas[0] } } });
    expect(one.body.evidence.first.event.action).toMatch(/^exec_create: id\s*$/);
    const q = await call<A>(admin, "GET", `/v1/alerts/${ids.quarantine}`);
    expect(q.body.actions).toEqual([expect.objectContaining({ action: "quarantine", state: "done" })]);
    const bad = await call<unknown>(admin, "GET", "/v1/alerts?severity=extreme");
    expect(bad.status).toBe(400);
    const unknown = await call<unknown>(admin, "GET", "/v1/alerts/alert-0000000000000000");
    expect(unknown).toMatchObject({ status: 404, body: { code: "PC_MONITOR_ALERT_NOT_FOUND" } });
  }, {}, 60_000);

  itDocker("namespace authorization: another namespace's security admin and a developer see none of them", async () => {
    const mine = await call<{ items: A[] }>(alice, "GET", "/v1/alerts");
    expect(mine.status).toBe(200);
    expect(mine.body.items.map((a) => a.id).sort()).toEqual([ids.exec, ids.quarantine].sort()); // not the drift alert: no namespace
    expect((await call<{ items: A[] }>(alice, "GET", `/v1/alerts?namespace=${NS_A}`)).body.items).toHaveLength(2);
    expect((await call<A>(alice, "GET", `/v1/alerts/${ids.exec}`)).status).toBe(200);
    expect(await call<unknown>(alice, "GET", `/v1/alerts/${ids.drift}`)).toMatchObject({ status: 404, body: { code: "PC_MONITOR_ALERT_NOT_FOUND" } });

    expect((await call<{ items: A[] }>(bob, "GET", "/v1/alerts")).body.items).toEqual([]);
    expect(await call<unknown>(bob, "GET", `/v1/alerts?namespace=${NS_A}`)).toMatchObject({ status: 403, body: { code: "PC_API_FORBIDDEN" } });
    expect(await call<unknown>(bob, "GET", `/v1/alerts/${ids.exec}`)).toMatchObject({ status: 404, body: { code: "PC_MONITOR_ALERT_NOT_FOUND" } });
    expect(await call<unknown>(bob, "POST", `/v1/alerts/${ids.exec}/ack`, { note: "not mine" })).toMatchObject({ status: 404, body: { code: "PC_MONITOR_ALERT_NOT_FOUND" } });
    expect((await call<{ items: A[] }>(bob, "GET", `/v1/alerts?namespace=${NS_B}`)).body.items).toEqual([]);

    expect((await call<{ items: A[] }>(dev, "GET", "/v1/alerts")).body.items).toEqual([]);
    expect(await call<unknown>(dev, "GET", `/v1/alerts/${ids.exec}`)).toMatchObject({ status: 404, body: { code: "PC_MONITOR_ALERT_NOT_FOUND" } });

    expect(await call<unknown>(carol, "POST", `/v1/alerts/${ids.exec}/ack`, { note: "may not" })).toMatchObject({ status: 403, body: { code: "PC_API_FORBIDDEN" } });
    expect(await call<unknown>(alice, "GET", "/v1/alerts/deliveries")).toMatchObject({ status: 403, body: { code: "PC_API_FORBIDDEN" } });
    expect(await call<{ items: unknown[] }>(admin, "GET", "/v1/alerts/deliveries?state=dead")).toMatchObject({ status: 200, body: { items: [] } });
    // Each decision is audited, as the route guard records them.
    const heads = (() => {
      tg.gw.audit.flush();
      return [...tg.gw.audit.entries(0, Number.MAX_SAFE_INTEGER)].filter((e) => e.head.type === "authz.decision").map((e) => ({ ...e.head, target: e.body.target }));
    })();
    expect(heads).toContainEqual(expect.objectContaining({ actor: "user:bob", outcome: "denied", action: "alerts:read", target: NS_A }));
    expect(heads).toContainEqual(expect.objectContaining({ actor: "user:alice", outcome: "allowed", action: "alerts:read", target: NS_A }));
    expect(heads).toContainEqual(expect.objectContaining({ actor: "user:carol", outcome: "denied", action: "alerts:update", target: NS_A }));
    expect(tg.gw.alerts.get(ids.exec).status).toBe("open");
  }, {}, 60_000);

  itDocker("acks once, with a note; a second ack is 409 and the first stays", async () => {
    const bad = await call<unknown>(alice, "POST", `/v1/alerts/${ids.exec}/ack`, { note: "" });
    expect(bad.status).toBe(400);
    const extra = await call<unknown>(alice, "POST", `/v1/alerts/${ids.exec}/ack`, { note: "x", severity: "low" });
    expect(extra.status).toBe(400);
    const ok = await call<A>(alice, "POST", `/v1/alerts/${ids.exec}/ack`, { note: "a support session, ticket SUP-12" });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: "acked", ack: { by: "user:alice", note: "a support session, ticket SUP-12" } });
    const again = await call<unknown>(admin, "POST", `/v1/alerts/${ids.exec}/ack`, { note: "me too" });
    expect(again).toMatchObject({ status: 409, body: { code: "PC_MONITOR_ALERT_ACKED" } });
    expect((await call<A>(admin, "GET", `/v1/alerts/${ids.exec}`)).body.ack).toMatchObject({ by: "user:alice", note: "a support session, ticket SUP-12" });
    expect((await call<{ items: A[] }>(admin, "GET", "/v1/alerts?open=true")).body.items.map((a) => a.id)).not.toContain(ids.exec);
    expect(auditEntries(tg, "monitor.alert_acked").map((e) => [e.body.target, (e.body as { actorSerial?: string }).actorSerial !== undefined])).toEqual([[ids.exec, true]]);
  }, {}, 60_000);

  itDocker("quarantines: listed by namespace, released by who may delete them there, 404 for others", async () => {
    type Q = { container: string; namespace: string; deployment: string; rule: string; alert: string; releasedBy?: string };
    const listed = await call<{ items: Q[] }>(alice, "GET", "/v1/quarantines");
    expect(listed.body.items).toEqual([expect.objectContaining({ container: replicas[1], namespace: NS_A, deployment: "api", rule: "exec-quarantine", alert: ids.quarantine })]);
    expect((await call<{ items: Q[] }>(bob, "GET", "/v1/quarantines")).body.items).toEqual([]);
    expect(await call<unknown>(bob, "GET", `/v1/quarantines?namespace=${NS_A}`)).toMatchObject({ status: 403 });
    expect(await call<unknown>(bob, "DELETE", `/v1/quarantines/${replicas[1]}`, { note: "not mine" })).toMatchObject({ status: 404, body: { code: "PC_MONITOR_QUARANTINE_NOT_FOUND" } });
    expect(await call<unknown>(carol, "DELETE", `/v1/quarantines/${replicas[1]}`, { note: "may read, not release" })).toMatchObject({ status: 403, body: { code: "PC_API_FORBIDDEN" } });
    expect(await call<unknown>(alice, "DELETE", `/v1/quarantines/${replicas[0]}`, { note: "not held" })).toMatchObject({ status: 404, body: { code: "PC_MONITOR_QUARANTINE_NOT_FOUND" } });
    expect(await call<unknown>(alice, "DELETE", `/v1/quarantines/${replicas[1]}`, {})).toMatchObject({ status: 400 });
    expect(JSON.parse(await dockerCli(["inspect", "--type", "container", replicas[1]!]))[0].State.Paused).toBe(true);

    const released = await call<Q>(alice, "DELETE", `/v1/quarantines/${replicas[1]}`, { note: "image copied for forensics" });
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({ container: replicas[1], releasedBy: "user:alice" });
    await expect(dockerCli(["inspect", "--type", "container", replicas[1]!])).rejects.toThrow();
    expect((await call<{ items: Q[] }>(admin, "GET", "/v1/quarantines")).body.items).toEqual([]);
    expect((await call<{ items: Q[] }>(admin, "GET", "/v1/quarantines?all=true")).body.items).toEqual([expect.objectContaining({ container: replicas[1], releasedBy: "user:alice" })]);
    // The reconciler brings the replica back, fresh.
    const report = await tg.gw.reconciler.reconcileOnce();
    expect(report.replicasStarted).toBe(1);
    expect(JSON.parse(await dockerCli(["inspect", "--type", "container", replicas[1]!]))[0].State).toMatchObject({ Running: true, Paused: false });
  }, {}, 60_000);
});
