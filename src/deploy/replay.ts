/**
 * The replay guard (step 6 of a signed request's verification): every accepted request
 * is kept by its jti in the store, so a jti is good for one request only, also across
 * restarts. The same requester sending the byte-identical request again is a retry (its
 * answer may have been lost) and gets the stored request back instead of a refusal.
 *
 * Rows are kept for good: every one is an accepted request, the evidence that the audit
 * export carries and `audit verify` demands for each acceptance it shows.
 */
import { pcError, type Clock } from "../core/index.js";
import type { DeployRequestRecord, Store } from "../store/index.js";
import type { AuthenticatedDeployRequest } from "./types.js";

export type StoredDeployRequest = DeployRequestRecord;

/** `fresh`: the jti was never used. `retryOf`: a byte-identical retry by the same requester. */
export type ReplayVerdict = "fresh" | { readonly retryOf: StoredDeployRequest };

export class ReplayGuard {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Throws PC_DEPLOY_REPLAYED when the jti was used by another request or requester. */
  check(req: AuthenticatedDeployRequest): ReplayVerdict {
    const stored = this.store.deployRequests.get(req.claims.jti);
    if (stored === undefined) return "fresh";
    if (stored.requester === req.requester && stored.jwsSha256 === req.jwsSha256) return { retryOf: stored };
    throw pcError("PC_DEPLOY_REPLAYED");
  }

  /**
   * Records an accepted request. Plain statements, no transaction of its own: call it
   * inside the transaction that acts on the request. PC_DEPLOY_REPLAYED if the jti was
   * taken meanwhile.
   */
  record(req: AuthenticatedDeployRequest): StoredDeployRequest {
    const rec: StoredDeployRequest = {
      jti: req.claims.jti,
      requester: req.requester,
      operation: req.claims.op,
      namespace: req.claims.namespace,
      name: req.claims.name,
      digest: req.claims.manifestDigest,
      jws: req.jws,
      jwsSha256: req.jwsSha256,
      signerCertificatePem: req.signerCertificatePem,
      receivedAt: this.clock.now().getTime(),
      expiresAt: req.claims.exp * 1000,
      result: null,
    };
    if (!this.store.deployRequests.insert(rec)) throw pcError("PC_DEPLOY_REPLAYED");
    return rec;
  }

  /** Stores the answer given to a request, for retries; false if the jti is unknown. */
  setResult(jti: string, resultJson: string): boolean {
    return this.store.deployRequests.setResult(jti, resultJson);
  }

  get(jti: string): StoredDeployRequest | undefined {
    return this.store.deployRequests.get(jti);
  }

}
