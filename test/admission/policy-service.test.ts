/**
 * The admission policy service on a real SQLite store: versions are immutable sets of
 * files; a set is parsed whole and refused whole (every problem as file:line: field:
 * reason, nothing stored); apply and rollback write a new version with their audit entry
 * in one transaction; the snapshot in force follows writes made through another
 * connection; and a store that cannot be trusted fails closed with
 * PC_ADMISSION_POLICY_UNAVAILABLE (503).
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AdmissionPolicyService, shippedAdmissionPolicyFiles, type AdmissionPolicyFile } from "../../src/admission/index.js";
import { AuditLog } from "../../src/audit/index.js";
import { ManualClock, pcError, type AuditEvent, type AuditSink } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { expectRefusal } from "../support/refusal.js";

const TD = "example.test";
const START = Date.parse("2026-03-01T09:00:00.000Z");
const ADMIN = { identity: "user:sec", serial: "0a", requestId: "req-1", sourceAddress: "127.0.0.1" };
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

const policyText = (name: string, namespaces: string, checks: string) =>
  ["apiVersion: portcullis/v1", "kind: AdmissionPolicy", "metadata:", `  name: ${name}`, "spec:", `  selector: { namespaces: [${namespaces}] }`, "  checks:", checks, ""].join("\n");
const PAYMENTS: AdmissionPolicyFile = { name: "payments.yaml", text: policyText("payments-strict", "payments", "    hardening: { mode: enforce }") };
const BILLING: AdmissionPolicyFile = { name: "billing.yaml", text: policyText("billing-warn", "billing", "    hardening: { mode: warn }") };
/** Line 7: an unknown mode; line 8: an unknown check. */
const BROKEN: AdmissionPolicyFile = {
  name: "broken.yaml",
  text: ["apiVersion: portcullis/v1", "kind: AdmissionPolicy", "metadata:", "  name: broken", "spec:", "  checks:", "    hardening: { mode: block }", "    no-such-check: { mode: enforce }", ""].join("\n"),
};

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
let svc: AdmissionPolicyService;
const others: { close(): void }[] = [];

beforeEach(() => {
  tmp = tempDir("portcullis-admission-");
  store = Store.open(tmp.dir);
  clock = new ManualClock(START);
  const log = new AuditLog(store, clock, { trustDomain: TD, hmacKey: randomBytes(32) });
  log.genesis(TD, "SHA256:00");
  sink = new FailableSink(log);
  svc = new AdmissionPolicyService(store, sink, clock);
});
afterEach(() => {
  for (const o of others.splice(0)) o.close();
  store.close();
  tmp.cleanup();
});

/** The admission.policy_applied entries of the audit log, oldest first. */
function appliedEvents(s: Store = store): { actor: string; target: string; reason: string; request_id: string | null }[] {
  return s.db
    .prepare("SELECT actor, target, reason, request_id FROM access_events WHERE type = 'admission.policy_applied' ORDER BY id")
    .all() as { actor: string; target: string; reason: string; request_id: string | null }[];
}

describe("seed and current", () => {
  it("seeds version 1 from the shipped files; current() carries the version in its set; a second seed is refused", () => {
    const shipped = shippedAdmissionPolicyFiles();
    expect(shipped.map((f) => f.name)).toContain("baseline.yaml");
    expect(svc.seed(shipped, "service:portcullis-init")).toEqual({ version: 1, changed: shipped.map((f) => f.name).sort() });
    const cur = svc.current();
    expect(cur.version).toBe(1);
    expect(cur.set.version).toBe(1);
    expect(cur.set.policies.map((p) => p.name)).toContain("baseline");
    expect(cur.files).toEqual(shipped);
    expectRefusal(() => svc.seed([PAYMENTS], "user:x"), "PC_ADMISSION_POLICY_INVALID", "an admission policy is already in force");
    expect(svc.history()).toHaveLength(1);
    expect(appliedEvents()).toEqual([{ actor: "service:portcullis-init", target: "admission-policy:v1", reason: `files:${shipped.length} changed:${shipped.length}`, request_id: null }]);
  });

  it("with no version at all, current() fails closed with 503", () => {
    const e = expectRefusal(() => svc.current(), "PC_ADMISSION_POLICY_UNAVAILABLE", "no admission policy version is stored");
    expect(e.status).toBe(503);
  });
});

