import type { Db } from "../db.js";

/**
 * The audit log's tables, as rows. The store knows nothing of the chain: the audit
 * domain seals entries and maps them to and from these rows. There is an INSERT for
 * each table and nothing that changes or removes a row (triggers refuse it as well).
 */
export interface AuditLogRow {
  readonly seq: number;
  readonly time: string;
  readonly type: string;
  readonly outcome: string;
  readonly actor: string;
  readonly action: string | null;
  readonly resource: string | null;
  readonly namespace: string | null;
  /** Canonical JSON of the entry's body. */
  readonly body: string;
  readonly bodyDigest: string;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditCheckpointRow {
  readonly seq: number;
  readonly time: string;
  readonly jws: string;
}

const COLUMNS = `seq, time, type, outcome, actor, action, resource, namespace, body, body_digest AS bodyDigest, prev_hash AS prevHash, hash`;

export class AuditLogRepo {
  private readonly ins;
  private readonly headStmt;
  private readonly range;
  private readonly one;
  private readonly countStmt;
  private readonly insCheckpoint;
  private readonly checkpointsFrom;
  private readonly lastCheckpointStmt;
  private readonly firstAt;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO audit_log (seq, time, type, outcome, actor, action, resource, namespace, body, body_digest, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.headStmt = db.prepare<[], { seq: number; hash: string }>(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`);
    this.range = db.prepare<[number, number], AuditLogRow>(`SELECT ${COLUMNS} FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq`);
    this.one = db.prepare<[number], AuditLogRow>(`SELECT ${COLUMNS} FROM audit_log WHERE seq = ?`);
    this.countStmt = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM audit_log`);
    this.insCheckpoint = db.prepare(`INSERT INTO audit_checkpoints (seq, time, jws) VALUES (@seq, @time, @jws)`);
    this.checkpointsFrom = db.prepare<[number], AuditCheckpointRow>(`SELECT seq, time, jws FROM audit_checkpoints WHERE seq >= ? ORDER BY seq`);
    this.lastCheckpointStmt = db.prepare<[], AuditCheckpointRow>(`SELECT seq, time, jws FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`);
    this.firstAt = db.prepare<[string], { seq: number | null }>(`SELECT min(seq) AS seq FROM audit_log WHERE time >= ?`);
  }

  insert(row: AuditLogRow): void {
    // Positional parameters: better-sqlite3 binds them without a lookup by name per column.
    this.ins.run(row.seq, row.time, row.type, row.outcome, row.actor, row.action, row.resource, row.namespace, row.body, row.bodyDigest, row.prevHash, row.hash);
  }

  /** The last row's seq and hash, or undefined for an empty log. */
  head(): { seq: number; hash: string } | undefined {
    return this.headStmt.get();
  }

  get(seq: number): AuditLogRow | undefined {
    return this.one.get(seq);
  }

  /** Rows with from <= seq <= to, in seq order, streamed from the database. */
  iterate(from: number, to: number): IterableIterator<AuditLogRow> {
    return this.range.iterate(from, to);
  }

  count(): number {
    return this.countStmt.get()?.n ?? 0;
  }

  /** The first seq whose time is at or after `time` (ISO 8601, UTC). */
  firstSeqAtOrAfter(time: string): number | undefined {
    return this.firstAt.get(time)?.seq ?? undefined;
  }

  insertCheckpoint(row: AuditCheckpointRow): void {
    this.insCheckpoint.run(row);
  }

  /** Checkpoints with seq >= from, in seq order, streamed. */
  checkpoints(from: number): IterableIterator<AuditCheckpointRow> {
    return this.checkpointsFrom.iterate(from);
  }

  lastCheckpoint(): AuditCheckpointRow | undefined {
    return this.lastCheckpointStmt.get();
  }
}
