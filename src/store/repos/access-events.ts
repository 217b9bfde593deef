import type { AuditEvent } from "../../core/index.js";
import type { Db } from "../db.js";

/** An audit log entry read back in the shape of the event that produced it. */
export interface StoredAccessEvent extends AuditEvent {
  /** The entry's seq. */
  readonly id: number;
  /** The entry's time, in milliseconds since the epoch. */
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
  resource: string | null;
  namespace: string | null;
}

const u = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/**
 * Read-only: the `access_events` view over the audit log. Writes go only through the
 * audit log (AuditLogRepo.insert, sealed by the audit domain).
 */
export class AccessEventRepo {
  private readonly recent;
  private readonly countStmt;

  constructor(db: Db) {
    this.recent = db.prepare<[number], Row>(`SELECT * FROM access_events ORDER BY id DESC LIMIT ?`);
    this.countStmt = db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM access_events`);
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
      resource: u(r.resource),
      namespace: u(r.namespace),
    }));
  }

  count(): number {
    return this.countStmt.get()?.n ?? 0;
  }
}
