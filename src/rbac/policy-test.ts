/**
 * Offline policy tests, like `opa test` or `kyverno test`: a YAML file lists requests and
 * the decision each must get from a candidate policy. No server is involved.
 *
 * The file (at most MAX_TEST_BYTES, one YAML document):
 *
 *   policy: ../policy.csv          # optional: the policy, relative to this file; a caller
 *                                  # may give a candidate policy instead
 *   bindings:                      # optional: extra `g` lines, added after the policy's
 *     - "g, user:dev1, developer, payments"   # own bindings for these cases only
 *   cases:                         # required, at least one
 *     - name: developer deploys in its namespace     # required, unique in the file
 *       request:                   # required; all four fields required
 *         subject: user:dev1       # an identity (user:, node:, service:)
 *         namespace: payments      # a DNS label, or "*" for a cluster-wide request
 *         resource: deployments    # one of RESOURCES
 *         action: deploy           # one of ACTIONS
 *       expect: allow              # required: allow | deny
 *       rule: "p, developer, *, deployments, deploy, allow"   # optional: the rule that
 *                                  # must decide, as a CSV line, or "default-deny"
 *
 * Parsing is strict: a YAML syntax error, a duplicate key, an unknown key, a missing or
 * mistyped field, an alias or a custom tag, a bad request, an extra binding that does not
 * validate with the policy (an unknown role, a duplicate, a bad name), or a repeated case
 * name is refused with PC_RBAC_TEST_INVALID, every problem with its line. The policy
 * itself must validate (PC_RBAC_POLICY_INVALID otherwise).
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Node as YamlNode, YAMLMap } from "yaml";
import { pcError } from "../core/index.js";
import { actionReason, identityReason, namespaceReason, quote, resourceReason } from "./names.js";
import { describeIssues, parsePolicyCsv } from "./policy-csv.js";
import type { Policy, PolicyEnforcer, RoleBinding } from "./types.js";
import { assertValidPolicy, entryIssues } from "./validate.js";

export const MAX_TEST_BYTES = 1024 * 1024;

export type Verdict = "allow" | "deny";

export interface PolicyTestRequest {
  readonly subject: string;
  readonly namespace: string;
  readonly resource: string;
  readonly action: string;
}

export interface PolicyTestCase {
  readonly name: string;
  /** The line of the case in the file. */
  readonly line: number;
  readonly request: PolicyTestRequest;
  readonly expect: Verdict;
  /** The rule that must decide, in canonical form (`p, a, b, c, d, e`) or `default-deny`. */
  readonly rule?: string;
}

export interface PolicyTestFile {
  /** The `policy` path as written (relative to the test file). */
  readonly policy?: string;
  /** The extra bindings; `line` is their line in the test file. */
  readonly bindings: readonly RoleBinding[];
  readonly cases: readonly PolicyTestCase[];
}

export interface PolicyTestIssue {
  readonly line: number;
  /** Where in the file, such as `cases[2].request.subject`. */
  readonly field?: string;
  readonly reason: string;
}

export interface PolicyTestCaseResult {
  readonly name: string;
  readonly line: number;
  readonly ok: boolean;
  readonly got: Verdict;
  readonly expected: Verdict;
  /** The rule that decided. */
  readonly rule: string;
  /** The rule the case expects to decide, when it names one. */
  readonly expectedRule?: string;
  /** Why the case failed. */
  readonly reason?: string;
}

export interface PolicyTestReport {
  readonly cases: readonly PolicyTestCaseResult[];
  readonly passed: number;
  readonly failed: number;
}

export type EnforcerFactory = (policy: Policy) => PolicyEnforcer;

const TOP_KEYS = ["policy", "bindings", "cases"] as const;
const CASE_KEYS = ["name", "request", "expect", "rule"] as const;
const REQUEST_KEYS = ["subject", "namespace", "resource", "action"] as const;

