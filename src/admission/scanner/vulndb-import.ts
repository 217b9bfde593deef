/**
 * Imports OSV records into the vulnerability database, replacing the one in force
 * atomically.
 *
 * The input is one or more zips as osv.dev exports them (one `all.zip` per ecosystem) or
 * directories of `*.json` records, read without writing anything to disk (vulndb-zip.ts,
 * vulndb-archive.ts).
 * Every record is validated (parseOsvRecordJson); the first that is not valid refuses the
 * whole import with PC_SCAN_VULNDB_INVALID, naming the file and the JSON path. An import
 * with no record at all is refused too: an empty database would match nothing.
 *
 * The records are written under a new import id in state `loading`, in batched
 * transactions, beside the database in force, which readers go on using. One short
 * transaction then makes the new import `active` and the previous one `replaced` (with
 * the audit event, when a sink is given: if it cannot be written, nothing switches).
 * Only then are the rows of the replaced import deleted. An import that fails is marked
 * `failed` and its rows deleted; one whose process died (kill -9) is found in state
 * `loading` by the next import, or by cleanupVulnDb, and treated the same way. Either
 * way the database in force never changes until the switch.
 *
 * A record id seen twice (osv.dev puts a record that names packages of two ecosystems in
 * both ecosystems' zips) is kept once: the copy with the newest `modified`, else the first.
 */
import { hostname } from "node:os";
import { resolve } from "node:path";
import { createHash } from "node:crypto";
import { pcError, PortcullisError, systemClock, toPortcullisError, type AuditSink, type Clock } from "../../core/index.js";
import type { Store, VulnRecordRow } from "../../store/index.js";
import { ScanInputError } from "./errors.js";
import { parseOsvRecordJson } from "./osv-record.js";
import {
  DEFAULT_VULNDB_LIMITS,
  isDirectoryInput,
  readDirectoryInput,
  type VulnDbArchiveLimits,
  type VulnDbInputFile,
  type VulnDbReadTotals,
} from "./vulndb-archive.js";
import { affectedKeys } from "./vulndb-keys.js";
import { readZipInput } from "./vulndb-zip.js";

export interface VulnDbActor {
  readonly id: string;
  readonly serial?: string | undefined;
  readonly requestId?: string | undefined;
  readonly sourceAddress?: string | undefined;
}

export interface VulnDbImportOptions {
  readonly clock?: Clock;
  /** Records `vulndb.imported` in the switching transaction, `vulndb.import_failed` after a failure. */
  readonly audit?: AuditSink;
  readonly limits?: Partial<VulnDbArchiveLimits>;
  /** Records per insert transaction (default 1,000). */
  readonly batchSize?: number;
}

export interface VulnDbImportResult {
  /** The database version: the id of the import now in force. */
  readonly version: number;
  readonly records: number;
  /** The newest `modified` of the records, as written in the record. */
  readonly newestModified: string;
  /** The inputs as given, joined with ", " when there are several. */
  readonly source: string;
  readonly sources: readonly string[];
  /** Hex SHA-256 of the input (of a single zip: of its bytes). */
  readonly sha256: string;
  /** Records per ecosystem (without release suffix). */
  readonly ecosystems: Readonly<Record<string, number>>;
  /** Copies of a record id already imported from another file, not kept twice. */
  readonly duplicates: number;
}

export interface VulnDbCleanupOptions {
  readonly clock?: Clock;
  /** A loading import older than this is taken for dead even if its process cannot be checked (default 6 h). */
  readonly staleAfterMs?: number;
}

const DEFAULT_BATCH = 1000;
const PURGE_BATCH = 5000;
const STALE_AFTER_MS = 6 * 60 * 60 * 1000;

/** Imports running in this process, by database file and id: their `loading` rows are not leftovers. */
const running = new Set<string>();
const runningKey = (store: Store, importId: number): string => `${resolve(store.db.name)}\0${importId}`;

const turn = () => new Promise<void>((r) => setImmediate(r));

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Marks `loading` imports whose process is gone as failed, then deletes the rows of
 * replaced and failed imports (in batches, yielding to the event loop between them).
 * The database in force is never touched.
 */
export async function cleanupVulnDb(store: Store, opts: VulnDbCleanupOptions = {}): Promise<{ failed: number[]; purged: number[] }> {
  const clock = opts.clock ?? systemClock;
  const staleAfter = opts.staleAfterMs ?? STALE_AFTER_MS;
  const now = clock.now().getTime();
  const host = hostname();
  const failed: number[] = [];
  for (const imp of store.vulndb.withState("loading")) {
    if (running.has(runningKey(store, imp.id))) continue;
    const gone = imp.host === host && (imp.pid === process.pid || !processAlive(imp.pid));
    if ((gone || now - imp.importedAt > staleAfter) && store.vulndb.fail(imp.id, now)) failed.push(imp.id);
  }
  const purged: number[] = [];
  for (const id of store.vulndb.unpurged()) {
    while (store.vulndb.purgeBatch(id, PURGE_BATCH) > 0) await turn();
    store.vulndb.finishPurge(id, clock.now().getTime());
    purged.push(id);
  }
  return { failed, purged };
}

function modifiedMs(text: string): number {
  return Date.parse(text);
}

function invalid(file: VulnDbInputFile, e: unknown): PortcullisError {
  if (e instanceof ScanInputError) return pcError("PC_SCAN_VULNDB_INVALID", `${file.location}: ${e.message}`, e);
  return toPortcullisError(e);
}

