import type { Db } from "../db.js";

export type VulnDbImportState = "loading" | "active" | "replaced" | "failed";

/** One import of the vulnerability database (the row stays as history once purged). */
export interface VulnDbImportRecord {
  readonly id: number;
  /** The files or directories as given to the import. */
  readonly sources: readonly string[];
  readonly records: number;
  readonly newestModified: string | null;
  /** Records per ecosystem (without release suffix), set when the import is activated. */
  readonly ecosystems: Readonly<Record<string, number>>;
  readonly importedAt: number;
  readonly importedBy: string;
  /** Hex SHA-256 of the input, set when the import is activated. */
  readonly sha256: string | null;
  readonly state: VulnDbImportState;
  /** The process that wrote it, to tell an import still running from one that died. */
  readonly pid: number;
  readonly host: string;
  readonly activatedAt: number | null;
  readonly endedAt: number | null;
  readonly purgedAt: number | null;
}

/** Where a record applies: ecosystem without release suffix, release ('' for none), package. */
export interface VulnAffectedKey {
  readonly ecosystem: string;
  readonly release: string;
  readonly package: string;
}

export interface VulnRecordRow {
  readonly id: string;
  readonly modified: string;
  readonly withdrawn: string | null;
  /** The record's text, validated. */
  readonly json: string;
  readonly affected: readonly VulnAffectedKey[];
}

interface ImportRow {
  id: number;
  source: string;
  records: number;
  newest_modified: string | null;
  ecosystems: string | null;
  imported_at: number;
  imported_by: string;
  sha256: string | null;
  state: VulnDbImportState;
  pid: number;
  host: string;
  activated_at: number | null;
  ended_at: number | null;
  purged_at: number | null;
}

function stringList(text: string): readonly string[] {
  const v: unknown = JSON.parse(text);
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) throw new TypeError("stored vulndb sources are not a list of strings");
  return v as string[];
}

function counts(text: string | null): Readonly<Record<string, number>> {
  if (text === null) return {};
  const v: unknown = JSON.parse(text);
  if (typeof v !== "object" || v === null || Array.isArray(v) || !Object.values(v).every((n) => Number.isSafeInteger(n))) {
    throw new TypeError("stored vulndb ecosystem counts are not an object of integers");
  }
  return v as Record<string, number>;
}

const fromRow = (r: ImportRow): VulnDbImportRecord => ({
  id: r.id,
  sources: stringList(r.source),
  records: r.records,
  newestModified: r.newest_modified,
  ecosystems: counts(r.ecosystems),
  importedAt: r.imported_at,
  importedBy: r.imported_by,
  sha256: r.sha256,
  state: r.state,
  pid: r.pid,
  host: r.host,
  activatedAt: r.activated_at,
  endedAt: r.ended_at,
  purgedAt: r.purged_at,
});

/**
 * The vulnerability database: imports, their records and the packages each record
 * names, and the scan result cache keyed by database version. Readers only ever look at
 * the active import; an import is written beside it and switched to in one transaction.
 */
export class VulnDbRepo {
  private readonly ins;
  private readonly one;
  private readonly activeStmt;
  private readonly activeIdStmt;
  private readonly all;
  private readonly byState;
  private readonly unpurgedStmt;
  private readonly insRecord;
  private readonly insAffected;
  private readonly recordStmt;
  private readonly updRecord;
  private readonly delAffected;
  private readonly candidateAll;
  private readonly candidateRelease;
  private readonly countRecords;
  private readonly countEcosystems;
  private readonly retire;
  private readonly activateStmt;
  private readonly failStmt;
  private readonly purgeRecords;
  private readonly purgeAffected;
  private readonly purgeResults;
  private readonly markPurged;