/** Parses and checks a test file; throws PC_RBAC_TEST_INVALID listing every problem. */
export function parsePolicyTestFile(yamlText: string): PolicyTestFile {
  if (typeof yamlText !== "string") throw pcError("PC_RBAC_TEST_INVALID", "the test file is not text");
  if (Buffer.byteLength(yamlText, "utf8") > MAX_TEST_BYTES) {
    throw pcError("PC_RBAC_TEST_INVALID", `the test file is larger than ${MAX_TEST_BYTES} bytes`);
  }
  const lc = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true, schema: "core" });
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 0 : lc.linePos(offset).line);
  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length > 0) {
    const issues = yamlProblems.map((e) => ({ line: lineAt(e.pos[0]), reason: firstLine(e.message) }));
    throw pcError("PC_RBAC_TEST_INVALID", describeIssues(issues), issues);
  }

  const issues: PolicyTestIssue[] = [];
  const lineOf = (n: unknown): number => lineAt((n as { range?: [number, number, number] } | null)?.range?.[0]);
  const problem = (n: unknown, field: string, reason: string) => issues.push(field ? { line: lineOf(n), field, reason } : { line: lineOf(n), reason });

  /** The map's entries by key; unknown, non-string keys and aliases are problems. */
  const entries = (node: YAMLMap, path: string, allowed: readonly string[]): Map<string, YamlNode | null> => {
    const out = new Map<string, YamlNode | null>();
    for (const pair of node.items) {
      const k = pair.key;
      const at = (key: string) => (path ? `${path}.${key}` : key);
      if (!isScalar(k) || typeof k.value !== "string") {
        problem(k ?? node, path, "keys must be strings");
        continue;
      }
      if (!allowed.includes(k.value)) {
        problem(k, at(k.value), `unknown key ${quote(k.value)} (allowed: ${allowed.join(", ")})`);
        continue;
      }
      out.set(k.value, (pair.value as YamlNode | null) ?? null);
    }
    return out;
  };
  const str = (node: YamlNode | null | undefined, parent: unknown, field: string): string | undefined => {
    if (node === undefined) {
      problem(parent, field, "is required");
      return undefined;
    }
    if (isAlias(node)) {
      problem(node, field, "aliases are not allowed");
      return undefined;
    }
    if (!isScalar(node) || typeof node.value !== "string") {
      problem(node ?? parent, field, "must be a string");
      return undefined;
    }
    if (node.value.trim() === "") {
      problem(node, field, "must not be empty");
      return undefined;
    }
    return node.value;
  };

  const root = doc.contents;
  if (!isMap(root)) {
    problem(root, "", "the file must be a map with a `cases` list");
    throw invalid(issues);
  }
  const top = entries(root, "", TOP_KEYS);

  let policyPath: string | undefined;
  if (top.has("policy")) policyPath = str(top.get("policy"), root, "policy");

  const bindings: RoleBinding[] = [];
  const bindingsNode = top.get("bindings");
  if (top.has("bindings")) {
    if (!isSeq(bindingsNode)) problem(bindingsNode ?? root, "bindings", 'must be a list of "g, MEMBER, ROLE, NAMESPACE" lines');
    else {
      bindingsNode.items.forEach((item, i) => {
        const field = `bindings[${i}]`;
        const text = str(item as YamlNode | null, bindingsNode, field);
        if (text === undefined) return;
        const line = lineOf(item);
        let parsed: Policy;
        try {
          parsed = parsePolicyCsv(text);
        } catch {
          problem(item, field, `must be one "g, MEMBER, ROLE, NAMESPACE" line, not ${quote(text)}`);
          return;
        }
        const b = parsed.bindings[0];
        if (parsed.rules.length !== 0 || parsed.bindings.length !== 1 || b === undefined) {
          problem(item, field, `must be one "g, MEMBER, ROLE, NAMESPACE" line, not ${quote(text)}`);
          return;
        }
        bindings.push({ member: b.member, role: b.role, namespace: b.namespace, line });
      });
    }
  }

  const cases: PolicyTestCase[] = [];
  const casesNode = top.get("cases");
  if (!top.has("cases")) problem(root, "cases", "is required");
  else if (!isSeq(casesNode)) problem(casesNode ?? root, "cases", "must be a list");
  else if (casesNode.items.length === 0) problem(casesNode, "cases", "must list at least one case");
  else {
    const names = new Map<string, number>();
    casesNode.items.forEach((item, i) => {
      const path = `cases[${i}]`;
      if (!isMap(item)) {
        problem(item ?? casesNode, path, "must be a map with name, request and expect");
        return;
      }
      const c = entries(item, path, CASE_KEYS);
      const name = str(c.get("name"), item, `${path}.name`);
      const expect = str(c.get("expect"), item, `${path}.expect`);
      if (expect !== undefined && expect !== "allow" && expect !== "deny") {
        problem(c.get("expect"), `${path}.expect`, `must be "allow" or "deny", not ${quote(expect)}`);
      }
      let rule: string | undefined;
      if (c.has("rule")) {
        const text = str(c.get("rule"), item, `${path}.rule`);
        if (text !== undefined) {
          rule = canonicalRule(text);
          if (rule === undefined) {
            problem(c.get("rule"), `${path}.rule`, `must be "p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT" or "default-deny", not ${quote(text)}`);
          }
        }
      }
      const request = parseRequest(c.get("request"), item, `${path}.request`);
      if (name !== undefined) {
        const first = names.get(name);
        if (first !== undefined) problem(c.get("name"), `${path}.name`, `repeats the name of the case on line ${first}`);
        else names.set(name, lineOf(item));
      }
      if (name === undefined || request === undefined || (expect !== "allow" && expect !== "deny")) return;
      if (c.has("rule") && rule === undefined) return;
      const tc: PolicyTestCase = { name, line: lineOf(item), request, expect };
      cases.push(rule === undefined ? tc : { ...tc, rule });
    });
  }

  function parseRequest(node: YamlNode | null | undefined, parent: unknown, path: string): PolicyTestRequest | undefined {
    if (node === undefined) {
      problem(parent, path, "is required");
      return undefined;
    }
    if (!isMap(node)) {
      problem(node ?? parent, path, "must be a map with subject, namespace, resource and action");
      return undefined;
    }
    const r = entries(node, path, REQUEST_KEYS);
    const get = (k: (typeof REQUEST_KEYS)[number], check: (v: string) => string | undefined): string | undefined => {
      const v = str(r.get(k), node, `${path}.${k}`);
      if (v === undefined) return undefined;
      const why = check(v);
      if (why !== undefined) {
        problem(r.get(k), `${path}.${k}`, why);
        return undefined;
      }
      return v;
    };
    const subject = get("subject", identityReason);
    const namespace = get("namespace", (v) => namespaceReason(v, true));
    const resource = get("resource", (v) => resourceReason(v, false));
    const action = get("action", (v) => actionReason(v, false));
    if (subject === undefined || namespace === undefined || resource === undefined || action === undefined) return undefined;
    return { subject, namespace, resource, action };
  }

  if (issues.length > 0) throw invalid(issues);
  const file: PolicyTestFile = { bindings, cases };
  return policyPath === undefined ? file : { ...file, policy: policyPath };
}

