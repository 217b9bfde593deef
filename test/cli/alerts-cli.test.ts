/**
 * `portcullis alerts list | get | ack | deliveries` and `portcullis quarantine list |
 * release` through the real CLI against a real gateway: tables and JSON, the filters,
 * acknowledgements once only, the dead-letter record, and a quarantined container (on the
 * local dockerd) released and removed. Alerts are raised from Docker events as
 * `docker events --format '{{json .}}'` prints them, as the monitor raises them.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { parseRecordedEvent, type RuleHit } from "../../src/monitoring/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { runCli, type CliResult } from "../support/cli.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { eventually, writeProfile } from "../runtime/deploy-support.js";
import { context, quietMonitoring, rule } from "../monitoring/alert-fixtures.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = "payments";

let tg: TestGateway;
let admin: string;
let image = "";
let stray = "";
const ids = { exec: "", oom: "", quarantine: "" };

function as(profile: string, args: readonly string[]): Promise<CliResult> {
  return runCli(args, { env: { PORTCULLIS_PROFILE: profile }, timeoutMs: 60_000 });
}

/** A Docker event line as `docker events --format '{{json .}}'` prints it. */
function dockerLine(action: string, name: string, atMs: number): string {
  const id = "4f".repeat(32);
  const nano = `${atMs}000000`;
  return JSON.stringify({ status: action, id, from: "portcullis-test/busybox", Type: "container", Action: action, Actor: { ID: id, Attributes: { image: "portcullis-test/busybox", name } }, scope: "local", time: Math.floor(atMs / 1000), timeNano: "NANO" }).replace('"NANO"', nano);
}

function raise(hit: RuleHit, cause: string): string {
  return tg.gw.store.transaction(() => tg.gw.alerts.raise(hit, cause)).alert.id;
}

