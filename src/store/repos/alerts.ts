import type { Db } from "../db.js";

/**
 * One alert as stored (migration 10). `evidence` is the JSON text of the first and the
 * last event or stats sample; the monitoring domain gives it its shape.
 */
export interface AlertRecord {
  readonly id: string;
  readonly rule: string;
  readonly severity: string;
  readonly namespace: string | null;
  readonly deployment: string | null;
  readonly node: string | null;
  readonly container: string | null;
  readonly dedupeKey: string;
  readonly summary: string;
  readonly evidence: string;
  readonly count: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly status: "open" | "acked";
  readonly ackedBy: string | null;
  readonly ackedAt: number | null;
  readonly ackNote: string | null;
}

/** Which alerts `list` returns; absent fields do not filter. */
export interface AlertFilter {
  /** Only alerts of these namespaces (an alert without a namespace never matches). */
  readonly namespaces?: readonly string[];
  readonly severities?: readonly string[];
  /** true: only open alerts; false: only acknowledged ones. */
  readonly open?: boolean;
  readonly rule?: string;
  readonly deployment?: string;
  /** 1..1000, default 100. */
  readonly limit?: number;
}

interface Row {
  id: string;
  rule: string;
  severity: string;
  namespace: string | null;
  deployment: string | null;
  node: string | null;
  container: string | null;
  dedupe_key: string;
  summary: string;
  evidence: string;
  count: number;
  first_seen: number;
  last_seen: number;
  status: string;
  acked_by: string | null;
  acked_at: number | null;
  ack_note: string | null;
}

const fromRow = (r: Row): AlertRecord => ({
  id: r.id,
  rule: r.rule,
  severity: r.severity,
  namespace: r.namespace,
  deployment: r.deployment,
  node: r.node,
  container: r.container,
  dedupeKey: r.dedupe_key,
  summary: r.summary,
  evidence: r.evidence,
  count: r.count,
  firstSeen: r.first_seen,
  lastSeen: r.last_seen,
  status: r.status === "acked" ? "acked" : "open",
  ackedBy: r.acked_by,
  ackedAt: r.acked_at,
  ackNote: r.ack_note,
});

/** Alerts (deduplicated by key within a window), and where the vulnerability rescans stand. */
export class AlertRepo {
  private readonly s;

  constructor(private readonly db: Db) {
    this.s = {
      ins: db.prepare(
        `INSERT INTO alerts (id, rule, severity, namespace, deployment, node, container, dedupe_key, summary, evidence, count, first_seen, last_seen, status, acked_by, acked_at, ack_note)
         VALUES (@id, @rule, @severity, @namespace, @deployment, @node, @container, @dedupeKey, @summary, @evidence, @count, @firstSeen, @lastSeen, 'open', NULL, NULL, NULL)`,
      ),
      one: db.prepare<[string], Row>(`SELECT * FROM alerts WHERE id = ?`),
      openByKey: db.prepare<[string, number], Row>(
        `SELECT * FROM alerts WHERE dedupe_key = ? AND last_seen >= ? AND status = 'open' ORDER BY last_seen DESC, id LIMIT 1`,
      ),
      repeat: db.prepare(`UPDATE alerts SET count = count + 1, last_seen = MAX(last_seen, ?), evidence = ? WHERE id = ?`),
      ack: db.prepare(`UPDATE alerts SET status = 'acked', acked_by = ?, acked_at = ?, ack_note = ? WHERE id = ? AND status = 'open'`),
    };
  }

  insert(a: Omit<AlertRecord, "status" | "ackedBy" | "ackedAt" | "ackNote">): void {
    this.s.ins.run(a);
  }

  get(id: string): AlertRecord | undefined {
    const r = this.s.one.get(id);
    return r ? fromRow(r) : undefined;
  }

  /** The open alert of a dedupe key seen at or after `since` (ms), newest first. */
  openByKey(dedupeKey: string, since: number): AlertRecord | undefined {
    const r = this.s.openByKey.get(dedupeKey, since);
    return r ? fromRow(r) : undefined;
  }

  /** One more sighting: count + 1, last_seen moves forward (never back), the evidence replaced. */
  repeat(id: string, at: number, evidence: string): void {
    this.s.repeat.run(at, evidence, id);
  }

  /** Acknowledges an open alert; false when it is not open (absent or acknowledged before). */
  ack(id: string, by: string, at: number, note: string): boolean {
    return this.s.ack.run(by, at, note, id).changes === 1;
  }

  /** Newest last_seen first. */
  list(f: AlertFilter = {}): AlertRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.namespaces !== undefined) {
      if (f.namespaces.length === 0) return [];
      where.push(`namespace IN (${f.namespaces.map(() => "?").join(", ")})`);
      args.push(...f.namespaces);
    }
    if (f.severities !== undefined) {
      if (f.severities.length === 0) return [];
      where.push(`severity IN (${f.severities.map(() => "?").join(", ")})`);
      args.push(...f.severities);
    }
    if (f.open !== undefined) where.push(f.open ? "status = 'open'" : "status = 'acked'");
    if (f.rule !== undefined) {
      where.push("rule = ?");
      args.push(f.rule);
    }
    if (f.deployment !== undefined) {
      where.push("deployment = ?");
      args.push(f.deployment);
    }
    const limit = Math.min(Math.max(Math.trunc(f.limit ?? 100), 1), 1000);
    const sql = `SELECT * FROM alerts ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY last_seen DESC, id LIMIT ?`;
    return (this.db.prepare(sql).all(...args, limit) as Row[]).map(fromRow);
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
