import type { Db } from "../db.js";
import { VersionTable } from "./version-table.js";

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
export class AdmissionPolicyVersionRepo extends VersionTable<AdmissionPolicyVersionRecord, Row> {
  constructor(db: Db) {
    super(db, "admission_policy_versions", ["version", "files", "sha256", "author", "createdAt", "message", "rollbackOf"], fromRow);
  }
}
