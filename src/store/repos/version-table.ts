import type { Db } from "../db.js";

/**
 * A table of immutable, numbered versions (the RBAC policy's, the admission policies', the monitoring rules'):
 * insert, the latest (the one in force), one by number, all in order. The table name is
 * one of the schema's, never input.
 */
export class VersionTable<R extends { readonly version: number }, Row> {
  private readonly ins;
  private readonly latestStmt;
  private readonly one;
  private readonly all;

  constructor(
    db: Db,
    table: "policy_versions" | "admission_policy_versions" | "monitoring_rules_versions",
    columns: readonly string[],
    private readonly fromRow: (r: Row) => R,
  ) {
    const names = columns.map((c) => c.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`));
    this.ins = db.prepare(`INSERT INTO ${table} (${names.join(", ")}) VALUES (${columns.map((c) => `@${c}`).join(", ")})`);
    this.latestStmt = db.prepare<[], Row>(`SELECT * FROM ${table} ORDER BY version DESC LIMIT 1`);
    this.one = db.prepare<[number], Row>(`SELECT * FROM ${table} WHERE version = ?`);
    this.all = db.prepare<[], Row>(`SELECT * FROM ${table} ORDER BY version`);
  }

  insert(rec: R): void {
    this.ins.run(rec);
  }

  latest(): R | undefined {
    const r = this.latestStmt.get();
    return r ? this.fromRow(r) : undefined;
  }

  get(version: number): R | undefined {
    const r = this.one.get(version);
    return r ? this.fromRow(r) : undefined;
  }

  list(): R[] {
    return this.all.all().map(this.fromRow);
  }
}
