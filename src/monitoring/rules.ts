/**
 * The monitoring rules file (`policies/monitoring/rules.yaml`), one strict YAML document:
 *
 *   apiVersion: portcullis.io/v1
 *   kind: MonitoringRules
 *   rules:                               # required, 1 to 200 rules
 *     - name: exec-into-container        # ^[a-z][a-z0-9-]{0,62}$, unique in the file
 *       description: ...                 # required, one line for people
 *       severity: critical               # low | medium | high | critical
 *       scope:                           # optional; absent fields match every container
 *         namespaces: [payments]         # managed containers of these namespaces only
 *         labels: { tier: web }          # container labels that must all be equal
 *         managed: true                  # true: this gateway's containers; false: others
 *       match:                           # exactly one of event | stats | restarts | state
 *         event: { type: container, actions: [exec_create], attributes: {} }
 *         # stats: { metric: memory_percent, above: 90, for: 1m }
 *         # restarts: { count: 5, within: 10m }
 *         # state: { status: [restarting], health: [unhealthy], for: 30s }
 *       actions: [alert, quarantine]     # alert is implied and always first
 *       dedupeWindow: 5m                 # optional, 1s..24h (default 5m)
 *
 * The file is validated whole: every problem is collected with its line and field path
 * and thrown together as PC_MONITOR_RULES_INVALID; nothing of a bad file is used.
 * Bounds: at most 128 KiB and 200 rules; thresholds are finite (percent metrics
 * 0..1000); `for` 0s..24h; `within` 1s..24h; `count` 1..1000. `revoke` needs
 * `scope.managed: true` (an unmanaged container has no requester whose certificates
 * could be revoked).
 */
import { formatPath, isPlainMap, pcError, readStrictYaml, type FieldPath } from "../core/index.js";
import { DAY_MS, durationOf, fields, MAX_LIST, parseMatch, parseStringMap, type Bad } from "./rules-match.js";
import { ACTIONS, SEVERITIES, type ActionName, type MonitoringRule, type MonitoringRuleSet, type RuleScope, type Severity } from "./types.js";

export { CONTAINER_ACTIONS, CONTAINER_STATES, EVENT_TYPES, HEALTH_STATES, PERCENT_METRICS } from "./rules-match.js";

export const RULES_API_VERSION = "portcullis.io/v1";
export const RULES_KIND = "MonitoringRules";
export const MAX_RULES = 200;
export const MAX_RULES_BYTES = 128 * 1024;
export const DEFAULT_DEDUPE_WINDOW_MS = 5 * 60_000;
const MAX_LISTED = 50;
const MAX_DESCRIPTION = 500;

const RULE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export interface MonitoringRulesIssue {
  readonly line: number;
  /** The field path, `rules[2].match.stats.metric`; "" for the whole file. */
  readonly field: string;
  readonly reason: string;
}

/** `line 12: rules[2].match.stats.metric: unknown metric "foo" (one of ...)`, joined by "; ". */
export function describeRulesIssues(issues: readonly MonitoringRulesIssue[]): string {
  const listed = issues.slice(0, MAX_LISTED).map((i) => `line ${i.line}: ${i.field || "(file)"}: ${i.reason}`);
  if (issues.length > MAX_LISTED) listed.push(`and ${issues.length - MAX_LISTED} more`);
  return listed.join("; ");
}

function invalid(issues: readonly MonitoringRulesIssue[]) {
  return pcError("PC_MONITOR_RULES_INVALID", describeRulesIssues(issues), issues);
}