describeDocker("alerts and quarantine through the CLI", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { reconcileIntervalMs: 3_600_000 } });
    quietMonitoring(tg.gw);
    tg.gw.namespaces.create(NS, {}, { identity: "user:admin" });
    admin = writeProfile(tg, "admin", tg.admin, "user:admin");
    image = await buildBusyboxImage(engine, run);
    const now = Date.now();
    const ctx = context("local", "4f".repeat(32), "pc-gw-payments-api-r1-0", { namespace: NS, deployment: "api", revision: 1, requester: "user:dev1" });
    const exec = parseRecordedEvent(dockerLine("exec_create: sh -c id", "pc-gw-payments-api-r1-0", now - 2_000), 1);
    ids.exec = raise({ rule: rule("exec-into-container", { severity: "critical" }), context: ctx, evidence: { kind: "event", event: exec }, at: exec.timeMs, summary: "docker exec into payments/pc-gw-payments-api-r1-0 (exec_create: sh -c id)" }, exec.id);
    const oom = parseRecordedEvent(dockerLine("oom", "pc-gw-payments-api-r1-0", now - 1_000), 1);
    ids.oom = raise({ rule: rule("oom-killed", { severity: "medium" }), context: ctx, evidence: { kind: "event", event: oom }, at: oom.timeMs, summary: "out of memory: payments/pc-gw-payments-api-r1-0" }, oom.id);
    // A stray container, quarantined by a rule.
    stray = `pc-test-${run.id}-stray`;
    await dockerCli(["run", "-d", "--name", stray, "--label", "io.portcullis.test=1", "--label", run.selector, image, "sleep", "600"]);
    const created = parseRecordedEvent(dockerLine("create", stray, now), 1);
    ids.quarantine = raise({ rule: rule("container-drift", { severity: "high", actions: ["quarantine"] }), context: context("local", created.actor, stray), evidence: { kind: "event", event: created }, at: created.timeMs, summary: `a container the gateway did not create: ${stray}` }, created.id);
    await eventually(async () => {
      await tg.gw.responseActions.runPending();
      return tg.gw.alerts.get(ids.quarantine).actions[0]?.state === "done" ? true : undefined;
    }, 20_000, "the quarantine done");
    // Two webhook deliveries: one delivered, one dead.
    const at = Date.now();
    tg.gw.store.alertDeliveries.insert({ id: "dlv-0000000000000001", alertId: ids.exec, sink: "https://hooks.example/p", payload: "{}", nextAt: at, createdAt: at });
    tg.gw.store.alertDeliveries.insert({ id: "dlv-0000000000000002", alertId: ids.oom, sink: "https://hooks.example/p", payload: "{}", nextAt: at, createdAt: at + 1 });
    tg.gw.store.alertDeliveries.recordAttempt("dlv-0000000000000001", "delivered", 1, at, null, at);
    tg.gw.store.alertDeliveries.recordAttempt("dlv-0000000000000002", "dead", 6, at, "HTTP 500", at);
  }, 120_000);

  afterAll(async () => {
    await tg?.close();
    await cleanupTestRun(engine, run, image).catch(() => undefined);
  }, 60_000);

  itDocker("alerts list: a table, newest first; JSON with the filters; a bad severity is a usage error", async () => {
    const t = await as(admin, ["alerts", "list"]);
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+SEVERITY\s+RULE\s+WHERE\s+COUNT\s+LASTSEEN\s+STATUS\s+SUMMARY$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([ids.quarantine, ids.oom, ids.exec]);
    expect(lines[3]).toMatch(new RegExp(`^${ids.exec}\\s+critical\\s+exec-into-container\\s+payments/api\\s+1\\s+\\S+Z\\s+open\\s+docker exec into`));
    const j = await as(admin, ["-o", "json", "alerts", "list", "-n", NS, "--severity", "high"]);
    expect(j.code, j.stderr).toBe(0);
    expect((JSON.parse(j.stdout) as { id: string }[]).map((a) => a.id)).toEqual([ids.exec]);
    const byRule = await as(admin, ["-o", "json", "alerts", "list", "--rule", "oom-killed", "--open"]);
    expect((JSON.parse(byRule.stdout) as { id: string; severity: string }[])).toEqual([expect.objectContaining({ id: ids.oom, severity: "medium" })]);
    const bad = await as(admin, ["alerts", "list", "--severity", "extreme"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("PC_CLI_USAGE");
  }, {}, 60_000);

  itDocker("alerts get shows where, how often, the actions and the evidence; ack once with a note", async () => {
    const g = await as(admin, ["alerts", "get", ids.quarantine]);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/^id\s+alert-[0-9a-f]{16}$/m);
    expect(g.stdout).toMatch(/^rule\s+container-drift$/m);
    expect(g.stdout).toContain("response actions:");
    expect(g.stdout).toMatch(/^quarantine\s+done\s+1\s/m);
    expect(g.stdout).toContain('"kind": "event"');
    const noNote = await as(admin, ["alerts", "ack", ids.exec]);
    expect(noNote.code).not.toBe(0);
    const ack = await as(admin, ["-o", "json", "alerts", "ack", ids.exec, "--note", "support session SUP-7"]);
    expect(ack.code, ack.stderr).toBe(0);
    expect(JSON.parse(ack.stdout)).toMatchObject({ id: ids.exec, status: "acked", ack: { by: "user:admin", note: "support session SUP-7" } });
    const again = await as(admin, ["alerts", "ack", ids.exec, "--note", "twice"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("PC_MONITOR_ALERT_ACKED");
    const open = await as(admin, ["-o", "json", "alerts", "list", "--open"]);
    expect((JSON.parse(open.stdout) as { id: string }[]).map((a) => a.id)).not.toContain(ids.exec);
    const missing = await as(admin, ["alerts", "get", "alert-ffffffffffffffff"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("PC_MONITOR_ALERT_NOT_FOUND");
  }, {}, 60_000);

  itDocker("alerts deliveries: all of them, or --dead only", async () => {
    const all = await as(admin, ["alerts", "deliveries"]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain("dlv-0000000000000001");
    expect(all.stdout).toContain("dlv-0000000000000002");
    const dead = await as(admin, ["alerts", "deliveries", "--dead"]);
    expect(dead.code, dead.stderr).toBe(0);
    const rows = dead.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^ID\s+ALERT\s+STATE\s+ATTEMPTS\s+UPDATEDAT\s+LASTERROR$/);
    expect(rows.slice(1)).toEqual([expect.stringMatching(new RegExp(`^dlv-0000000000000002\\s+${ids.oom}\\s+dead\\s+6\\s+\\S+\\s+HTTP 500$`))]);
  }, {}, 60_000);

  itDocker("quarantine list and release: the held container is removed", async () => {
    const l = await as(admin, ["quarantine", "list"]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout.split("\n")[0]).toMatch(/^CONTAINER\s+NODE\s+DEPLOYMENT\s+RULE\s+ALERT\s+SINCE\s+NETWORKS\s+RELEASED$/);
    expect(l.stdout).toMatch(new RegExp(`^${stray}\\s+local\\s+-\\s+container-drift\\s+${ids.quarantine}\\s+\\S+\\s+bridge\\s+-$`, "m"));
    expect(JSON.parse(await dockerCli(["inspect", "--type", "container", stray]))[0].State.Paused).toBe(true);
    const noNote = await as(admin, ["quarantine", "release", stray]);
    expect(noNote.code).not.toBe(0);
    const r = await as(admin, ["quarantine", "release", stray, "--note", "copied the file system"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^quarantine of ${stray} released by user:admin at \\S+; the container was removed$`, "m"));
    await expect(dockerCli(["inspect", "--type", "container", stray])).rejects.toThrow();
    const after = await as(admin, ["quarantine", "list"]);
    expect(after.stdout).toBe("no quarantined containers\n");
    const all = await as(admin, ["-o", "json", "quarantine", "list", "--all"]);
    expect(JSON.parse(all.stdout)).toEqual([expect.objectContaining({ container: stray, releasedBy: "user:admin", networks: ["bridge"] })]);
    const again = await as(admin, ["quarantine", "release", stray, "--note", "again"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("PC_MONITOR_QUARANTINE_NOT_FOUND");
  }, {}, 60_000);
});
