/**
 * The rules in force, applied to what monitoring sees: events, stats samples and
 * container states. Pure and synchronous: no clock, no I/O; times are the events' and
 * samples' own. The rule set is read at every call (the version in force may change).
 *
 * - Scope: `namespaces` match managed containers of those namespaces only; `labels`
 *   must all be equal; `managed` must be equal. An event without a container context
 *   (an image event) matches only rules whose scope is empty.
 * - Event rules: the type is equal; an action `X` matches the engine's `X` and
 *   `X: <detail>` (`exec_create: sh -c id`), never `Xsomething`; the rule's attributes are
 *   all equal.
 * - Restart rules: judged on container `die` events; they hit when the container died at
 *   least `count` times within `within` (the history counts the current event).
 * - Stats and state rules are held conditions: the condition must be true in every
 *   sample (or observation) since the first one it was true in. Once it has held for
 *   `for`, the rule hits once; while it keeps holding, again at most once per dedupe
 *   window; a sample that breaks it (or lacks the metric) starts over.
 */
import { formatDuration } from "../core/index.js";
import type { ContainerContext, MonitoringRule, MonitoringRuleSet, MonitorEvent, RuleHit, RuleScope, StatsMetric, StatsSample } from "./types.js";
import { DERIVED_ACTIONS, GATEWAY_EVENT_TYPE } from "./types.js";

/** Container `die` events of the store (the current event included). */
export interface EventHistory {
  dies(node: string, actor: string, sinceMs: number): number;
}

/** A container's state as the sampler observed it. */
export interface StateObservation {
  readonly node: string;
  readonly containerId: string;
  readonly containerName: string;
  readonly status: string;
  readonly health: string | undefined;
  readonly at: number;
}

interface Hold {
  /** The rule's match as it was when the hold began: a changed rule starts over. */
  readonly match: string;
  readonly since: number;
  lastHit: number | undefined;
}

const MAX_SUMMARY = 300;
const MAX_ACTION_TEXT = 160;
const MAX_WHERE = 120;

/** The value of a metric in a sample; undefined when the sample does not have it. */
export function metricOf(sample: StatsSample, metric: StatsMetric): number | undefined {
  switch (metric) {
    case "cpu_percent":
      return sample.cpuPercent;
    case "memory_percent":
      return sample.memoryPercent;
    case "memory_bytes":
      return sample.memoryBytes;
    case "pids":
      return sample.pids;
    case "net_rx_bytes":
      return sample.netRxBytes;
    case "net_tx_bytes":
      return sample.netTxBytes;
  }
}

/** Whether a rule's scope covers a container (undefined: the event concerns none). */
export function scopeMatches(scope: RuleScope, ctx: ContainerContext | undefined): boolean {
  if (ctx === undefined) return scope.namespaces === undefined && scope.labels === undefined && scope.managed === undefined;
  if (scope.managed !== undefined && ctx.managed !== scope.managed) return false;
  if (scope.namespaces !== undefined && (!ctx.managed || ctx.namespace === undefined || !scope.namespaces.includes(ctx.namespace))) return false;
  if (scope.labels !== undefined) {
    for (const [k, v] of Object.entries(scope.labels)) if (!Object.hasOwn(ctx.labels, k) || ctx.labels[k] !== v) return false;
  }
  return true;
}

/** `exec_create` matches `exec_create` and `exec_create: sh -c id`, not `exec_createX`. */
export function actionMatches(ruleAction: string, eventAction: string): boolean {
  return eventAction === ruleAction || eventAction.startsWith(`${ruleAction}:`);
}

export class RuleEngine {
  private readonly holds = new Map<string, Hold>();
  private lastSet: MonitoringRuleSet | undefined;

  constructor(private readonly rules: () => MonitoringRuleSet | undefined) {}

