/**
 * The monitoring rules service on a real SQLite store: the shipped rules seed version 1;
 * apply validates first (an invalid file changes nothing and records nothing), writes a
 * new version with its audit entry in one transaction, and says `unchanged` for the text
 * in force; rollback writes the old text as a new version; history and get read the
 * versions; current() serves the version in force and fails with
 * PC_MONITOR_RULES_MISSING when there is none it can trust.
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditLog } from "../../src/audit/index.js";
import { ManualClock, pcError, type AuditEvent, type AuditSink } from "../../src/core/index.js";
import { MonitoringRulesService, shippedMonitoringRules } from "../../src/monitoring/index.js";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { expectRefusal } from "../support/refusal.js";

const TD = "example.test";
const START = Date.parse("2026-03-01T09:00:00.000Z");
const SEC = { identity: "user:sec", serial: "0a", requestId: "req-1", sourceAddress: "127.0.0.1" };
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const rulesText = (actions: string) =>
  [
    "apiVersion: portcullis.io/v1",
    "kind: MonitoringRules",
    "rules:",
    "  - name: exec-into-container",
    "    description: Someone ran a command inside a managed container.",
    "    severity: critical",
    "    scope: { managed: true }",
    "    match: { event: { type: container, actions: [exec_create, exec_start] } }",
    `    actions: ${actions}`,
    "",
  ].join("\n");
const QUARANTINE = rulesText("[alert, quarantine]");
const BROKEN = rulesText("[alert, kill]");

/** Passes events to the real log, or fails like a full disk when told to. */
class FailableSink implements AuditSink {
  failing = false;
  constructor(private readonly inner: AuditLog) {}
  record(e: AuditEvent): void {
    if (this.failing) throw pcError("PC_AUDIT_WRITE_FAILED", undefined, new Error("disk full"));
    this.inner.record(e);
  }
  recordAfter(e: AuditEvent): void {
    this.record(e);
  }
  async append(e: AuditEvent): Promise<unknown> {
    this.record(e);
    return undefined;
  }
  flush(): void {}
}

let tmp: ReturnType<typeof tempDir>;
let store: Store;
let clock: ManualClock;
let sink: FailableSink;
let svc: MonitoringRulesService;

