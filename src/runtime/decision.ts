/**
 * The decision record: the one answer to a deploy request. It is returned to the caller,
 * stored with the signed request (so that a retry gets the same answer), and its SHA-256
 * is in the audit entry of the completion.
 */
import { createHash } from "node:crypto";
import type { AuditSink } from "../core/index.js";
import { canonicalize, isErrorCode, pcError } from "../core/index.js";
import type { VerifiedDeployRequest } from "../deploy/index.js";
import type { ReplicaRecord, RevisionRecord, Store } from "../store/index.js";
import { RUNTIME_OF_CLASS } from "./container-spec.js";

export interface RequestContext {
  readonly requestId?: string | undefined;
  readonly actorSerial?: string | undefined;
  readonly sourceAddress?: string | undefined;
  readonly rbac?: { readonly rule: string; readonly policyVersion: number } | undefined;
  /** The admission decision (every check's result), when the request went through admission. */
  readonly admission?: unknown;
}

export interface PlacedReplica {
  readonly container: string;
  readonly ordinal: number;
  readonly revision: number;
  readonly node: string;
  readonly containerId: string | null;
  /** The runtime the engine reported after the start (runc, runsc). */
  readonly runtime: string | null;
}

export interface DecisionRecord {
  readonly outcome: "deployed" | "updated" | "scaled" | "deleted";
  readonly operation: string;
  readonly namespace: string;
  readonly name: string;
  readonly revision: number;
  readonly replicas: number;
  readonly requester: string;
  readonly signer: { readonly identity: string; readonly certificateSha256: string };
  readonly jti: string;
  readonly manifestDigest: string;
  readonly imageId: string;
  readonly runtime: { readonly requested: string; readonly actual: readonly string[] };
  readonly placement: readonly PlacedReplica[];
  readonly rbac: RequestContext["rbac"] | null;
  readonly admission: unknown;
  readonly requestId: string | null;
  readonly at: string;
}

const OUTCOME = { create: "deployed", update: "updated", scale: "scaled", delete: "deleted" } as const;

/** The record of a request, from the state it left. */
export function decisionRecord(
  v: VerifiedDeployRequest,
  ctx: RequestContext,
  state: { readonly replicas: number; readonly revision: RevisionRecord | undefined; readonly reps: readonly ReplicaRecord[]; readonly at: Date },
): DecisionRecord {
  const { reps, revision: rev } = state;
  return {
    outcome: OUTCOME[v.claims.op],
    operation: v.claims.op,
    namespace: v.claims.namespace,
    name: v.claims.name,
    revision: rev?.revision ?? 0,
    replicas: state.replicas,
    requester: v.requester,
    signer: { identity: v.requester, certificateSha256: certificateSha256(v.signerCertificatePem) },
    jti: v.claims.jti,
    manifestDigest: v.claims.manifestDigest,
    imageId: rev?.imageId ?? "",
    runtime: {
      requested: RUNTIME_OF_CLASS[v.spec.runtime],
      actual: [...new Set(reps.map((r) => r.runtime).filter((x): x is string => x !== null))].sort(),
    },
    placement: reps.map((r) => ({ container: r.containerName, ordinal: r.ordinal, revision: r.revision, node: r.node, containerId: r.containerId, runtime: r.runtime })),
    rbac: ctx.rbac ?? null,
    admission: ctx.admission ?? null,
    requestId: ctx.requestId ?? null,
    at: state.at.toISOString(),
  };
}

/** The stored answer of an accepted request: its decision record, or its failure again. */
export function storedAnswer(result: string): DecisionRecord {
  const parsed = JSON.parse(result) as DecisionRecord | { error: { code: string; detail: string | null } };
  if ("error" in parsed) {
    const code = isErrorCode(parsed.error.code) ? parsed.error.code : "PC_INTERNAL";
    throw pcError(code, parsed.error.detail ?? undefined);
  }
  return parsed;
}

/** What a failed request stores as its answer. */
export function failedAnswer(code: string, detail: string | undefined): string {
  return JSON.stringify({ error: { code, detail: detail ?? null } });
}

/** Hex SHA-256 of a certificate (its DER), from its PEM. */
export function certificateSha256(pem: string): string {
  const b64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  return createHash("sha256").update(Buffer.from(b64, "base64")).digest("hex");
}

/** The audit entry of an accepted request (written in its acceptance transaction). */
export function acceptedEvent(v: VerifiedDeployRequest, ctx: RequestContext, revision: number, imageId: string) {
  return {
    type: "deploy.request_accepted",
    outcome: "allowed" as const,
    actor: v.requester,
    actorSerial: ctx.actorSerial,
    requestId: ctx.requestId,
    sourceAddress: ctx.sourceAddress,
    resource: "deployments",
    namespace: v.claims.namespace,
    target: v.claims.jti,
    reason: v.claims.op,
    deploy: { revision, jti: v.claims.jti, digest: v.claims.manifestDigest, imageId, runtime: RUNTIME_OF_CLASS[v.spec.runtime], replicas: v.spec.replicas },
  };
}

/** Builds the answer to a request from the state it left, stores it with the request and audits it. */
export function answerRequest(
  store: Store,
  ledger: { setResult(jti: string, result: string): void },
  audit: AuditSink,
  at: Date,
  v: VerifiedDeployRequest,
  ctx: RequestContext,
): DecisionRecord {
  const { namespace, name } = v.claims;
  const d = store.deployments.get(namespace, name);
  const reps = d === undefined ? [] : store.deployments.replicasOf(namespace, name);
  const rev = d === undefined ? undefined : store.deployments.revision(namespace, name, d.revision);
  const record = decisionRecord(v, ctx, { replicas: d?.replicas ?? 0, revision: rev, reps, at });
  const placement = record.placement;
  const json = canonicalize(record);
  store.transaction(() => {
    ledger.setResult(v.claims.jti, json);
    audit.record({
      type: "deploy.completed", outcome: "allowed", actor: v.requester, actorSerial: ctx.actorSerial, requestId: ctx.requestId,
      resource: "deployments", namespace, target: v.claims.jti, reason: record.outcome,
      deploy: {
        revision: record.revision, jti: record.jti, digest: record.manifestDigest, imageId: record.imageId, runtime: record.runtime.requested,
        actualRuntimes: [...record.runtime.actual], nodes: [...new Set(placement.map((p) => p.node))].sort(),
        containers: placement.map((p) => p.container), replicas: record.replicas,
        decisionSha256: createHash("sha256").update(json).digest("hex"),
      },
    });
  });
  return record;
}