  onEvent(ev: MonitorEvent, ctx: ContainerContext | undefined, history: EventHistory): RuleHit[] {
    const set = this.current();
    if (set === undefined) return [];
    if (isHealthcheckExec(ev, ctx)) return [];
    const hits: RuleHit[] = [];
    let dies: Map<number, number> | undefined;
    for (const rule of set.rules) {
      const m = rule.match;
      if (m.kind === "event") {
        if (m.type !== ev.type || !m.actions.some((a) => actionMatches(a, ev.action))) continue;
        if (!Object.entries(m.attributes).every(([k, v]) => Object.hasOwn(ev.attributes, k) && ev.attributes[k] === v)) continue;
        if (!scopeMatches(rule.scope, ctx)) continue;
        hits.push({ rule, context: ctx, evidence: { kind: "event", event: ev }, at: ev.timeMs, summary: eventSummary(ev, ctx) });
      } else if (m.kind === "restarts") {
        if (ev.type !== "container" || ev.action !== "die" || !scopeMatches(rule.scope, ctx)) continue;
        dies ??= new Map();
        let n = dies.get(m.withinMs);
        if (n === undefined) {
          n = history.dies(ev.node, ev.actor, ev.timeMs - m.withinMs);
          dies.set(m.withinMs, n);
        }
        if (n < m.count) continue;
        hits.push({
          rule,
          context: ctx,
          evidence: { kind: "restarts", event: ev, count: n, withinMs: m.withinMs },
          at: ev.timeMs,
          summary: clip(`crash loop: ${whereOf(ctx, ev)} died ${n} times within ${formatDuration(m.withinMs)}`),
        });
      }
    }
    return hits;
  }

  onSample(sample: StatsSample, ctx: ContainerContext): RuleHit[] {
    const set = this.current();
    if (set === undefined) return [];
    const hits: RuleHit[] = [];
    for (const rule of set.rules) {
      const m = rule.match;
      if (m.kind !== "stats") continue;
      const key = holdKey(rule, sample.node, sample.containerId);
      const value = metricOf(sample, m.metric);
      if (!scopeMatches(rule.scope, ctx) || value === undefined || !Number.isFinite(value) || !(value > m.above)) {
        this.holds.delete(key);
        continue;
      }
      const heldMs = this.hold(key, rule, sample.at);
      if (heldMs === undefined) continue;
      hits.push({
        rule,
        context: ctx,
        evidence: { kind: "stats", sample, heldMs },
        at: sample.at,
        summary: clip(`${m.metric} of ${whereOf(ctx)} above ${m.above} for ${formatDuration(heldMs)} (now ${round(value)})`),
      });
    }
    return hits;
  }

  onState(obs: StateObservation, ctx: ContainerContext): RuleHit[] {
    const set = this.current();
    if (set === undefined) return [];
    const hits: RuleHit[] = [];
    for (const rule of set.rules) {
      const m = rule.match;
      if (m.kind !== "state") continue;
      const key = holdKey(rule, obs.node, obs.containerId);
      const statusOk = m.status.length === 0 || m.status.includes(obs.status);
      const healthOk = m.health.length === 0 || (obs.health !== undefined && m.health.includes(obs.health));
      if (!scopeMatches(rule.scope, ctx) || !statusOk || !healthOk) {
        this.holds.delete(key);
        continue;
      }
      const heldMs = this.hold(key, rule, obs.at);
      if (heldMs === undefined) continue;
      const state = [m.status.length > 0 ? obs.status : undefined, m.health.length > 0 ? obs.health : undefined].filter((s) => s !== undefined).join(", ");
      hits.push({
        rule,
        context: ctx,
        evidence: { kind: "state", status: obs.status, health: obs.health, heldMs, at: obs.at },
        at: obs.at,
        summary: clip(`${whereOf(ctx)} ${clean(state)} for ${formatDuration(heldMs)}`),
      });
    }
    return hits;
  }

  /** A container is gone: its held conditions go with it. */
  forget(node: string, containerId: string): void {
    const suffix = `\u0000${node}\u0000${containerId}`;
    for (const k of [...this.holds.keys()]) if (k.endsWith(suffix)) this.holds.delete(k);
  }

  /**
   * Moves a held condition on to `at`; returns how long it has held when the rule hits
   * now (the hold reached `for`, or a dedupe window passed since the last hit).
   */
  private hold(key: string, rule: MonitoringRule, at: number): number | undefined {
    const match = JSON.stringify(rule.match);
    let h = this.holds.get(key);
    if (h === undefined || h.match !== match || at < h.since) {
      h = { match, since: at, lastHit: undefined };
      this.holds.set(key, h);
    }
    const heldMs = at - h.since;
    const forMs = rule.match.kind === "stats" || rule.match.kind === "state" ? rule.match.forMs : 0;
    if (heldMs < forMs) return undefined;
    if (h.lastHit !== undefined && at - h.lastHit < rule.dedupeWindowMs) return undefined;
    h.lastHit = at;
    return heldMs;
  }

