/**
 * Response actions: what a rule does besides raising its alert. Each is written as a
 * pending `monitor_actions` row in the transaction that raises the alert, and carried
 * out here after the commit, so a crash between the two loses none (pending rows are
 * resumed at the next start).
 *
 * Every action is idempotent, so carrying one out twice does no harm:
 * - `stop`: a managed container's deployment is stopped (desired replicas 0, as
 *   `secret delete --force` does); an unmanaged container is stopped and kept.
 * - `pause`: the container is paused (a paused one stays as it is).
 * - `quarantine`: the container is held for forensics (quarantine.ts): one active
 *   `quarantines` row per container name, taken off every network (their names are kept
 *   in the row) and paused. A second quarantine of a held container changes nothing.
 * - `revoke`: every valid certificate of the identity that requested the container's
 *   revision is revoked; never a gateway service identity, and not for an unmanaged
 *   container (it has no requester).
 *
 * An action whose target no longer exists is skipped, with why. An engine that fails is
 * a failed attempt: the row stays pending with the error as its result and is tried again
 * after a delay that doubles from `retryBaseMs` up to `retryMaxMs` (the due time is
 * derived from the row, so it survives a restart), until `maxAttempts`; then it is failed
 * for good, and the alert shows it. Every attempt is audited as `monitor.action` with the
 * rule, the alert, the event that caused it and the target: `allowed` when done or
 * skipped, `error` when it failed.
 */
import type { AuditSink, Clock, Logger } from "../core/index.js";
import { isPortcullisError } from "../core/index.js";
import type { DockerEngine } from "../runtime/index.js";
import type { MonitorActionRecord, MonitorActionState, Store } from "../store/index.js";
import { holdContainer } from "./quarantine.js";

export interface ResponseDeps {
  readonly store: Store;
  readonly audit: AuditSink;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly engine: (node: string) => Pick<DockerEngine, "stop" | "pause" | "disconnectAll" | "inspectContainer">;
  /** Stops a deployment (desired replicas 0), as `secret delete --force` does: DeploymentController.stopUsing. */
  readonly stopDeployment: (namespace: string, name: string, reason: string) => Promise<void>;
  /** Revokes every valid certificate of an identity (PkiService.revokeIdentity + the TLS enforcer's reload). */
  readonly revokeIdentity: (identity: string, reason: string) => Promise<{ revoked: readonly string[] }>;
}

export interface ResponseOptions {
  /** The delay after the first failed attempt; it doubles after each (default 1 s). */
  readonly retryBaseMs?: number;
  /** The longest delay between two attempts (default 60 s). */
  readonly retryMaxMs?: number;
  /** Attempts before an action is failed for good (default 5). */
  readonly maxAttempts?: number;
  /** How often pending actions are looked for without a kick (default 5 s). */
  readonly pollMs?: number;
}

/** The identities the gateway itself acts as: a rule never revokes them. */
export const GATEWAY_IDENTITIES: ReadonlySet<string> = new Set([
  "service:gateway",
  "service:audit",
  "service:portcullis",
  "service:portcullis-init",
  "service:portcullis-cli",
]);

/** The CRL reason of a revocation by a rule: the deploy the key signed is treated as abuse of the key. */
export const REVOKE_REASON = "keyCompromise";

type Outcome = { readonly state: Exclude<MonitorActionState, "pending">; readonly result: string };

const done = (result: string): Outcome => ({ state: "done", result });
const skipped = (result: string): Outcome => ({ state: "skipped", result });

export class ResponseActions {
  private readonly opts: Required<ResponseOptions>;
  private timer: NodeJS.Timeout | undefined;
  private kickTimer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private again = false;
  private started = false;

  constructor(
    private readonly deps: ResponseDeps,
    opts: ResponseOptions = {},
  ) {
    this.opts = { retryBaseMs: 1_000, retryMaxMs: 60_000, maxAttempts: 5, pollMs: 5_000, ...opts };
  }

