import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { auditRow } from "./audit-rows.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let t: ReturnType<typeof tempDir>;
let store: Store;
beforeEach(() => {
  t = tempDir();
  store = new Store(openDatabase(join(t.dir, "p.db")));
  store.auditLog.insert(
    auditRow(0, {
      time: "1970-01-01T00:00:01.000Z",
      action: "GET /v1/whoami",
      body: JSON.stringify({ actorSerial: "0a1b", source: "127.0.0.1", status: 200, requestId: "req-1" }),
    }),
  );
  store.auditLog.insert(
    auditRow(1, {
      time: "1970-01-01T00:00:02.000Z",
      outcome: "denied",
      actor: "user:mallory",
      action: "deployments:create",
      namespace: "prod",
      body: JSON.stringify({ status: 403, reasons: ["PC_API_FORBIDDEN"], target: "prod" }),
    }),
  );
  store.auditLog.insertCheckpoint({ seq: 1, time: "1970-01-01T00:00:03.000Z", jws: "a.b.c" });
});
afterEach(() => {
  store.close();
  t.cleanup();
});

const rows = () => ({
  log: store.db.prepare(`SELECT * FROM audit_log ORDER BY seq`).all(),
  checkpoints: store.db.prepare(`SELECT * FROM audit_checkpoints ORDER BY seq`).all(),
});

describe("access_events: a read-only view of the audit log", () => {
  it("reads entries back in the shape of access events, most recent first", () => {
    expect(store.accessEvents.count()).toBe(2);
    const [latest, first] = store.accessEvents.latest(10);
    expect(latest).toMatchObject({ id: 1, at: 2_000, actor: "user:mallory", outcome: "denied", reason: "PC_API_FORBIDDEN", status: 403, route: "deployments:create", target: "prod", namespace: "prod" });
    expect(latest?.method).toBeUndefined();
    expect(first).toMatchObject({ id: 0, at: 1_000, actor: "user:alice", method: "GET", route: "/v1/whoami", actorSerial: "0a1b", sourceAddress: "127.0.0.1", status: 200, requestId: "req-1" });
  });

  it("cannot be written", () => {
    expect(() => store.db.exec(`INSERT INTO access_events (id, at, type, outcome, actor) VALUES (9, 3, 'x', 'allowed', 'a')`)).toThrow(/view/);
    expect(() => store.db.exec(`DELETE FROM access_events`)).toThrow(/view/);
  });
});

describe("audit_log and audit_checkpoints are append-only", () => {
  it.each([
    ["UPDATE of one column", `UPDATE audit_log SET outcome = 'allowed' WHERE seq = 1`, "audit_log"],
    ["UPDATE of every row", `UPDATE audit_log SET actor = 'user:nobody'`, "audit_log"],
    ["UPDATE OR REPLACE", `UPDATE OR REPLACE audit_log SET seq = 0 WHERE seq = 1`, "audit_log"],
    ["DELETE of one row", `DELETE FROM audit_log WHERE seq = 1`, "audit_log"],
    ["DELETE of every row", `DELETE FROM audit_log`, "audit_log"],
    ["INSERT OR REPLACE over an existing row", `INSERT OR REPLACE INTO audit_log SELECT * FROM audit_log WHERE seq = 1`, "audit_log"],
    ["REPLACE INTO over an existing row", `REPLACE INTO audit_log (seq, time, type, outcome, actor, body, body_digest, prev_hash, hash) VALUES (0, 't', 'x', 'denied', 'a', '{}', 'd', 'p', 'h')`, "audit_log"],
    ["an upsert", `INSERT INTO audit_log (seq, time, type, outcome, actor, body, body_digest, prev_hash, hash) VALUES (1, 't', 'x', 'allowed', 'a', '{}', 'd', 'p', 'h') ON CONFLICT(seq) DO UPDATE SET outcome = 'allowed'`, "audit_log"],
    ["UPDATE of a checkpoint", `UPDATE audit_checkpoints SET jws = 'x.y.z'`, "audit_checkpoints"],
    ["DELETE of a checkpoint", `DELETE FROM audit_checkpoints`, "audit_checkpoints"],
    ["REPLACE INTO over a checkpoint", `REPLACE INTO audit_checkpoints (seq, time, jws) VALUES (1, 't', 'x.y.z')`, "audit_checkpoints"],
  ])("refuses %s and changes nothing", (_name, sql, table) => {
    const before = rows();
    expect(() => store.db.exec(sql)).toThrow(`${table} is append-only`);
    expect(rows()).toEqual(before);
  });

  it("refuses a change inside a transaction, and the transaction rolls back", () => {
    const before = rows();
    expect(() =>
      store.transaction(() => {
        store.auditLog.insert(auditRow(2));
        store.db.exec(`DELETE FROM audit_log WHERE seq = 0`);
      }),
    ).toThrow("audit_log is append-only");
    expect(rows()).toEqual(before);
  });

  it("keeps the triggers across a reopen", () => {
    const path = join(t.dir, "p.db");
    store.close();
    store = new Store(openDatabase(path));
    expect(() => store.db.exec(`DELETE FROM audit_log`)).toThrow("audit_log is append-only");
    expect(() => store.db.exec(`DELETE FROM audit_checkpoints`)).toThrow("audit_checkpoints is append-only");
    expect(store.accessEvents.count()).toBe(2);
  });
});

