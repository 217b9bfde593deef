import type { Db } from "../db.js";

/** A container held for forensics (migration 10's `quarantines`); active until released. */
export interface QuarantineRecord {
  readonly id: string;
  readonly containerName: string;
  readonly containerId: string | null;
  readonly node: string;
  readonly namespace: string | null;
  readonly deployment: string | null;
  readonly alertId: string | null;
  readonly rule: string;
  /** The networks it was taken off. */
  readonly networks: readonly string[];
  readonly createdAt: number;
  readonly releasedAt: number | null;
  readonly releasedBy: string | null;
}

interface Row {
  id: string;
  container_name: string;
  container_id: string | null;
  node: string;
  namespace: string | null;
  deployment: string | null;
  alert_id: string | null;
  rule: string;
  networks: string;
  created_at: number;
  released_at: number | null;
  released_by: string | null;
}

function networksOf(text: string): readonly string[] {
  const v: unknown = JSON.parse(text);
  if (!Array.isArray(v) || !v.every((n) => typeof n === "string")) throw new TypeError("stored quarantine networks are not a list of strings");
  return v as string[];
}

const fromRow = (r: Row): QuarantineRecord => ({
  id: r.id,
  containerName: r.container_name,
  containerId: r.container_id,
  node: r.node,
  namespace: r.namespace,
  deployment: r.deployment,
  alertId: r.alert_id,
  rule: r.rule,
  networks: networksOf(r.networks),
  createdAt: r.created_at,
  releasedAt: r.released_at,
  releasedBy: r.released_by,
});

/** Quarantines: at most one active per container name (a unique index holds it). */
export class QuarantineRepo {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      ins: db.prepare(
        `INSERT OR IGNORE INTO quarantines (id, container_name, container_id, node, namespace, deployment, alert_id, rule, networks, created_at, released_at, released_by)
         VALUES (@id, @containerName, @containerId, @node, @namespace, @deployment, @alertId, @rule, @networks, @createdAt, NULL, NULL)`,
      ),
      one: db.prepare<[string], Row>(`SELECT * FROM quarantines WHERE id = ?`),
      active: db.prepare<[string], Row>(`SELECT * FROM quarantines WHERE container_name = ? AND released_at IS NULL`),
      activeAll: db.prepare<[], Row>(`SELECT * FROM quarantines WHERE released_at IS NULL ORDER BY created_at, id`),
      activeOf: db.prepare<[string, string], Row>(
        `SELECT * FROM quarantines WHERE namespace = ? AND deployment = ? AND released_at IS NULL ORDER BY created_at, id`,
      ),
      all: db.prepare<[number], Row>(`SELECT * FROM quarantines ORDER BY created_at DESC, id LIMIT ?`),
      names: db.prepare<[], { container_name: string }>(`SELECT container_name FROM quarantines WHERE released_at IS NULL`),
      nets: db.prepare(`UPDATE quarantines SET networks = ? WHERE id = ?`),
      release: db.prepare(`UPDATE quarantines SET released_at = ?, released_by = ? WHERE id = ? AND released_at IS NULL`),
    };
  }

  /** Inserts an active quarantine; false when the container already has one. */
  insert(q: Omit<QuarantineRecord, "releasedAt" | "releasedBy">): boolean {
    return this.s.ins.run({ ...q, networks: JSON.stringify(q.networks) }).changes === 1;
  }

  get(id: string): QuarantineRecord | undefined {
    const r = this.s.one.get(id);
    return r ? fromRow(r) : undefined;
  }

  /** The active quarantine of a container, by name. */
  active(containerName: string): QuarantineRecord | undefined {
    const r = this.s.active.get(containerName);
    return r ? fromRow(r) : undefined;
  }

  /** The active quarantines of one deployment's containers. */
  activeOf(namespace: string, deployment: string): QuarantineRecord[] {
    return this.s.activeOf.all(namespace, deployment).map(fromRow);
  }

  /** The names of every container held now. */
  activeNames(): Set<string> {
    return new Set(this.s.names.all().map((r) => r.container_name));
  }

  /** Active ones oldest first; with `all`, released ones too (newest first, at most `limit`). */
  list(opts: { all?: boolean; limit?: number } = {}): QuarantineRecord[] {
    if (opts.all !== true) return this.s.activeAll.all().map(fromRow);
    return this.s.all.all(Math.min(Math.max(Math.trunc(opts.limit ?? 500), 1), 5000)).map(fromRow);
  }

  setNetworks(id: string, networks: readonly string[]): void {
    this.s.nets.run(JSON.stringify(networks), id);
  }

  /** Ends an active quarantine; false when it was not active. */
  release(id: string, by: string, at: number): boolean {
    return this.s.release.run(at, by, id).changes === 1;
  }
}