function inputList(input: string | readonly string[]): readonly string[] {
  const list = typeof input === "string" ? [input] : [...input];
  if (list.length === 0) throw pcError("PC_SCAN_VULNDB_INVALID", "no input: give a zip or a directory of OSV records");
  for (const s of list) {
    if (typeof s !== "string" || s.length === 0) throw pcError("PC_SCAN_VULNDB_INVALID", "an input path must be a non-empty string");
  }
  return list;
}

/** Writes the records of one import; returns what it kept. */
class ImportWriter {
  private pending: VulnRecordRow[] = [];
  private readonly seen = new Map<string, number>();
  private newest: { text: string; ms: number } | undefined;
  duplicates = 0;

  constructor(
    private readonly store: Store,
    private readonly importId: number,
    private readonly batchSize: number,
  ) {}

  get records(): number {
    return this.seen.size;
  }

  get newestModified(): string | undefined {
    return this.newest?.text;
  }

  async add(file: VulnDbInputFile): Promise<void> {
    let row: VulnRecordRow;
    try {
      const record = parseOsvRecordJson(file.text);
      row = { id: record.id, modified: record.modified, withdrawn: record.withdrawn ?? null, json: file.text, affected: affectedKeys(record) };
    } catch (e) {
      throw invalid(file, e);
    }
    const ms = modifiedMs(row.modified);
    const before = this.seen.get(row.id);
    if (before !== undefined) {
      this.duplicates++;
      if (ms <= before) return;
      this.flush();
      const old = this.store.vulndb.record(this.importId, row.id);
      if (old === undefined) throw new Error(`record ${row.id} of import ${this.importId} is missing`);
      this.store.vulndb.replaceRecord(this.importId, affectedKeys(parseOsvRecordJson(old.json)), row);
    } else {
      this.pending.push(row);
    }
    this.seen.set(row.id, ms);
    if (this.newest === undefined || ms > this.newest.ms) this.newest = { text: row.modified, ms };
    if (this.pending.length >= this.batchSize) {
      this.flush();
      await turn();
    }
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const rows = this.pending;
    this.pending = [];
    this.store.vulndb.insertRecords(this.importId, rows);
  }
}

async function* inputFiles(
  inputs: readonly string[],
  limits: VulnDbArchiveLimits,
  digests: string[],
): AsyncGenerator<VulnDbInputFile> {
  const totals: VulnDbReadTotals = { entries: 0, bytes: 0 };
  for (const input of inputs) {
    const read = (await isDirectoryInput(input)) ? readDirectoryInput : readZipInput;
    yield* read(input, limits, totals, (hex) => digests.push(hex));
  }
}

/**
 * Imports OSV records from `input` (a zip, a directory, or a list of them) and makes them
 * the database in force. On any failure the database in force stays as it was.
 */
export async function importVulnDb(
  store: Store,
  input: string | readonly string[],
  actor: VulnDbActor,
  opts: VulnDbImportOptions = {},
): Promise<VulnDbImportResult> {
  const sources = inputList(input);
  const clock = opts.clock ?? systemClock;
  const limits: VulnDbArchiveLimits = { ...DEFAULT_VULNDB_LIMITS, ...opts.limits };
  const batchSize = opts.batchSize ?? DEFAULT_BATCH;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError("batchSize must be a positive integer");
  await cleanupVulnDb(store, { clock });

  const importId = store.vulndb.begin({ sources, importedAt: clock.now().getTime(), importedBy: actor.id, pid: process.pid, host: hostname() });
  running.add(runningKey(store, importId));
  const source = sources.join(", ");
  let result: VulnDbImportResult;
  try {
    const writer = new ImportWriter(store, importId, batchSize);
    const digests: string[] = [];
    for await (const file of inputFiles(sources, limits, digests)) await writer.add(file);
    writer.flush();
    const newestModified = writer.newestModified;
    if (writer.records === 0 || newestModified === undefined) throw pcError("PC_SCAN_VULNDB_INVALID", `${source}: no OSV records`);
    const sha256 = digests.length === 1 ? (digests[0] as string) : createHash("sha256").update(digests.join("\n")).digest("hex");
    const ecosystems = store.vulndb.ecosystemCounts(importId);
    const records = writer.records;
    store.transaction(() => {
      const ok = store.vulndb.activate(importId, { records, newestModified, ecosystems, sha256, at: clock.now().getTime() });
      if (!ok) throw pcError("PC_SCAN_VULNDB_INVALID", `${source}: the import was abandoned while it ran (taken for dead by another process)`);
      opts.audit?.record({
        type: "vulndb.imported",
        outcome: "allowed",
        actor: actor.id,
        actorSerial: actor.serial,
        requestId: actor.requestId,
        sourceAddress: actor.sourceAddress,
        resource: "vulndb",
        target: `version:${importId}`,
        bodySha256: sha256,
      });
    });
    result = { version: importId, records, newestModified, source, sources, sha256, ecosystems, duplicates: writer.duplicates };
  } catch (e) {
    running.delete(runningKey(store, importId));
    const err = toPortcullisError(e);
    try {
      store.vulndb.fail(importId, clock.now().getTime());
      opts.audit?.recordAfter({
        type: "vulndb.import_failed",
        outcome: "error",
        actor: actor.id,
        actorSerial: actor.serial,
        requestId: actor.requestId,
        sourceAddress: actor.sourceAddress,
        resource: "vulndb",
        target: `import:${importId}`,
        reason: err.code,
      });
      await cleanupVulnDb(store, { clock });
    } catch {
      // The failed import's rows stay until the next import or cleanup; the database in force is untouched.
    }
    throw err;
  }
  running.delete(runningKey(store, importId));
  try {
    await cleanupVulnDb(store, { clock });
  } catch {
    // The replaced import's rows stay until the next import or cleanup; the new one is in force.
  }
  return result;
}
