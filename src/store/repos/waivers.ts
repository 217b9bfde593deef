import type { Db } from "../db.js";

/** One waiver as stored: kept for good; revoking sets `revokedAt` once. */
export interface WaiverRecord {
  readonly id: string;
  readonly namespace: string;
  readonly deployment: string | null;
  readonly imageDigest: string | null;
  readonly check: string;
  /** The findings it exempts (e.g. CVE ids); null exempts every violation of the check. */
  readonly findings: readonly string[] | null;
  readonly owner: string;
  readonly justification: string;
  readonly ticket: string;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
  readonly revokedBy: string | null;
}

interface Row {
  id: string;
  namespace: string;
  deployment: string | null;
  image_digest: string | null;
  check_name: string;
  findings: string | null;
  owner: string;
  justification: string;
  ticket: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  revoked_by: string | null;
}

function findingsOf(text: string | null): readonly string[] | null {
  if (text === null) return null;
  const v: unknown = JSON.parse(text);
  if (!Array.isArray(v) || !v.every((f) => typeof f === "string")) throw new TypeError("stored waiver findings are not a list of strings");
  return v as string[];
}

const fromRow = (r: Row): WaiverRecord => ({
  id: r.id,
  namespace: r.namespace,
  deployment: r.deployment,
  imageDigest: r.image_digest,
  check: r.check_name,
  findings: findingsOf(r.findings),
  owner: r.owner,
  justification: r.justification,
  ticket: r.ticket,
  createdBy: r.created_by,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  revokedBy: r.revoked_by,
});

/** Waivers: inserted, read, revoked once; never deleted (the table's triggers hold it). */
export class WaiverRepo {
  private readonly ins;
  private readonly one;
  private readonly byNamespace;
  private readonly inForce;
  private readonly revokeStmt;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO waivers (id, namespace, deployment, image_digest, check_name, findings, owner, justification, ticket, created_by, created_at, expires_at, revoked_at, revoked_by)
       VALUES (@id, @namespace, @deployment, @imageDigest, @check, @findings, @owner, @justification, @ticket, @createdBy, @createdAt, @expiresAt, NULL, NULL)`,
    );
    this.one = db.prepare<[string], Row>(`SELECT * FROM waivers WHERE id = ?`);
    this.byNamespace = db.prepare<[string], Row>(`SELECT * FROM waivers WHERE namespace = ? ORDER BY expires_at, id`);
    this.inForce = db.prepare<[string, number], Row>(
      `SELECT * FROM waivers WHERE namespace = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY expires_at, id`,
    );
    this.revokeStmt = db.prepare<[number, string, string]>(`UPDATE waivers SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL`);
  }

  insert(rec: Omit<WaiverRecord, "revokedAt" | "revokedBy">): void {
    this.ins.run({ ...rec, findings: rec.findings === null ? null : JSON.stringify(rec.findings) });
  }

  get(id: string): WaiverRecord | undefined {
    const r = this.one.get(id);
    return r ? fromRow(r) : undefined;
  }

  /** Every waiver of the namespace, revoked and expired ones included, soonest expiry first. */
  listByNamespace(namespace: string): WaiverRecord[] {
    return this.byNamespace.all(namespace).map(fromRow);
  }

  /** The waivers in force at `nowMs`: not revoked and expiring strictly after it. */
  active(namespace: string, nowMs: number): WaiverRecord[] {
    return this.inForce.all(namespace, nowMs).map(fromRow);
  }

  /** Revokes a waiver not yet revoked; false when there is none such. */
  revoke(id: string, by: string, at: number): boolean {
    return this.revokeStmt.run(at, by, id).changes === 1;
  }
}
