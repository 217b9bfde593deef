import type { Db } from "../db.js";

/**
 * One event monitoring handled, as recorded (the shape of monitoring's MonitorEvent):
 * engine events, and the events the gateway derives (type "portcullis").
 */
export interface RecordedEvent {
  /** Hex SHA-256 of the event's identifying fields: the same event always has the same id. */
  readonly id: string;
  readonly node: string;
  readonly source: "engine" | "gateway";
  readonly type: string;
  readonly action: string;
  readonly actor: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Nanoseconds since the epoch, decimal. */
  readonly timeNano: string;
  readonly timeMs: number;
}

export interface RecordedEventFilter {
  readonly node?: string;
  /** time_ms >= sinceMs. */
  readonly sinceMs?: number;
  /** time_ms <= untilMs. */
  readonly untilMs?: number;
  readonly type?: string;
  /** Default 1000, at most 10000. */
  readonly limit?: number;
}

/** The type of the events the gateway derives (monitoring's GATEWAY_EVENT_TYPE). */
const GATEWAY_TYPE = "portcullis";
const DECIMAL_RE = /^(0|[1-9][0-9]{0,24})$/;
const PRUNE_BATCH = 1_000;

interface Row {
  id: string;
  node: string;
  time_nano: string;
  time_ms: number;
  type: string;
  action: string;
  actor: string;
  attributes: string;
}

const fromRow = (r: Row): RecordedEvent => ({
  id: r.id,
  node: r.node,
  source: r.type === GATEWAY_TYPE ? "gateway" : "engine",
  type: r.type,
  action: r.action,
  actor: r.actor,
  attributes: JSON.parse(r.attributes) as Record<string, string>,
  timeNano: r.time_nano,
  timeMs: r.time_ms,
});

/**
 * Events handled by monitoring (`monitor_events`), which makes handling exactly-once,
 * and where each node's event stream resumes (`monitor_cursors`).
 */
export class MonitorEventRepo {
  private readonly ins;
  private readonly getCursor;
  private readonly putCursor;
  private readonly count;
  private readonly pruneIds;
  private readonly pruneDel;
  private readonly moveCursor;

  constructor(private readonly db: Db) {
    this.ins = db.prepare(
      `INSERT OR IGNORE INTO monitor_events (id, node, time_nano, time_ms, type, action, actor, attributes, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.getCursor = db.prepare<[string], { time_nano: string }>(`SELECT time_nano FROM monitor_cursors WHERE node = ?`);
    this.putCursor = db.prepare(
      `INSERT INTO monitor_cursors (node, time_nano, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(node) DO UPDATE SET time_nano = excluded.time_nano, updated_at = excluded.updated_at`,
    );
    this.count = db.prepare<[string, string, string, number], { n: number }>(
      `SELECT COUNT(*) AS n FROM monitor_events WHERE node = ? AND actor = ? AND action = ? AND time_ms >= ?`,
    );
    this.pruneIds = db.prepare<[number, number, number], { rowid: number }>(
      `SELECT rowid FROM monitor_events WHERE rowid > ? AND received_at < ? ORDER BY rowid LIMIT ?`,
    );
    this.pruneDel = db.prepare(`DELETE FROM monitor_events WHERE rowid >= ? AND rowid <= ? AND received_at < ?`);
    this.moveCursor = db.transaction((node: string, timeNano: string, at: number): boolean => {
      const cur = this.getCursor.get(node);
      if (cur !== undefined && BigInt(cur.time_nano) >= BigInt(timeNano)) return false;
      this.putCursor.run(node, timeNano, at);
      return true;
    });
  }

  /** Records an event; false when an event with its id was recorded before. */
  record(ev: RecordedEvent, receivedAt: number): boolean {
    return (
      this.ins.run(ev.id, ev.node, ev.timeNano, ev.timeMs, ev.type, ev.action, ev.actor, JSON.stringify(ev.attributes), receivedAt).changes === 1
    );
  }

  /** The timeNano a node's event stream resumes from, if it ever streamed. */
  cursor(node: string): string | undefined {
    return this.getCursor.get(node)?.time_nano;
  }

  /**
   * Moves a node's cursor forward to `timeNano`; a time at or before the current one
   * changes nothing (false). Nested in a caller's transaction, it commits with it.
   */
  setCursor(node: string, timeNano: string, at: number): boolean {
    if (!DECIMAL_RE.test(timeNano)) throw new TypeError("timeNano must be a decimal integer");
    return this.moveCursor(node, timeNano, at);
  }

  /** How many events of one node's actor with exactly this action happened at or after sinceMs. */
  countActions(node: string, actor: string, action: string, sinceMs: number): number {
    return this.count.get(node, actor, action, sinceMs)?.n ?? 0;
  }

  /** Recorded events, oldest first (by event time). */
  list(filter: RecordedEventFilter = {}): RecordedEvent[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.node !== undefined) {
      where.push("node = ?");
      args.push(filter.node);
    }
    if (filter.sinceMs !== undefined) {
      where.push("time_ms >= ?");
      args.push(filter.sinceMs);
    }
    if (filter.untilMs !== undefined) {
      where.push("time_ms <= ?");
      args.push(filter.untilMs);
    }
    if (filter.type !== undefined) {
      where.push("type = ?");
      args.push(filter.type);
    }
    const requested = filter.limit ?? 1000;
    const limit = Number.isFinite(requested) ? Math.min(Math.max(Math.floor(requested), 1), 10_000) : 1000;
    args.push(limit);
    // Decimal strings without leading zeros order as numbers by (length, text).
    const sql =
      `SELECT id, node, time_nano, time_ms, type, action, actor, attributes FROM monitor_events` +
      (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
      ` ORDER BY time_ms, length(time_nano), time_nano, rowid LIMIT ?`;
    return (this.db.prepare(sql).all(...args) as Row[]).map(fromRow);
  }

  /**
   * Deletes events received before `beforeMs`, a batch of at most 1000 per transaction so
   * the write lock is never held long (call it outside any transaction). Returns how many.
   */
  prune(beforeMs: number): number {
    let removed = 0;
    let after = 0;
    for (;;) {
      const ids = this.pruneIds.all(after, beforeMs, PRUNE_BATCH);
      if (ids.length === 0) return removed;
      const first = (ids[0] as { rowid: number }).rowid;
      const last = (ids[ids.length - 1] as { rowid: number }).rowid;
      removed += this.pruneDel.run(first, last, beforeMs).changes;
      after = last;
      if (ids.length < PRUNE_BATCH) return removed;
    }
  }
}