/** Parses and validates a rules file; throws PC_MONITOR_RULES_INVALID listing every problem. */
export function parseMonitoringRules(text: string): MonitoringRuleSet {
  if (typeof text !== "string") throw invalid([{ line: 0, field: "", reason: "the rules file is not text" }]);
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_RULES_BYTES) throw invalid([{ line: 0, field: "", reason: `the file is ${bytes} bytes; at most ${MAX_RULES_BYTES}` }]);
  const read = readStrictYaml(text);
  if (!read.ok) throw invalid(read.issues.map((i) => ({ line: i.line, field: formatPath(i.path), reason: i.reason })));
  const { doc } = read;
  const issues: MonitoringRulesIssue[] = [];
  const bad: Bad = (path, reason) => {
    issues.push({ line: doc.lineOf(path), field: formatPath(path), reason });
    return undefined;
  };
  const root = fields(doc.value, [], ["apiVersion", "kind", "rules"], ["apiVersion", "kind", "rules"], bad);
  const rules: MonitoringRule[] = [];
  if (root !== undefined) {
    if (root.apiVersion !== undefined && root.apiVersion !== RULES_API_VERSION) bad(["apiVersion"], `must be ${RULES_API_VERSION}`);
    if (root.kind !== undefined && root.kind !== RULES_KIND) bad(["kind"], `must be ${RULES_KIND}`);
    if (root.rules !== undefined) {
      if (!Array.isArray(root.rules) || root.rules.length === 0) bad(["rules"], "must be a non-empty list of rules");
      else if (root.rules.length > MAX_RULES) bad(["rules"], `holds ${root.rules.length} rules; at most ${MAX_RULES}`);
      else {
        const names = new Map<string, number>();
        root.rules.forEach((r: unknown, i: number) => {
          const rule = parseRule(r, ["rules", i], bad);
          const name = isPlainMap(r) && typeof r.name === "string" ? r.name : undefined;
          if (name !== undefined && RULE_NAME.test(name)) {
            const first = names.get(name);
            if (first !== undefined) bad(["rules", i, "name"], `repeats the name of rules[${first}]`);
            else names.set(name, i);
          }
          if (rule !== undefined) rules.push(rule);
        });
      }
    }
  }
  if (issues.length > 0) throw invalid(byLine(issues));
  return { rules };
}

/** In file order; problems on one line keep the order they were found in. */
function byLine(issues: readonly MonitoringRulesIssue[]): MonitoringRulesIssue[] {
  return issues.map((i, n) => ({ i, n })).sort((a, b) => a.i.line - b.i.line || a.n - b.n).map((x) => x.i);
}

const RULE_FIELDS = ["name", "description", "severity", "scope", "match", "actions", "dedupeWindow"];

function parseRule(v: unknown, path: FieldPath, bad: Bad): MonitoringRule | undefined {
  const r = fields(v, path, RULE_FIELDS, ["name", "description", "severity", "match"], bad);
  if (r === undefined) return undefined;
  const at = (k: string): FieldPath => [...path, k];
  let ok = true;
  const fail: Bad = (p, reason) => {
    ok = false;
    return bad(p, reason);
  };
  if (Object.keys(r).some((k) => !RULE_FIELDS.includes(k))) ok = false;
  let name: string | undefined;
  if (r.name !== undefined && r.name !== null) {
    if (typeof r.name === "string" && RULE_NAME.test(r.name)) name = r.name;
    else fail(at("name"), "must be a rule name: a lower-case letter, then lower-case letters, digits and '-', at most 63");
  }
  let description: string | undefined;
  if (r.description !== undefined && r.description !== null) {
    if (typeof r.description !== "string" || r.description.trim() === "") fail(at("description"), "must be a non-empty string");
    else if (r.description.length > MAX_DESCRIPTION) fail(at("description"), `is longer than ${MAX_DESCRIPTION} characters`);
    else description = r.description.trim();
  }
  let severity: Severity | undefined;
  if (r.severity !== undefined && r.severity !== null) {
    if ((SEVERITIES as readonly unknown[]).includes(r.severity)) severity = r.severity as Severity;
    else fail(at("severity"), `unknown severity ${JSON.stringify(r.severity)} (one of ${SEVERITIES.join(", ")})`);
  }
  const scope = r.scope === undefined || r.scope === null ? {} : parseScope(r.scope, at("scope"), fail);
  const match = r.match === undefined || r.match === null ? undefined : parseMatch(r.match, at("match"), fail);
  const actions = parseActions(r.actions, at("actions"), fail);
  let dedupeWindowMs = DEFAULT_DEDUPE_WINDOW_MS;
  if (r.dedupeWindow !== undefined) {
    const ms = durationOf(r.dedupeWindow, at("dedupeWindow"), 1_000, DAY_MS, fail);
    if (ms !== undefined) dedupeWindowMs = ms;
  }
  if (scope !== undefined && actions?.includes("revoke") && scope.managed !== true) {
    fail(at("actions"), "revoke needs scope.managed: true (an unmanaged container has no requester whose certificates could be revoked)");
  }
  if (!ok || name === undefined || description === undefined || severity === undefined || scope === undefined || match === undefined || actions === undefined) return undefined;
  return { name, description, severity, scope, match, actions, dedupeWindowMs };
}