function invalid(issues: PolicyTestIssue[]) {
  const sorted = [...issues].sort((a, b) => a.line - b.line);
  return pcError("PC_RBAC_TEST_INVALID", describeIssues(sorted), sorted);
}

function firstLine(s: string): string {
  return (s.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
}

/** `p, ...` with its six fields trimmed and joined by ", ", or `default-deny`; else undefined. */
function canonicalRule(text: string): string | undefined {
  const t = text.trim();
  if (t === "default-deny") return t;
  const fields = t.split(",").map((f) => f.trim());
  if (fields.length !== 6 || fields[0] !== "p" || fields.some((f) => f === "")) return undefined;
  return fields.join(", ");
}

/**
 * The policy the cases of `file` run against: `policy` with the file's extra bindings
 * appended. The policy must validate (PC_RBAC_POLICY_INVALID); the extra bindings must
 * validate with it (PC_RBAC_TEST_INVALID, with their lines in the test file).
 */
export function policyForTests(file: PolicyTestFile, policy: Policy): Policy {
  const base = assertValidPolicy(policy);
  if (file.bindings.length === 0) return base;
  const extras = new Set<unknown>(file.bindings);
  const combined: Policy = { rules: base.rules, bindings: [...base.bindings, ...file.bindings] };
  const issues: PolicyTestIssue[] = [];
  for (const { issue, entry } of entryIssues(combined)) {
    if (!extras.has(entry)) continue;
    const index = file.bindings.indexOf(entry as RoleBinding);
    issues.push({ line: issue.line, field: `bindings[${index}]${issue.field ? `.${issue.field}` : ""}`, reason: issue.reason });
  }
  if (issues.length > 0) throw invalid(issues);
  return combined;
}

/**
 * Runs every case of a test file against `policy` (plus the file's extra bindings), with
 * an enforcer built by `makeEnforcer`. Failing cases are values in the report; only a
 * file or policy that does not validate throws.
 */
export function runPolicyTests(yamlText: string, policy: Policy, makeEnforcer: EnforcerFactory): PolicyTestReport {
  const file = parsePolicyTestFile(yamlText);
  return runParsedPolicyTests(file, makeEnforcer(policyForTests(file, policy)));
}

/** Runs parsed cases against an enforcer already built for `policyForTests(file, policy)`. */
export function runParsedPolicyTests(file: PolicyTestFile, enforcer: PolicyEnforcer): PolicyTestReport {
  const results: PolicyTestCaseResult[] = file.cases.map((c) => {
    const { subject, namespace, resource, action } = c.request;
    let got: Verdict = "deny";
    let rule = "default-deny";
    let failure: string | undefined;
    try {
      const d = enforcer.decide(subject, namespace, resource, action);
      got = d.allowed === true ? "allow" : "deny";
      rule = d.rule;
    } catch (e) {
      failure = `the enforcer failed: ${e instanceof Error ? e.message : String(e)}`;
    }
    if (failure === undefined && got !== c.expect) failure = `expected ${c.expect}, got ${got} (${rule})`;
    if (failure === undefined && c.rule !== undefined && canonicalRule(rule) !== c.rule) {
      failure = `expected the decision from "${c.rule}", got it from "${rule}"`;
    }
    const base = { name: c.name, line: c.line, ok: failure === undefined, got, expected: c.expect, rule };
    const withRule = c.rule === undefined ? base : { ...base, expectedRule: c.rule };
    return failure === undefined ? withRule : { ...withRule, reason: failure };
  });
  const passed = results.filter((r) => r.ok).length;
  return { cases: results, passed, failed: results.length - passed };
}

export interface PolicyTestFileOptions {
  /** A candidate policy (CSV text) to test instead of the file's `policy`. */
  readonly policyCsv?: string;
  readonly makeEnforcer: EnforcerFactory;
}

/**
 * Reads a test file and its policy (the candidate given, else the file's `policy` path,
 * relative to the test file), and runs it. A file that cannot be read is refused with
 * PC_RBAC_TEST_INVALID (the test file, or a test file naming no policy) or
 * PC_RBAC_POLICY_INVALID (the policy).
 */
export function runPolicyTestFile(path: string, options: PolicyTestFileOptions): PolicyTestReport {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw pcError("PC_RBAC_TEST_INVALID", `cannot read ${path}`);
  }
  const file = parsePolicyTestFile(text);
  let csv = options.policyCsv;
  if (csv === undefined) {
    if (file.policy === undefined) throw pcError("PC_RBAC_TEST_INVALID", `${path} names no policy and none was given`);
    const policyPath = resolve(dirname(path), file.policy);
    try {
      csv = readFileSync(policyPath, "utf8");
    } catch {
      throw pcError("PC_RBAC_POLICY_INVALID", `cannot read ${policyPath}`);
    }
  }
  const policy = assertValidPolicy(csv);
  return runParsedPolicyTests(file, options.makeEnforcer(policyForTests(file, policy)));
}

/** One line per case (`ok   name` / `FAIL name (line N): reason`) and a summary line. */
export function formatPolicyTestReport(report: PolicyTestReport): string {
  const lines = report.cases.map((c) => (c.ok ? `ok   ${c.name}` : `FAIL ${c.name} (line ${c.line}): ${c.reason ?? "failed"}`));
  lines.push(`${report.passed} passed, ${report.failed} failed`);
  return `${lines.join("\n")}\n`;
}
