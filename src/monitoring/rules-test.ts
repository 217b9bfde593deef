/**
 * Offline tests of monitoring rules: no gateway, store or engine. A test file (strict
 * YAML) lists cases, each a few events, stats samples or container states, and exactly
 * the rule hits they must raise, in order:
 *
 *   rules: ../rules.yaml         # optional: the rules file, relative to this file; absent:
 *                                # the shipped rules (the CLI's --rules and the API's body
 *                                # give the rules instead)
 *   cases:                       # required, at least one
 *     - name: exec into a managed container is critical       # required, unique
 *       container: { managed: true, namespace: payments, deployment: api,
 *                    name: payments-api-0, labels: {} }       # optional: the context of
 *                                # every event, sample and state of the case; absent: taken
 *                                # from each event's attributes (as for a replay)
 *       events:                  # Docker events as `docker events --format '{{json .}}'`
 *         - { Type: container, Action: "exec_create: sh -c id", Actor: { ID: abc,
 *             Attributes: { name: payments-api-0 } }, time: 1700000000,
 *             timeNano: "1700000000000000000" }                # (a map or a JSON line;
 *                                # also recorded MonitorEvents as the gateway exports them)
 *       samples:                 # stats samples: `at` (ms or ISO 8601) and the StatsSample
 *         - { at: 1700000000000, memoryBytes: 95, memoryLimitBytes: 100 }   # fields given
 *       states:                  # container states, as the sampler observes them
 *         - { at: 1700000000000, status: restarting, health: unhealthy }
 *       expect:                  # required: exactly the hits, in order ([] for none)
 *         - { rule: exec-into-container, severity: critical, actions: [alert] }
 *
 * Events, samples and states are fed to the rules in time order (ties: events first,
 * then samples, then states, each in file order). The restart history of a case is the
 * `die` events seen so far in it. Problems with the file are PC_MONITOR_TEST_INVALID with
 * every line and field path; failing cases are values in the report.
 *
 * A replay runs recorded events (JSON lines, as `docker events --format '{{json .}}'` or
 * `portcullis monitoring events` print them) through candidate rules and lists the hits.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { pcError } from "../core/index.js";
import { GATEWAY_LABEL, LABELS } from "../runtime/index.js";
import { parseRecordedEvent } from "./event-ids.js";
import { RuleEngine, type EventHistory, type StateObservation } from "./rule-engine.js";
import { parseMonitoringRules } from "./rules.js";
import { parseMonitoringTestFile, type ExpectedHit, type MonitoringTestCase, type MonitoringTestFile, type TestContainer } from "./rules-test-file.js";
import { shippedMonitoringRules } from "./shipped-rules.js";
import { DERIVED_ACTIONS, GATEWAY_EVENT_TYPE, type ActionName, type ContainerContext, type MonitoringRuleSet, type MonitorEvent, type RuleHit, type Severity, type StatsSample } from "./types.js";

export const MAX_REPLAY_BYTES = 16 * 1024 * 1024;

/** A hit as reports show it. */
export interface HitView {
  readonly rule: string;
  readonly severity: Severity;
  readonly actions: readonly ActionName[];
  /** ISO 8601. */
  readonly at: string;
  readonly node: string;
  readonly container: string;
  readonly summary: string;
}

export interface MonitoringTestCaseResult {
  readonly name: string;
  readonly line: number;
  readonly ok: boolean;
  readonly hits: readonly HitView[];
  /** What differed, when the case failed. */
  readonly reason?: string;
}

export interface MonitoringTestReport {
  readonly cases: readonly MonitoringTestCaseResult[];
  readonly passed: number;
  readonly failed: number;
}

export interface ReplayReport {
  readonly events: number;
  readonly hits: readonly HitView[];
}

/** The restart history of a replay or a case: the `die` events seen so far. */
class SeenDies implements EventHistory {
  private readonly byContainer = new Map<string, number[]>();

  add(ev: MonitorEvent): void {
    if (ev.type !== "container" || ev.action !== "die") return;
    const k = `${ev.node}\u0000${ev.actor}`;
    const list = this.byContainer.get(k) ?? [];
    list.push(ev.timeMs);
    this.byContainer.set(k, list);
  }

  dies(node: string, actor: string, sinceMs: number): number {
    return (this.byContainer.get(`${node}\u0000${actor}`) ?? []).filter((t) => t >= sinceMs).length;
  }
}

/**
 * The context of a recorded event, from what it carries: a container event's attributes
 * hold its labels (managed when the gateway label is there); a derived event takes the
 * context of the container event before it, else its own facts.
 */
class ReplayContexts {
  private readonly known = new Map<string, ContainerContext>();

