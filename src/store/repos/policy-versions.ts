import type { Db } from "../db.js";

export interface PolicyVersionRecord {
  readonly version: number;
  readonly csv: string;
  readonly sha256: string;
  readonly author: string;
  readonly createdAt: number;
  readonly message: string;
  /** JSON `{ added: string[], removed: string[] }`. */
  readonly diff: string;
  readonly rollbackOf: number | null;
}

interface Row {
  version: number;
  csv: string;
  sha256: string;
  author: string;
  created_at: number;
  message: string;
  diff: string;
  rollback_of: number | null;
}

const fromRow = (r: Row): PolicyVersionRecord => ({
  version: r.version,
  csv: r.csv,
  sha256: r.sha256,
  author: r.author,
  createdAt: r.created_at,
  message: r.message,
  diff: r.diff,
  rollbackOf: r.rollback_of,
});

/** Immutable, numbered policy versions; the highest is the one in force. */
export class PolicyVersionRepo {
  private readonly ins;
  private readonly latestStmt;
  private readonly one;
  private readonly all;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO policy_versions (version, csv, sha256, author, created_at, message, diff, rollback_of)
       VALUES (@version, @csv, @sha256, @author, @createdAt, @message, @diff, @rollbackOf)`,
    );
    this.latestStmt = db.prepare<[], Row>(`SELECT * FROM policy_versions ORDER BY version DESC LIMIT 1`);
    this.one = db.prepare<[number], Row>(`SELECT * FROM policy_versions WHERE version = ?`);
    this.all = db.prepare<[], Row>(`SELECT * FROM policy_versions ORDER BY version`);
  }

  insert(rec: PolicyVersionRecord): void {
    this.ins.run(rec);
  }

  latest(): PolicyVersionRecord | undefined {
    const r = this.latestStmt.get();
    return r ? fromRow(r) : undefined;
  }

  get(version: number): PolicyVersionRecord | undefined {
    const r = this.one.get(version);
    return r ? fromRow(r) : undefined;
  }

  list(): PolicyVersionRecord[] {
    return this.all.all().map(fromRow);
  }
}
