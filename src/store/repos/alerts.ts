import type { Db } from "../db.js";

/** One alert as stored. */
export interface AlertRecord {
  readonly id: string;
  readonly kind: string;
  readonly namespace: string;
  readonly deployments: readonly string[];
  /** Per kind; JSON. */
  readonly detail: Readonly<Record<string, unknown>>;
  readonly createdAt: number;
}

interface Row {
  id: string;
  kind: string;
  namespace: string;
  deployments: string;
  detail: string;
  created_at: number;
}

const fromRow = (r: Row): AlertRecord => ({
  id: r.id,
  kind: r.kind,
  namespace: r.namespace,
  deployments: JSON.parse(r.deployments) as string[],
  detail: JSON.parse(r.detail) as Record<string, unknown>,
  createdAt: r.created_at,
});

export class AlertRepo {
  constructor(private readonly db: Db) {}

  insert(a: AlertRecord): void {
    this.db
      .prepare("INSERT INTO alerts (id, kind, namespace, deployments, detail, created_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(a.id, a.kind, a.namespace, JSON.stringify(a.deployments), JSON.stringify(a.detail), a.createdAt);
  }

  /** Newest first; optionally of one kind. */
  list(opts: { kind?: string; limit?: number } = {}): AlertRecord[] {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
    const rows = (
      opts.kind === undefined
        ? this.db.prepare("SELECT * FROM alerts ORDER BY created_at DESC, id LIMIT ?").all(limit)
        : this.db.prepare("SELECT * FROM alerts WHERE kind = ? ORDER BY created_at DESC, id LIMIT ?").all(opts.kind, limit)
    ) as Row[];
    return rows.map(fromRow);
  }

  /** The highest database version whose rescan is done, if any. */
  lastRescan(): number | undefined {
    const r = this.db.prepare("SELECT MAX(version) AS v FROM scan_rescans").get() as { v: number | null };
    return r.v ?? undefined;
  }

  rescanDone(version: number, at: number): void {
    this.db.prepare("INSERT OR IGNORE INTO scan_rescans (version, done_at) VALUES (?, ?)").run(version, at);
  }
}
