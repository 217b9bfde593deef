/**
 * The path of one signed deploy request after mutual TLS and RBAC have let it in:
 *
 *   signature (deploy: the seven checks, replay included) → admission (every check of
 *   the policies in force; all reasons, not the first) → controller (runtime: placement,
 *   hardened containers, rollout) → decision record.
 *
 * A refusal at any step is audited with the request's id. A refusal by admission
 * carries the full decision record (every check with its mode, result, reason and
 * field), which is also stored and retrievable by id. A dry run goes through the same
 * signature and admission steps, then asks placement whether the replicas would fit; it
 * records nothing but its audit entry.
 */
import type { AuditSink, Clock } from "../core/index.js";
import { createHash } from "node:crypto";
import { canonicalize, isPortcullisError, pcError, PortcullisError } from "../core/index.js";
import type { AdmissionAttributes, AdmissionDecision } from "../admission/index.js";
import type { CheckedDeployRequest, DeployRequestVerifier } from "../deploy/index.js";
import type { DecisionRecord, DeploymentController } from "../runtime/index.js";
import { certificateSha256, RUNTIME_OF_CLASS } from "../runtime/index.js";
import type { Store } from "../store/index.js";
import type { Caller } from "./identity.js";

export interface DeployMeta {
  readonly namespace: string;
  readonly requestId: string;
  readonly sourceAddress: string;
  readonly rbac: { readonly rule: string; readonly policyVersion: number; readonly allowed: boolean };
}

/** Admission as the pipeline sees it: the policies in force, judged now. */
export interface AdmissionGate {
  evaluate(attrs: AdmissionAttributes): Promise<AdmissionDecision>;
}

/** A stored decision record. */
export interface DecisionStore {
  insert(rec: { id: string; requestId: string; requester: string; namespace: string; name: string; operation: string; allowed: boolean; dryRun: boolean; record: string; createdAt: number }): void;
}

/** The record of a request that did not reach the controller (denied, or a dry run). */
export interface ReviewRecord {
  readonly id: string;
  readonly outcome: "denied" | "admissible" | "inadmissible";
  readonly dryRun: boolean;
  readonly operation: string;
  readonly namespace: string;
  readonly name: string;
  readonly requester: string;
  readonly signer: { readonly identity: string; readonly certificateSha256: string };
  readonly signature: "verified";
  readonly jti: string;
  readonly manifestDigest: string;
  readonly rbac: DeployMeta["rbac"];
  readonly admission: AdmissionDecision;
  readonly placement: { readonly feasible: boolean; readonly nodes: readonly string[]; readonly reason?: string } | null;
  readonly runtime: { readonly requested: string; readonly actual: readonly string[] };
  readonly requestId: string;
  readonly at: string;
}

export class DeployPipeline {
  constructor(
    private readonly verifier: DeployRequestVerifier,
    private readonly controller: DeploymentController,
    private readonly admission: AdmissionGate,
    private readonly store: Store,
    private readonly decisions: DecisionStore,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
  ) {}

  async submit(jws: string, caller: Caller, meta: DeployMeta): Promise<DecisionRecord> {
    let stage = "signature";
    try {
      const verified = await this.verifier.verify(jws, { certificateDer: caller.certificateDer, expect: { namespace: meta.namespace } });
      if (verified.retryOf !== undefined) {
        // A retry of a request already accepted: its first answer, not a second judgement.
        return await this.controller.submit(verified, this.context(caller, meta, undefined));
      }
      stage = "admission";
      // A delete is judged by the signature and RBAC alone: a deployment that no longer
      // complies with a tightened policy must still be removable.
      const decision = verified.claims.op === "delete" ? undefined : await this.judge(verified, meta);
      if (decision === undefined) {
        stage = "placement";
        const record = await this.controller.submit(verified, this.context(caller, meta, undefined));
        this.decisions.insert(this.row({ ...record, id: meta.requestId }, true));
        return record;
      }
      if (!decision.allowed) {
        const record = this.reviewRecord(verified, meta, decision, null, false);
        this.store.transaction(() => {
          this.decisions.insert(this.row(record, false));
          this.audit.record({
            type: "deploy.request_denied", outcome: "denied", actor: verified.requester, actorSerial: caller.serial, sourceAddress: meta.sourceAddress,
            requestId: meta.requestId, resource: "deployments", namespace: meta.namespace, target: verified.claims.jti,
            reason: decision.denials.map((d) => d.check).join(","),
            deploy: { jti: verified.claims.jti, digest: verified.claims.manifestDigest, decisionSha256: sha256(canonicalize(record)) },
          });
        });
        const reasons = decision.denials.map((d) => `${d.check}${d.field ? ` (${d.field})` : ""}: ${d.reason}`).join("; ");
        const code = decision.denials.some((d) => d.check === "policy") ? "PC_ADMISSION_POLICY_MISSING" : "PC_ADMISSION_DENIED";
        throw new PortcullisError(code, { detail: `${decision.denials.length} reason(s): ${reasons}`, decision: record });
      }
      stage = "placement";
      const record = await this.controller.submit(verified, this.context(caller, meta, decision));
      this.decisions.insert(this.row({ ...record, id: meta.requestId }, true));
      return record;
    } catch (e) {
      if (!(isPortcullisError(e) && e.decision !== undefined)) {
        this.audit.recordAfter({
          type: "deploy.request_refused", outcome: "denied", actor: caller.id, actorSerial: caller.serial, sourceAddress: meta.sourceAddress,
          requestId: meta.requestId, resource: "deployments", namespace: meta.namespace, reason: isPortcullisError(e) ? e.code : "PC_INTERNAL", target: stage,
        });
      }
      throw e;
    }
  }

