import type { Db } from "../db.js";

/** One accepted signed deploy request: the replay guard's memory and the evidence. */
export interface DeployRequestRecord {
  readonly jti: string;
  readonly requester: string;
  readonly operation: "create" | "update" | "scale" | "delete";
  readonly namespace: string;
  readonly name: string;
  /** `sha256:<hex>` of the manifest as signed. */
  readonly digest: string;
  readonly jws: string;
  /** Hex SHA-256 of the JWS text. */
  readonly jwsSha256: string;
  /** The signing certificate, PEM. */
  readonly signerCertificatePem: string;
  /** Milliseconds since the epoch. */
  readonly receivedAt: number;
  /** Milliseconds since the epoch: the request's `exp`. */
  readonly expiresAt: number;
  /** The answer given, JSON text; null until it is known. */
  readonly result: string | null;
}

interface Row {
  jti: string;
  requester: string;
  operation: DeployRequestRecord["operation"];
  namespace: string;
  name: string;
  digest: string;
  jws: string;
  jws_sha256: string;
  signer_cert: string;
  received_at: number;
  expires_at: number;
  result: string | null;
}

const fromRow = (r: Row): DeployRequestRecord => ({
  jti: r.jti,
  requester: r.requester,
  operation: r.operation,
  namespace: r.namespace,
  name: r.name,
  digest: r.digest,
  jws: r.jws,
  jwsSha256: r.jws_sha256,
  signerCertificatePem: r.signer_cert,
  receivedAt: r.received_at,
  expiresAt: r.expires_at,
  result: r.result,
});

export class DeployRequestRepo {
  private readonly ins;
  private readonly one;
  private readonly res;
  private readonly between;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT INTO deploy_requests
         (jti, requester, operation, namespace, name, digest, jws, jws_sha256, signer_cert, received_at, expires_at, result)
       VALUES (@jti, @requester, @operation, @namespace, @name, @digest, @jws, @jwsSha256, @signerCertificatePem, @receivedAt, @expiresAt, @result)`,
    );
    this.one = db.prepare<[string], Row>(`SELECT * FROM deploy_requests WHERE jti = ?`);
    this.res = db.prepare(`UPDATE deploy_requests SET result = ? WHERE jti = ?`);
    this.between = db.prepare<[number, number, string | null, string | null], Row>(
      `SELECT * FROM deploy_requests
        WHERE received_at >= ? AND received_at < ? AND (? IS NULL OR namespace = ?)
        ORDER BY received_at, jti`,
    );
  }

  /** Inserts; false if the jti is taken. */
  insert(rec: DeployRequestRecord): boolean {
    try {
      this.ins.run({ ...rec });
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      throw e;
    }
  }

  get(jti: string): DeployRequestRecord | undefined {
    const r = this.one.get(jti);
    return r ? fromRow(r) : undefined;
  }

  /** Stores the answer; false if there is no such request. */
  setResult(jti: string, resultJson: string): boolean {
    return this.res.run(resultJson, jti).changes === 1;
  }

  /**
   * Accepted requests with `sinceMs <= received_at < untilMs`, in one namespace when
   * given, in the order received (then by jti); streamed, for the audit export.
   */
  *receivedBetween(sinceMs: number | undefined, untilMs: number | undefined, namespace?: string): IterableIterator<DeployRequestRecord> {
    const ns = namespace ?? null;
    for (const r of this.between.iterate(sinceMs ?? -Number.MAX_SAFE_INTEGER, untilMs ?? Number.MAX_SAFE_INTEGER, ns, ns)) yield fromRow(r);
  }
}
