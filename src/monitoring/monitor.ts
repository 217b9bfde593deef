/**
 * The monitor: what happens to every event and stats sample of every node.
 *
 * An engine event is handled in one transaction: it is recorded (an event delivered a
 * second time — after a reconnect or a restart, the stream resumes from the last one
 * handled — is recognised by its id and dropped), the node's cursor moves to it, the
 * rules in force judge it (with the events the gateway derives from it: drift, a runtime
 * or image other than the admitted one) and every hit raises or adds to an alert, whose
 * response actions are written as pending in the same transaction. After the commit the
 * actions are carried out and the alert is sent to its sinks. A crash between the two
 * loses nothing: pending actions and deliveries are resumed at the next start.
 *
 * Stats samples and container states are judged as they come; they are not recorded
 * (their alerts carry the sample as evidence).
 */
import type { AuditSink, Clock, Logger } from "../core/index.js";
import type { DockerEngine } from "../runtime/index.js";
import { GATEWAY_LABEL } from "../runtime/index.js";
import type { Store } from "../store/index.js";
import { gatewayEvent } from "./event-ids.js";
import type { Alert, ContainerContext, MonitorEvent, RuleHit, StatsSample } from "./types.js";
import { DERIVED_ACTIONS } from "./types.js";

/** The rules in force, as the monitor uses them. */
export interface RuleEvaluator {
  onEvent(ev: MonitorEvent, ctx: ContainerContext | undefined, history: { dies(node: string, actor: string, sinceMs: number): number }): RuleHit[];
  onSample(sample: StatsSample, ctx: ContainerContext): RuleHit[];
  onState(obs: { node: string; containerId: string; containerName: string; status: string; health: string | undefined; at: number }, ctx: ContainerContext): RuleHit[];
  forget(node: string, containerId: string): void;
}

export interface AlertRaiser {
  raise(hit: RuleHit, causeId: string): { alert: Alert; created: boolean };
}

/** What the monitor reports to the metrics. */
export interface MonitorMetrics {
  observeSample(sample: StatsSample): void;
  forgetContainer(node: string, containerName: string): void;
  eventToAlert(seconds: number): void;
  alertRaised(rule: string, severity: string): void;
}

export interface MonitorDeps {
  readonly store: Store;
  readonly audit: AuditSink;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This gateway's id: the value of its containers' GATEWAY_LABEL. */
  readonly gatewayId: string;
  readonly engine: (node: string) => Pick<DockerEngine, "inspectContainer">;
  readonly rules: RuleEvaluator;
  readonly alerts: AlertRaiser;
  /** Run after a commit that raised alerts: the response actions and the sinks. */
  readonly afterAlerts: () => void;
  readonly metrics?: MonitorMetrics;
}

/** Docker's container actions after which the container is gone for good. */
const GONE_ACTIONS = new Set(["destroy"]);
/** Actions after which a container is checked against what was admitted for it. */
const CHECK_ACTIONS = new Set(["create", "start", "restart", "unpause"]);

export class Monitor {
  constructor(private readonly deps: MonitorDeps) {}

  /**
   * Handles one engine event of a node: exactly once (a second delivery changes
   * nothing). Throws when the store fails: the event is then not marked handled, and the
   * stream delivers it again.
   */
  async handleEngineEvent(node: string, ev: MonitorEvent): Promise<number> {
    const { store, clock } = this.deps;
    const ctx = ev.type === "container" ? this.contextOf(node, ev.actor, ev.attributes) : undefined;
    const derived = ev.type === "container" ? await this.derive(node, ev, ctx) : [];
    const hits = store.transaction(() => {
      if (!store.monitorEvents.record(ev, clock.now().getTime())) return [];
      store.monitorEvents.setCursor(node, ev.timeNano, clock.now().getTime());
      const out: { hit: RuleHit; cause: string }[] = [];
      for (const h of this.deps.rules.onEvent(ev, ctx, this.history)) out.push({ hit: h, cause: ev.id });
      for (const d of derived) {
        if (!store.monitorEvents.record(d, clock.now().getTime())) continue;
        for (const h of this.deps.rules.onEvent(d, ctx, this.history)) out.push({ hit: h, cause: d.id });
      }
      return this.raiseAll(out);
    });
    if (ev.type === "container" && GONE_ACTIONS.has(ev.action)) {
      this.deps.rules.forget(node, ev.actor);
      const name = ev.attributes.name;
      if (name !== undefined) this.deps.metrics?.forgetContainer(node, name);
    }
    this.after(hits, ev.timeMs);
    return hits.length;
  }