  /** Signature, admission and placement feasibility, with no side effects but an audit entry. */
  async review(jws: string, caller: Caller, meta: DeployMeta): Promise<ReviewRecord> {
    const verified = await this.verifier.verify(jws, { certificateDer: caller.certificateDer, expect: { namespace: meta.namespace } });
    const decision = await this.judge(verified, meta);
    const placement = decision.allowed ? await this.controller.feasibility(verified.spec) : null;
    const record = this.reviewRecord(verified, meta, decision, placement, true);
    this.audit.record({
      type: "admission.review", outcome: decision.allowed ? "allowed" : "denied", actor: verified.requester, actorSerial: caller.serial,
      sourceAddress: meta.sourceAddress, requestId: meta.requestId, resource: "deployments", namespace: meta.namespace, target: verified.claims.jti,
      reason: decision.allowed ? (placement?.feasible === false ? "placement infeasible" : "admissible") : decision.denials.map((d) => d.check).join(","),
    });
    return record;
  }

  private async judge(v: CheckedDeployRequest, meta: DeployMeta): Promise<AdmissionDecision> {
    const ns = this.store.namespaces.get(v.spec.namespace);
    if (ns === undefined) throw pcError("PC_RBAC_NAMESPACE_NOT_FOUND", v.spec.namespace);
    const facts = await this.controller.admissionFacts(v.spec);
    const attrs: AdmissionAttributes = {
      operation: v.claims.op,
      requester: v.requester,
      namespace: { name: ns.name, labels: ns.labels },
      manifest: v.claims.manifest,
      spec: v.spec,
      manifestDigest: v.claims.manifestDigest,
      image: facts.image,
      signer: { identity: v.requester, verified: true, mayDeploy: meta.rbac.allowed },
      ...(facts.previous !== undefined ? { previous: facts.previous } : {}),
    };
    return this.admission.evaluate(attrs);
  }

  private context(caller: Caller, meta: DeployMeta, admission: AdmissionDecision | undefined) {
    return {
      requestId: meta.requestId,
      actorSerial: caller.serial,
      sourceAddress: meta.sourceAddress,
      rbac: { rule: meta.rbac.rule, policyVersion: meta.rbac.policyVersion },
      admission,
    };
  }

  private reviewRecord(
    v: CheckedDeployRequest,
    meta: DeployMeta,
    admission: AdmissionDecision,
    placement: ReviewRecord["placement"],
    dryRun: boolean,
  ): ReviewRecord {
    return {
      id: meta.requestId,
      outcome: !admission.allowed ? (dryRun ? "inadmissible" : "denied") : placement?.feasible === false ? "inadmissible" : "admissible",
      dryRun,
      operation: v.claims.op,
      namespace: v.claims.namespace,
      name: v.claims.name,
      requester: v.requester,
      signer: { identity: v.requester, certificateSha256: certificateSha256(v.signerCertificatePem) },
      signature: "verified",
      jti: v.claims.jti,
      manifestDigest: v.claims.manifestDigest,
      rbac: meta.rbac,
      admission,
      placement,
      runtime: { requested: RUNTIME_OF_CLASS[v.spec.runtime], actual: [] },
      requestId: meta.requestId,
      at: this.clock.now().toISOString(),
    };
  }

  private row(record: { id?: string; requestId: string | null; requester: string; namespace: string; name: string; operation: string }, allowed: boolean) {
    return {
      id: record.id ?? record.requestId ?? "",
      requestId: record.requestId ?? "",
      requester: record.requester,
      namespace: record.namespace,
      name: record.name,
      operation: record.operation,
      allowed,
      dryRun: false,
      record: canonicalize(record),
      createdAt: this.clock.now().getTime(),
    };
  }
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