function parseScope(v: unknown, path: FieldPath, bad: Bad): RuleScope | undefined {
  const s = fields(v, path, ["namespaces", "labels", "managed"], [], bad);
  if (s === undefined) return undefined;
  const out: { namespaces?: string[]; labels?: Record<string, string>; managed?: boolean } = {};
  let ok = true;
  const fail: Bad = (p, reason) => {
    ok = false;
    return bad(p, reason);
  };
  if (Object.keys(s).some((k) => !["namespaces", "labels", "managed"].includes(k))) ok = false;
  if (s.namespaces !== undefined) {
    if (!Array.isArray(s.namespaces) || s.namespaces.length === 0 || s.namespaces.length > MAX_LIST) {
      fail([...path, "namespaces"], `must be a list of 1 to ${MAX_LIST} namespace names`);
    } else {
      const seen: string[] = [];
      s.namespaces.forEach((n: unknown, i: number) => {
        if (typeof n !== "string" || !DNS_LABEL.test(n)) fail([...path, "namespaces", i], "must be a namespace name (a DNS label: lower-case letters, digits and '-', at most 63)");
        else if (seen.includes(n)) fail([...path, "namespaces", i], `repeats ${JSON.stringify(n)}`);
        else seen.push(n);
      });
      out.namespaces = seen;
    }
  }
  if (s.labels !== undefined) {
    const labels = parseStringMap(s.labels, [...path, "labels"], fail, "label");
    if (labels !== undefined) {
      if (Object.keys(labels).length === 0) fail([...path, "labels"], "must name at least one label (leave it out to match every container)");
      else out.labels = labels;
    }
  }
  if (s.managed !== undefined) {
    if (typeof s.managed !== "boolean") fail([...path, "managed"], "must be true or false");
    else out.managed = s.managed;
  }
  if (out.managed === false && out.namespaces !== undefined) {
    fail([...path, "managed"], "is false, but namespaces match only managed containers: the rule could never match");
  }
  return ok ? out : undefined;
}

function parseActions(v: unknown, path: FieldPath, bad: Bad): ActionName[] | undefined {
  if (v === undefined || v === null) return ["alert"];
  if (!Array.isArray(v) || v.length === 0) return bad(path, `must be a non-empty list (of ${ACTIONS.join(", ")})`);
  const seen: ActionName[] = [];
  let ok = true;
  v.forEach((a: unknown, i: number) => {
    if (typeof a !== "string" || !(ACTIONS as readonly string[]).includes(a)) {
      ok = false;
      bad([...path, i], `unknown action ${JSON.stringify(a)} (one of ${ACTIONS.join(", ")})`);
    } else if (seen.includes(a as ActionName)) {
      ok = false;
      bad([...path, i], `repeats ${JSON.stringify(a)}`);
    } else seen.push(a as ActionName);
  });
  if (!ok) return undefined;
  return ["alert", ...seen.filter((a) => a !== "alert")];
}
