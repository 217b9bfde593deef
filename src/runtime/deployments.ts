/**
 * The deployment controller: turns an accepted signed request into desired state, and
 * desired state into containers.
 *
 * Every change follows the same two steps:
 * 1. one transaction records the signed request (the replay guard and the evidence), the
 *    revision, the desired state and the replicas the gateway intends to run, with the
 *    audit entry of the acceptance — so after a crash the store says what should exist;
 * 2. the rollout brings the engines to that state. It reads everything from the store and
 *    every step is idempotent (deterministic container names), so running it again after
 *    a crash finishes the job without duplicates.
 *
 * A deployment's secret references are pinned to versions before the acceptance
 * transaction (a missing secret or version refuses the request, and nothing is recorded)
 * and the pins recorded with the revision; its replicas get those versions as files
 * (replica-secrets.ts), on nodes of the gateway's own host only.
 *
 * One operation per deployment at a time (a lock per deployment, shared with the
 * reconciler). Answers are decision records, stored with the request, so that a retry of
 * a request that got no answer is answered, not run twice.
 */
import type { AuditSink, Clock, Logger } from "../core/index.js";
import { canonicalize, isPortcullisError, pcError } from "../core/index.js";
import type { DeploymentSpec, Manifest, VerifiedDeployRequest } from "../deploy/index.js";
import { validateManifest } from "../deploy/index.js";
import type { SecretResolver } from "../secrets/index.js";
import type { DeploymentRecord, ReplicaRecord, RevisionRecord, Store } from "../store/index.js";
import { RUNTIME_OF_CLASS } from "./container-spec.js";
import { acceptedEvent, answerRequest, failedAnswer, storedAnswer, type DecisionRecord, type RequestContext } from "./decision.js";
import { removeNamespaceNetworkIfUnused } from "./networks.js";
import { Placement, type NodeAccess, type Placed } from "./placement.js";
import { ensureReplicaRunning, nodePlacement, removeReplicaContainer, replicaContainerName, waitReady, type ReplicaTemplate } from "./replica-ops.js";
import { pinSecrets, pinsOf, recordPins, type ReplicaSecrets } from "./replica-secrets.js";
import type { SecretFiles } from "./secret-files.js";

/** What the controller needs of the replay guard: record inside the acceptance transaction, keep the answer. */
export interface RequestLedger {
  record(v: VerifiedDeployRequest): void;
  setResult(jti: string, result: string): void;
  get(jti: string): { readonly result: string | null } | undefined;
}

export interface ControllerOptions {
  /** Marks this gateway's containers; derived from the data directory's CA. */
  readonly gatewayId: string;
  readonly pollMs?: number;
  readonly settleMs?: number;
  readonly noHealthcheckBudgetMs?: number;
  /** Pins secret references at acceptance and opens the pinned versions at placement. */
  readonly secretResolver?: SecretResolver;
  /** Where the opened values are written for the containers (the gateway's tmpfs). */
  readonly secretFiles?: SecretFiles;
}

/** A namespace label that makes the sandbox mandatory for every deployment in it. */
export const SANDBOX_LABEL = "portcullis.io/runtime";

export class DeploymentController {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly specs = new Map<string, DeploymentSpec>();
  private readonly opts: Required<Omit<ControllerOptions, "secretResolver" | "secretFiles">>;
  private readonly placement: Placement;
  /** The secret store and the secret files; undefined: a deployment with secrets is refused. */
  readonly secrets: ReplicaSecrets | undefined;

  constructor(
    private readonly store: Store,
    private readonly nodes: NodeAccess,
    private readonly ledger: RequestLedger,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly logger: Logger,
    options: ControllerOptions,
  ) {
    const { secretResolver, secretFiles, ...rest } = options;
    this.opts = { pollMs: 200, settleMs: 1_000, noHealthcheckBudgetMs: 30_000, ...rest };
    this.secrets = secretResolver !== undefined && secretFiles !== undefined ? { resolver: secretResolver, files: secretFiles } : undefined;
    this.placement = new Placement(store, nodes, (rev) => this.specOf(rev));
  }

  get gatewayId(): string {
    return this.opts.gatewayId;
  }

