/**
 * The path of one signed deploy request after mutual TLS and RBAC have let it in:
 *
 *   signature (deploy: the seven checks, replay included) → controller (runtime:
 *   namespace rules, placement, hardened containers, rollout) → decision record.
 *
 * Admission slots in between the two. Any failure refuses the request with its code,
 * and the refusal is audited with the request's id.
 */
import type { AuditSink } from "../core/index.js";
import { isPortcullisError } from "../core/index.js";
import type { DeployRequestVerifier } from "../deploy/index.js";
import type { DecisionRecord, DeploymentController } from "../runtime/index.js";
import type { Caller } from "./identity.js";

export interface DeployMeta {
  readonly namespace: string;
  readonly requestId: string;
  readonly sourceAddress: string;
  readonly rbac?: { readonly rule: string; readonly policyVersion: number };
}

export class DeployPipeline {
  constructor(
    private readonly verifier: DeployRequestVerifier,
    private readonly controller: DeploymentController,
    private readonly audit: AuditSink,
  ) {}

  async submit(jws: string, caller: Caller, meta: DeployMeta): Promise<DecisionRecord> {
    let stage = "signature";
    try {
      const verified = await this.verifier.verify(jws, { certificateDer: caller.certificateDer, expect: { namespace: meta.namespace } });
      stage = "placement";
      return await this.controller.submit(verified, {
        requestId: meta.requestId,
        actorSerial: caller.serial,
        sourceAddress: meta.sourceAddress,
        rbac: meta.rbac,
      });
    } catch (e) {
      this.audit.recordAfter({
        type: "deploy.request_refused",
        outcome: "denied",
        actor: caller.id,
        actorSerial: caller.serial,
        sourceAddress: meta.sourceAddress,
        requestId: meta.requestId,
        resource: "deployments",
        namespace: meta.namespace,
        reason: isPortcullisError(e) ? e.code : "PC_INTERNAL",
        target: stage,
      });
      throw e;
    }
  }
}
