/**
 * The reconciler keeps what runs equal to what the store says should run. Each pass:
 *
 * 1. on every reachable node, a container of this gateway that no replica record names
 *    (or names on another node) is an orphan — left by a crash between a container's
 *    creation and its record's removal — and is removed;
 * 2. secret directories (SecretFiles) whose container is gone, or stopped for good, are
 *    removed: a directory stays only while its container exists and runs or is being
 *    restarted by its engine (the on-failure policy), or while a request works on its
 *    deployment. A replica started again (step 4) gets its directory written again. The
 *    first pass, at gateway start, removes those of containers that went away while the
 *    gateway was down;
 * 3. a deployment being deleted is finished; one with replicas of an older revision has
 *    an unfinished rollout, which is resumed (the controller's rollout is idempotent);
 * 4. every replica on a reachable node is checked: missing (removed behind the gateway's
 *    back, or never created before a crash) → created; created but not started, or
 *    exited after the engine's own restart policy gave up, or stopped by an engine
 *    restart → started again. Replicas that keep failing back off exponentially.
 *
 * A replica on an unreachable node is left alone (it is not moved: when the node comes
 * back, the same pass restarts it there). Deployments locked by a request are skipped.
 *
 * A quarantined container (an active `quarantines` record names it) is held for
 * forensics: it is not removed as an orphan, not repaired, restarted or replaced, its
 * secret directory stays, and it still counts as its replica (no other is created in its
 * place) — or, beyond the desired count (a stop meanwhile), it is simply left where it
 * is. Once the quarantine is released (its container removed), the next pass creates a
 * fresh replica in its place, or drops the record when the deployment no longer wants it.
 *
 * When the gateway stops, secret directories stay: its containers keep running and keep
 * their mounts, and a container that the engine restarts while the gateway is down needs
 * its directory to be there (the bind is resolved again at each start). The next start's
 * first pass removes what is no longer needed.
 */
import type { AuditSink, Clock, Logger } from "../core/index.js";
import { isPortcullisError } from "../core/index.js";
import type { ReplicaRecord, Store } from "../store/index.js";
import { GATEWAY_LABEL } from "./container-spec.js";
import type { DeploymentController } from "./deployments.js";
import { isLocalEndpoint, type NodeAccess } from "./placement.js";
import { ensureReplicaRunning, isOurs, nodePlacement, removeReplicaContainer } from "./replica-ops.js";

export interface ReconcilerOptions {
  readonly intervalMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

export interface ReconcileReport {
  readonly orphansRemoved: number;
  /** Secret directories removed because their container is gone or stopped for good. */
  readonly secretDirsRemoved: number;
  readonly replicasStarted: number;
  readonly rolloutsResumed: number;
  readonly unreachableNodes: readonly string[];
  readonly errors: number;
}

interface Backoff {
  failures: number;
  nextAt: number;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileReport> | undefined;
  private readonly backoff = new Map<string, Backoff>();
  private readonly opts: Required<ReconcilerOptions>;

  constructor(
    private readonly store: Store,
    private readonly nodes: NodeAccess,
    private readonly controller: DeploymentController,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly logger: Logger,
    options: ReconcilerOptions = {},
  ) {
    this.opts = { intervalMs: 5_000, backoffBaseMs: 1_000, backoffMaxMs: 60_000, ...options };
  }