  /** Runs `fn` while holding the deployment's lock. */
  withLock<T>(namespace: string, name: string, fn: () => Promise<T>): Promise<T> {
    const key = `${namespace}/${name}`;
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  isLocked(namespace: string, name: string): boolean {
    return this.locks.has(`${namespace}/${name}`);
  }

  /**
   * What admission needs to know beyond the request: the image on the nodes, and the
   * revision in force.
   */
  async admissionFacts(spec: DeploymentSpec): Promise<{
    image: { reference: string; idsByNode: Record<string, string>; user?: string };
    previous?: { revision: number; spec: DeploymentSpec; manifestDigest: string };
  }> {
    const image = await this.placement.imageFacts(spec.image);
    const d = this.store.deployments.get(spec.namespace, spec.name);
    const rev = d === undefined || d.state !== "active" ? undefined : this.store.deployments.revision(spec.namespace, spec.name, d.revision);
    return rev === undefined ? { image } : { image, previous: { revision: rev.revision, spec: this.specOf(rev), manifestDigest: rev.digest } };
  }

  /** Whether the request's replicas would fit now; nothing is recorded or started. */
  async feasibility(spec: DeploymentSpec): Promise<{ feasible: boolean; nodes: readonly string[]; reason?: string }> {
    try {
      const placed = await this.placement.place(spec, spec.image, spec.replicas, true);
      return { feasible: true, nodes: placed.nodes };
    } catch (e) {
      if (!isPortcullisError(e)) throw e;
      return { feasible: false, nodes: [], reason: `${e.code}: ${e.detail ?? e.message}` };
    }
  }

  /** Applies a verified signed request (replay already checked by the caller) and answers it. */
  submit(v: VerifiedDeployRequest, ctx: RequestContext): Promise<DecisionRecord> {
    const { namespace, name } = v.claims;
    return this.withLock(namespace, name, async () => {
      const prior = this.ledger.get(v.claims.jti);
      if (prior !== undefined) {
        // A retry of a request already accepted. Answered before: the same answer. Never
        // answered (the gateway stopped midway): finish what the store says, then answer.
        if (prior.result !== null) return storedAnswer(prior.result);
        if (v.claims.op !== "delete") await this.rollout(namespace, name);
        else await this.finishDelete(namespace, name);
        return answerRequest(this.store, this.ledger, this.audit, this.clock.now(), v, ctx);
      }
      this.checkNamespace(v.spec);
      this.refuseIfQuarantined(namespace, name);
      try {
        switch (v.claims.op) {
          case "create":
          case "update":
            return await this.apply(v, ctx);
          case "scale":
            return await this.scale(v, ctx);
          case "delete":
            return await this.remove(v, ctx);
        }
      } catch (e) {
        // An accepted request that failed keeps its failure as its answer, for a retry.
        if (isPortcullisError(e) && this.ledger.get(v.claims.jti) !== undefined) {
          this.ledger.setResult(v.claims.jti, failedAnswer(e.code, e.detail));
        }
        throw e;
      }
    });
  }

  /**
   * A deployment one of whose containers is quarantined does not change by request
   * (deploy, update, scale, delete) until the quarantine is released: nothing is
   * recorded, the request's id is not used. Stops from inside the gateway (stopUsing)
   * still apply, and leave the held container where it is.
   */
  private refuseIfQuarantined(namespace: string, name: string): void {
    const held = this.store.quarantines.activeOf(namespace, name);
    if (held.length > 0) {
      throw pcError("PC_MONITOR_QUARANTINED", `${namespace}/${name}: ${held.map((q) => `${q.containerName} (rule ${q.rule}, alert ${q.alertId ?? "-"})`).join(", ")}; release it first`);
    }
  }

  /** Whether a container is held in quarantine: the controller and the reconciler leave it alone. */
  isHeld(containerName: string): boolean {
    return this.store.quarantines.active(containerName) !== undefined;
  }

  /**
   * Ends the quarantine of a replica: under the deployment's lock, removes the held
   * container and its secret directory, then runs `commit` (which marks the quarantine
   * released). The reconciler's next pass creates a fresh replica in its place when the
   * deployment still wants one; otherwise the rollout drops the record.
   */
  releaseHeld(namespace: string, name: string, containerName: string, commit: () => void): Promise<void> {
    return this.withLock(namespace, name, async () => {
      const r = this.store.deployments.replica(containerName);
      if (r !== undefined) await removeReplicaContainer(this.nodes.engine(r.node), this.gatewayId, containerName, this.secrets?.files);
      commit();
    });
  }

  private checkNamespace(spec: DeploymentSpec): void {
    const ns = this.store.namespaces.get(spec.namespace);
    if (ns === undefined) throw pcError("PC_RBAC_NAMESPACE_NOT_FOUND", spec.namespace);
    if (ns.labels[SANDBOX_LABEL] === "sandboxed" && spec.runtime !== "sandboxed") {
      throw pcError("PC_DEPLOY_SANDBOX_REQUIRED", `namespace ${spec.namespace} carries ${SANDBOX_LABEL}=sandboxed`);
    }
  }

  /** A spec from a stored revision (validated again: the store is not trusted to be well-formed). */
  specOf(rev: RevisionRecord): DeploymentSpec {
    const key = `${rev.namespace}/${rev.name}/${rev.revision}`;
    let spec = this.specs.get(key);
    if (spec === undefined) {
      spec = validateManifest(JSON.parse(rev.manifest) as unknown).spec;
      this.specs.set(key, spec);
    }
    return spec;
  }

  /** What every replica of a revision is built from, with the secret versions the revision pinned. */
  templateOf(rev: RevisionRecord): ReplicaTemplate {
    const spec = this.specOf(rev);
    return { spec, revision: rev.revision, jti: rev.jti, manifestDigest: rev.digest, imageId: rev.imageId, secrets: pinsOf(this.store, rev, spec) };
  }

  /** create and update: a new revision, rolled out. */
  private async apply(v: VerifiedDeployRequest, ctx: RequestContext): Promise<DecisionRecord> {
    const { namespace, name } = v.spec;
    const current = this.store.deployments.get(namespace, name);
    if (v.claims.op === "create" && current !== undefined) throw pcError("PC_DEPLOY_EXISTS", `${namespace}/${name}`);
    if (v.claims.op === "update" && current === undefined) throw pcError("PC_DEPLOY_NOT_FOUND", `${namespace}/${name}`);
    const pins = await pinSecrets(this.secrets, v.spec);
    const { nodes, imageId } = await this.placement.place(v.spec, v.spec.image, v.spec.replicas, true);
    const at = this.clock.now().getTime();
    this.store.transaction(() => {
      const revision = this.store.deployments.nextRevision(namespace, name);
      this.ledger.record(v);
      this.store.deployments.insertRevision({
        namespace, name, revision, manifest: canonicalize(v.claims.manifest), digest: v.claims.manifestDigest, imageId,
        runtime: RUNTIME_OF_CLASS[v.spec.runtime], jti: v.claims.jti, requester: v.requester, createdAt: at,
      });
      recordPins(this.store, { namespace, name, revision }, pins);
      if (current === undefined) {
        this.store.deployments.insert(namespace, name, revision, v.spec.replicas, at);
        this.store.deployments.setPrevious(namespace, name, null, null);
      } else {
        this.store.deployments.update(namespace, name, revision, v.spec.replicas, "active", at);
        this.store.deployments.setPrevious(namespace, name, current.revision, current.replicas);
      }
      nodes.forEach((node, ordinal) => {
        const containerName = replicaContainerName(this.gatewayId, namespace, name, revision, ordinal);
        this.store.deployments.insertReplica({ containerName, namespace, name, revision, ordinal, node }, at);
      });
      this.audit.record(acceptedEvent(v, ctx, revision, imageId));
    });
    await this.rollout(namespace, name);
    return answerRequest(this.store, this.ledger, this.audit, this.clock.now(), v, ctx);
  }

  /** scale: the same revision, more or fewer replicas. Only spec.replicas may change. */
  private async scale(v: VerifiedDeployRequest, ctx: RequestContext): Promise<DecisionRecord> {
    const { namespace, name } = v.spec;
    const current = this.mustGet(namespace, name);
    const rev = this.store.deployments.revision(namespace, name, current.revision);
    if (rev === undefined) throw pcError("PC_STORE_CORRUPT", `revision ${current.revision} of ${namespace}/${name} is missing`);
    if (!sameExceptReplicas(JSON.parse(rev.manifest) as Manifest, v.claims.manifest)) {
      throw pcError("PC_DEPLOY_OPERATION_INVALID", "a scale may change spec.replicas only; send an update");
    }
    const want = v.spec.replicas;
    const have = this.store.deployments.replicasOf(namespace, name).filter((r) => r.revision === current.revision);
    const missing = [...Array(want).keys()].filter((o) => !have.some((r) => r.ordinal === o));
    const placed = missing.length > 0 ? await this.placement.place(this.specOf(rev), rev.imageId, missing.length) : ({ nodes: [], imageId: rev.imageId } satisfies Placed);
    const at = this.clock.now().getTime();
    this.store.transaction(() => {
      this.ledger.record(v);
      this.store.deployments.update(namespace, name, current.revision, want, "active", at);
      missing.forEach((ordinal, i) => {
        const containerName = replicaContainerName(this.gatewayId, namespace, name, current.revision, ordinal);
        this.store.deployments.insertReplica({ containerName, namespace, name, revision: current.revision, ordinal, node: placed.nodes[i] as string }, at);
      });
      this.audit.record(acceptedEvent(v, ctx, current.revision, rev.imageId));
    });
    await this.rollout(namespace, name);
    return answerRequest(this.store, this.ledger, this.audit, this.clock.now(), v, ctx);
  }

  /** delete: every container of the deployment goes. The manifest must be the current one. */
  private async remove(v: VerifiedDeployRequest, ctx: RequestContext): Promise<DecisionRecord> {
    const { namespace, name } = v.spec;
    const current = this.mustGet(namespace, name);
    const rev = this.store.deployments.revision(namespace, name, current.revision);
    if (rev === undefined || rev.digest !== v.claims.manifestDigest) {
      throw pcError("PC_DEPLOY_OPERATION_INVALID", "a delete must carry the deployment's current manifest");
    }
    this.store.transaction(() => {
      this.ledger.record(v);
      this.store.deployments.update(namespace, name, current.revision, current.replicas, "deleting", this.clock.now().getTime());
      this.audit.record(acceptedEvent(v, ctx, current.revision, rev.imageId));
    });
    await this.finishDelete(namespace, name);
    return answerRequest(this.store, this.ledger, this.audit, this.clock.now(), v, ctx);
  }

  /**
   * Stops every replica of a deployment (desired replicas 0, recorded with a
   * `deploy.stopped` entry in one transaction), then rolls out: used when a secret it
   * pins is deleted by force. `reason` names the cause (the secret), never a value.
   */
  stopUsing(namespace: string, name: string, reason: string, actor: string): Promise<void> {
    return this.withLock(namespace, name, async () => {
      const d = this.mustGet(namespace, name);
      this.store.transaction(() => {
        this.store.deployments.update(namespace, name, d.revision, 0, "active", this.clock.now().getTime());
        this.audit.record({ type: "deploy.stopped", outcome: "allowed", actor, resource: "deployments", namespace, target: name, reason: reason.slice(0, 200) });
      });
      await this.rollout(namespace, name);
    });
  }

  private mustGet(namespace: string, name: string): DeploymentRecord {
    const d = this.store.deployments.get(namespace, name);
    if (d === undefined || d.state === "deleting") throw pcError("PC_DEPLOY_NOT_FOUND", `${namespace}/${name}`);
    return d;
  }

  /** Removes every container and replica of a deployment that is being deleted, then the deployment. */
  async finishDelete(namespace: string, name: string): Promise<void> {
    const d = this.store.deployments.get(namespace, name);
    if (d === undefined) return;
    const reps = this.store.deployments.replicasOf(namespace, name);
    for (const r of reps) {
      if (this.isHeld(r.containerName)) continue;
      await removeReplicaContainer(this.nodes.engine(r.node), this.gatewayId, r.containerName, this.secrets?.files);
      this.store.deployments.deleteReplica(r.containerName);
    }
    // A quarantined container stays, and with it the deployment (still being deleted):
    // the delete finishes once the quarantine is released.
    if (reps.some((r) => this.isHeld(r.containerName))) return;
    this.store.transaction(() => {
      this.store.deployments.delete(namespace, name);
      this.audit.record({ type: "deploy.deleted", outcome: "allowed", actor: "service:gateway", resource: "deployments", namespace, target: name });
    });
    for (const node of new Set(reps.map((r) => r.node))) {
      await removeNamespaceNetworkIfUnused(this.nodes.engine(node), namespace).catch(() => undefined);
    }
  }

  /**
   * Brings the engines to the stored desired state of one deployment. When replicas of an
   * older revision remain, this is a rolling update within maxSurge and maxUnavailable;
   * a new replica that does not become ready rolls the whole deployment back to the
   * revision it replaced, and the rollout fails with PC_DEPLOY_ROLLOUT_FAILED.
   */
  async rollout(namespace: string, name: string): Promise<void> {
    const d = this.store.deployments.get(namespace, name);
    if (d === undefined) return;
    if (d.state === "deleting") return this.finishDelete(namespace, name);
    const rev = this.store.deployments.revision(namespace, name, d.revision);
    if (rev === undefined) throw pcError("PC_STORE_CORRUPT", `revision ${d.revision} of ${namespace}/${name} is missing`);
    const tpl = this.templateOf(rev);
    const reps = this.store.deployments.replicasOf(namespace, name);
    // Scale down: replicas of the current revision beyond the desired count go first.
    for (const r of reps.filter((x) => x.revision === d.revision && x.ordinal >= d.replicas)) await this.dropReplica(r);
    // A quarantined replica is neither started, waited for nor dropped: it stays as it is.
    const held = this.store.quarantines.activeNames();
    const fresh = this.store.deployments.replicasOf(namespace, name).filter((r) => r.revision === d.revision && !held.has(r.containerName));
    let old = this.store.deployments.replicasOf(namespace, name).filter((r) => r.revision !== d.revision && !held.has(r.containerName)).sort((a, b) => b.ordinal - a.ordinal);
    const { maxSurge, maxUnavailable } = tpl.spec.update;
    const ready = new Set<string>();
    const pending = [...fresh];
    try {
      while (pending.length > 0 || old.length > 0) {
        let progressed = false;
        // Old replicas that may go now without dropping below desired - maxUnavailable.
        const keep = Math.max(0, d.replicas - maxUnavailable - ready.size);
        while (old.length > keep) {
          await this.dropReplica(old.shift() as ReplicaRecord);
          progressed = true;
        }
        const room = old.length === 0 ? pending.length : d.replicas + maxSurge - (old.length + ready.size);
        const batch = pending.splice(0, Math.max(0, Math.min(room, pending.length)));
        if (batch.length > 0) {
          await Promise.all(batch.map((r) => this.startAndWait(r, tpl)));
          for (const r of batch) ready.add(r.containerName);
          progressed = true;
        }
        if (!progressed) throw pcError("PC_DEPLOY_ROLLOUT_FAILED", "the rollout cannot progress within maxSurge and maxUnavailable");
      }
    } catch (e) {
      const why = isPortcullisError(e) ? (e.detail ?? e.message) : "a replica failed to start";
      await this.rollBack(d, rev, why);
      // A secret that could not be opened or written keeps its own code (nothing was started).
      const code = isPortcullisError(e) && isSecretsCode(e.code) ? e.code : "PC_DEPLOY_ROLLOUT_FAILED";
      throw pcError(code, `revision ${rev.revision}: ${why}`, e);
    }
    old = [];
    this.store.transaction(() => {
      if (rev.status !== "complete") this.store.deployments.setRevisionStatus(namespace, name, rev.revision, "complete");
      for (const r of this.store.deployments.revisions(namespace, name)) {
        if (r.revision !== rev.revision && r.status === "complete") this.store.deployments.setRevisionStatus(namespace, name, r.revision, "superseded");
      }
      this.store.deployments.setPrevious(namespace, name, null, null);
    });
  }

  private async startAndWait(r: ReplicaRecord, tpl: ReplicaTemplate): Promise<void> {
    const node = this.nodes.list().find((n) => n.name === r.node);
    if (node === undefined) throw pcError("PC_RUNTIME_NODE_NOT_FOUND", r.node);
    const engine = this.nodes.engine(r.node);
    const st = await ensureReplicaRunning(engine, this.gatewayId, r, tpl, nodePlacement(node), this.secrets);
    this.store.deployments.replicaSeen(r.containerName, st.id, st.runtime, this.clock.now().getTime());
    const notReady = await waitReady(engine, r.containerName, tpl.spec, this.opts, st);
    if (notReady !== undefined) throw pcError("PC_DEPLOY_ROLLOUT_FAILED", `replica ${r.ordinal} on ${r.node}: ${notReady}`);
  }

  private async dropReplica(r: ReplicaRecord): Promise<void> {
    // Held for forensics: the container and its record stay until the quarantine is released.
    if (this.isHeld(r.containerName)) return;
    await removeReplicaContainer(this.nodes.engine(r.node), this.gatewayId, r.containerName, this.secrets?.files);
    this.store.deployments.deleteReplica(r.containerName);
  }

  /** Removes the failed revision's replicas and restores the revision it replaced (if any). */
  private async rollBack(d: DeploymentRecord, failed: RevisionRecord, why: string): Promise<void> {
    const { namespace, name } = d;
    for (const r of this.store.deployments.replicasOf(namespace, name).filter((x) => x.revision === failed.revision)) {
      await this.dropReplica(r).catch((e: unknown) => this.logger.error({ err: String(e), container: r.containerName }, "rollback: removing a replica failed"));
    }
    const prev = d.prevRevision === null ? undefined : this.store.deployments.revision(namespace, name, d.prevRevision);
    const at = this.clock.now().getTime();
    this.store.transaction(() => {
      this.store.deployments.setRevisionStatus(namespace, name, failed.revision, "failed");
      if (prev === undefined) this.store.deployments.delete(namespace, name);
      else {
        this.store.deployments.update(namespace, name, prev.revision, d.prevReplicas ?? 0, "active", at);
        this.store.deployments.setPrevious(namespace, name, null, null);
      }
      this.audit.record({
        type: "deploy.rolled_back", outcome: "error", actor: "service:gateway", resource: "deployments", namespace, target: name, reason: why.slice(0, 200),
        deploy: { revision: failed.revision, jti: failed.jti, digest: failed.digest },
      });
    });
    if (prev === undefined) return;
    // Replicas of the restored revision that the rollout had already removed come back.
    const have = this.store.deployments.replicasOf(namespace, name).filter((r) => r.revision === prev.revision);
    const want = d.prevReplicas ?? 0;
    const missing = [...Array(want).keys()].filter((o) => !have.some((r) => r.ordinal === o));
    if (missing.length > 0) {
      const placed = await this.placement.place(this.specOf(prev), prev.imageId, missing.length);
      this.store.transaction(() => {
        missing.forEach((ordinal, i) => {
          const containerName = replicaContainerName(this.gatewayId, namespace, name, prev.revision, ordinal);
          this.store.deployments.insertReplica({ containerName, namespace, name, revision: prev.revision, ordinal, node: placed.nodes[i] as string }, at);
        });
      });
    }
    const tpl = this.templateOf(prev);
    for (const r of this.store.deployments.replicasOf(namespace, name).filter((x) => x.revision === prev.revision)) {
      await this.startAndWait(r, tpl).catch((e: unknown) => this.logger.error({ err: String(e), container: r.containerName }, "rollback: restoring a replica failed"));
    }
  }
}

/** Whether two manifests differ in nothing but spec.replicas. */
export function sameExceptReplicas(a: Manifest, b: Manifest): boolean {
  const strip = (m: Manifest) => ({ ...m, spec: { ...m.spec, replicas: null } });
  return canonicalize(strip(a)) === canonicalize(strip(b));
}

/** Codes of the secrets area (a secret that could not be pinned, opened or written). */
function isSecretsCode(code: string): boolean {
  return code.split("_")[1] === "SECRETS";
}
