/**
 * AlertService on a real store and the real audit log: a hit raises an alert (with its
 * response actions pending, audited in the same transaction); identical hits within the
 * rule's window are one alert whose count grows; after the window, or after an
 * acknowledgement, a new one; filters; acknowledgements once only; the sink gets new
 * alerts and the first repeat after a quiet spell.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog, type AuditEntry } from "../../src/audit/index.js";
import { ManualClock, PortcullisError } from "../../src/core/index.js";
import { AlertService, DERIVED_ACTIONS, GATEWAY_EVENT_TYPE, type Alert, type RuleHit } from "../../src/monitoring/index.js";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { containerEvent, context, hitOn, rule } from "./alert-fixtures.js";

const T0 = Date.parse("2026-03-01T10:00:00.000Z");

let tmp: ReturnType<typeof tempDir>;
let store: Store;
let clock: ManualClock;
let audit: AuditLog;
let sent: { alert: Alert; created: boolean }[];
let raised: { id: string; created: boolean }[];
let alerts: AlertService;

beforeEach(() => {
  tmp = tempDir("portcullis-alerts-");
  store = Store.open(tmp.dir);
  clock = new ManualClock(T0);
  audit = new AuditLog(store, clock, { trustDomain: "portcullis.local", hmacKey: randomBytes(32) });
  audit.genesis("portcullis.local", "ab".repeat(32));
  sent = [];
  raised = [];
  alerts = new AlertService(store, audit, clock, {
    onRaised: (a, created) => raised.push({ id: a.id, created }),
    sink: { enqueue: (alert, created) => sent.push({ alert, created }) },
  });
});
afterEach(async () => {
  await audit.close().catch(() => undefined);
  store.close();
  tmp.cleanup();
});

function entries(type: string): AuditEntry[] {
  audit.flush();
  return [...audit.entries(0, Number.MAX_SAFE_INTEGER)].filter((e) => e.head.type === type);
}

/** Raises inside a transaction, as the monitor does. */
const raise = (hit: RuleHit, cause = "ev-1") => store.transaction(() => alerts.raise(hit, cause));

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof PortcullisError ? e.code : String(e);
  }
  return undefined;
}