/** Every .ts file under a directory. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

const TABLE = String.raw`["'\x60[]?(?:audit_log|audit_checkpoints)\b`;
/** SQL that would change or remove rows of the audit tables (triggers' own ON clauses aside). */
const MUTATIONS: readonly RegExp[] = [
  new RegExp(String.raw`\bUPDATE\s+(?:OR\s+\w+\s+)?${TABLE}`, "i"),
  new RegExp(String.raw`\bDELETE\s+FROM\s+${TABLE}`, "i"),
  new RegExp(String.raw`\bREPLACE\s+INTO\s+${TABLE}`, "i"),
  new RegExp(String.raw`\bINSERT\s+OR\s+\w+\s+INTO\s+${TABLE}`, "i"),
  new RegExp(String.raw`\bINSERT\s+INTO\s+${TABLE}[^;]*?\bON\s+CONFLICT\b`, "i"),
  /\bDROP\s+(?:TABLE|TRIGGER|INDEX)\b[^;]*?\b(?:audit_log|audit_checkpoints)/i,
  /\bALTER\s+TABLE\s+["'`[]?(?:audit_log|audit_checkpoints)\b/i,
  /\bTRUNCATE\b[^;]*?\b(?:audit_log|audit_checkpoints)/i,
];

function mutationsIn(text: string): string[] {
  return MUTATIONS.flatMap((re) => {
    const m = re.exec(text);
    return m ? [m[0]] : [];
  });
}

describe("no code changes or removes audit entries or checkpoints", () => {
  it("the scan recognises each kind of statement, and not the triggers that forbid them", () => {
    for (const sql of [
      "UPDATE audit_log SET x = 1",
      "update  OR IGNORE audit_checkpoints set x=1",
      'DELETE FROM "audit_log" WHERE seq = 1',
      "INSERT OR REPLACE INTO audit_log (seq) VALUES (1)",
      "INSERT OR IGNORE INTO audit_checkpoints (seq) VALUES (1)",
      "REPLACE INTO audit_checkpoints VALUES (1)",
      "INSERT INTO audit_log (seq) VALUES (1) ON CONFLICT(seq) DO UPDATE SET x = 2",
      "DROP TRIGGER audit_log_no_delete",
      "DROP TABLE audit_checkpoints",
      "ALTER TABLE audit_log RENAME TO old",
    ]) {
      expect(mutationsIn(sql), sql).not.toEqual([]);
    }
    const migrations = readFileSync(join(ROOT, "src/store/migrations.ts"), "utf8");
    expect(migrations).toMatch(/BEFORE UPDATE ON audit_log/);
    expect(migrations).toMatch(/BEFORE DELETE ON audit_checkpoints/);
    expect(mutationsIn(migrations)).toEqual([]);
    expect(mutationsIn("INSERT INTO audit_log (seq) VALUES (?)")).toEqual([]);
  });

  it("finds no UPDATE, DELETE, REPLACE, upsert or DROP of the audit tables under src/", () => {
    const files = sources(join(ROOT, "src"));
    expect(files.some((f) => f.endsWith("src/store/repos/audit-log.ts"))).toBe(true);
    const found = files.flatMap((f) => mutationsIn(readFileSync(f, "utf8")).map((m) => `${relative(ROOT, f)}: ${m}`));
    expect(found).toEqual([]);
    // The repository's only statements that write are the two INSERTs.
    const repo = readFileSync(join(ROOT, "src/store/repos/audit-log.ts"), "utf8");
    expect(repo).toMatch(/INSERT INTO audit_log/);
    expect(repo).toMatch(/INSERT INTO audit_checkpoints/);
    expect(repo).not.toMatch(/\b(?:UPDATE|DELETE|REPLACE)\b/);
    // The access events repository only reads.
    const view = readFileSync(join(ROOT, "src/store/repos/access-events.ts"), "utf8");
    expect(view).not.toMatch(/\b(?:INSERT|UPDATE|DELETE|REPLACE)\b/);
  });
});
