import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

let t: ReturnType<typeof tempDir>;
let store: Store;
beforeEach(() => {
  t = tempDir();
  store = new Store(openDatabase(join(t.dir, "p.db")));
  store.accessEvents.append(1_000, { type: "api.request", outcome: "allowed", actor: "user:alice", route: "/v1/whoami", status: 200 });
  store.accessEvents.append(2_000, { type: "api.request", outcome: "denied", actor: "user:mallory", reason: "PC_API_FORBIDDEN", status: 403 });
});
afterEach(() => {
  store.close();
  t.cleanup();
});

const rows = () => store.db.prepare(`SELECT * FROM access_events ORDER BY id`).all();

describe("access_events is append-only", () => {
  it("appends and reads back, most recent first", () => {
    expect(store.accessEvents.count()).toBe(2);
    const [latest, first] = store.accessEvents.latest(10);
    expect(latest).toMatchObject({ id: 2, at: 2_000, actor: "user:mallory", outcome: "denied", reason: "PC_API_FORBIDDEN", status: 403 });
    expect(first).toMatchObject({ id: 1, at: 1_000, actor: "user:alice", route: "/v1/whoami" });
  });

  it.each([
    ["UPDATE of one column", `UPDATE access_events SET outcome = 'allowed' WHERE id = 2`],
    ["UPDATE of every row", `UPDATE access_events SET actor = 'user:nobody'`],
    ["UPDATE OR REPLACE", `UPDATE OR REPLACE access_events SET id = 1 WHERE id = 2`],
    ["DELETE of one row", `DELETE FROM access_events WHERE id = 2`],
    ["DELETE of every row", `DELETE FROM access_events`],
    ["INSERT OR REPLACE over an existing row", `INSERT OR REPLACE INTO access_events (id, at, type, outcome, actor) VALUES (2, 3, 'x', 'allowed', 'user:mallory')`],
    ["REPLACE INTO over an existing row", `REPLACE INTO access_events (id, at, type, outcome, actor) VALUES (1, 3, 'x', 'denied', 'user:alice')`],
    ["an upsert", `INSERT INTO access_events (id, at, type, outcome, actor) VALUES (2, 3, 'x', 'allowed', 'a') ON CONFLICT(id) DO UPDATE SET outcome = 'allowed'`],
  ])("refuses %s and changes nothing", (_name, sql) => {
    const before = rows();
    expect(() => store.db.exec(sql)).toThrow("access_events is append-only");
    expect(rows()).toEqual(before);
  });

  it("refuses a change inside a transaction, and the transaction rolls back", () => {
    const before = rows();
    expect(() =>
      store.transaction(() => {
        store.accessEvents.append(3_000, { type: "x", outcome: "allowed", actor: "user:alice" });
        store.db.exec(`DELETE FROM access_events WHERE id = 1`);
      }),
    ).toThrow("access_events is append-only");
    expect(rows()).toEqual(before);
  });

  it("keeps the triggers across a reopen", () => {
    const path = join(t.dir, "p.db");
    store.close();
    store = new Store(openDatabase(path));
    expect(() => store.db.exec(`DELETE FROM access_events`)).toThrow("access_events is append-only");
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

/** SQL that would change or remove rows of access_events (triggers' own ON clauses aside). */
const MUTATIONS: readonly RegExp[] = [
  /\bUPDATE\s+(?:OR\s+\w+\s+)?["'`[]?access_events\b/i,
  /\bDELETE\s+FROM\s+["'`[]?access_events\b/i,
  /\bREPLACE\s+INTO\s+["'`[]?access_events\b/i,
  /\bINSERT\s+OR\s+REPLACE\s+INTO\s+["'`[]?access_events\b/i,
  /\bINSERT\s+INTO\s+["'`[]?access_events\b[^;]*?\bON\s+CONFLICT\b/i,
  /\bDROP\s+(?:TABLE|TRIGGER)\b[^;]*?access_events/i,
  /\bALTER\s+TABLE\s+["'`[]?access_events\b/i,
  /\bTRUNCATE\b[^;]*?access_events/i,
];

function mutationsIn(text: string): string[] {
  return MUTATIONS.flatMap((re) => {
    const m = re.exec(text);
    return m ? [m[0]] : [];
  });
}

describe("no code changes or removes access events", () => {
  it("the scan recognises each kind of statement, and not the triggers that forbid them", () => {
    for (const sql of [
      "UPDATE access_events SET x = 1",
      "update  OR IGNORE access_events set x=1",
      'DELETE FROM "access_events" WHERE id = 1',
      "INSERT OR REPLACE INTO access_events (id) VALUES (1)",
      "REPLACE INTO access_events VALUES (1)",
      "INSERT INTO access_events (id) VALUES (1) ON CONFLICT(id) DO UPDATE SET x = 2",
      "DROP TRIGGER access_events_no_delete",
      "DROP TABLE access_events",
      "ALTER TABLE access_events RENAME TO old",
    ]) {
      expect(mutationsIn(sql), sql).not.toEqual([]);
    }
    const migrations = readFileSync(join(ROOT, "src/store/migrations.ts"), "utf8");
    expect(migrations).toMatch(/BEFORE UPDATE ON access_events/);
    expect(mutationsIn(migrations)).toEqual([]);
    expect(mutationsIn("INSERT INTO access_events (at) VALUES (?)")).toEqual([]);
  });

  it("finds no UPDATE, DELETE, REPLACE, upsert or DROP of access_events under src/", () => {
    const files = sources(join(ROOT, "src"));
    expect(files.some((f) => f.endsWith("src/store/repos/access-events.ts"))).toBe(true);
    const found = files.flatMap((f) => mutationsIn(readFileSync(f, "utf8")).map((m) => `${relative(ROOT, f)}: ${m}`));
    expect(found).toEqual([]);
    // The repository's only statement that writes is the INSERT.
    const repo = readFileSync(join(ROOT, "src/store/repos/access-events.ts"), "utf8");
    expect(repo).toMatch(/INSERT INTO access_events/);
    expect(repo).not.toMatch(/\b(?:UPDATE|DELETE|REPLACE)\b/);
  });
});