describe("AlertService", () => {
  const exec = rule("exec-into-container", { severity: "critical", actions: ["alert", "quarantine", "revoke"], dedupeWindowMs: 60_000 });
  const api0 = context("local", "c0ffee01", "pc-gw-payments-api-r1-0", { namespace: "payments", deployment: "api", revision: 1, requester: "user:dev1" });

  it("raises a new alert with its response actions pending, audited once in the same transaction", () => {
    const r = raise(hitOn(exec, api0, T0), "ev-first");
    expect(r.created).toBe(true);
    expect(r.alert.id).toMatch(/^alert-[0-9a-f]{16}$/);
    expect(r.alert).toMatchObject({
      rule: "exec-into-container", severity: "critical", namespace: "payments", deployment: "api", node: "local",
      container: "pc-gw-payments-api-r1-0", count: 1, status: "open", firstSeen: new Date(T0).toISOString(), lastSeen: new Date(T0).toISOString(),
    });
    // One pending row per response action ("alert" is not one), with the target and the cause.
    expect(r.alert.actions.map((a) => [a.action, a.state, a.attempts])).toEqual([["quarantine", "pending", 0], ["revoke", "pending", 0]]);
    const rows = store.monitorActions.ofAlert(r.alert.id);
    expect(rows.map((a) => ({ node: a.node, container: a.container, namespace: a.namespace, deployment: a.deployment, eventId: a.eventId, rule: a.rule }))).toEqual([
      { node: "local", container: "pc-gw-payments-api-r1-0", namespace: "payments", deployment: "api", eventId: "ev-first", rule: "exec-into-container" },
      { node: "local", container: "pc-gw-payments-api-r1-0", namespace: "payments", deployment: "api", eventId: "ev-first", rule: "exec-into-container" },
    ]);
    const audited = entries("monitor.alert");
    expect(audited).toHaveLength(1);
    expect(audited[0]!.head).toMatchObject({ outcome: "allowed", actor: "service:gateway", resource: "alerts", namespace: "payments" });
    expect(audited[0]!.body.target).toBe("pc-gw-payments-api-r1-0");
    const reason = audited[0]!.body.reasons?.[0] ?? "";
    expect(reason).toMatch(/^exec-into-container: docker exec into payments\/pc-gw-payments-api-r1-0/);
    expect(reason).toContain(r.alert.id);
    expect(reason).toContain(`first seen ${new Date(T0).toISOString()}`);
    expect(raised).toEqual([{ id: r.alert.id, created: true }]);
    expect(sent.map((s) => [s.alert.id, s.created])).toEqual([[r.alert.id, true]]);
  });

  it("a repeat within the window takes the rule's actions again, unless the same action is still pending", () => {
    const first = raise(hitOn(exec, api0, T0), "ev-1").alert;
    // Both actions still pending: a burst of hits queues nothing more.
    raise(hitOn(exec, api0, T0 + 1_000), "ev-2");
    expect(store.monitorActions.ofAlert(first.id).map((a) => a.action).sort()).toEqual(["quarantine", "revoke"]);
    // Once they are done, the next hit (say, after the container was unpaused by hand) queues them again.
    for (const a of store.monitorActions.ofAlert(first.id)) store.monitorActions.update(a.id, "done", 1, "held", T0 + 2_000);
    const again = raise(hitOn(exec, api0, T0 + 3_000), "ev-3");
    expect(again.created).toBe(false);
    const rows = store.monitorActions.ofAlert(first.id);
    expect(rows.filter((a) => a.state === "pending").map((a) => [a.action, a.eventId]).sort()).toEqual([["quarantine", "ev-3"], ["revoke", "ev-3"]]);
    expect(rows).toHaveLength(4);
  });

  it("a failed transaction keeps nothing: no alert, no action, no audit entry", () => {
    expect(() =>
      store.transaction(() => {
        alerts.raise(hitOn(exec, api0, T0), "ev-x");
        throw new Error("the event could not be recorded");
      }),
    ).toThrow("could not be recorded");
    expect(alerts.list()).toEqual([]);
    expect(store.monitorActions.pending()).toEqual([]);
    expect(entries("monitor.alert")).toEqual([]);
  });

  it("deduplicates within the window (count, last seen, last evidence; first kept), and starts a new alert after it", () => {
    const e1 = containerEvent("local", "c0ffee01", api0.containerName, T0, "exec_create: sh -c id");
    const first = raise(hitOn(exec, api0, T0, e1), "ev-1").alert;
    const e2 = containerEvent("local", "c0ffee01", api0.containerName, T0 + 20_000, "exec_create: cat /etc/shadow");
    const second = raise(hitOn(exec, api0, T0 + 20_000, e2), "ev-2");
    expect(second.created).toBe(false);
    expect(second.alert.id).toBe(first.id);
    expect(second.alert.count).toBe(2);
    expect(second.alert.lastSeen).toBe(new Date(T0 + 20_000).toISOString());
    expect(second.alert.firstSeen).toBe(new Date(T0).toISOString());
    expect(second.alert.evidence.first).toEqual({ kind: "event", event: e1 });
    expect(second.alert.evidence.last).toEqual({ kind: "event", event: e2 });
    // The window slides with the last sighting: 70 s after the first, 50 s after the last.
    const third = raise(hitOn(exec, api0, T0 + 70_000), "ev-3");
    expect(third).toMatchObject({ created: false, alert: { id: first.id, count: 3 } });
    // Repeats add no actions and no audit entries: the count says it.
    expect(store.monitorActions.ofAlert(first.id)).toHaveLength(2);
    expect(entries("monitor.alert")).toHaveLength(1);
    // More than the window after the last sighting: a new alert, with its own actions.
    const later = raise(hitOn(exec, api0, T0 + 70_000 + 60_001), "ev-4");
    expect(later.created).toBe(true);
    expect(later.alert.id).not.toBe(first.id);
    expect(later.alert.actions).toHaveLength(2);
    expect(entries("monitor.alert")).toHaveLength(2);
    expect(alerts.get(first.id).count).toBe(3);
  });

  it("keeps different containers, nodes and rules apart", () => {
    const a = raise(hitOn(exec, api0, T0)).alert;
    const otherContainer = raise(hitOn(exec, context("local", "c0ffee02", "pc-gw-payments-api-r1-1", { namespace: "payments", deployment: "api" }), T0)).alert;
    const otherNode = raise(hitOn(exec, context("edge-1", "c0ffee01", api0.containerName, { namespace: "payments", deployment: "api" }), T0)).alert;
    const otherRule = raise(hitOn(rule("oom-killed", { severity: "medium" }), api0, T0)).alert;
    expect(new Set([a.id, otherContainer.id, otherNode.id, otherRule.id]).size).toBe(4);
    // Without a context, the event's actor is the container.
    const stray = containerEvent("local", "deadbeef", "stray", T0);
    const h: RuleHit = { rule: rule("container-drift"), context: undefined, evidence: { kind: "event", event: stray }, at: T0, summary: "a container the gateway did not create" };
    const d1 = raise(h).alert;
    const d2 = raise({ ...h, at: T0 + 1_000 });
    expect(d1).toMatchObject({ container: "deadbeef", node: "local", namespace: null, deployment: null });
    expect(d2).toMatchObject({ created: false, alert: { id: d1.id, count: 2 } });
  });

  it("a rescan's new findings are deduplicated per deployment", () => {
    const r = rule("scan-new-findings");
    const ev = (at: number, deployment: string) => ({
      ...containerEvent("", `payments/${deployment}`, "", at),
      source: "gateway" as const,
      type: GATEWAY_EVENT_TYPE,
      action: DERIVED_ACTIONS.scanNewFindings,
      attributes: { namespace: "payments", deployment, findings: "PCDEMO-2026-0001" },
    });
    const ctxOf = (deployment: string) => ({ ...context("", "", "", { namespace: "payments", deployment }) });
    const hit = (at: number, deployment: string): RuleHit => ({ rule: r, context: ctxOf(deployment), evidence: { kind: "event", event: ev(at, deployment) }, at, summary: `new blocking findings in payments/${deployment}` });
    const legacy = raise(hit(T0, "legacy")).alert;
    expect(legacy).toMatchObject({ namespace: "payments", deployment: "legacy", node: null, container: null });
    expect(raise(hit(T0 + 5_000, "legacy"))).toMatchObject({ created: false, alert: { id: legacy.id, count: 2 } });
    expect(raise(hit(T0 + 5_000, "web")).created).toBe(true);
  });

  it("the sink gets new alerts, and a repeat only after a quiet spell of half the window", () => {
    const first = raise(hitOn(exec, api0, T0)).alert;
    raise(hitOn(exec, api0, T0 + 1_000));
    raise(hitOn(exec, api0, T0 + 2_000));
    expect(sent.map((s) => [s.alert.id, s.created, s.alert.count])).toEqual([[first.id, true, 1]]);
    raise(hitOn(exec, api0, T0 + 2_000 + 30_000)); // 30 s of quiet: half the 60 s window
    expect(sent.map((s) => [s.alert.id, s.created, s.alert.count])).toEqual([[first.id, true, 1], [first.id, false, 4]]);
    expect(raised.map((r) => r.created)).toEqual([true, false, false, false]);
  });

  it("acknowledges once: the second ack is PC_MONITOR_ALERT_ACKED and the first note stays; a repeat then raises a new alert", () => {
    const a = raise(hitOn(exec, api0, T0)).alert;
    clock.advance(5_000);
    const acked = alerts.ack(a.id, { identity: "user:alice", serial: "0a1b", requestId: "req-1", sourceAddress: "127.0.0.1" }, "looked at it: a support engineer");
    expect(acked.status).toBe("acked");
    expect(acked.ack).toEqual({ by: "user:alice", at: new Date(T0 + 5_000).toISOString(), note: "looked at it: a support engineer" });
    expect(code(() => alerts.ack(a.id, { identity: "user:bob" }, "again"))).toBe("PC_MONITOR_ALERT_ACKED");
    expect(alerts.get(a.id).ack).toMatchObject({ by: "user:alice", note: "looked at it: a support engineer" });
    const audited = entries("monitor.alert_acked");
    expect(audited).toHaveLength(1);
    expect(audited[0]!.head).toMatchObject({ actor: "user:alice", outcome: "allowed", resource: "alerts", namespace: "payments" });
    expect(audited[0]!.body).toMatchObject({ target: a.id, actorSerial: "0a1b", requestId: "req-1" });
    // The note is the caller's text: it is kept with the alert, not in the audit entry.
    expect(JSON.stringify(audited[0])).not.toContain("support engineer");
    // New activity after an acknowledgement is a new alert, even within the window.
    const again = raise(hitOn(exec, api0, T0 + 10_000));
    expect(again.created).toBe(true);
    expect(again.alert.id).not.toBe(a.id);
  });

  it("refuses a note that is empty, too long or carries control characters; an unknown id is not found", () => {
    const a = raise(hitOn(exec, api0, T0)).alert;
    for (const bad of ["", "   ", "x".repeat(1001), "line\nbreak", "bell\u0007", "nul\u0000"]) {
      expect(code(() => alerts.ack(a.id, { identity: "user:alice" }, bad)), JSON.stringify(bad)).toBe("PC_API_INVALID_BODY");
    }
    expect(alerts.get(a.id).status).toBe("open");
    expect(code(() => alerts.ack("alert-0000000000000000", { identity: "user:alice" }, "note"))).toBe("PC_MONITOR_ALERT_NOT_FOUND");
    expect(code(() => alerts.get("alert-0000000000000000"))).toBe("PC_MONITOR_ALERT_NOT_FOUND");
    expect(alerts.ack(a.id, { identity: "user:alice" }, "x".repeat(1000)).status).toBe("acked");
  });

  it("lists newest last sighting first, filtered by namespace, severity (at least), open, rule and deployment", () => {
    const low = raise(hitOn(rule("memory-near-limit", { severity: "low" }), api0, T0 + 1_000)).alert;
    const crit = raise(hitOn(exec, api0, T0 + 2_000)).alert;
    const web = context("local", "c0ffee09", "pc-gw-billing-web-r1-0", { namespace: "billing", deployment: "web" });
    const high = raise(hitOn(rule("image-mismatch", { severity: "high" }), web, T0 + 3_000)).alert;
    const stray: RuleHit = { rule: rule("container-drift", { severity: "medium" }), context: undefined, evidence: { kind: "event", event: containerEvent("local", "feed", "stray", T0 + 4_000) }, at: T0 + 4_000, summary: "drift" };
    const drift = raise(stray).alert;
    alerts.ack(crit.id, { identity: "user:alice" }, "seen");
    const ids = (xs: Alert[]) => xs.map((x) => x.id);
    expect(ids(alerts.list())).toEqual([drift.id, high.id, crit.id, low.id]);
    expect(ids(alerts.list({ namespaces: "*" }))).toEqual([drift.id, high.id, crit.id, low.id]);
    expect(ids(alerts.list({ namespaces: ["payments"] }))).toEqual([crit.id, low.id]);
    expect(ids(alerts.list({ namespaces: [] }))).toEqual([]);
    expect(ids(alerts.list({ severity: "high" }))).toEqual([high.id, crit.id]);
    expect(ids(alerts.list({ severity: "medium" }))).toEqual([drift.id, high.id, crit.id]);
    expect(ids(alerts.list({ open: true }))).toEqual([drift.id, high.id, low.id]);
    expect(ids(alerts.list({ open: false }))).toEqual([crit.id]);
    expect(ids(alerts.list({ rule: "image-mismatch" }))).toEqual([high.id]);
    expect(ids(alerts.list({ deployment: "api" }))).toEqual([crit.id, low.id]);
    expect(ids(alerts.list({ namespaces: ["payments"], severity: "critical", open: false }))).toEqual([crit.id]);
    expect(ids(alerts.list({ limit: 2 }))).toEqual([drift.id, high.id]);
  });
});
