import type { Db } from "../db.js";

export interface AdmissionPolicyVersionRecord {
  readonly version: number;
  /** JSON `[{ name, text }]`, sorted by name: the policy files of this version. */
  readonly files: string;
  /** SHA-256 (hex) of `files` exactly as stored. */
  readonly sha256: string;
  readonly author: string;
  readonly createdAt: number;
  readonly message: string;
  readonly rollbackOf: number | null;
}

interface Row {
  version: number;
  files: string;
  sha256: string;
  author: string;
  created_at: number;
  message: string;
  rollback_of: number | null;
}

const fromRow = (r: Row): AdmissionPolicyVersionRecord => ({
  version: r.version,
  files: r.files,
  sha256: r.sha256,
  author: r.author,
  createdAt: r.created_at,
  message: r.message,
  rollbackOf: r.rollback_of,
});

/** Immutable, numbered admission policy versions; the highest is the one in force. */
export class AdmissionPolicyVersionRepo {
  private readonly ins;
  private readonly latestStmt;
  private readonly one;
  private readonly all;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO admission_policy_versions (version, files, sha256, author, created_at, message, rollback_of)
       VALUES (@version, @files, @sha256, @author, @createdAt, @message, @rollbackOf)`,
    );
    this.latestStmt = db.prepare<[], Row>(`SELECT * FROM admission_policy_versions ORDER BY version DESC LIMIT 1`);
    this.one = db.prepare<[number], Row>(`SELECT * FROM admission_policy_versions WHERE version = ?`);
    this.all = db.prepare<[], Row>(`SELECT * FROM admission_policy_versions ORDER BY version`);
  }

  insert(rec: AdmissionPolicyVersionRecord): void {
    this.ins.run(rec);
  }

  latest(): AdmissionPolicyVersionRecord | undefined {
    const r = this.latestStmt.get();
    return r ? fromRow(r) : undefined;
  }

  get(version: number): AdmissionPolicyVersionRecord | undefined {
    const r = this.one.get(version);
    return r ? fromRow(r) : undefined;
  }

  list(): AdmissionPolicyVersionRecord[] {
    return this.all.all().map(fromRow);
  }
}
