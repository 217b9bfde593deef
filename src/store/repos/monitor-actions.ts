import type { Db } from "../db.js";

export type MonitorActionState = "pending" | "done" | "failed" | "skipped";

/** One response action of an alert (migration 10's `monitor_actions`). */
export interface MonitorActionRecord {
  readonly id: string;
  readonly alertId: string;
  readonly rule: string;
  /** The event (or stats sample) that caused it. */
  readonly eventId: string | null;
  readonly action: string;
  readonly node: string | null;
  readonly container: string | null;
  readonly namespace: string | null;
  readonly deployment: string | null;
  readonly state: MonitorActionState;
  readonly attempts: number;
  readonly result: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface Row {
  id: string;
  alert_id: string;
  rule: string;
  event_id: string | null;
  action: string;
  node: string | null;
  container: string | null;
  namespace: string | null;
  deployment: string | null;
  state: string;
  attempts: number;
  result: string | null;
  created_at: number;
  updated_at: number;
}

const fromRow = (r: Row): MonitorActionRecord => ({
  id: r.id,
  alertId: r.alert_id,
  rule: r.rule,
  eventId: r.event_id,
  action: r.action,
  node: r.node,
  container: r.container,
  namespace: r.namespace,
  deployment: r.deployment,
  state: r.state as MonitorActionState,
  attempts: r.attempts,
  result: r.result,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Response actions: written with their alert, then carried out and updated until settled. */
export class MonitorActionRepo {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      ins: db.prepare(
        `INSERT INTO monitor_actions (id, alert_id, rule, event_id, action, node, container, namespace, deployment, state, attempts, result, created_at, updated_at)
         VALUES (@id, @alertId, @rule, @eventId, @action, @node, @container, @namespace, @deployment, 'pending', 0, NULL, @createdAt, @createdAt)`,
      ),
      one: db.prepare<[string], Row>(`SELECT * FROM monitor_actions WHERE id = ?`),
      ofAlert: db.prepare<[string], Row>(`SELECT * FROM monitor_actions WHERE alert_id = ? ORDER BY created_at, rowid`),
      pending: db.prepare<[number], Row>(`SELECT * FROM monitor_actions WHERE state = 'pending' ORDER BY created_at, rowid LIMIT ?`),
      settle: db.prepare(`UPDATE monitor_actions SET state = ?, attempts = ?, result = ?, updated_at = ? WHERE id = ? AND state = 'pending'`),
    };
  }

  insert(a: Pick<MonitorActionRecord, "id" | "alertId" | "rule" | "eventId" | "action" | "node" | "container" | "namespace" | "deployment" | "createdAt">): void {
    this.s.ins.run(a);
  }

  get(id: string): MonitorActionRecord | undefined {
    const r = this.s.one.get(id);
    return r ? fromRow(r) : undefined;
  }

  ofAlert(alertId: string): MonitorActionRecord[] {
    return this.s.ofAlert.all(alertId).map(fromRow);
  }

  /** Pending actions, oldest first. */
  pending(limit = 500): MonitorActionRecord[] {
    return this.s.pending.all(limit).map(fromRow);
  }

  /**
   * Records an attempt's outcome on a pending action (it stays pending for a retry, or
   * settles as done, failed or skipped); false when it was no longer pending.
   */
  update(id: string, state: MonitorActionState, attempts: number, result: string, at: number): boolean {
    return this.s.settle.run(state, attempts, result, at, id).changes === 1;
  }
}
