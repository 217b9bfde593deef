/**
 * The monitoring rules file: strict YAML in a closed schema. A good file parses into
 * rules with defaults filled in and actions normalised ("alert" first); every bad input
 * class is refused with PC_MONITOR_RULES_INVALID, its line, its field path and a reason,
 * and every problem of a file is listed at once.
 */
import { describe, expect, it } from "vitest";
import { isPortcullisError } from "../../src/core/index.js";
import {
  DEFAULT_DEDUPE_WINDOW_MS,
  MAX_RULES,
  MAX_RULES_BYTES,
  parseMonitoringRules,
  shippedMonitoringRuleSet,
  type MonitoringRulesIssue,
} from "../../src/monitoring/index.js";

const HEAD = "apiVersion: portcullis.io/v1\nkind: MonitoringRules\nrules:\n";
/** Line 4 is the rule's `- name:`; its other lines follow in this order. */
const rule = (over: { name?: string; severity?: string; scope?: string; match?: string; actions?: string; extra?: string } = {}) =>
  [
    `  - name: ${over.name ?? "exec-into-container"}`,
    "    description: Someone ran a command inside a managed container.",
    `    severity: ${over.severity ?? "critical"}`,
    ...(over.scope !== undefined ? [`    scope: ${over.scope}`] : []),
    `    match: ${over.match ?? "{ event: { type: container, actions: [exec_create, exec_start] } }"}`,
    ...(over.actions !== undefined ? [`    actions: ${over.actions}`] : []),
    ...(over.extra !== undefined ? [over.extra] : []),
    "",
  ].join("\n");
const file = (...rules: string[]) => HEAD + rules.join("");

/** The refusal of a text (the test fails if it is accepted). */
function refusal(text: string): { detail: string; issues: MonitoringRulesIssue[] } {
  try {
    parseMonitoringRules(text);
  } catch (e) {
    if (!isPortcullisError(e)) throw e;
    expect(e.code).toBe("PC_MONITOR_RULES_INVALID");
    expect(e.status).toBe(400);
    return { detail: e.detail ?? "", issues: e.internal as MonitoringRulesIssue[] };
  }
  throw new Error("the rules were accepted");
}
const triples = (issues: readonly MonitoringRulesIssue[]) => issues.map((i) => [i.line, i.field, i.reason]);
const any = expect.any(String) as unknown as string;
const containing = (s: string) => expect.stringContaining(s) as unknown as string;

