import type { Db } from "../db.js";

/** One stored decision record: the answer to a deploy request, kept for good. */
export interface DecisionRecordRow {
  readonly id: string;
  readonly requestId: string | null;
  readonly requester: string;
  readonly namespace: string;
  readonly name: string;
  readonly operation: string;
  readonly allowed: boolean;
  readonly dryRun: boolean;
  /** The record as canonical JSON (RFC 8785), exactly as returned to the caller. */
  readonly record: string;
  readonly createdAt: number;
}

interface Row {
  id: string;
  request_id: string | null;
  requester: string;
  namespace: string;
  name: string;
  operation: string;
  allowed: number;
  dry_run: number;
  record: string;
  created_at: number;
}

const fromRow = (r: Row): DecisionRecordRow => ({
  id: r.id,
  requestId: r.request_id,
  requester: r.requester,
  namespace: r.namespace,
  name: r.name,
  operation: r.operation,
  allowed: r.allowed === 1,
  dryRun: r.dry_run === 1,
  record: r.record,
  createdAt: r.created_at,
});

/** Decision records: written once, never changed or removed. */
export class DecisionRecordRepo {
  private readonly ins;
  private readonly one;
  private readonly byNamespace;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO decision_records (id, request_id, requester, namespace, name, operation, allowed, dry_run, record, created_at)
       VALUES (@id, @requestId, @requester, @namespace, @name, @operation, @allowed, @dryRun, @record, @createdAt)`,
    );
    this.one = db.prepare<[string], Row>(`SELECT * FROM decision_records WHERE id = ?`);
    this.byNamespace = db.prepare<[string, number], Row>(
      `SELECT * FROM decision_records WHERE namespace = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
    );
  }

  insert(rec: DecisionRecordRow): void {
    this.ins.run({ ...rec, allowed: rec.allowed ? 1 : 0, dryRun: rec.dryRun ? 1 : 0 });
  }

  get(id: string): DecisionRecordRow | undefined {
    const r = this.one.get(id);
    return r ? fromRow(r) : undefined;
  }

  /** The newest first, at most `limit` (1 to 1000). */
  list(namespace: string, limit: number): DecisionRecordRow[] {
    const n = Math.max(1, Math.min(1000, Math.trunc(limit)));
    return this.byNamespace.all(namespace, n).map(fromRow);
  }
}
