import type { Db } from "../db.js";

export interface EnrollTokenRecord {
  readonly id: string;
  readonly tokenHash: string;
  readonly identity: string;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly certTtlMs: number | null;
  readonly usedAt: number | null;
  readonly usedSerial: string | null;
  readonly revokedAt: number | null;
}

interface Row {
  id: string;
  token_hash: string;
  identity: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  cert_ttl_ms: number | null;
  used_at: number | null;
  used_serial: string | null;
  revoked_at: number | null;
}

const fromRow = (r: Row): EnrollTokenRecord => ({
  id: r.id,
  tokenHash: r.token_hash,
  identity: r.identity,
  createdBy: r.created_by,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  certTtlMs: r.cert_ttl_ms,
  usedAt: r.used_at,
  usedSerial: r.used_serial,
  revokedAt: r.revoked_at,
});

export class EnrollTokenRepo {
  private readonly ins;
  private readonly byHash;
  private readonly use;
  private readonly revokeFor;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO enroll_tokens (id, token_hash, identity, created_by, created_at, expires_at, cert_ttl_ms)
       VALUES (@id, @tokenHash, @identity, @createdBy, @createdAt, @expiresAt, @certTtlMs)`,
    );
    this.byHash = db.prepare<[string], Row>(`SELECT * FROM enroll_tokens WHERE token_hash = ?`);
    this.use = db.prepare(
      `UPDATE enroll_tokens SET used_at = ?, used_serial = ?
       WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?`,
    );
    this.revokeFor = db.prepare(
      `UPDATE enroll_tokens SET revoked_at = ? WHERE identity = ? AND used_at IS NULL AND revoked_at IS NULL`,
    );
  }

  insert(rec: Pick<EnrollTokenRecord, "id" | "tokenHash" | "identity" | "createdBy" | "createdAt" | "expiresAt" | "certTtlMs">): void {
    this.ins.run(rec);
  }

  findByHash(hash: string): EnrollTokenRecord | undefined {
    const r = this.byHash.get(hash);
    return r ? fromRow(r) : undefined;
  }

  /** Marks a token used, once; false if it was used, revoked or expired meanwhile. */
  markUsed(id: string, at: number, serial: string): boolean {
    return this.use.run(at, serial, id, at).changes === 1;
  }

  /** Invalidates every unused token of an identity; returns how many. */
  revokeForIdentity(identity: string, at: number): number {
    return this.revokeFor.run(at, identity).changes;
  }
}