  /**
   * An event the gateway itself observed (a rescan's new findings), about a deployment.
   * `cause` makes it unique: the same cause handled twice raises nothing more. Returns
   * the ids of the alerts raised or added to.
   */
  handleGatewayEvent(input: { action: string; namespace: string; deployment: string; attributes: Record<string, string>; cause: string }): string[] {
    const { store, clock } = this.deps;
    const now = clock.now().getTime();
    const ev = gatewayEvent({
      node: "",
      action: input.action,
      actor: `${input.namespace}/${input.deployment}`,
      attributes: { ...input.attributes, namespace: input.namespace, deployment: input.deployment },
      timeMs: now,
      cause: input.cause,
    });
    const d = store.deployments.get(input.namespace, input.deployment);
    const rev = d !== undefined ? store.deployments.revision(input.namespace, input.deployment, d.revision) : undefined;
    const ctx: ContainerContext = {
      node: "",
      containerId: "",
      containerName: "",
      managed: d !== undefined,
      namespace: input.namespace,
      deployment: input.deployment,
      ...(rev !== undefined ? { revision: rev.revision, requester: rev.requester } : {}),
      labels: {},
    };
    const hits = store.transaction(() => {
      if (!store.monitorEvents.record(ev, now)) return [];
      return this.raiseAll(this.deps.rules.onEvent(ev, ctx, this.history).map((hit) => ({ hit, cause: ev.id })));
    });
    this.after(hits, now);
    return hits.map((h) => h.alert.id);
  }

  /** A stats sample of a managed container. */
  handleSample(sample: StatsSample, labels: Readonly<Record<string, string>>): number {
    this.deps.metrics?.observeSample(sample);
    const ctx = this.contextOf(sample.node, sample.containerId, { ...labels, name: sample.containerName });
    if (ctx === undefined) return 0;
    const hits = this.deps.rules.onSample(sample, ctx);
    return this.commitHits(hits, `stats:${sample.node}:${sample.containerId}:${sample.at}`, sample.at);
  }

  /** A container's state, seen by the sampler. */
  handleState(obs: { node: string; containerId: string; containerName: string; status: string; health: string | undefined; at: number; labels: Readonly<Record<string, string>> }): number {
    const ctx = this.contextOf(obs.node, obs.containerId, { ...obs.labels, name: obs.containerName });
    if (ctx === undefined) return 0;
    const hits = this.deps.rules.onState(obs, ctx);
    return this.commitHits(hits, `state:${obs.node}:${obs.containerId}:${obs.at}`, obs.at);
  }

  /** A container the sampler no longer sees. */
  containerGone(node: string, containerId: string, containerName?: string): void {
    this.deps.rules.forget(node, containerId);
    if (containerName !== undefined) this.deps.metrics?.forgetContainer(node, containerName);
  }

  private commitHits(hits: readonly RuleHit[], cause: string, at: number): number {
    if (hits.length === 0) return 0;
    const raised = this.deps.store.transaction(() => this.raiseAll(hits.map((hit) => ({ hit, cause }))));
    this.after(raised, at);
    return raised.length;
  }

  private raiseAll(hits: readonly { hit: RuleHit; cause: string }[]): { alert: Alert; created: boolean }[] {
    return hits.map(({ hit, cause }) => this.deps.alerts.raise(hit, cause));
  }

  private after(raised: readonly { alert: Alert; created: boolean }[], eventAtMs: number): void {
    if (raised.length === 0) return;
    const seconds = Math.max(0, this.deps.clock.now().getTime() - eventAtMs) / 1000;
    for (const r of raised) {
      this.deps.metrics?.eventToAlert(seconds);
      if (r.created) this.deps.metrics?.alertRaised(r.alert.rule, r.alert.severity);
    }
    this.deps.afterAlerts();
  }

  private readonly history = {
    dies: (node: string, actor: string, sinceMs: number): number => this.deps.store.monitorEvents.countActions(node, actor, "die", sinceMs),
  };

