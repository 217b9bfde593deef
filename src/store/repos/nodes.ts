import type { Db } from "../db.js";

export type NodeState = "active" | "draining";

export interface NodeRecord {
  readonly name: string;
  /** `unix:///path/to/docker.sock` or `tcp://HOST:PORT` (always with mutual TLS). */
  readonly endpoint: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: NodeState;
  /** The address published ports bind to on this node. */
  readonly publishHost: string;
  readonly createdAt: number;
  readonly createdBy: string;
}

interface Row {
  name: string;
  endpoint: string;
  labels: string;
  state: NodeState;
  publish_host: string;
  created_at: number;
  created_by: string;
}

const fromRow = (r: Row): NodeRecord => ({
  name: r.name,
  endpoint: r.endpoint,
  labels: JSON.parse(r.labels) as Record<string, string>,
  state: r.state,
  publishHost: r.publish_host,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/** The engines the gateway schedules onto. */
export class NodeRepo {
  private readonly ins;
  private readonly one;
  private readonly all;
  private readonly del;
  private readonly setState;
  private readonly replicaCount;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO nodes (name, endpoint, labels, state, publish_host, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.one = db.prepare<[string], Row>(`SELECT * FROM nodes WHERE name = ?`);
    this.all = db.prepare<[], Row>(`SELECT * FROM nodes ORDER BY name`);
    this.del = db.prepare(`DELETE FROM nodes WHERE name = ?`);
    this.setState = db.prepare(`UPDATE nodes SET state = ? WHERE name = ?`);
    this.replicaCount = db.prepare<[string], { n: number }>(`SELECT COUNT(*) AS n FROM replicas WHERE node = ?`);
  }

  /** Inserts; false if the name is taken. */
  insert(rec: NodeRecord): boolean {
    try {
      this.ins.run(rec.name, rec.endpoint, JSON.stringify(rec.labels), rec.state, rec.publishHost, rec.createdAt, rec.createdBy);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      throw e;
    }
  }

  get(name: string): NodeRecord | undefined {
    const r = this.one.get(name);
    return r ? fromRow(r) : undefined;
  }

  list(): NodeRecord[] {
    return this.all.all().map(fromRow);
  }

  /** False if there is no such node. */
  updateState(name: string, state: NodeState): boolean {
    return this.setState.run(state, name).changes === 1;
  }

  delete(name: string): boolean {
    return this.del.run(name).changes === 1;
  }

  /** How many replicas the gateway has placed on the node (running or not). */
  replicas(name: string): number {
    return this.replicaCount.get(name)?.n ?? 0;
  }
}