describe("apply", () => {
  beforeEach(() => {
    svc.seed([PAYMENTS], "service:portcullis-init");
  });

  it("a valid set becomes the next version, sorted by name, with the changed names; audited with the caller", () => {
    clock.set(START + 60_000);
    const edited = { ...PAYMENTS, text: PAYMENTS.text.replace("hardening: { mode: enforce }", "hardening: { mode: audit }") };
    const c = svc.apply([edited, BILLING], ADMIN, "billing gets warnings");
    expect(c).toEqual({ version: 2, changed: ["billing.yaml", "payments.yaml"] });
    const cur = svc.current();
    expect(cur.version).toBe(2);
    expect(cur.files.map((f) => f.name)).toEqual(["billing.yaml", "payments.yaml"]);
    expect(cur.set.policies.map((p) => p.name).sort()).toEqual(["billing-warn", "payments-strict"]);
    expect(cur.set.policies.find((p) => p.name === "payments-strict")?.checks).toEqual([expect.objectContaining({ check: "hardening", mode: "audit" })]);
    // Dropping a file and leaving another as it was: only the dropped one changed.
    expect(svc.apply([BILLING], ADMIN, "payments policy retired")).toEqual({ version: 3, changed: ["payments.yaml"] });
    expect(svc.current().files).toEqual([BILLING]);
    expect(appliedEvents().slice(1)).toEqual([
      { actor: "user:sec", target: "admission-policy:v2", reason: "files:2 changed:2", request_id: "req-1" },
      { actor: "user:sec", target: "admission-policy:v3", reason: "files:1 changed:1", request_id: "req-1" },
    ]);
  });

  it("an invalid set is refused whole with every problem as file:line: field: reason; nothing is stored or audited", () => {
    const before = svc.current();
    const events = appliedEvents().length;
    const e = expectRefusal(() => svc.apply([BILLING, BROKEN], ADMIN, "half good"), "PC_ADMISSION_POLICY_INVALID");
    expect(e.status).toBe(400);
    expect(e.detail).toContain("broken.yaml:7: spec.checks.hardening.mode: unknown mode");
    expect(e.detail).toContain("broken.yaml:8: spec.checks.no-such-check: unknown check");
    expect(e.detail).not.toContain("billing.yaml");
    expect(svc.current()).toBe(before);
    expect(svc.current().version).toBe(1);
    expect(svc.history()).toHaveLength(1);
    expect(appliedEvents()).toHaveLength(events);
  });

  it.each([
    ["a path as a name", [{ name: "../evil.yaml", text: PAYMENTS.text }], /"\.\.\/evil\.yaml": name: a file name/],
    ["a name that is not YAML", [{ name: "payments.txt", text: PAYMENTS.text }], /"payments\.txt": name:/],
    ["the same name twice", [PAYMENTS, { ...BILLING, name: "payments.yaml" }], /payments\.yaml: name: given twice/],
    ["no files", [], /no policy files/],
  ] as const)("refuses %s, and stores nothing", (_what, files, detail) => {
    const e = expectRefusal(() => svc.apply(files, ADMIN, "bad"), "PC_ADMISSION_POLICY_INVALID");
    expect(e.detail).toMatch(detail);
    expect(svc.history()).toHaveLength(1);
  });

  it("a failing audit write refuses the change, and the version in force stays", () => {
    sink.failing = true;
    expectRefusal(() => svc.apply([BILLING], ADMIN, "unaudited"), "PC_AUDIT_WRITE_FAILED");
    expectRefusal(() => svc.rollback(1, ADMIN), "PC_AUDIT_WRITE_FAILED");
    sink.failing = false;
    expect(svc.current().version).toBe(1);
    expect(svc.current().files).toEqual([PAYMENTS]);
    expect(store.db.prepare("SELECT count(*) AS n FROM admission_policy_versions").get()).toEqual({ n: 1 });
  });
});

describe("history, get and rollback", () => {
  it("rolls back to an earlier version's files as a new version; history and get tell the story", () => {
    svc.seed([PAYMENTS], "service:portcullis-init");
    clock.set(START + 1_000);
    svc.apply([BILLING], ADMIN, "swap");
    clock.set(START + 2_000);
    expect(svc.rollback(1, { identity: "user:admin" })).toEqual({ version: 3, changed: ["billing.yaml", "payments.yaml"] });
    expect(svc.current().files).toEqual([PAYMENTS]);
    expect(svc.current().set.version).toBe(3);

    const h = svc.history();
    expect(h.map((v) => [v.version, v.author, v.createdAt, v.message, v.rollbackOf])).toEqual([
      [1, "service:portcullis-init", "2026-03-01T09:00:00.000Z", "initial admission policy", null],
      [2, "user:sec", "2026-03-01T09:00:01.000Z", "swap", null],
      [3, "user:admin", "2026-03-01T09:00:02.000Z", "rollback to version 1", 1],
    ]);
    const rows = store.db.prepare("SELECT version, files, sha256 FROM admission_policy_versions ORDER BY version").all() as { version: number; files: string; sha256: string }[];
    expect(h.map((v) => v.sha256)).toEqual(rows.map((r) => sha256(r.files)));
    // Same files, same checksum: version 3 is version 1 again.
    expect(h[2]?.sha256).toBe(h[0]?.sha256);

    expect(svc.get(2)).toMatchObject({ version: 2, author: "user:sec", message: "swap", files: [BILLING] });
    expectRefusal(() => svc.get(9), "PC_ADMISSION_VERSION_NOT_FOUND", "9");
    const e = expectRefusal(() => svc.rollback(9, ADMIN, "nope"), "PC_ADMISSION_VERSION_NOT_FOUND");
    expect(e.status).toBe(404);
    expect(svc.history()).toHaveLength(3);
    expect(appliedEvents().map((x) => x.reason)).toEqual(["files:1 changed:1", "files:1 changed:2", "files:1 changed:2 rollback-of:v1"]);
  });

  it("the versions table refuses updates and deletes", () => {
    svc.seed([PAYMENTS], "service:portcullis-init");
    expect(() => store.db.prepare("UPDATE admission_policy_versions SET message = 'x'").run()).toThrow(/immutable/);
    expect(() => store.db.prepare("DELETE FROM admission_policy_versions").run()).toThrow(/immutable/);
    expect(svc.history()).toHaveLength(1);
  });
});