  of(ev: MonitorEvent): ContainerContext | undefined {
    const key = `${ev.node}\u0000${ev.actor}`;
    const a = ev.attributes;
    if (ev.type === "container") {
      const managed = Object.hasOwn(a, GATEWAY_LABEL);
      const ctx: ContainerContext = {
        node: ev.node,
        containerId: ev.actor,
        containerName: a.name ?? "",
        managed,
        ...(managed && a[LABELS.namespace] !== undefined ? { namespace: a[LABELS.namespace] } : {}),
        ...(managed && a[LABELS.deployment] !== undefined ? { deployment: a[LABELS.deployment] } : {}),
        labels: a,
      };
      this.known.set(key, ctx);
      return ctx;
    }
    if (ev.type !== GATEWAY_EVENT_TYPE) return undefined;
    const seen = this.known.get(key);
    if (seen !== undefined) return seen;
    if (a.namespace !== undefined && a.deployment !== undefined) {
      return { node: ev.node, containerId: "", containerName: "", managed: true, namespace: a.namespace, deployment: a.deployment, labels: {} };
    }
    // Runtime and image mismatches are derived for managed containers only; drift for others.
    return { node: ev.node, containerId: ev.actor, containerName: a.container ?? a.name ?? "", managed: ev.action !== DERIVED_ACTIONS.drift, labels: {} };
  }
}

function contextFromTest(c: TestContainer, node: string, containerId: string, fallbackName: string): ContainerContext {
  return {
    node: c.node ?? node,
    containerId,
    containerName: c.name ?? fallbackName,
    managed: c.managed,
    ...(c.namespace !== undefined ? { namespace: c.namespace } : {}),
    ...(c.deployment !== undefined ? { deployment: c.deployment } : {}),
    ...(c.requester !== undefined ? { requester: c.requester } : {}),
    labels: c.labels,
  };
}

function view(h: RuleHit): HitView {
  const c = h.context;
  const ev = h.evidence.kind === "event" || h.evidence.kind === "restarts" ? h.evidence.event : undefined;
  const sample = h.evidence.kind === "stats" ? h.evidence.sample : undefined;
  return {
    rule: h.rule.name,
    severity: h.rule.severity,
    actions: h.rule.actions,
    at: new Date(h.at).toISOString(),
    node: c?.node ?? ev?.node ?? sample?.node ?? "",
    container: c?.containerName || ev?.attributes.name || sample?.containerName || ev?.actor || "",
    summary: h.summary,
  };
}

type Item =
  | { readonly kind: 0; readonly at: number; readonly event: MonitorEvent }
  | { readonly kind: 1; readonly at: number; readonly sample: StatsSample }
  | { readonly kind: 2; readonly at: number; readonly state: { at: number; status: string; health: string | undefined } };

function runCase(c: MonitoringTestCase, set: MonitoringRuleSet): MonitoringTestCaseResult {
  const engine = new RuleEngine(() => set);
  const history = new SeenDies();
  const contexts = new ReplayContexts();
  const items: Item[] = [
    ...c.events.map((event) => ({ kind: 0 as const, at: event.timeMs, event })),
    ...c.samples.map((sample) => ({ kind: 1 as const, at: sample.at, sample })),
    ...c.states.map((state) => ({ kind: 2 as const, at: state.at, state })),
  ].sort((a, b) => a.at - b.at || a.kind - b.kind);
  const hits: RuleHit[] = [];
  const node = c.container?.node ?? "local";
  for (const it of items) {
    if (it.kind === 0) {
      const ev = it.event;
      history.add(ev);
      const concerns = ev.type === "container" || ev.type === GATEWAY_EVENT_TYPE;
      const ctx = c.container !== undefined && concerns ? contextFromTest(c.container, ev.node, ev.actor, ev.attributes.name ?? "") : contexts.of(ev);
      hits.push(...engine.onEvent(ev, ctx, history));
    } else if (it.kind === 1) {
      const s = it.sample;
      const ctx: ContainerContext =
        c.container !== undefined
          ? contextFromTest(c.container, s.node, s.containerId, s.containerName)
          : { node: s.node, containerId: s.containerId, containerName: s.containerName, managed: true, ...(s.namespace ? { namespace: s.namespace } : {}), ...(s.deployment ? { deployment: s.deployment } : {}), labels: {} };
      hits.push(...engine.onSample(s, ctx));
    } else {
      const containerName = c.container?.name ?? "test-container";
      const obs: StateObservation = { node, containerId: "test-container", containerName, status: it.state.status, health: it.state.health, at: it.state.at };
      const ctx = c.container !== undefined ? contextFromTest(c.container, node, obs.containerId, containerName) : { node, containerId: obs.containerId, containerName, managed: true, labels: {} };
      hits.push(...engine.onState(obs, ctx));
    }
  }
  const views = hits.map(view);
  const reason = differs(c.expect, views);
  return { name: c.name, line: c.line, ok: reason === undefined, hits: views, ...(reason !== undefined ? { reason } : {}) };
}

