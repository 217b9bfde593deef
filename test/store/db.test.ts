import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MIGRATIONS, openDatabase, SCHEMA_VERSION, schemaVersion, Store, type Migration } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { refusal } from "../support/refusal.js";
import { auditRow } from "./audit-rows.js";


const mode = (p: string) => statSync(p).mode & 0o777;

/** The database file and its WAL companions, as bytes (absent ones as null). */
function snapshot(path: string) {
  const read = (p: string) => (existsSync(p) ? readFileSync(p) : null);
  return { db: read(path), wal: read(`${path}-wal`), shm: read(`${path}-shm`), journal: read(`${path}-journal`) };
}

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => {
  t.cleanup();
});

describe("openDatabase: migrations", () => {
  it("runs every migration on a new file and records the version in user_version", () => {
    const path = join(t.dir, "p.db");
    const db = openDatabase(path);
    try {
      expect(SCHEMA_VERSION).toBe(MIGRATIONS[MIGRATIONS.length - 1]?.version);
      expect(schemaVersion(db)).toBe(SCHEMA_VERSION);
      expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
      const tables = db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all().map((r) => r.name);
      expect(tables).toEqual(expect.arrayContaining(["audit_checkpoints", "audit_log", "certificates", "crl_state", "enroll_tokens"]));
      expect(tables).not.toContain("access_events"); // a view over audit_log since migration 3
      const triggers = db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name`).all().map((r) => r.name);
      expect(triggers).toEqual(
        expect.arrayContaining(["audit_checkpoints_no_delete", "audit_checkpoints_no_update", "audit_log_no_delete", "audit_log_no_update"]),
      );
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
      expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
    } finally {
      db.close();
    }
  });

  it("runs each migration once: reopening keeps the data and the version", () => {
    const path = join(t.dir, "p.db");
    const s1 = new Store(openDatabase(path));
    s1.auditLog.insert(auditRow(0));
    s1.close();
    const s2 = new Store(openDatabase(path));
    try {
      expect(schemaVersion(s2.db)).toBe(SCHEMA_VERSION);
      expect(s2.accessEvents.count()).toBe(1);
      expect(s2.db.prepare(`SELECT count(*) AS n FROM crl_state`).get()).toEqual({ n: 1 });
    } finally {
      s2.close();
    }
  });

  it("applies only the migrations above the recorded version, in order", () => {
    const path = join(t.dir, "m.db");
    const m1: Migration = { version: 1, name: "one", sql: "CREATE TABLE a (x INTEGER);" };
    const m2: Migration = { version: 2, name: "two", sql: "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (2);" };
    const m3: Migration = { version: 3, name: "three", sql: "INSERT INTO a VALUES (3);" };
    openDatabase(path, [m1]).close();
    const db = openDatabase(path, [m1, m2, m3]);
    try {
      expect(schemaVersion(db)).toBe(3);
      expect(db.prepare(`SELECT x FROM a ORDER BY x`).pluck().all()).toEqual([2, 3]);
    } finally {
      db.close();
    }
  });

  it("rolls a failing migration back entirely and keeps the previous version", () => {
    const path = join(t.dir, "m.db");
    const m1: Migration = { version: 1, name: "one", sql: "CREATE TABLE a (x INTEGER);" };
    const bad: Migration = { version: 2, name: "bad", sql: "CREATE TABLE half (y INTEGER); INSERT INTO a VALUES (1); CREATE TABLE oops (;" };
    openDatabase(path, [m1]).close();
    expect(() => openDatabase(path, [m1, bad])).toThrow();
    const db = openDatabase(path, [m1]);
    try {
      expect(schemaVersion(db)).toBe(1);
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'half'`).all()).toEqual([]);
      expect(db.prepare(`SELECT count(*) FROM a`).pluck().get()).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe("openDatabase: a database newer than this binary", () => {
  /** A database in rollback-journal mode, as another SQLite client would leave it. */
  function foreignDb(path: string, version: number): void {
    const db = new Database(path);
    db.exec("CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('keep me');");
    db.pragma(`user_version = ${version}`);
    db.close();
  }

  /** A database this binary wrote (WAL mode), then moved on by a newer one. */
  function ourDbMovedOn(path: string, version: number): void {
    openDatabase(path).close();
    const db = new Database(path);
    db.exec("CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('keep me');");
    db.pragma(`user_version = ${version}`);
    db.close();
  }

  it.each([
    ["rollback journal, schema 99", foreignDb, 99],
    ["rollback journal, one ahead", foreignDb, SCHEMA_VERSION + 1],
    ["WAL, schema 99", ourDbMovedOn, 99],
    ["WAL, one ahead", ourDbMovedOn, SCHEMA_VERSION + 1],
  ])("%s: refused with PC_STORE_DATA_DIR_TOO_NEW, file left byte for byte", (_name, make, version) => {
    const path = join(t.dir, "future.db");
    make(path, version);
    const before = snapshot(path);
    const mtime = statSync(path).mtimeMs;
    const e = refusal(() => openDatabase(path));
    expect(e.code).toBe("PC_STORE_DATA_DIR_TOO_NEW");
    expect(e.status).toBe(500);
    expect(e.detail).toBe(`database schema ${version}, this binary knows up to ${SCHEMA_VERSION}`);
    expect(snapshot(path)).toEqual(before);
    expect(statSync(path).mtimeMs).toBe(mtime);
    // Still the other binary's database: version and data as they were.
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(version);
      expect(db.prepare(`SELECT x FROM future`).pluck().all()).toEqual(["keep me"]);
    } finally {
      db.close();
    }
  });

  it("refuses through Store.open as well", () => {
    foreignDb(join(t.dir, "portcullis.db"), 99);
    expect(refusal(() => Store.open(t.dir)).code).toBe("PC_STORE_DATA_DIR_TOO_NEW");
  });
});

describe("openDatabase: files it cannot use", () => {
  it("refuses a file that is not SQLite with PC_STORE_CORRUPT and leaves it alone", () => {
    const path = join(t.dir, "garbage.db");
    writeFileSync(path, Buffer.alloc(4096, 0x5a), { mode: 0o600 });
    const before = snapshot(path);
    const e = refusal(() => openDatabase(path));
    expect(e.code).toBe("PC_STORE_CORRUPT");
    expect(snapshot(path)).toEqual(before);
  });

  it("refuses a path whose directory is missing with PC_STORE_UNAVAILABLE", () => {
    const e = refusal(() => openDatabase(join(t.dir, "no", "such", "dir", "p.db")));
    expect(e.code).toBe("PC_STORE_UNAVAILABLE");
    expect(existsSync(join(t.dir, "no"))).toBe(false);
  });
});

describe("database file permissions", () => {
  it("creates the database 0600, and its WAL files too", () => {
    const path = join(t.dir, "p.db");
    const store = new Store(openDatabase(path));
    try {
      store.auditLog.insert(auditRow(0));
      expect(mode(path)).toBe(0o600);
      for (const f of [`${path}-wal`, `${path}-shm`]) {
        expect(existsSync(f), f).toBe(true);
        expect(mode(f), f).toBe(0o600);
      }
    } finally {
      store.close();
    }
  });
});
