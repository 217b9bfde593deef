/**
 * The repositories of alerts, response actions, quarantines and webhook deliveries, on a
 * real SQLite file: what they store is read back; dedupe lookups see open alerts within
 * a window only; an acknowledgement happens once; one active quarantine per container;
 * pending actions and deliveries settle once; the rescans' bookkeeping stays.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";

let tmp: ReturnType<typeof tempDir>;
let store: Store;
beforeEach(() => {
  tmp = tempDir("portcullis-alert-repos-");
  store = Store.open(tmp.dir);
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

const alert = (id: string, key: string, lastSeen: number, extra: Partial<Parameters<Store["alerts"]["insert"]>[0]> = {}) => ({
  id,
  rule: "exec-into-container",
  severity: "critical",
  namespace: "payments",
  deployment: "api",
  node: "local",
  container: "pc-x-payments-api-r1-0",
  dedupeKey: key,
  summary: "docker exec",
  evidence: '{"first":{"kind":"event"},"last":{"kind":"event"}}',
  count: 1,
  firstSeen: lastSeen,
  lastSeen,
  ...extra,
});

describe("alert repositories", () => {
  it("alerts: read back, dedupe lookup within the window on open alerts only, repeat, ack once, filters", () => {
    store.alerts.insert(alert("a1", "k", 1_000));
    expect(store.alerts.get("a1")).toMatchObject({ id: "a1", status: "open", count: 1, ackedBy: null, dedupeKey: "k" });
    expect(store.alerts.openByKey("k", 1_000)?.id).toBe("a1");
    expect(store.alerts.openByKey("k", 1_001)).toBeUndefined();
    expect(store.alerts.openByKey("other", 0)).toBeUndefined();
    store.alerts.repeat("a1", 5_000, '{"first":1,"last":2}');
    store.alerts.repeat("a1", 3_000, '{"first":1,"last":3}'); // late: last_seen does not go back
    expect(store.alerts.get("a1")).toMatchObject({ count: 3, lastSeen: 5_000, firstSeen: 1_000, evidence: '{"first":1,"last":3}' });
    expect(store.alerts.ack("a1", "user:alice", 6_000, "seen")).toBe(true);
    expect(store.alerts.ack("a1", "user:bob", 7_000, "again")).toBe(false);
    expect(store.alerts.get("a1")).toMatchObject({ status: "acked", ackedBy: "user:alice", ackedAt: 6_000, ackNote: "seen" });
    expect(store.alerts.openByKey("k", 0)).toBeUndefined();
    store.alerts.insert(alert("a2", "k2", 2_000, { severity: "low", namespace: null, deployment: null }));
    store.alerts.insert(alert("a3", "k3", 9_000, { namespace: "billing", rule: "oom-killed", severity: "medium" }));
    expect(store.alerts.list().map((a) => a.id)).toEqual(["a3", "a1", "a2"]);
    expect(store.alerts.list({ namespaces: ["payments", "billing"] }).map((a) => a.id)).toEqual(["a3", "a1"]);
    expect(store.alerts.list({ severities: ["low", "medium"] }).map((a) => a.id)).toEqual(["a3", "a2"]);
    expect(store.alerts.list({ open: true }).map((a) => a.id)).toEqual(["a3", "a2"]);
    expect(store.alerts.list({ rule: "oom-killed" }).map((a) => a.id)).toEqual(["a3"]);
    expect(store.alerts.list({ limit: 1 }).map((a) => a.id)).toEqual(["a3"]);
    // A filter value is a parameter, never SQL.
    expect(store.alerts.list({ rule: "x' OR '1'='1" })).toEqual([]);
  });

  it("rescans: the last version done is kept", () => {
    expect(store.alerts.lastRescan()).toBeUndefined();
    store.alerts.rescanDone(1, 10);
    store.alerts.rescanDone(3, 20);
    store.alerts.rescanDone(3, 30);
    expect(store.alerts.lastRescan()).toBe(3);
  });

  it("response actions: pending oldest first; an attempt settles a pending action once", () => {
    store.alerts.insert(alert("a1", "k", 1_000));
    const base = { alertId: "a1", rule: "r", eventId: "ev", node: "local", container: "c", namespace: "payments", deployment: "api" };
    store.monitorActions.insert({ ...base, id: "x2", action: "pause", createdAt: 20 });
    store.monitorActions.insert({ ...base, id: "x1", action: "quarantine", createdAt: 10 });
    expect(store.monitorActions.pending().map((a) => a.id)).toEqual(["x1", "x2"]);
    expect(store.monitorActions.get("x1")).toMatchObject({ state: "pending", attempts: 0, result: null, updatedAt: 10 });
    expect(store.monitorActions.update("x1", "pending", 1, "engine down", 30)).toBe(true);
    expect(store.monitorActions.update("x1", "done", 2, "quarantined", 40)).toBe(true);
    expect(store.monitorActions.update("x1", "failed", 3, "late", 50)).toBe(false);
    expect(store.monitorActions.get("x1")).toMatchObject({ state: "done", attempts: 2, result: "quarantined", updatedAt: 40 });
    expect(store.monitorActions.pending().map((a) => a.id)).toEqual(["x2"]);
    expect(store.monitorActions.ofAlert("a1").map((a) => a.id)).toEqual(["x1", "x2"]);
    // The table refuses an action it does not know.
    expect(() => store.monitorActions.insert({ ...base, id: "x3", action: "delete", createdAt: 1 })).toThrow(/CHECK/);
  });

  it("quarantines: one active per container name, networks kept, released once, then a new one may start", () => {
    const q = { containerName: "c1", containerId: "id1", node: "local", namespace: "payments", deployment: "api", alertId: "a1", rule: "r", networks: [], createdAt: 100 };
    expect(store.quarantines.insert({ ...q, id: "q1" })).toBe(true);
    expect(store.quarantines.insert({ ...q, id: "q2" })).toBe(false);
    store.quarantines.setNetworks("q1", ["pc-ns-payments"]);
    expect(store.quarantines.active("c1")).toMatchObject({ id: "q1", networks: ["pc-ns-payments"], releasedAt: null });
    expect(store.quarantines.activeOf("payments", "api").map((x) => x.id)).toEqual(["q1"]);
    expect([...store.quarantines.activeNames()]).toEqual(["c1"]);
    expect(store.quarantines.release("q1", "user:alice", 200)).toBe(true);
    expect(store.quarantines.release("q1", "user:bob", 300)).toBe(false);
    expect(store.quarantines.get("q1")).toMatchObject({ releasedAt: 200, releasedBy: "user:alice" });
    expect(store.quarantines.active("c1")).toBeUndefined();
    expect(store.quarantines.insert({ ...q, id: "q3", createdAt: 400 })).toBe(true);
    expect(store.quarantines.list().map((x) => x.id)).toEqual(["q3"]);
    expect(store.quarantines.list({ all: true }).map((x) => x.id)).toEqual(["q3", "q1"]);
  });

  it("deliveries: due in order, next due, an attempt settles a pending delivery once, listed by state", () => {
    store.alertDeliveries.insert({ id: "d1", alertId: "a1", sink: "https://hooks.example/x", payload: '{"a":1}', nextAt: 100, createdAt: 100 });
    store.alertDeliveries.insert({ id: "d2", alertId: "a2", sink: "https://hooks.example/x", payload: '{"a":2}', nextAt: 50, createdAt: 110 });
    expect(store.alertDeliveries.due(99).map((d) => d.id)).toEqual(["d2"]);
    expect(store.alertDeliveries.due(100).map((d) => d.id)).toEqual(["d2", "d1"]);
    expect(store.alertDeliveries.nextDue()).toBe(50);
    expect(store.alertDeliveries.recordAttempt("d2", "pending", 1, 500, "HTTP 500", 60)).toBe(true);
    expect(store.alertDeliveries.recordAttempt("d1", "dead", 1, 100, "HTTP 500", 120)).toBe(true);
    expect(store.alertDeliveries.recordAttempt("d1", "delivered", 2, 100, null, 130)).toBe(false);
    expect(store.alertDeliveries.nextDue()).toBe(500);
    expect(store.alertDeliveries.get("d1")).toMatchObject({ state: "dead", attempts: 1, lastError: "HTTP 500", payload: '{"a":1}' });
    expect(store.alertDeliveries.list({ state: "dead" }).map((d) => d.id)).toEqual(["d1"]);
    expect(store.alertDeliveries.list().map((d) => d.id)).toEqual(["d2", "d1"]);
  });
});