  /** Runs pending actions now, then every pollMs (idempotent). */
  start(): void {
    if (this.started) return;
    this.started = true;
    const tick = () => {
      void this.runPending()
        .catch((e: unknown) => this.deps.logger.error({ err: String(e) }, "response actions: a pass failed"))
        .finally(() => {
          if (this.started) this.timer = setTimeout(tick, this.opts.pollMs).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.kickTimer !== undefined) clearTimeout(this.kickTimer);
    this.timer = undefined;
    this.kickTimer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Asks for a pass soon (after the caller's transaction has committed). */
  kick(): void {
    if (!this.started || this.kickTimer !== undefined) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = undefined;
      void this.runPending().catch((e: unknown) => this.deps.logger.error({ err: String(e) }, "response actions: a pass failed"));
    }, 0);
    this.kickTimer.unref();
  }

  /**
   * Carries out every pending action that is due; returns how many attempts were made.
   * Concurrent callers share one pass; a call during a pass runs another after it.
   */
  runPending(): Promise<number> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let n = 0;
      do {
        this.again = false;
        n += await this.pass();
      } while (this.again);
      return n;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** When a pending action may be tried: at once, or after the backoff of its last failure. */
  dueAt(a: MonitorActionRecord): number {
    if (a.attempts === 0) return a.createdAt;
    return a.updatedAt + Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** (a.attempts - 1));
  }

  private async pass(): Promise<number> {
    let n = 0;
    for (const a of this.deps.store.monitorActions.pending()) {
      if (this.dueAt(a) > this.deps.clock.now().getTime()) continue;
      await this.attempt(a);
      n++;
    }
    return n;
  }

  private async attempt(a: MonitorActionRecord): Promise<void> {
    let outcome: Outcome;
    let failure: string | undefined;
    try {
      outcome = await this.carryOut(a);
    } catch (e) {
      failure = isPortcullisError(e) ? `${e.code}: ${e.detail ?? e.message}` : e instanceof Error ? e.message : String(e);
      const attempts = a.attempts + 1;
      outcome = attempts >= this.opts.maxAttempts
        ? { state: "failed", result: `failed after ${attempts} attempt(s): ${failure}` }
        : { state: "failed", result: `attempt ${attempts} failed, tried again later: ${failure}` };
    }
    const attempts = a.attempts + 1;
    // A failed attempt with attempts left stays pending.
    const state: MonitorActionState = outcome.state === "failed" && attempts < this.opts.maxAttempts ? "pending" : outcome.state;
    const result = outcome.result.slice(0, 1000);
    const target = a.container ?? (a.deployment !== null ? `${a.namespace ?? ""}/${a.deployment}` : "");
    const { store, audit, clock } = this.deps;
    store.transaction(() => {
      if (!store.monitorActions.update(a.id, state, attempts, result, clock.now().getTime())) return;
      audit.record({
        type: "monitor.action",
        outcome: failure === undefined ? "allowed" : "error",
        actor: "service:gateway",
        resource: a.action === "revoke" ? "certificates" : a.container === null ? "deployments" : "containers",
        namespace: a.namespace ?? undefined,
        target: target.slice(0, 500) || undefined,
        reason: `${a.action} ${state}: ${result}`.slice(0, 380) + ` (rule ${a.rule}, alert ${a.alertId}, event ${a.eventId ?? "-"})`,
      });
    });
    if (failure !== undefined) this.deps.logger.warn({ action: a.id, kind: a.action, target, attempts, err: failure }, "response action failed");
  }

  private carryOut(a: MonitorActionRecord): Promise<Outcome> {
    switch (a.action) {
      case "stop":
        return this.stop_(a);
      case "pause":
        return this.pause(a);
      case "quarantine":
        return this.quarantine(a);
      case "revoke":
        return this.revoke(a);
      default:
        return Promise.resolve(skipped(`unknown action ${a.action}`));
    }
  }

  /** The engine of the action's node; undefined when the node is no longer registered. */
  private engineOf(a: MonitorActionRecord): ReturnType<ResponseDeps["engine"]> | undefined {
    if (a.node === null) return undefined;
    try {
      return this.deps.engine(a.node);
    } catch (e) {
      if (isPortcullisError(e) && e.code === "PC_RUNTIME_NODE_NOT_FOUND") return undefined;
      throw e;
    }
  }

  private why(a: MonitorActionRecord): string {
    return `monitoring rule ${a.rule} (alert ${a.alertId})`;
  }

  private async stop_(a: MonitorActionRecord): Promise<Outcome> {
    if (a.namespace !== null && a.deployment !== null) {
      const d = this.deps.store.deployments.get(a.namespace, a.deployment);
      if (d === undefined || d.state !== "active") return skipped(`deployment ${a.namespace}/${a.deployment} no longer exists`);
      await this.deps.stopDeployment(a.namespace, a.deployment, this.why(a));
      return done(`deployment ${a.namespace}/${a.deployment} stopped (desired replicas 0)`);
    }
    const engine = this.engineOf(a);
    if (engine === undefined || a.container === null) return skipped(a.container === null ? "no container to stop" : `node ${a.node ?? "?"} no longer exists`);
    if (!(await engine.stop(a.container))) return skipped(`container ${a.container} no longer exists`);
    return done(`container ${a.container} stopped (kept)`);
  }

  private async pause(a: MonitorActionRecord): Promise<Outcome> {
    const engine = this.engineOf(a);
    if (engine === undefined || a.container === null) return skipped(a.container === null ? "no container to pause" : `node ${a.node ?? "?"} no longer exists`);
    const st = await engine.inspectContainer(a.container);
    if (st === undefined) return skipped(`container ${a.container} no longer exists`);
    if (!st.running) return skipped(`container ${a.container} is not running (${st.status})`);
    if (!(await engine.pause(st.id))) return skipped(`container ${a.container} no longer exists`);
    return done(`container ${a.container} paused`);
  }

  private async quarantine(a: MonitorActionRecord): Promise<Outcome> {
    const engine = this.engineOf(a);
    if (engine === undefined || a.container === null || a.node === null) return skipped(a.container === null ? "no container to quarantine" : `node ${a.node ?? "?"} no longer exists`);
    const r = await holdContainer({ store: this.deps.store, clock: this.deps.clock, engine }, {
      node: a.node, container: a.container, namespace: a.namespace, deployment: a.deployment, alertId: a.alertId, rule: a.rule,
    });
    if (r.kind === "absent") return skipped(`container ${a.container} no longer exists`);
    const nets = r.quarantine.networks.length > 0 ? `off network(s) ${r.quarantine.networks.join(", ")}` : "on no network";
    const how = r.paused ? "paused" : "not running, so not paused";
    if (r.kind === "already") return done(`already quarantined (${r.quarantine.id}, alert ${r.quarantine.alertId ?? "-"}): ${how}, ${nets}`);
    return done(`quarantined (${r.quarantine.id}): ${how}, ${nets}`);
  }

  private async revoke(a: MonitorActionRecord): Promise<Outcome> {
    const { store } = this.deps;
    if (a.namespace === null || a.deployment === null) return skipped("no requester: the container is not managed by this gateway");
    const rep = a.container !== null ? store.deployments.replica(a.container) : undefined;
    const revision = rep !== undefined && rep.namespace === a.namespace && rep.name === a.deployment ? rep.revision : store.deployments.get(a.namespace, a.deployment)?.revision;
    const requester = revision === undefined ? undefined : store.deployments.revision(a.namespace, a.deployment, revision)?.requester;
    if (requester === undefined) return skipped(`no requester: no revision of ${a.namespace}/${a.deployment} is known`);
    if (GATEWAY_IDENTITIES.has(requester)) return skipped(`requester ${requester} is a gateway service identity`);
    const r = await this.deps.revokeIdentity(requester, REVOKE_REASON);
    return done(r.revoked.length > 0 ? `revoked ${r.revoked.length} certificate(s) of ${requester}` : `no valid certificate of ${requester} left to revoke`);
  }
}
