import type { Db } from "../db.js";
import { VersionTable } from "./version-table.js";

export interface MonitoringRulesVersionRecord {
  readonly version: number;
  /** The rules file of this version, exactly as applied (YAML). */
  readonly text: string;
  /** SHA-256 (hex) of `text` as stored (UTF-8). */
  readonly sha256: string;
  readonly author: string;
  readonly createdAt: number;
  readonly message: string;
  readonly rollbackOf: number | null;
}

interface Row {
  version: number;
  text: string;
  sha256: string;
  author: string;
  created_at: number;
  message: string;
  rollback_of: number | null;
}

const fromRow = (r: Row): MonitoringRulesVersionRecord => ({
  version: r.version,
  text: r.text,
  sha256: r.sha256,
  author: r.author,
  createdAt: r.created_at,
  message: r.message,
  rollbackOf: r.rollback_of,
});

/** Immutable, numbered monitoring rules versions; the highest is the one in force. */
export class MonitoringRulesVersionRepo extends VersionTable<MonitoringRulesVersionRecord, Row> {
  constructor(db: Db) {
    super(db, "monitoring_rules_versions", ["version", "text", "sha256", "author", "createdAt", "message", "rollbackOf"], fromRow);
  }
}
