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
 *
 * Approvals (the two-person rule): when the namespace asks for M approvals and the
 * approvals check is the only one that denies, the verified request is stored as
 * pending (nothing runs, the jti is not yet used) and the caller gets 202. Each
 * approval is verified against the pending request and stored as evidence; when the
 * Mth valid one arrives, the stored request is verified again and judged by the
 * policies in force now, with the approvals counted, and then handed to the controller.
 */
import type { AuditSink, Clock, MetricsSink } from "../core/index.js";
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { canonicalize, isPortcullisError, NO_METRICS, pcError, PortcullisError } from "../core/index.js";
import { APPROVALS_LABEL, type AdmissionAttributes, type AdmissionDecision } from "../admission/index.js";
import { approvalSha256, verifyApproval, type CheckedDeployRequest, type DeployRequestVerifier } from "../deploy/index.js";
import { certificatesFromPem } from "../pki/index.js";
import type { DecisionRecord, DeploymentController } from "../runtime/index.js";
import { certificateSha256, RUNTIME_OF_CLASS } from "../runtime/index.js";
import type { PendingRequestRecord, Store } from "../store/index.js";
import type { ApprovalEvidence, ApproveMeta, PendingAnswer, PendingView } from "./approval-types.js";
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
    /** Deploy latency by outcome, and admission denials by check. */
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {}

  /**
   * One signed deploy request, timed from its arrival here to its decision (a request
   * held for approvals is not decided yet, and is not timed).
   */
  async submit(jws: string, caller: Caller, meta: DeployMeta): Promise<DecisionRecord | PendingAnswer> {
    const started = performance.now();
    let outcome: "accepted" | "denied" | "error" | undefined;
    try {
      const answer = await this.decide(jws, caller, meta);
      if (!("pending" in answer)) outcome = "accepted";
      return answer;
    } catch (e) {
      outcome = isPortcullisError(e) && e.status < 500 ? "denied" : "error";
      throw e;
    } finally {
      if (outcome !== undefined) this.metrics.deployLatency(outcome, (performance.now() - started) / 1000);
    }
  }

  private async decide(jws: string, caller: Caller, meta: DeployMeta): Promise<DecisionRecord | PendingAnswer> {
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
      if (!decision.allowed && awaitsApprovals(decision)) return this.hold(verified, caller, meta);
      if (!decision.allowed) {
        for (const d of decision.denials) this.metrics.admissionDenied(d.check);
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

  /** Stores a verified request that waits for approvals; a byte-identical retry gets the same answer. */
  private hold(v: CheckedDeployRequest, caller: Caller, meta: DeployMeta): PendingAnswer {
    const ns = this.store.namespaces.get(v.claims.namespace);
    const required = Number(ns?.labels[APPROVALS_LABEL] ?? "0");
    const prior = this.store.pendingRequests.getByJti(v.claims.jti);
    if (prior !== undefined) {
      if (prior.requester === v.requester && prior.jws === v.jws) return this.pendingAnswer(prior, []);
      throw pcError("PC_DEPLOY_REPLAYED");
    }
    const rec = {
      id: meta.requestId, jti: v.claims.jti, requester: v.requester, namespace: v.claims.namespace, name: v.claims.name, operation: v.claims.op,
      digest: v.claims.manifestDigest, jws: v.jws, signerCertificatePem: v.signerCertificatePem, required,
      createdAt: this.clock.now().getTime(), expiresAt: v.claims.exp * 1000,
    };
    this.store.transaction(() => {
      if (!this.store.pendingRequests.insert(rec)) throw pcError("PC_DEPLOY_REPLAYED");
      this.audit.record({
        type: "deploy.request_pending", outcome: "allowed", actor: v.requester, actorSerial: caller.serial, sourceAddress: meta.sourceAddress,
        requestId: meta.requestId, resource: "deployments", namespace: meta.namespace, target: v.claims.jti, reason: `approvals:${required}`,
        deploy: { jti: v.claims.jti, digest: v.claims.manifestDigest },
      });
    });
    return this.pendingAnswer(rec, []);
  }

  /**
   * One approval of a pending request. Refused (PC_ADMISSION_APPROVAL_INVALID, audited)
   * when it does not verify, names another request, digest or namespace, is signed by the
   * requester, repeats an approver, or the request expired or was decided. The Mth valid
   * approval runs the request: the answer is then its decision record.
   */
  async approve(id: string, approvalJws: string, caller: Caller, meta: ApproveMeta): Promise<DecisionRecord | PendingAnswer> {
    const p = this.store.pendingRequests.get(id);
    try {
      if (p === undefined || p.namespace !== meta.namespace) throw pcError("PC_ADMISSION_PENDING_NOT_FOUND", id);
      const now = this.clock.now();
      if (p.state === "pending" && p.expiresAt <= now.getTime()) this.expire(p);
      const state = p.state === "pending" && p.expiresAt <= now.getTime() ? "expired" : p.state;
      if (state === "expired") throw pcError("PC_ADMISSION_APPROVAL_INVALID", "the request has expired; its approvals expired with it");
      if (state !== "pending") throw pcError("PC_ADMISSION_APPROVAL_INVALID", `the request was already decided (${state})`);
      const a = await verifyApproval(approvalJws, {
        callerCertificateDer: caller.certificateDer, trustDomain: meta.trustDomain, now,
        expect: { requestId: p.id, jti: p.jti, manifestDigest: p.digest, namespace: p.namespace },
      });
      if (a.approver === p.requester) throw pcError("PC_ADMISSION_APPROVAL_INVALID", "the requester's own approval does not count");
      this.store.transaction(() => {
        const added = this.store.pendingRequests.addApproval({ requestId: p.id, approver: a.approver, jws: a.jws, signerCertificatePem: a.signerCertificatePem, createdAt: now.getTime() });
        if (!added) throw pcError("PC_ADMISSION_APPROVAL_INVALID", `${a.approver} has already approved this request`);
        this.audit.record({
          type: "deploy.approval_recorded", outcome: "allowed", actor: a.approver, actorSerial: caller.serial, sourceAddress: meta.sourceAddress,
          requestId: meta.requestId, resource: "approvals", namespace: p.namespace, target: p.id, reason: approvalSha256(a.jws),
          deploy: { jti: p.jti, digest: p.digest },
        });
      });
    } catch (e) {
      this.audit.recordAfter({
        type: "deploy.approval_refused", outcome: "denied", actor: caller.id, actorSerial: caller.serial, sourceAddress: meta.sourceAddress,
        requestId: meta.requestId, resource: "approvals", namespace: meta.namespace, target: id, reason: isPortcullisError(e) ? e.code : "PC_INTERNAL",
      });
      throw e;
    }
    const valid = this.validApprovers(p, meta);
    if (valid.length < p.required) return this.pendingAnswer(p, valid);
    return this.release(p, valid, meta);
  }

  /** The pending requests of a namespace (expired ones are marked so on the way). */
  pendingIn(namespace: string, meta: Pick<ApproveMeta, "decide">): PendingView[] {
    return this.store.pendingRequests.listPending(namespace, this.clock.now().getTime()).map((p) => this.view(p, meta));
  }

  /** One request that waits or waited for approvals, in its namespace. */
  pending(namespace: string, id: string, meta: Pick<ApproveMeta, "decide">): PendingView {
    const p = this.store.pendingRequests.get(id);
    if (p === undefined || p.namespace !== namespace) throw pcError("PC_ADMISSION_PENDING_NOT_FOUND", id);
    return this.view(p, meta);
  }

  private view(p: PendingRequestRecord, meta: Pick<ApproveMeta, "decide">): PendingView {
    const state = p.state === "pending" && p.expiresAt <= this.clock.now().getTime() ? "expired" : p.state;
    return {
      ...this.pendingAnswer(p, this.validApprovers(p, meta)),
      state, operation: p.operation, createdAt: new Date(p.createdAt).toISOString(), decisionId: p.decisionId,
    };
  }

  /** Approvers whose stored approvals count now: not the requester, and RBAC still lets them approve. */
  private validApprovers(p: PendingRequestRecord, meta: Pick<ApproveMeta, "decide">): string[] {
    const approvers = this.store.pendingRequests.approvals(p.id).map((a) => a.approver);
    return [...new Set(approvers)].filter((a) => a !== p.requester && meta.decide(a, "approvals", "approve").allowed).sort();
  }

  private expire(p: PendingRequestRecord): void {
    this.store.transaction(() => {
      if (!this.store.pendingRequests.setState(p.id, "pending", "expired")) return;
      this.audit.record({
        type: "deploy.request_expired", outcome: "denied", actor: p.requester, resource: "deployments", namespace: p.namespace,
        requestId: p.id, target: p.jti, reason: "PC_DEPLOY_EXPIRED", deploy: { jti: p.jti, digest: p.digest },
      });
    });
  }

  /** The Mth valid approval: verify the stored request again, judge it now with its approvals, run it. */
  private async release(p: PendingRequestRecord, valid: readonly string[], meta: ApproveMeta): Promise<DecisionRecord | PendingAnswer> {
    const der = certificatesFromPem(p.signerCertificatePem)[0];
    if (der === undefined) throw pcError("PC_INTERNAL", "the stored signer certificate cannot be read");
    const rbac = meta.decide(p.requester, "deployments", "deploy");
    const deployMeta: DeployMeta = { namespace: p.namespace, requestId: p.id, sourceAddress: meta.sourceAddress, rbac };
    const verified = await this.verifier.verify(p.jws, { certificateDer: der, expect: { namespace: p.namespace } });
    if (verified.retryOf !== undefined) throw pcError("PC_DEPLOY_REPLAYED");
    const decision = await this.judge(verified, deployMeta, { required: p.required, valid });
    if (!decision.allowed && awaitsApprovals(decision)) return this.pendingAnswer(p, valid);
    const approvals = this.evidence(p.id, valid);
    if (!decision.allowed || !rbac.allowed) {
      for (const d of decision.denials) this.metrics.admissionDenied(d.check);
      const record = { ...this.reviewRecord(verified, deployMeta, decision, null, false), approvals };
      this.store.transaction(() => {
        if (!this.store.pendingRequests.setState(p.id, "pending", "failed", p.id)) throw pcError("PC_ADMISSION_APPROVAL_INVALID", "the request was already decided");
        this.decisions.insert(this.row(record, false));
        this.audit.record({
          type: "deploy.request_denied", outcome: "denied", actor: verified.requester, sourceAddress: meta.sourceAddress,
          requestId: p.id, resource: "deployments", namespace: p.namespace, target: p.jti,
          reason: rbac.allowed ? decision.denials.map((d) => d.check).join(",") : "rbac",
          deploy: { jti: p.jti, digest: p.digest, decisionSha256: sha256(canonicalize(record)) },
        });
      });
      const reasons = [...(rbac.allowed ? [] : [`rbac: ${verified.requester} may no longer deploy in ${p.namespace}`]), ...decision.denials.map((d) => `${d.check}: ${d.reason}`)];
      throw new PortcullisError("PC_ADMISSION_DENIED", { detail: `${reasons.length} reason(s): ${reasons.join("; ")}`, decision: record });
    }
    // Claimed before it runs: of two approvals arriving together, one hands the request on.
    if (!this.store.pendingRequests.setState(p.id, "pending", "approved", p.id)) throw pcError("PC_ADMISSION_APPROVAL_INVALID", "the request was already decided");
    let record: DecisionRecord;
    try {
      record = await this.controller.submit(verified, {
        requestId: p.id, sourceAddress: meta.sourceAddress, rbac: { rule: rbac.rule, policyVersion: rbac.policyVersion }, admission: decision,
      });
    } catch (e) {
      this.store.pendingRequests.setState(p.id, "approved", "failed", p.id);
      throw e;
    }
    const full = { ...record, approvals };
    this.decisions.insert(this.row({ ...full, id: p.id }, true));
    return full;
  }

  private evidence(id: string, valid: readonly string[]): ApprovalEvidence[] {
    return this.store.pendingRequests
      .approvals(id)
      .filter((a) => valid.includes(a.approver))
      .map((a) => ({ approver: a.approver, at: new Date(a.createdAt).toISOString(), jwsSha256: approvalSha256(a.jws), certificateSha256: certificateSha256(a.signerCertificatePem) }));
  }

  private pendingAnswer(p: Omit<PendingRequestRecord, "state" | "decisionId">, approvals: readonly string[]): PendingAnswer {
    return {
      pending: true, requestId: p.id, namespace: p.namespace, name: p.name, requester: p.requester, jti: p.jti, manifestDigest: p.digest,
      required: p.required, approvals, expiresAt: new Date(p.expiresAt).toISOString(),
    };
  }

  private async judge(v: CheckedDeployRequest, meta: DeployMeta, approvals?: AdmissionAttributes["approvals"]): Promise<AdmissionDecision> {
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
      ...(approvals !== undefined ? { approvals } : {}),
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

/** Denied only because approvals are missing: the request can wait for them. */
function awaitsApprovals(d: AdmissionDecision): boolean {
  return d.denials.length > 0 && d.denials.every((x) => x.check === "approvals" && x.reason === "approvals required");
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
