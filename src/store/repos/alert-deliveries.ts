import type { Db } from "../db.js";

export type AlertDeliveryState = "pending" | "delivered" | "dead";

/** One alert to deliver to the webhook (migration 10's `alert_deliveries`). */
export interface AlertDeliveryRecord {
  readonly id: string;
  readonly alertId: string;
  /** The webhook URL. */
  readonly sink: string;
  /** The JSON body, exactly as signed. */
  readonly payload: string;
  readonly state: AlertDeliveryState;
  readonly attempts: number;
  /** When the next attempt is due (ms since the epoch). */
  readonly nextAt: number;
  readonly lastError: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface Row {
  id: string;
  alert_id: string;
  sink: string;
  payload: string;
  state: string;
  attempts: number;
  next_at: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const fromRow = (r: Row): AlertDeliveryRecord => ({
  id: r.id,
  alertId: r.alert_id,
  sink: r.sink,
  payload: r.payload,
  state: r.state as AlertDeliveryState,
  attempts: r.attempts,
  nextAt: r.next_at,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Webhook deliveries: pending until delivered or dead (the dead-letter record, kept). */
export class AlertDeliveryRepo {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      ins: db.prepare(
        `INSERT INTO alert_deliveries (id, alert_id, sink, payload, state, attempts, next_at, last_error, created_at, updated_at)
         VALUES (@id, @alertId, @sink, @payload, 'pending', 0, @nextAt, NULL, @createdAt, @createdAt)`,
      ),
      one: db.prepare<[string], Row>(`SELECT * FROM alert_deliveries WHERE id = ?`),
      due: db.prepare<[number, number], Row>(`SELECT * FROM alert_deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, created_at, id LIMIT ?`),
      nextDue: db.prepare<[], { n: number | null }>(`SELECT MIN(next_at) AS n FROM alert_deliveries WHERE state = 'pending'`),
      attempt: db.prepare(`UPDATE alert_deliveries SET state = ?, attempts = ?, next_at = ?, last_error = ?, updated_at = ? WHERE id = ? AND state = 'pending'`),
      all: db.prepare<[number], Row>(`SELECT * FROM alert_deliveries ORDER BY created_at DESC, id LIMIT ?`),
      byState: db.prepare<[string, number], Row>(`SELECT * FROM alert_deliveries WHERE state = ? ORDER BY created_at DESC, id LIMIT ?`),
    };
  }

  insert(d: Pick<AlertDeliveryRecord, "id" | "alertId" | "sink" | "payload" | "nextAt" | "createdAt">): void {
    this.s.ins.run(d);
  }

  get(id: string): AlertDeliveryRecord | undefined {
    const r = this.s.one.get(id);
    return r ? fromRow(r) : undefined;
  }

  /** Pending deliveries due at `now`, the earliest first. */
  due(now: number, limit = 100): AlertDeliveryRecord[] {
    return this.s.due.all(now, limit).map(fromRow);
  }

  /** When the earliest pending delivery is due; undefined when none is pending. */
  nextDue(): number | undefined {
    return this.s.nextDue.get()?.n ?? undefined;
  }

  /** Records an attempt on a pending delivery; false when it was no longer pending. */
  recordAttempt(id: string, state: AlertDeliveryState, attempts: number, nextAt: number, lastError: string | null, at: number): boolean {
    return this.s.attempt.run(state, attempts, nextAt, lastError, at, id).changes === 1;
  }

  /** Newest first; of one state when given. */
  list(opts: { state?: AlertDeliveryState; limit?: number } = {}): AlertDeliveryRecord[] {
    const limit = Math.min(Math.max(Math.trunc(opts.limit ?? 100), 1), 1000);
    return (opts.state === undefined ? this.s.all.all(limit) : this.s.byState.all(opts.state, limit)).map(fromRow);
  }
}
