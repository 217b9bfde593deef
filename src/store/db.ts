import { closeSync, openSync } from "node:fs";
import Database from "better-sqlite3";
import { pcError } from "../core/index.js";
import { MIGRATIONS, SCHEMA_VERSION, type Migration } from "./migrations.js";

export type Db = Database.Database;

/**
 * Opens the SQLite store in WAL mode and brings its schema up to date. A database whose
 * schema is newer than this binary knows is refused, untouched.
 */
export function openDatabase(path: string, migrations: readonly Migration[] = MIGRATIONS): Db {
  let db: Db;
  try {
    // Created 0600 before SQLite opens it; the WAL and shared-memory files inherit it.
    if (path !== ":memory:") closeSync(openSync(path, "a", 0o600));
    db = new Database(path, { fileMustExist: false });
  } catch (e) {
    throw pcError("PC_STORE_UNAVAILABLE", "cannot open the database", e);
  }
  try {
    // The version check comes first: switching to WAL rewrites the file header, and a
    // database from a newer binary must be refused before anything is written to it.
    refuseNewer(db, migrations);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    // Rows removed by INSERT OR REPLACE then fire DELETE triggers, so the append-only
    // access_events cannot be overwritten that way.
    db.pragma("recursive_triggers = ON");
    db.pragma("busy_timeout = 5000");
    migrate(db, migrations);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/**
 * A second, read-only connection to an existing database, for long reads (an audit
 * export) that must not hold the writer's connection. WAL gives it a consistent snapshot
 * while the writer goes on.
 */
export function openReadOnlyDatabase(path: string): Db {
  let db: Db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw pcError("PC_STORE_UNAVAILABLE", "cannot open the database for reading", e);
  }
  try {
    db.pragma("busy_timeout = 5000");
    const v = schemaVersion(db);
    const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
    if (v !== latest) throw pcError("PC_STORE_UNAVAILABLE", `schema ${v}, expected ${latest}`);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export function schemaVersion(db: Db): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/** Reads the schema version, refusing a database newer than `migrations` know. */
function refuseNewer(db: Db, migrations: readonly Migration[]): number {
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  let current: number;
  try {
    current = schemaVersion(db);
  } catch (e) {
    throw pcError("PC_STORE_CORRUPT", "cannot read the schema version", e);
  }
  if (current > latest) {
    throw pcError(
      "PC_STORE_DATA_DIR_TOO_NEW",
      `database schema ${current}, this binary knows up to ${latest}`,
    );
  }
  return current;
}

function migrate(db: Db, migrations: readonly Migration[]): void {
  const current = refuseNewer(db, migrations);
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
}

export { SCHEMA_VERSION };
