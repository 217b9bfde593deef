import type { Db } from "../db.js";
import { VersionTable } from "./version-table.js";

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
export class PolicyVersionRepo extends VersionTable<PolicyVersionRecord, Row> {
  constructor(db: Db) {
    super(db, "policy_versions", ["version", "csv", "sha256", "author", "createdAt", "message", "diff", "rollbackOf"], fromRow);
  }
}