  /** The set in force; when it changed, holds of rules it no longer has are dropped. */
  private current(): MonitoringRuleSet | undefined {
    const set = this.rules();
    if (set !== this.lastSet) {
      this.lastSet = set;
      const names = new Set(set?.rules.map((r) => r.name) ?? []);
      for (const k of [...this.holds.keys()]) if (!names.has(k.slice(0, k.indexOf("\u0000")))) this.holds.delete(k);
    }
    return set;
  }
}

function holdKey(rule: MonitoringRule, node: string, containerId: string): string {
  return `${rule.name}\u0000${node}\u0000${containerId}`;
}

/** Control characters out (an exec's command line may hold newlines). */
function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]+/g, " ");
}

function clip(s: string, max = MAX_SUMMARY): string {
  const c = clean(s);
  return c.length <= max ? c : `${c.slice(0, max - 1)}…`;
}

function round(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/**
 * Where something happened: `namespace/container` for a managed container, else the
 * container's name, else a short actor id. Only the name attribute is used: other
 * attributes can be long, and are the evidence's to show.
 */
function whereOf(ctx: ContainerContext | undefined, ev?: MonitorEvent): string {
  let where: string;
  if (ctx !== undefined && ctx.managed && ctx.namespace !== undefined) {
    where = ctx.containerName !== "" ? `${ctx.namespace}/${ctx.containerName}` : `${ctx.namespace}/${ctx.deployment ?? "?"}`;
  } else if (ctx !== undefined && ctx.containerName !== "") where = ctx.containerName;
  else if (ev?.attributes.name !== undefined && ev.attributes.name !== "") where = ev.attributes.name;
  else if (ev !== undefined && ev.actor !== "") where = ev.actor.length > 24 && /^[0-9a-f]+$/.test(ev.actor) ? ev.actor.slice(0, 12) : ev.actor;
  else where = "(unknown)";
  return clip(where, MAX_WHERE);
}

function eventSummary(ev: MonitorEvent, ctx: ContainerContext | undefined): string {
  const where = whereOf(ctx, ev);
  const action = clip(ev.action, MAX_ACTION_TEXT);
  if (ev.type === GATEWAY_EVENT_TYPE) {
    switch (ev.action) {
      case DERIVED_ACTIONS.drift:
        return clip(`container ${where} on a managed node was not created by the gateway (drift)`);
      case DERIVED_ACTIONS.runtimeMismatch:
        return clip(`container ${where} runs on a runtime other than the one its revision records`);
      case DERIVED_ACTIONS.imageMismatch:
        return clip(`container ${where} runs an image other than the one admitted for its revision`);
      case DERIVED_ACTIONS.scanNewFindings:
        return clip(`new blocking vulnerability findings in the image of ${where}`);
      default:
        return clip(`gateway event ${action} about ${where}`);
    }
  }
  if (ev.type === "container") {
    if (actionMatches("exec_create", ev.action) || actionMatches("exec_start", ev.action)) return clip(`docker exec into ${where} (${action})`);
    if (ev.action === "oom") return clip(`out-of-memory kill in ${where}`);
    if (ev.action === "die") return clip(`container ${where} died`);
    return clip(`container ${where}: ${action}`);
  }
  return clip(`${ev.type} event ${action} on ${where}`);
}

const EXEC_RE = /^exec_(create|start|die): ?/;

/**
 * Whether an event is the engine running the container's admitted healthcheck: an exec
 * event of a container whose command is exactly that healthcheck's (the engine writes
 * `exec_create: ` + the words joined by spaces, with a trailing space when there is one
 * word). `exec_die` carries no command and is never one.
 */
export function isHealthcheckExec(ev: MonitorEvent, ctx: ContainerContext | undefined): boolean {
  if (ctx?.healthcheck === undefined || ev.type !== "container") return false;
  const m = EXEC_RE.exec(ev.action);
  if (m === null || m[1] === "die") return false;
  return ev.action.slice(m[0].length).trim() === ctx.healthcheck.trim();
}