function describeHits(hits: readonly { rule: string; severity?: string }[]): string {
  return hits.length === 0 ? "no hit" : hits.map((h) => (h.severity !== undefined ? `${h.rule} (${h.severity})` : h.rule)).join(", ");
}

function differs(expected: readonly ExpectedHit[], got: readonly HitView[]): string | undefined {
  if (expected.length !== got.length || expected.some((e, i) => e.rule !== got[i]?.rule)) {
    return `expected ${describeHits(expected)}; got ${describeHits(got)}`;
  }
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as ExpectedHit;
    const g = got[i] as HitView;
    if (e.severity !== undefined && e.severity !== g.severity) return `hit ${i + 1} (${g.rule}): expected severity ${e.severity}, got ${g.severity}`;
    if (e.actions !== undefined && e.actions.join(",") !== g.actions.join(",")) return `hit ${i + 1} (${g.rule}): expected actions [${e.actions.join(", ")}], got [${g.actions.join(", ")}]`;
  }
  return undefined;
}

/** Runs parsed cases against a rule set. */
export function runParsedMonitoringTests(file: MonitoringTestFile, set: MonitoringRuleSet): MonitoringTestReport {
  const cases = file.cases.map((c) => runCase(c, set));
  const passed = cases.filter((r) => r.ok).length;
  return { cases, passed, failed: cases.length - passed };
}

/** Runs the cases of a test file's text against the rules text given (its `rules:` is not read). */
export function runMonitoringTests(testText: string, rulesText: string): MonitoringTestReport {
  const set = parseMonitoringRules(rulesText);
  return runParsedMonitoringTests(parseMonitoringTestFile(testText), set);
}

/**
 * Reads a test file and runs it against the rules text given, else the file its `rules`
 * names (relative to it), else the shipped rules.
 */
export function runMonitoringTestFile(path: string, opts: { readonly rulesText?: string } = {}): MonitoringTestReport {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw pcError("PC_MONITOR_TEST_INVALID", `cannot read ${path}`);
  }
  const file = parseMonitoringTestFile(text);
  let rulesText: string;
  if (opts.rulesText !== undefined) rulesText = opts.rulesText;
  else if (file.rules === undefined) rulesText = shippedMonitoringRules();
  else {
    try {
      rulesText = readFileSync(resolve(dirname(path), file.rules), "utf8");
    } catch {
      throw pcError("PC_MONITOR_TEST_INVALID", `cannot read the rules file ${file.rules}`);
    }
  }
  return runParsedMonitoringTests(file, parseMonitoringRules(rulesText));
}

/**
 * Replays recorded events (one JSON object a line; blank lines skipped) through a rules
 * text: the hits, in order. A bad line is PC_MONITOR_EVENTS_INVALID with its number.
 */
export function replayMonitoringEvents(rulesText: string, eventsJsonl: string): ReplayReport {
  const set = parseMonitoringRules(rulesText);
  if (typeof eventsJsonl !== "string") throw pcError("PC_MONITOR_EVENTS_INVALID", "the events are not text");
  if (Buffer.byteLength(eventsJsonl, "utf8") > MAX_REPLAY_BYTES) throw pcError("PC_MONITOR_EVENTS_INVALID", `the events are larger than ${MAX_REPLAY_BYTES} bytes`);
  const engine = new RuleEngine(() => set);
  const history = new SeenDies();
  const contexts = new ReplayContexts();
  const hits: HitView[] = [];
  let events = 0;
  const lines = eventsJsonl.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, "");
    if (line.trim() === "") continue;
    const ev = parseRecordedEvent(line, i + 1);
    events++;
    history.add(ev);
    for (const h of engine.onEvent(ev, contexts.of(ev), history)) hits.push(view(h));
  }
  return { events, hits };
}

/** One line per case (`ok   name` / `FAIL name (line N): reason`) and a summary line. */
export function formatMonitoringTestReport(report: MonitoringTestReport): string {
  const lines = report.cases.map((c) => (c.ok ? `ok   ${c.name}` : `FAIL ${c.name} (line ${c.line}): ${c.reason ?? "failed"}`));
  lines.push(`${report.passed} passed, ${report.failed} failed`);
  return `${lines.join("\n")}\n`;
}

/** One line per hit (`TIME  SEVERITY  RULE  summary`) and a count line. */
export function formatReplayReport(r: ReplayReport): string {
  const lines = r.hits.map((h) => `${h.at}  ${h.severity.padEnd(8)}  ${h.rule}  ${h.summary}`);
  lines.push(`${r.hits.length} ${r.hits.length === 1 ? "hit" : "hits"} in ${r.events} ${r.events === 1 ? "event" : "events"}`);
  return `${lines.join("\n")}\n`;
}