describe("parseMonitoringRules", () => {
  it("reads a rule of each match kind, with defaults and normalised actions", () => {
    const set = parseMonitoringRules(
      file(
        rule({ scope: "{ namespaces: [payments], labels: { tier: web }, managed: true }", actions: "[quarantine, alert, revoke]", extra: "    dedupeWindow: 90s" }),
        rule({ name: "mem", severity: "low", match: "{ stats: { metric: memory_percent, above: 90, for: 1m } }" }),
        rule({ name: "loop", severity: "medium", match: "{ restarts: { count: 5, within: 10m } }" }),
        rule({ name: "sick", severity: "high", match: "{ state: { health: [unhealthy], for: 0s } }", actions: "[pause]" }),
      ),
    );
    expect(set.rules).toEqual([
      {
        name: "exec-into-container",
        description: "Someone ran a command inside a managed container.",
        severity: "critical",
        scope: { namespaces: ["payments"], labels: { tier: "web" }, managed: true },
        match: { kind: "event", type: "container", actions: ["exec_create", "exec_start"], attributes: {} },
        actions: ["alert", "quarantine", "revoke"],
        dedupeWindowMs: 90_000,
      },
      expect.objectContaining({ name: "mem", severity: "low", scope: {}, match: { kind: "stats", metric: "memory_percent", above: 90, forMs: 60_000 }, actions: ["alert"], dedupeWindowMs: DEFAULT_DEDUPE_WINDOW_MS }),
      expect.objectContaining({ name: "loop", match: { kind: "restarts", count: 5, withinMs: 600_000 } }),
      expect.objectContaining({ name: "sick", match: { kind: "state", status: [], health: ["unhealthy"], forMs: 0 }, actions: ["alert", "pause"] }),
    ]);
  });

  it("reads the shipped rules: the eight rules the gateway promises, each with its severity and actions", () => {
    const rules = shippedMonitoringRuleSet().rules;
    expect(rules.map((r) => [r.name, r.severity, r.actions])).toEqual([
      ["exec-into-container", "critical", ["alert"]],
      ["container-drift", "high", ["alert"]],
      ["runtime-mismatch", "critical", ["alert", "quarantine"]],
      ["image-mismatch", "critical", ["alert", "quarantine"]],
      ["oom-killed", "medium", ["alert"]],
      ["crash-loop", "medium", ["alert"]],
      ["memory-near-limit", "low", ["alert"]],
      ["scan-new-findings", "high", ["alert"]],
    ]);
    const by = new Map(rules.map((r) => [r.name, r]));
    expect(by.get("exec-into-container")?.match).toEqual({ kind: "event", type: "container", actions: ["exec_create", "exec_start"], attributes: {} });
    expect(by.get("exec-into-container")?.scope).toEqual({ managed: true });
    expect(by.get("crash-loop")?.match).toEqual({ kind: "restarts", count: 5, withinMs: 600_000 });
    expect(by.get("memory-near-limit")?.match).toEqual({ kind: "stats", metric: "memory_percent", above: 90, forMs: 60_000 });
    for (const n of ["container-drift", "runtime-mismatch", "image-mismatch", "scan-new-findings"]) expect(by.get(n)?.match).toMatchObject({ kind: "event", type: "portcullis" });
  });

  const table: [string, string, [number, string, string][]][] = [
    ["a YAML syntax error", HEAD + "  - name: [\n", [[5, "", any]]],
    ["a duplicate key", file(rule({ extra: "    severity: low" })), [[8, "", "duplicate key"]]],
    ["an anchor and an alias", file(rule({ name: "a", severity: "&s high" }), rule({ name: "b", severity: "*s" })), [[6, "", "anchors are not allowed"], [10, "", "aliases are not allowed"]]],
    ["a tag", file(rule({ severity: "!!str high" })), [[6, "", "tags are not allowed"]]],
    ["an unknown top-level field", file(rule()) + "extra: 1\n", [[8, "extra", containing("unknown field (allowed: apiVersion, kind, rules)")]]],
    ["an unknown rule field", file(rule({ extra: "    enabled: true" })), [[8, "rules[0].enabled", containing("unknown field")]]],
    ["an unknown field in a match", file(rule({ match: "{ event: { type: container, actions: [oom], actor: x } }" })), [[7, "rules[0].match.event.actor", containing("unknown field (allowed: type, actions, attributes)")]]],
    ["an unknown field in a scope", file(rule({ scope: "{ namespace: payments }" })), [[7, "rules[0].scope.namespace", containing("unknown field (allowed: namespaces, labels, managed)")]]],
    ["a wrong apiVersion", file(rule()).replace("portcullis.io/v1", "portcullis/v1"), [[1, "apiVersion", "must be portcullis.io/v1"]]],
    ["a wrong kind", file(rule()).replace("kind: MonitoringRules", "kind: AdmissionPolicy"), [[2, "kind", "must be MonitoringRules"]]],
    ["no rules", HEAD.replace("rules:\n", "rules: []\n"), [[3, "rules", "must be a non-empty list of rules"]]],
    ["a duplicate rule name", file(rule({ name: "same" }), rule({ name: "same" })), [[8, "rules[1].name", "repeats the name of rules[0]"]]],
    ["a bad rule name", file(rule({ name: "Exec_Into" })), [[4, "rules[0].name", containing("must be a rule name")]]],
    ["a missing severity", file(rule()).replace("    severity: critical\n", ""), [[4, "rules[0].severity", "is required"]]],
    ["a bad severity", file(rule({ severity: "urgent" })), [[6, "rules[0].severity", 'unknown severity "urgent" (one of low, medium, high, critical)']]],
    ["a bad action", file(rule({ actions: "[alert, kill]" })), [[8, "rules[0].actions[1]", 'unknown action "kill" (one of alert, stop, pause, quarantine, revoke)']]],
    ["an action twice", file(rule({ scope: "{ managed: true }", actions: "[pause, pause]" })), [[9, "rules[0].actions[1]", 'repeats "pause"']]],
    ["an empty action list", file(rule({ actions: "[]" })), [[8, "rules[0].actions", containing("non-empty list")]]],
    ["revoke on a scope that can match unmanaged containers", file(rule({ actions: "[alert, revoke]" })), [[8, "rules[0].actions", containing("revoke needs scope.managed: true")]]],
    ["revoke on managed: false", file(rule({ scope: "{ managed: false }", actions: "[revoke]" })), [[9, "rules[0].actions", containing("revoke needs scope.managed: true")]]],
    ["revoke with namespaces but no managed: true", file(rule({ scope: "{ namespaces: [payments] }", actions: "[revoke]" })), [[9, "rules[0].actions", containing("revoke needs scope.managed: true")]]],
    ["namespaces with managed: false", file(rule({ scope: "{ namespaces: [payments], managed: false }" })), [[7, "rules[0].scope.managed", containing("could never match")]]],
    ["a bad namespace", file(rule({ scope: "{ namespaces: [Payments] }" })), [[7, "rules[0].scope.namespaces[0]", containing("must be a namespace name")]]],
    ["a label value that is not a string", file(rule({ scope: "{ labels: { tier: 1 } }" })), [[7, 'rules[0].scope.labels.tier', containing("must be a string")]]],
    ["a non-boolean managed", file(rule({ scope: "{ managed: yes }" })), [[7, "rules[0].scope.managed", "must be true or false"]]],
    ["no match kind", file(rule({ match: "{}" })), [[7, "rules[0].match", "must hold exactly one of event, stats, restarts, state"]]],
    ["two match kinds", file(rule({ match: "{ event: { type: container, actions: [oom] }, restarts: { count: 2, within: 1m } }" })), [[7, "rules[0].match", containing("holds event and restarts")]]],
    ["an unknown event type", file(rule({ match: "{ event: { type: containers, actions: [oom] } }" })), [[7, "rules[0].match.event.type", containing('unknown event type "containers"')]]],
    ["an unknown container action", file(rule({ match: "{ event: { type: container, actions: [exec-create] } }" })), [[7, "rules[0].match.event.actions[0]", containing("must be an event action")]]],
    ["a container action Docker does not have", file(rule({ match: "{ event: { type: container, actions: [shell] } }" })), [[7, "rules[0].match.event.actions[0]", containing('unknown container action "shell"')]]],
    ["an action with the engine's detail", file(rule({ match: '{ event: { type: container, actions: ["exec_create: sh"] } }' })), [[7, "rules[0].match.event.actions[0]", containing("without the engine's detail")]]],
    ["an unknown derived action", file(rule({ match: "{ event: { type: portcullis, actions: [oom] } }" })), [[7, "rules[0].match.event.actions[0]", containing('unknown portcullis action "oom" (one of drift, runtime_mismatch, image_mismatch, scan_new_findings)')]]],
    ["an event without actions", file(rule({ match: "{ event: { type: container } }" })), [[7, "rules[0].match.event.actions", "is required"]]],
    ["an unknown metric", file(rule({ match: "{ stats: { metric: foo, above: 1 } }" })), [[7, "rules[0].match.stats.metric", 'unknown metric "foo" (one of cpu_percent, memory_percent, memory_bytes, pids, net_rx_bytes, net_tx_bytes)']]],
    ["a threshold that is not a number", file(rule({ match: "{ stats: { metric: pids, above: many } }" })), [[7, "rules[0].match.stats.above", "must be a finite number"]]],
    ["an infinite threshold", file(rule({ match: "{ stats: { metric: pids, above: .inf } }" })), [[7, "", ".inf and .nan are not allowed"]]],
    ["a percent threshold above 1000", file(rule({ match: "{ stats: { metric: cpu_percent, above: 1001 } }" })), [[7, "rules[0].match.stats.above", "must be from 0 to 1000 (percent)"]]],
    ["a negative threshold", file(rule({ match: "{ stats: { metric: memory_bytes, above: -1 } }" })), [[7, "rules[0].match.stats.above", containing("must be from 0 to")]]],
    ["a duration without a unit", file(rule({ match: "{ stats: { metric: pids, above: 100, for: 60 } }" })), [[7, "rules[0].match.stats.for", containing("must be a duration such as 30s, 5m or 1h")]]],
    ["a bad duration", file(rule({ match: "{ stats: { metric: pids, above: 100, for: 1 minute } }" })), [[7, "rules[0].match.stats.for", containing("must be a duration")]]],
    ["a hold longer than a day", file(rule({ match: "{ stats: { metric: pids, above: 100, for: 25h } }" })), [[7, "rules[0].match.stats.for", "is out of bounds (from 0s to 24h)"]]],
    ["a window of 0s", file(rule({ match: "{ restarts: { count: 3, within: 0s } }" })), [[7, "rules[0].match.restarts.within", "is out of bounds (from 1s to 24h)"]]],
    ["a restart count of 0", file(rule({ match: "{ restarts: { count: 0, within: 1m } }" })), [[7, "rules[0].match.restarts.count", "must be a whole number from 1 to 1000"]]],
    ["a restart count above 1000", file(rule({ match: "{ restarts: { count: 1001, within: 1m } }" })), [[7, "rules[0].match.restarts.count", "must be a whole number from 1 to 1000"]]],
    ["a state with neither status nor health", file(rule({ match: "{ state: { for: 30s } }" })), [[7, "rules[0].match.state", "must name a status, a health, or both"]]],
    ["an unknown status", file(rule({ match: "{ state: { status: [crashing] } }" })), [[7, "rules[0].match.state.status[0]", containing('unknown status "crashing"')]]],
    ["a dedupe window below 1s", file(rule({ extra: "    dedupeWindow: 0s" })), [[8, "rules[0].dedupeWindow", "is out of bounds (from 1s to 24h)"]]],
    ["a dedupe window above a day", file(rule({ extra: "    dedupeWindow: 2d" })), [[8, "rules[0].dedupeWindow", "is out of bounds (from 1s to 24h)"]]],
    ["a rule that is not a map", HEAD + "  - exec-into-container\n", [[4, "rules[0]", containing("must be a map")]]],
    ["a missing description", file(rule()).replace("    description: Someone ran a command inside a managed container.\n", ""), [[4, "rules[0].description", "is required"]]],
  ];
  it.each(table)("refuses %s with line, field path and reason", (_n, text, expected) => {
    const { issues, detail } = refusal(text);
    expect(triples(issues)).toEqual(expected);
    for (const i of issues) expect(detail).toContain(`line ${i.line}: ${i.field || "(file)"}: ${i.reason}`);
  });

  it("lists every problem of a file at once, in file order", () => {
    const { issues, detail } = refusal(
      file(rule({ name: "a", severity: "urgent" }), rule({ name: "b", match: "{ stats: { metric: foo, above: 1 } }" }), rule({ name: "a" })),
    );
    expect(issues.map((i) => i.field)).toEqual(["rules[0].severity", "rules[1].match.stats.metric", "rules[2].name"]);
    expect(detail).toContain('rules[1].match.stats.metric: unknown metric "foo" (one of cpu_percent,');
  });

  it(`refuses more than ${MAX_RULES} rules, and a file over ${MAX_RULES_BYTES} bytes`, () => {
    const many = file(...Array.from({ length: MAX_RULES + 1 }, (_, i) => rule({ name: `r${i}` })));
    expect(Buffer.byteLength(many)).toBeLessThan(MAX_RULES_BYTES);
    expect(triples(refusal(many).issues)).toEqual([[4, "rules", `holds ${MAX_RULES + 1} rules; at most ${MAX_RULES}`]]);
    expect(() => parseMonitoringRules(file(...Array.from({ length: MAX_RULES }, (_, i) => rule({ name: `r${i}` })))) ).not.toThrow();

    const big = file(rule()) + `# ${"x".repeat(MAX_RULES_BYTES)}\n`;
    const { issues } = refusal(big);
    expect(triples(issues)).toEqual([[0, "", `the file is ${Buffer.byteLength(big)} bytes; at most ${MAX_RULES_BYTES}`]]);
  });
});