  constructor(private readonly db: Db) {
    this.ins = db.prepare(
      `INSERT INTO vulndb_imports (source, imported_at, imported_by, state, pid, host)
       VALUES (@source, @importedAt, @importedBy, 'loading', @pid, @host)`,
    );
    this.one = db.prepare<[number], ImportRow>(`SELECT * FROM vulndb_imports WHERE id = ?`);
    this.activeStmt = db.prepare<[], ImportRow>(`SELECT * FROM vulndb_imports WHERE state = 'active'`);
    this.activeIdStmt = db.prepare<[], { id: number }>(`SELECT id FROM vulndb_imports WHERE state = 'active'`);
    this.all = db.prepare<[], ImportRow>(`SELECT * FROM vulndb_imports ORDER BY id`);
    this.byState = db.prepare<[string], ImportRow>(`SELECT * FROM vulndb_imports WHERE state = ? ORDER BY id`);
    this.unpurgedStmt = db.prepare<[], { id: number }>(
      `SELECT id FROM vulndb_imports WHERE state IN ('replaced', 'failed') AND purged_at IS NULL ORDER BY id`,
    );
    this.insRecord = db.prepare(
      `INSERT INTO vuln_records (import_id, id, modified, withdrawn, json) VALUES (?, ?, ?, ?, ?)`,
    );
    this.insAffected = db.prepare(
      `INSERT OR IGNORE INTO vuln_affected (import_id, ecosystem, package, release, record_id) VALUES (?, ?, ?, ?, ?)`,
    );
    this.recordStmt = db.prepare<[number, string], { modified: string; json: string }>(
      `SELECT modified, json FROM vuln_records WHERE import_id = ? AND id = ?`,
    );
    this.updRecord = db.prepare(`UPDATE vuln_records SET modified = ?, withdrawn = ?, json = ? WHERE import_id = ? AND id = ?`);
    this.delAffected = db.prepare(
      `DELETE FROM vuln_affected WHERE import_id = ? AND ecosystem = ? AND package = ? AND release = ? AND record_id = ?`,
    );
    this.candidateAll = db.prepare<[number, string, string], { record_id: string }>(
      `SELECT DISTINCT record_id FROM vuln_affected WHERE import_id = ? AND ecosystem = ? AND package = ? ORDER BY record_id`,
    );
    this.candidateRelease = db.prepare<[number, string, string, string], { record_id: string }>(
      `SELECT DISTINCT record_id FROM vuln_affected
       WHERE import_id = ? AND ecosystem = ? AND package = ? AND release IN ('', ?) ORDER BY record_id`,
    );
    this.countRecords = db.prepare<[number], { n: number }>(`SELECT count(*) AS n FROM vuln_records WHERE import_id = ?`);
    this.countEcosystems = db.prepare<[number], { ecosystem: string; n: number }>(
      `SELECT ecosystem, count(DISTINCT record_id) AS n FROM vuln_affected WHERE import_id = ? GROUP BY ecosystem ORDER BY ecosystem`,
    );
    this.retire = db.prepare(`UPDATE vulndb_imports SET state = 'replaced', ended_at = ? WHERE state = 'active'`);
    this.activateStmt = db.prepare(
      `UPDATE vulndb_imports SET state = 'active', records = @records, newest_modified = @newestModified,
         ecosystems = @ecosystems, sha256 = @sha256, activated_at = @at
       WHERE id = @id AND state = 'loading'`,
    );
    this.failStmt = db.prepare(`UPDATE vulndb_imports SET state = 'failed', ended_at = ? WHERE id = ? AND state = 'loading'`);
    this.purgeRecords = db.prepare(
      `DELETE FROM vuln_records WHERE rowid IN (SELECT rowid FROM vuln_records WHERE import_id = ? LIMIT ?)`,
    );
    this.purgeAffected = db.prepare(
      `DELETE FROM vuln_affected WHERE (import_id, ecosystem, package, release, record_id) IN
         (SELECT import_id, ecosystem, package, release, record_id FROM vuln_affected WHERE import_id = ? LIMIT ?)`,
    );
    this.purgeResults = db.prepare(`DELETE FROM scan_results WHERE db_version = ?`);
    this.markPurged = db.prepare(`UPDATE vulndb_imports SET purged_at = ? WHERE id = ? AND state IN ('replaced', 'failed')`);
  }

  /** Starts an import in state 'loading'; returns its id (the database version it will be). */
  begin(row: { sources: readonly string[]; importedAt: number; importedBy: string; pid: number; host: string }): number {
    const r = this.ins.run({ source: JSON.stringify(row.sources), importedAt: row.importedAt, importedBy: row.importedBy, pid: row.pid, host: row.host });
    return Number(r.lastInsertRowid);
  }

  get(id: number): VulnDbImportRecord | undefined {
    const r = this.one.get(id);
    return r === undefined ? undefined : fromRow(r);
  }

  /** The import in force, if any. */
  active(): VulnDbImportRecord | undefined {
    const r = this.activeStmt.get();
    return r === undefined ? undefined : fromRow(r);
  }

  activeId(): number | undefined {
    return this.activeIdStmt.get()?.id;
  }

  /** Every import, oldest first. */
  list(): VulnDbImportRecord[] {
    return this.all.all().map(fromRow);
  }

  withState(state: VulnDbImportState): VulnDbImportRecord[] {
    return this.byState.all(state).map(fromRow);
  }

  /** Replaced and failed imports whose rows have not been deleted yet. */
  unpurged(): number[] {
    return this.unpurgedStmt.all().map((r) => r.id);
  }

