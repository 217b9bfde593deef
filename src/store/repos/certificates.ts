import type { Db } from "../db.js";

export interface CertificateRecord {
  readonly serial: string;
  readonly identity: string;
  readonly kind: string;
  /** `client`, `server` or `ca`. */
  readonly profile: string;
  readonly fingerprint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly issuedAt: number;
  readonly pem: string;
  readonly revokedAt: number | null;
  readonly revocationReason: string | null;
}

export interface RevokedEntry {
  readonly serial: string;
  readonly revokedAt: number;
  readonly reason: string;
}

interface Row {
  serial: string;
  identity: string;
  kind: string;
  profile: string;
  fingerprint: string;
  not_before: number;
  not_after: number;
  issued_at: number;
  pem: string;
  revoked_at: number | null;
  revocation_reason: string | null;
}

const fromRow = (r: Row): CertificateRecord => ({
  serial: r.serial,
  identity: r.identity,
  kind: r.kind,
  profile: r.profile,
  fingerprint: r.fingerprint,
  notBefore: r.not_before,
  notAfter: r.not_after,
  issuedAt: r.issued_at,
  pem: r.pem,
  revokedAt: r.revoked_at,
  revocationReason: r.revocation_reason,
});

export class CertificateRepo {
  private readonly ins;
  private readonly bySerial;
  private readonly byIdentity;
  private readonly all;
  private readonly revokeOne;
  private readonly revokeAll;
  private readonly revoked;
  private readonly bumpCrl;
  private readonly crlNumber;
  private readonly counted;

  constructor(private readonly db: Db) {
    this.ins = db.prepare(
      `INSERT INTO certificates (serial, identity, kind, profile, fingerprint, not_before, not_after, issued_at, pem)
       VALUES (@serial, @identity, @kind, @profile, @fingerprint, @notBefore, @notAfter, @issuedAt, @pem)`,
    );
    this.bySerial = db.prepare<[string], Row>(`SELECT * FROM certificates WHERE serial = ?`);
    this.byIdentity = db.prepare<[string], Row>(
      `SELECT * FROM certificates WHERE identity = ? ORDER BY issued_at, serial`,
    );
    this.all = db.prepare<[], Row>(`SELECT * FROM certificates ORDER BY issued_at, serial`);
    this.revokeOne = db.prepare(
      `UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL`,
    );
    this.revokeAll = db.prepare<[number, string, string], { serial: string }>(
      `UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE identity = ? AND revoked_at IS NULL RETURNING serial`,
    );
    this.revoked = db.prepare<[], { serial: string; revoked_at: number; revocation_reason: string }>(
      `SELECT serial, revoked_at, revocation_reason FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial`,
    );
    this.bumpCrl = db.prepare(`UPDATE crl_state SET crl_number = crl_number + 1 WHERE id = 1`);
    this.crlNumber = db.prepare<[], { crl_number: number }>(`SELECT crl_number FROM crl_state WHERE id = 1`);
    this.counted = db.prepare<[], { issued: number; revoked: number }>(
      `SELECT COUNT(*) AS issued, COUNT(revoked_at) AS revoked FROM certificates WHERE kind <> 'ca'`,
    );
  }

  insert(rec: Omit<CertificateRecord, "revokedAt" | "revocationReason">): void {
    this.ins.run(rec);
  }

  get(serial: string): CertificateRecord | undefined {
    const r = this.bySerial.get(serial);
    return r ? fromRow(r) : undefined;
  }

  list(identity?: string): CertificateRecord[] {
    return (identity ? this.byIdentity.all(identity) : this.all.all()).map(fromRow);
  }

  /** Revokes one certificate; returns false if it was unknown or already revoked. */
  revoke(serial: string, reason: string, at: number): boolean {
    return this.db.transaction(() => {
      const changed = this.revokeOne.run(at, reason, serial).changes > 0;
      if (changed) this.bumpCrl.run();
      return changed;
    })();
  }

  /** Revokes every unrevoked certificate of an identity; returns their serials. */
  revokeIdentity(identity: string, reason: string, at: number): string[] {
    return this.db.transaction(() => {
      const serials = this.revokeAll.all(at, reason, identity).map((r) => r.serial);
      if (serials.length > 0) this.bumpCrl.run();
      return serials;
    })();
  }

  listRevoked(): RevokedEntry[] {
    return this.revoked.all().map((r) => ({ serial: r.serial, revokedAt: r.revoked_at, reason: r.revocation_reason }));
  }

  /** Certificates issued and, of those, revoked; CA certificates are not counted. */
  counts(): { issued: number; revoked: number } {
    const r = this.counted.get();
    return { issued: r?.issued ?? 0, revoked: r?.revoked ?? 0 };
  }

  /** Increases with every change to the revocation list; cheap to poll. */
  revocationGeneration(): number {
    return this.crlNumber.get()?.crl_number ?? 0;
  }
}