  start(): void {
    if (this.timer !== undefined) return;
    const tick = () => {
      void this.reconcileOnce()
        .catch((e: unknown) => this.logger.error({ err: String(e) }, "reconcile pass failed"))
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, this.opts.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass; concurrent callers share it. */
  reconcileOnce(): Promise<ReconcileReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<ReconcileReport> {
    const gw = this.controller.gatewayId;
    let orphansRemoved = 0;
    let replicasStarted = 0;
    let rolloutsResumed = 0;
    let errors = 0;
    const unreachable: string[] = [];
    const reachable = new Set<string>();
    const held = this.store.quarantines.activeNames();
    for (const n of this.nodes.list()) {
      const status = await this.nodes.status(n.name).catch(() => ({ health: "unreachable" }));
      if (status.health !== "ok") {
        unreachable.push(n.name);
        continue;
      }
      reachable.add(n.name);
      try {
        const containers = await this.nodes.engine(n.name).listContainers(`${GATEWAY_LABEL}=${gw}`);
        for (const c of containers) {
          const rec = this.store.deployments.replica(c.name);
          if (rec !== undefined && rec.node === n.name) continue;
          if (held.has(c.name)) continue;
          const ns = c.labels["io.portcullis.namespace"];
          const dep = c.labels["io.portcullis.deployment"];
          // A container of a deployment a request is working on may not have its record yet.
          if (ns !== undefined && dep !== undefined && this.controller.isLocked(ns, dep)) continue;
          await removeReplicaContainer(this.nodes.engine(n.name), gw, c.name, this.controller.secrets?.files);
          orphansRemoved++;
          this.audit.recordAfter({ type: "deploy.orphan_removed", outcome: "allowed", actor: "service:gateway", resource: "deployments", namespace: ns, target: c.name });
        }
      } catch (e) {
        errors++;
        this.logger.warn({ err: String(e), node: n.name }, "reconcile: listing containers failed");
      }
    }

    let secretDirsRemoved = 0;
    const files = this.controller.secrets?.files;
    if (files !== undefined) {
      try {
        secretDirsRemoved = (await files.sweep(async (name) => held.has(name) || (await this.needsSecrets(name, reachable)))).length;
      } catch (e) {
        errors++;
        this.logger.warn({ err: String(e) }, "reconcile: sweeping secret directories failed");
      }
    }

    for (const d of this.store.deployments.list()) {
      if (this.controller.isLocked(d.namespace, d.name)) continue;
      const all = this.store.deployments.replicasOf(d.namespace, d.name);
      // A held replica counts as its ordinal's replica; beyond the desired count, or of
      // another revision, it is only kept, and does not make the rollout unfinished.
      const reps = all.filter((r) => !held.has(r.containerName) || (r.revision === d.revision && r.ordinal < d.replicas));
      const unfinished =
        (d.state === "deleting" && all.some((r) => !held.has(r.containerName))) ||
        (d.state === "deleting" && all.length === 0) ||
        reps.some((r) => r.revision !== d.revision) ||
        reps.filter((r) => r.revision === d.revision).length !== d.replicas ||
        // accepted, and the gateway stopped before the rollout finished
        this.store.deployments.revision(d.namespace, d.name, d.revision)?.status === "pending";
      if (unfinished) {
        rolloutsResumed++;
        await this.controller
          .withLock(d.namespace, d.name, () => this.controller.rollout(d.namespace, d.name))
          .catch((e: unknown) => {
            errors++;
            this.logger.warn({ err: String(e), deployment: `${d.namespace}/${d.name}` }, "reconcile: resuming a rollout failed");
          });
        continue;
      }
      const rev = this.store.deployments.revision(d.namespace, d.name, d.revision);
      if (rev === undefined) continue;
      await this.controller.withLock(d.namespace, d.name, async () => {
        for (const r of reps) {
          if (!reachable.has(r.node) || held.has(r.containerName)) continue;
          try {
            if (await this.repair(r, rev)) replicasStarted++;
          } catch (e) {
            errors++;
            // An engine that does not answer is the node's failure, not the replica's: it
            // must not push the replica's next attempt out (the node's cached health may
            // still say "ok" for a while after it went down).
            if (!(isPortcullisError(e) && e.code === "PC_RUNTIME_ENGINE_UNAVAILABLE")) this.fail(r.containerName);
            this.logger.warn({ err: String(e), container: r.containerName }, "reconcile: repairing a replica failed");
          }
        }
      });
    }
    return { orphansRemoved, secretDirsRemoved, replicasStarted, rolloutsResumed, unreachableNodes: unreachable, errors };
  }

  /**
   * Whether a container still needs its secret directory: it exists and runs or is being
   * restarted, or a request is working on its deployment. When its node cannot be asked,
   * the directory stays (a running container must not lose its files to an outage).
   */
  private async needsSecrets(containerName: string, reachable: ReadonlySet<string>): Promise<boolean> {
    const rec = this.store.deployments.replica(containerName);
    if (rec !== undefined && this.controller.isLocked(rec.namespace, rec.name)) return true;
    const nodes = rec !== undefined ? [rec.node] : this.nodes.list().filter((n) => isLocalEndpoint(n.endpoint)).map((n) => n.name);
    for (const node of nodes) {
      if (!reachable.has(node)) return true;
      try {
        const st = await this.nodes.engine(node).inspectContainer(containerName);
        if (st !== undefined && isOurs(st, this.controller.gatewayId) && (st.running || st.restarting)) return true;
      } catch {
        return true;
      }
    }
    return false;
  }

  /** Checks one replica; returns whether it had to be (re)started. */
  private async repair(r: ReplicaRecord, rev: Parameters<DeploymentController["specOf"]>[0]): Promise<boolean> {
    const engine = this.nodes.engine(r.node);
    const st = await engine.inspectContainer(r.containerName);
    if (st !== undefined && (st.running || st.restarting)) {
      if (r.containerId !== st.id || r.runtime !== st.runtime) this.store.deployments.replicaSeen(r.containerName, st.id, st.runtime, this.clock.now().getTime());
      return false;
    }
    // Being removed (by someone else): it will be missing on the next pass.
    if (st?.status === "removing") return false;
    const b = this.backoff.get(r.containerName);
    if (b !== undefined && this.clock.now().getTime() < b.nextAt) return false;
    const node = this.nodes.list().find((n) => n.name === r.node);
    if (node === undefined) return false;
    const why = st === undefined ? "missing" : `${st.status} (exit ${st.exitCode})`;
    if (st !== undefined && st.status !== "created") {
      // Exited or dead: a fresh container, not a restart of a possibly tampered one.
      await removeReplicaContainer(engine, this.controller.gatewayId, r.containerName, this.controller.secrets?.files);
    }
    this.store.deployments.replicaRestarted(r.containerName, this.clock.now().getTime());
    this.fail(r.containerName);
    const started = await ensureReplicaRunning(engine, this.controller.gatewayId, r, this.controller.templateOf(rev), nodePlacement(node), this.controller.secrets);
    this.store.deployments.replicaSeen(r.containerName, started.id, started.runtime, this.clock.now().getTime());
    this.audit.recordAfter({
      type: "deploy.replica_replaced", outcome: "allowed", actor: "service:gateway", resource: "deployments",
      namespace: r.namespace, target: r.containerName, reason: why,
    });
    return true;
  }

  /** Counts a failure of a replica and pushes its next attempt out. */
  private fail(containerName: string): void {
    const now = this.clock.now().getTime();
    const b = this.backoff.get(containerName) ?? { failures: 0, nextAt: 0 };
    // A replica that has not failed for ten minutes starts again from the shortest delay.
    if (now - b.nextAt > 600_000) b.failures = 0;
    b.failures++;
    b.nextAt = now + Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** (b.failures - 1));
    this.backoff.set(containerName, b);
  }
}