  /** Inserts records of a loading import, in one transaction. */
  insertRecords(importId: number, rows: readonly VulnRecordRow[]): void {
    this.db.transaction(() => {
      for (const r of rows) {
        this.insRecord.run(importId, r.id, r.modified, r.withdrawn, r.json);
        for (const a of r.affected) this.insAffected.run(importId, a.ecosystem, a.package, a.release, r.id);
      }
    })();
  }

  /** The stored text of one record of an import. */
  record(importId: number, id: string): { modified: string; json: string } | undefined {
    return this.recordStmt.get(importId, id);
  }

  /** Replaces a record of a loading import (a newer copy of the same id), with its package keys. */
  replaceRecord(importId: number, oldAffected: readonly VulnAffectedKey[], row: VulnRecordRow): void {
    this.db.transaction(() => {
      for (const a of oldAffected) this.delAffected.run(importId, a.ecosystem, a.package, a.release, row.id);
      this.updRecord.run(row.modified, row.withdrawn, row.json, importId, row.id);
      for (const a of row.affected) this.insAffected.run(importId, a.ecosystem, a.package, a.release, row.id);
    })();
  }

  /**
   * The ids of the records of an import that name `pkg` in `ecosystem` (without release
   * suffix). With a release, entries for that release and entries without one; without,
   * every release's.
   */
  candidateIds(importId: number, ecosystem: string, pkg: string, release: string | undefined): string[] {
    const rows = release === undefined ? this.candidateAll.all(importId, ecosystem, pkg) : this.candidateRelease.all(importId, ecosystem, pkg, release);
    return rows.map((r) => r.record_id);
  }

  /** The stored text of records of an import, by id (ids not found are left out). */
  recordsByIds(importId: number, ids: readonly string[]): { id: string; json: string }[] {
    const out: { id: string; json: string }[] = [];
    for (const id of ids) {
      const r = this.recordStmt.get(importId, id);
      if (r !== undefined) out.push({ id, json: r.json });
    }
    return out;
  }

  recordCount(importId: number): number {
    return this.countRecords.get(importId)?.n ?? 0;
  }

  /** Records per ecosystem of an import (a record naming two ecosystems counts in both). */
  ecosystemCounts(importId: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.countEcosystems.all(importId)) out[r.ecosystem] = r.n;
    return out;
  }

  /**
   * Makes a loading import the one in force and the previous one 'replaced', in the
   * caller's transaction (or its own). False when the import is no longer loading
   * (another process declared it failed), and nothing changes.
   */
  activate(importId: number, facts: { records: number; newestModified: string | null; ecosystems: Readonly<Record<string, number>>; sha256: string; at: number }): boolean {
    return this.db.transaction(() => {
      const current = this.one.get(importId);
      if (current?.state !== "loading") return false;
      this.retire.run(facts.at);
      const r = this.activateStmt.run({
        id: importId,
        records: facts.records,
        newestModified: facts.newestModified,
        ecosystems: JSON.stringify(facts.ecosystems),
        sha256: facts.sha256,
        at: facts.at,
      });
      if (r.changes !== 1) throw new Error(`vulndb import ${importId} could not be activated`);
      return true;
    })();
  }

  /** Marks a loading import failed; its rows are left for purge(). */
  fail(importId: number, at: number): boolean {
    return this.failStmt.run(at, importId).changes === 1;
  }

  /**
   * Deletes up to `limit` rows of each of the import's tables (records, package keys);
   * returns how many were deleted. Once it returns 0 for an import, finishPurge marks it.
   */
  purgeBatch(importId: number, limit: number): number {
    return this.db.transaction(() => this.purgeAffected.run(importId, limit).changes + this.purgeRecords.run(importId, limit).changes)();
  }

  /** Records that the rows of a replaced or failed import are gone, with its cached scan results. */
  finishPurge(importId: number, at: number): void {
    this.db.transaction(() => {
      this.purgeResults.run(importId);
      this.markPurged.run(at, importId);
    })();
  }

  /** The cached scan result of an image against one database version (its JSON text). */
  scanResult(imageId: string, dbVersion: number): { result: string; createdAt: number } | undefined {
    const r = this.db
      .prepare<[string, number], { result: string; created_at: number }>(`SELECT result, created_at FROM scan_results WHERE image_id = ? AND db_version = ?`)
      .get(imageId, dbVersion);
    return r === undefined ? undefined : { result: r.result, createdAt: r.created_at };
  }

  /** Stores (or replaces) the scan result of an image against one database version. */
  putScanResult(imageId: string, dbVersion: number, result: string, createdAt: number): void {
    this.db
      .prepare(`INSERT OR REPLACE INTO scan_results (image_id, db_version, result, created_at) VALUES (?, ?, ?, ?)`)
      .run(imageId, dbVersion, result, createdAt);
  }
}