  /**
   * What the gateway knows of a container. Managed means: it carries this gateway's label
   * AND a replica record names it on this node — a label alone proves nothing (anyone
   * who can reach the engine can write labels), so namespace and deployment come from
   * the record, never from the container's labels.
   */
  contextOf(node: string, containerId: string, attributes: Readonly<Record<string, string>>): ContainerContext | undefined {
    const name = attributes.name;
    if (name === undefined) return undefined;
    const rec = this.deps.store.deployments.replica(name);
    const managed = attributes[GATEWAY_LABEL] === this.deps.gatewayId && rec !== undefined && rec.node === node;
    if (!managed || rec === undefined) {
      return { node, containerId, containerName: name, managed: false, labels: attributes };
    }
    const rev = this.deps.store.deployments.revision(rec.namespace, rec.name, rec.revision);
    const healthcheck = rev !== undefined ? this.healthcheckOf(rev) : undefined;
    return {
      node,
      containerId,
      containerName: name,
      managed: true,
      namespace: rec.namespace,
      deployment: rec.name,
      revision: rec.revision,
      ...(rev !== undefined ? { requester: rev.requester } : {}),
      ...(healthcheck !== undefined ? { healthcheck } : {}),
      labels: attributes,
    };
  }

  private readonly healthchecks = new Map<string, string | undefined>();

  /**
   * The healthcheck command a revision admitted (from its manifest as signed, not from
   * the container, which anyone with engine access could have made anew), joined as the
   * engine writes it in exec events. Unreadable: none (every exec is then judged).
   */
  private healthcheckOf(rev: { namespace: string; name: string; revision: number; manifest: string }): string | undefined {
    const key = `${rev.namespace}/${rev.name}/${rev.revision}`;
    if (this.healthchecks.has(key)) return this.healthchecks.get(key);
    let hc: string | undefined;
    try {
      const cmd = (JSON.parse(rev.manifest) as { spec?: { healthcheck?: { command?: unknown } } }).spec?.healthcheck?.command;
      if (Array.isArray(cmd) && cmd.length > 0 && cmd.every((w) => typeof w === "string")) hc = cmd.join(" ");
    } catch {
      hc = undefined;
    }
    if (this.healthchecks.size > 10_000) this.healthchecks.clear();
    this.healthchecks.set(key, hc);
    return hc;
  }

  /**
   * The events the gateway derives from a container event: a container this gateway did
   * not create (drift, at its creation), and a managed container whose runtime or image
   * is not the one its revision admitted (checked when it is created, started, restarted
   * or unpaused). Their ids derive from the engine event's, so they too are handled once.
   */
  private async derive(node: string, ev: MonitorEvent, ctx: ContainerContext | undefined): Promise<MonitorEvent[]> {
    if (ctx === undefined || !CHECK_ACTIONS.has(ev.action)) return [];
    const base = { node, actor: ev.actor, timeMs: ev.timeMs, cause: ev.id };
    const common = { container: ctx.containerName, image: ev.attributes.image ?? "" };
    if (!ctx.managed) {
      if (ev.action !== "create") return [];
      // Another gateway's container on a shared engine is not this one's to judge.
      const owner = ev.attributes[GATEWAY_LABEL];
      if (owner !== undefined && owner !== this.deps.gatewayId) return [];
      return [gatewayEvent({ ...base, action: DERIVED_ACTIONS.drift, attributes: { ...common, reason: owner === undefined ? "not created by the gateway" : "no replica of the gateway names it" } })];
    }
    const rev = ctx.namespace !== undefined && ctx.deployment !== undefined && ctx.revision !== undefined
      ? this.deps.store.deployments.revision(ctx.namespace, ctx.deployment, ctx.revision)
      : undefined;
    if (rev === undefined) return [];
    let st;
    try {
      st = await this.deps.engine(node).inspectContainer(ev.actor);
    } catch (e) {
      this.deps.logger.warn({ err: String(e), node, container: ctx.containerName }, "monitor: inspecting a container failed");
      return [];
    }
    if (st === undefined) return [];
    const out: MonitorEvent[] = [];
    if (st.runtime !== rev.runtime) {
      out.push(gatewayEvent({ ...base, action: DERIVED_ACTIONS.runtimeMismatch, attributes: { ...common, expected: rev.runtime, actual: st.runtime } }));
    }
    if (st.imageId !== rev.imageId) {
      out.push(gatewayEvent({ ...base, action: DERIVED_ACTIONS.imageMismatch, attributes: { ...common, expected: rev.imageId, actual: st.imageId } }));
    }
    return out;
  }
}
