import type { Db } from "../db.js";

/**
 * Read-only access to the evidence of accepted signed deploy requests (the
 * `deploy_requests` table), for the audit export. It never writes.
 */
export interface SignedRequestEvidenceRow {
  readonly jti: string;
  readonly requester: string;
  readonly operation: string;
  readonly namespace: string;
  readonly name: string;
  /** `sha256:<hex>` of the manifest as signed. */
  readonly digest: string;
  /** The compact JWS as received. */
  readonly jws: string;
  /** The signing certificate, PEM. */
  readonly signerCertificatePem: string;
  /** Milliseconds since the epoch. */
  readonly receivedAt: number;
}

interface Row {
  jti: string;
  requester: string;
  operation: string;
  namespace: string;
  name: string;
  digest: string;
  jws: string;
  signer_cert: string;
  received_at: number;
}

/** Times outside this are not times (SQLite integers are 64-bit; JS numbers are safe to 2^53). */
const MAX_MS = Number.MAX_SAFE_INTEGER;

type Params = [number, number, string | null, string | null];

const SELECT = `SELECT jti, requester, operation, namespace, name, digest, jws, signer_cert, received_at
     FROM deploy_requests
    WHERE received_at >= ? AND received_at < ? AND (? IS NULL OR namespace = ?)
    ORDER BY received_at, jti`;

/** Prepared on first use, so that opening a store does not depend on this table. */
const prepare = (db: Db) => db.prepare<Params, Row>(SELECT);

export class DeployEvidenceRepo {
  private stmt: ReturnType<typeof prepare> | undefined;

  constructor(private readonly db: Db) {}

  /**
   * Accepted signed requests with `sinceMs <= received_at < untilMs`, in one namespace
   * when given, in the order received (then by jti). Streams.
   */
  *receivedBetween(sinceMs: number | undefined, untilMs: number | undefined, namespace?: string): IterableIterator<SignedRequestEvidenceRow> {
    this.stmt ??= prepare(this.db);
    const ns = namespace ?? null;
    for (const r of this.stmt.iterate(sinceMs ?? -MAX_MS, untilMs ?? MAX_MS, ns, ns)) {
      yield {
        jti: r.jti,
        requester: r.requester,
        operation: r.operation,
        namespace: r.namespace,
        name: r.name,
        digest: r.digest,
        jws: r.jws,
        signerCertificatePem: r.signer_cert,
        receivedAt: r.received_at,
      };
    }
  }
}
