import type { AuditEvent } from "../../core/index.js";
import type { Db } from "../db.js";

export interface StoredAccessEvent extends AuditEvent {
  readonly id: number;
  readonly at: number;
}

interface Row {
  id: number;
  at: number;
  type: string;
  outcome: AuditEvent["outcome"];
  actor: string;
  actor_serial: string | null;
  source: string | null;
  method: string | null;
  route: string | null;
  status: number | null;
  request_id: string | null;
  reason: string | null;
  target: string | null;
}

const u = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/** The append-only table of access events. There is no update and no delete here. */
export class AccessEventRepo {
  private readonly ins;
  private readonly recent;
  private readonly countStmt;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO access_events (at, type, outcome, actor, actor_serial, source, method, route, status, request_id, reason, target)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.recent = db.prepare<[number], Row>(`SELECT * FROM access_events ORDER BY id DESC LIMIT ?`);
    this.countStmt = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM access_events`);
  }

  append(at: number, e: AuditEvent): void {
    this.ins.run(
      at,
      e.type,
      e.outcome,
      e.actor,
      e.actorSerial ?? null,
      e.sourceAddress ?? null,
      e.method ?? null,
      e.route ?? null,
      e.status ?? null,
      e.requestId ?? null,
      e.reason ?? null,
      e.target ?? null,
    );
  }

  /** Most recent first. */
  latest(limit: number): StoredAccessEvent[] {
    return this.recent.all(limit).map((r) => ({
      id: r.id,
      at: r.at,
      type: r.type,
      outcome: r.outcome,
      actor: r.actor,
      actorSerial: u(r.actor_serial),
      sourceAddress: u(r.source),
      method: u(r.method),
      route: u(r.route),
      status: u(r.status),
      requestId: u(r.request_id),
      reason: u(r.reason),
      target: u(r.target),
    }));
  }

  count(): number {
    return this.countStmt.get()?.n ?? 0;
  }
}
