import type { Db } from "../db.js";

export interface NamespaceRecord {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: number;
  readonly createdBy: string;
}

interface Row {
  name: string;
  labels: string;
  created_at: number;
  created_by: string;
}

const fromRow = (r: Row): NamespaceRecord => ({
  name: r.name,
  labels: JSON.parse(r.labels) as Record<string, string>,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

export class NamespaceRepo {
  private readonly ins;
  private readonly one;
  private readonly all;
  private readonly del;

  constructor(db: Db) {
    this.ins = db.prepare(`INSERT INTO namespaces (name, labels, created_at, created_by) VALUES (?, ?, ?, ?)`);
    this.one = db.prepare<[string], Row>(`SELECT * FROM namespaces WHERE name = ?`);
    this.all = db.prepare<[], Row>(`SELECT * FROM namespaces ORDER BY name`);
    this.del = db.prepare(`DELETE FROM namespaces WHERE name = ?`);
  }

  /** Inserts; false if the name is taken. */
  insert(rec: NamespaceRecord): boolean {
    try {
      this.ins.run(rec.name, JSON.stringify(rec.labels), rec.createdAt, rec.createdBy);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      throw e;
    }
  }

  get(name: string): NamespaceRecord | undefined {
    const r = this.one.get(name);
    return r ? fromRow(r) : undefined;
  }

  list(): NamespaceRecord[] {
    return this.all.all().map(fromRow);
  }

  delete(name: string): boolean {
    return this.del.run(name).changes === 1;
  }
}