beforeEach(() => {
  tmp = tempDir("portcullis-monitoring-rules-");
  store = Store.open(tmp.dir);
  clock = new ManualClock(START);
  const log = new AuditLog(store, clock, { trustDomain: TD, hmacKey: randomBytes(32) });
  log.genesis(TD, "SHA256:00");
  sink = new FailableSink(log);
  svc = new MonitoringRulesService(store, sink, clock);
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

/** The monitoring.rules_applied entries of the audit log, oldest first. */
function applied(): { actor: string; target: string; reason: string; resource: string; request_id: string | null }[] {
  return store.db
    .prepare("SELECT actor, target, reason, resource, request_id FROM access_events WHERE type = 'monitoring.rules_applied' ORDER BY id")
    .all() as { actor: string; target: string; reason: string; resource: string; request_id: string | null }[];
}

describe("seed and current", () => {
  it("seeds version 1 from the shipped rules, audited; a second seed is refused", () => {
    const shipped = shippedMonitoringRules();
    expect(svc.seed(shipped, "service:portcullis-init")).toEqual({ version: 1, unchanged: false });
    const cur = svc.current();
    expect(cur.version).toBe(1);
    expect(cur.text).toBe(shipped);
    expect(cur.set.rules.map((r) => r.name)).toContain("exec-into-container");
    expect(svc.current()).toBe(cur); // cached by version
    expectRefusal(() => svc.seed(QUARANTINE, "user:x"), "PC_MONITOR_RULES_INVALID", "monitoring rules are already in force");
    expect(applied()).toEqual([{ actor: "service:portcullis-init", target: "monitoring-rules:v1", reason: "rules:8", resource: "policies", request_id: null }]);
  });

  it("with no version, current() is 503 PC_MONITOR_RULES_MISSING; an invalid seed stores nothing", () => {
    expect(expectRefusal(() => svc.current(), "PC_MONITOR_RULES_MISSING", "no monitoring rules version is stored").status).toBe(503);
    expectRefusal(() => svc.seed(BROKEN, "service:portcullis-init"), "PC_MONITOR_RULES_INVALID", /rules\[0\]\.actions\[1\]: unknown action "kill"/);
    expect(svc.history()).toEqual([]);
    expect(applied()).toEqual([]);
  });
});

describe("apply, unchanged, rollback, history", () => {
  beforeEach(() => {
    svc.seed(shippedMonitoringRules(), "service:portcullis-init");
  });

  it("applies a new version, audited with the caller; the same text again is unchanged and writes nothing", () => {
    clock.set(START + 60_000);
    expect(svc.apply(QUARANTINE, SEC, "quarantine on exec")).toEqual({ version: 2, unchanged: false });
    const cur = svc.current();
    expect(cur.version).toBe(2);
    expect(cur.set.rules.map((r) => [r.name, r.actions])).toEqual([["exec-into-container", ["alert", "quarantine"]]]);
    expect(svc.apply(QUARANTINE, SEC, "again")).toEqual({ version: 2, unchanged: true });
    expect(svc.history().map((h) => h.version)).toEqual([1, 2]);
    expect(applied().slice(1)).toEqual([{ actor: "user:sec", target: "monitoring-rules:v2", reason: "rules:1", resource: "policies", request_id: "req-1" }]);
    const v2 = svc.get(2);
    expect(v2).toEqual({ version: 2, author: "user:sec", createdAt: "2026-03-01T09:01:00.000Z", message: "quarantine on exec", sha256: sha256(QUARANTINE), rollbackOf: null, text: QUARANTINE });
  });

  it("an invalid file changes nothing: same version in force, no new row, no audit entry", () => {
    svc.apply(QUARANTINE, SEC);
    const before = svc.current();
    const e = expectRefusal(() => svc.apply(BROKEN, SEC, "broken"), "PC_MONITOR_RULES_INVALID");
    expect(e.detail).toBe('line 9: rules[0].actions[1]: unknown action "kill" (one of alert, stop, pause, quarantine, revoke)');
    expect(svc.current()).toBe(before);
    expect(svc.history()).toHaveLength(2);
    expect(applied()).toHaveLength(2);
  });

  it("an audit log that cannot be written refuses the change and stores nothing", () => {
    sink.failing = true;
    expectRefusal(() => svc.apply(QUARANTINE, SEC), "PC_AUDIT_WRITE_FAILED");
    sink.failing = false;
    expect(svc.current().version).toBe(1);
    expect(svc.history()).toHaveLength(1);
  });

  it("rolls back to an earlier text as a new version; rolling back to the text in force is unchanged; unknown versions are 404", () => {
    svc.apply(QUARANTINE, SEC, "quarantine");
    clock.set(START + 120_000);
    expect(svc.rollback(1, SEC)).toEqual({ version: 3, unchanged: false });
    expect(svc.current().text).toBe(shippedMonitoringRules());
    expect(svc.rollback(1, SEC)).toEqual({ version: 3, unchanged: true });
    expect(svc.history()).toEqual([
      expect.objectContaining({ version: 1, author: "service:portcullis-init", rollbackOf: null, message: "initial monitoring rules" }),
      expect.objectContaining({ version: 2, author: "user:sec", rollbackOf: null, message: "quarantine" }),
      { version: 3, author: "user:sec", createdAt: "2026-03-01T09:02:00.000Z", message: "rollback to version 1", sha256: sha256(shippedMonitoringRules()), rollbackOf: 1 },
    ]);
    expect(applied().map((a) => [a.target, a.reason])).toEqual([
      ["monitoring-rules:v1", "rules:8"],
      ["monitoring-rules:v2", "rules:1"],
      ["monitoring-rules:v3", "rules:8 rollback-of:v1"],
    ]);
    expect(expectRefusal(() => svc.rollback(9, SEC), "PC_MONITOR_RULES_VERSION_NOT_FOUND").status).toBe(404);
    expectRefusal(() => svc.get(9), "PC_MONITOR_RULES_VERSION_NOT_FOUND", "9");
    expect(svc.history()).toHaveLength(3);
  });
});

describe("the version in force, as the store holds it", () => {
  beforeEach(() => {
    svc.seed(shippedMonitoringRules(), "service:portcullis-init");
  });

  it("follows a version written through another service on another connection", () => {
    const a = svc.current();
    expect(a.version).toBe(1);
    const other = Store.open(tmp.dir);
    try {
      const log2 = new AuditLog(other, clock, { trustDomain: TD, hmacKey: randomBytes(32) });
      expect(new MonitoringRulesService(other, log2, clock).apply(QUARANTINE, SEC)).toEqual({ version: 2, unchanged: false });
    } finally {
      other.close();
    }
    const b = svc.current();
    expect(b).not.toBe(a);
    expect(b.version).toBe(2);
    expect(b.set.rules).toHaveLength(1);
    expect(svc.current()).toBe(b);
  });

  it("a version that fails its checksum is not served: PC_MONITOR_RULES_MISSING until a good one is applied", () => {
    expect(svc.current().version).toBe(1);
    const db = new Database(join(tmp.dir, "portcullis.db"));
    try {
      db.pragma("busy_timeout = 5000");
      const triggers = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'monitoring_rules_versions'").all() as { sql: string }[];
      expect(triggers).toHaveLength(2);
      db.transaction(() => {
        db.exec("DROP TRIGGER monitoring_rules_versions_no_update; DROP TRIGGER monitoring_rules_versions_no_delete;");
        db.prepare("UPDATE monitoring_rules_versions SET text = ? WHERE version = 1").run(QUARANTINE.replace("quarantine", "revoke"));
        for (const tr of triggers) db.exec(tr.sql);
      })();
    } finally {
      db.close();
    }
    expectRefusal(() => svc.current(), "PC_MONITOR_RULES_MISSING", "monitoring rules version 1 fails its checksum");
    expectRefusal(() => svc.get(1), "PC_MONITOR_RULES_MISSING", "monitoring rules version 1 fails its checksum");
    expect(svc.apply(QUARANTINE, SEC)).toEqual({ version: 2, unchanged: false });
    expect(svc.current().version).toBe(2);
  });

  it("versions are immutable in the store itself", () => {
    expect(() => store.db.prepare("UPDATE monitoring_rules_versions SET message = 'x'").run()).toThrow(/immutable/);
    expect(() => store.db.prepare("DELETE FROM monitoring_rules_versions").run()).toThrow(/immutable/);
  });
});
