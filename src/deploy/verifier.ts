/**
 * All seven checks of a signed deploy request in their order (see verify.ts): form,
 * header, signer, signature, claims, replay, manifest. Recording the request is left to
 * the caller (ReplayGuard.record), inside the transaction that acts on it.
 */
import type { Clock } from "../core/index.js";
import type { ClaimExpectations } from "./claims.js";
import type { ReplayGuard, StoredDeployRequest } from "./replay.js";
import type { VerifiedDeployRequest } from "./types.js";
import { checkManifest, verifyDeployRequest } from "./verify.js";

export interface CheckedDeployRequest extends VerifiedDeployRequest {
  /** Set when this is a byte-identical retry of a request already accepted. */
  readonly retryOf?: StoredDeployRequest;
}

export class DeployRequestVerifier {
  constructor(
    private readonly opts: { readonly trustDomain: string; readonly clock: Clock; readonly replay: ReplayGuard },
  ) {}

  async verify(jws: string, caller: { readonly certificateDer: Buffer; readonly expect?: ClaimExpectations }): Promise<CheckedDeployRequest> {
    const authenticated = await verifyDeployRequest(jws, {
      callerCertificateDer: caller.certificateDer,
      trustDomain: this.opts.trustDomain,
      now: this.opts.clock.now(),
      ...(caller.expect ? { expect: caller.expect } : {}),
    });
    const verdict = this.opts.replay.check(authenticated);
    const verified = checkManifest(authenticated);
    return verdict === "fresh" ? verified : { ...verified, retryOf: verdict.retryOf };
  }
}