describe("the snapshot in force", () => {
  beforeEach(() => {
    svc.seed([PAYMENTS], "service:portcullis-init");
  });

  /** A second connection to the same database, as another process or tool would open it. */
  function outsider(): Database.Database {
    const db = new Database(join(tmp.dir, "portcullis.db"));
    db.pragma("busy_timeout = 5000");
    others.push(db);
    return db;
  }

  it("is kept while nothing changes, and follows a version written through another connection", () => {
    const a = svc.current();
    expect(svc.current()).toBe(a);
    const store2 = Store.open(tmp.dir);
    others.push(store2);
    const log2 = new AuditLog(store2, clock, { trustDomain: TD, hmacKey: randomBytes(32) });
    const svc2 = new AdmissionPolicyService(store2, log2, clock);
    expect(svc2.apply([PAYMENTS, BILLING], ADMIN, "from elsewhere").version).toBe(2);
    const b = svc.current();
    expect(b).not.toBe(a);
    expect(b.version).toBe(2);
    expect(b.files).toEqual([BILLING, PAYMENTS]);
    expect(svc.current()).toBe(b);
  });

  it("fails closed (503) when the version in force fails its checksum or no longer parses, and recovers when repaired", () => {
    expect(svc.current().version).toBe(1);
    const db = outsider();
    const row = db.prepare("SELECT files, sha256 FROM admission_policy_versions WHERE version = 1").get() as { files: string; sha256: string };
    const triggers = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'admission_policy_versions'").all() as { sql: string }[];
    expect(triggers).toHaveLength(2);
    const edit = (files: string, sum: string) =>
      db.transaction(() => {
        db.exec("DROP TRIGGER admission_policy_versions_no_update; DROP TRIGGER admission_policy_versions_no_delete;");
        db.prepare("UPDATE admission_policy_versions SET files = ?, sha256 = ? WHERE version = 1").run(files, sum);
        for (const t of triggers) db.exec(t.sql);
      })();

    // The files changed behind the checksum's back.
    const tampered = JSON.stringify([{ name: "payments.yaml", text: PAYMENTS.text.replace("enforce", "audit") }]);
    edit(tampered, row.sha256);
    let e = expectRefusal(() => svc.current(), "PC_ADMISSION_POLICY_UNAVAILABLE", "admission policy version 1 fails its checksum");
    expect(e.status).toBe(503);

    // A consistent checksum over files that no longer parse.
    const broken = JSON.stringify([BROKEN]);
    edit(broken, sha256(broken));
    e = expectRefusal(() => svc.current(), "PC_ADMISSION_POLICY_UNAVAILABLE", "admission policy version 1 does not parse");
    expect(e.status).toBe(503);

    // Applying a valid set repairs it: a new version is in force.
    expect(svc.apply([PAYMENTS], ADMIN, "repair")).toEqual({ version: 2, changed: ["broken.yaml", "payments.yaml"] });
    expect(svc.current().version).toBe(2);
  });

  it("fails closed (503) when the store is unreadable", () => {
    expect(svc.current().version).toBe(1);
    store.close();
    const e = expectRefusal(() => svc.current(), "PC_ADMISSION_POLICY_UNAVAILABLE", "the admission policy store is unreadable");
    expect(e.status).toBe(503);
    expectRefusal(() => svc.history(), "PC_ADMISSION_POLICY_UNAVAILABLE");
    expectRefusal(() => svc.apply([BILLING], ADMIN, "x"), "PC_ADMISSION_POLICY_UNAVAILABLE");
  });
});
