/**
 * Check `signer`: the request is signed by the caller, who may deploy here.
 *
 * Restricted inputs and allowed values:
 * - attrs.signer.verified: true (the signature verified with the caller's certificate).
 * - attrs.signer.mayDeploy: true (RBAC lets the signer deploy in the namespace).
 * - attrs.signer.identity: equal to attrs.requester.
 */
import { noParams } from "../params.js";
import { deny, violationsOrOk } from "../results.js";
import type { CheckDefinition, CheckResult } from "../types.js";

const NAME = "signer";

export const signerCheck: CheckDefinition<Record<string, never>> = {
  name: NAME,
  validateParams: noParams,
  run(attrs) {
    const { signer, requester, namespace } = attrs;
    const out: CheckResult[] = [];
    if (signer.verified !== true) out.push(deny(NAME, "signer.verified", "signature not verified", "the request's signature was not verified"));
    if (signer.mayDeploy !== true) {
      out.push(deny(NAME, "signer.mayDeploy", "signer may not deploy", `${signer.identity} may not deploy in ${namespace.name}`));
    }
    if (signer.identity !== requester) {
      out.push(deny(NAME, "signer.identity", "signer is not the requester", `signed by ${signer.identity}; requested by ${requester}`));
    }
    return violationsOrOk(NAME, out, `signed by ${signer.identity}, who may deploy in ${namespace.name}`);
  },
};
