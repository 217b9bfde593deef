/**
 * The RBAC policy as a Casbin CSV file.
 *
 *   # a comment                              (a line whose first non-blank character is '#')
 *   p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT
 *   g, MEMBER, ROLE, NAMESPACE
 *
 * Blank lines are allowed; whitespace around each field is trimmed; CRLF and a leading
 * byte-order mark are accepted. There is no quoting: no field may contain a comma, and
 * the name rules (validate.ts) refuse quotes anyway. The text may be at most
 * MAX_POLICY_BYTES (8 MiB) of UTF-8: room for a policy ten times the size of the
 * benchmark one (10,000 rules and 100,000 bindings, about 4 MB). Each entry records its
 * 1-based line.
 *
 * Parsing checks only the shape of each line (its type, its field count, no empty field);
 * validate.ts checks the meaning. `formatPolicyCsv` writes the canonical form: every rule,
 * then every binding, in the order given, one per line, without comments.
 */
import { pcError } from "../core/index.js";
import { bindingToCsv, ruleToCsv } from "./types.js";
import type { Policy, PolicyRule, RoleBinding } from "./types.js";
import type { ValidationIssue } from "./validate.js";

export const MAX_POLICY_BYTES = 8 * 1024 * 1024;

export interface PolicyCsvParse {
  /** Every entry whose shape is right; fields are unchecked strings until validated. */
  readonly policy: Policy;
  /** Shape problems, each with its line; the lines they name are left out of `policy`. */
  readonly issues: readonly ValidationIssue[];
}

/** The entries of a CSV text and the shape problems of the others; never throws. */
export function readPolicyCsv(text: string): PolicyCsvParse {
  if (typeof text !== "string") {
    return { policy: { rules: [], bindings: [] }, issues: [{ line: 0, code: "syntax", reason: "policy is not text" }] };
  }
  if (Buffer.byteLength(text, "utf8") > MAX_POLICY_BYTES) {
    return {
      policy: { rules: [], bindings: [] },
      issues: [{ line: 0, code: "too-large", reason: `policy is larger than ${MAX_POLICY_BYTES} bytes` }],
    };
  }
  const rules: PolicyRule[] = [];
  const bindings: RoleBinding[] = [];
  const issues: ValidationIssue[] = [];
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const lines = body.split("\n");
  lines.forEach((raw, i) => {
    const line = i + 1;
    const content = (raw.endsWith("\r") ? raw.slice(0, -1) : raw).trim();
    if (content === "" || content.startsWith("#")) return;
    const fields = content.split(",").map((f) => f.trim());
    const type = fields[0] as string;
    const want = type === "p" ? 6 : type === "g" ? 4 : 0;
    if (want === 0) {
      issues.push({ line, code: "syntax", reason: `unknown line type ${JSON.stringify(type.slice(0, 20))} (expected "p" or "g")` });
      return;
    }
    if (fields.length !== want) {
      const shape = type === "p" ? "p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT" : "g, MEMBER, ROLE, NAMESPACE";
      issues.push({ line, code: "syntax", reason: `expected ${want} fields (${shape}), found ${fields.length}` });
      return;
    }
    const empty = fields.findIndex((f) => f === "");
    if (empty >= 0) {
      const names = type === "p" ? P_FIELDS : G_FIELDS;
      issues.push({ line, field: names[empty - 1], code: "syntax", reason: `empty ${names[empty - 1]}` });
      return;
    }
    if (type === "p") {
      const [, subject, namespace, resource, action, effect] = fields as [string, string, string, string, string, string];
      rules.push({
        subject,
        namespace,
        resource: resource as PolicyRule["resource"],
        action: action as PolicyRule["action"],
        effect: effect as PolicyRule["effect"],
        line,
      });
    } else {
      const [, member, role, namespace] = fields as [string, string, string, string];
      bindings.push({ member, role, namespace, line });
    }
  });
  return { policy: { rules, bindings }, issues };
}

const P_FIELDS = ["subject", "namespace", "resource", "action", "effect"] as const;
const G_FIELDS = ["member", "role", "namespace"] as const;

/** The most issues an error detail lists; the rest are counted (all stay in `internal`). */
export const MAX_LISTED_ISSUES = 1000;

/** Renders issues as `line 3: reason; line 7 (action): reason`. */
export function describeIssues(issues: readonly Pick<ValidationIssue, "line" | "field" | "reason">[]): string {
  const listed = issues
    .slice(0, MAX_LISTED_ISSUES)
    .map((i) => `${i.line > 0 ? `line ${i.line}` : "policy"}${i.field ? ` (${i.field})` : ""}: ${i.reason}`)
    .join("; ");
  const more = issues.length - MAX_LISTED_ISSUES;
  return more > 0 ? `${listed}; and ${more} more issues` : listed;
}

/**
 * Parses the CSV text. Shape problems (unknown line type, wrong field count, an empty
 * field, too large) are all reported at once as PC_RBAC_POLICY_INVALID. The result is
 * not yet validated: use `assertValidPolicy` before enforcing it.
 */
export function parsePolicyCsv(text: string): Policy {
  const { policy, issues } = readPolicyCsv(text);
  if (issues.length > 0) throw pcError("PC_RBAC_POLICY_INVALID", describeIssues(issues));
  return policy;
}

/** The canonical lines: every rule, then every binding, in the order given. */
export function policyLines(policy: Policy): string[] {
  return [...policy.rules.map(ruleToCsv), ...policy.bindings.map(bindingToCsv)];
}

/** The canonical CSV text (no comments), ending with a newline unless empty. */
export function formatPolicyCsv(policy: Policy): string {
  const lines = policyLines(policy);
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

export interface PolicyDiff {
  /** Canonical lines of `next` that `prev` lacks, in `next`'s order. */
  readonly added: string[];
  /** Canonical lines of `prev` that `next` lacks, in `prev`'s order. */
  readonly removed: string[];
}

/** The difference between two policies as canonical lines (a multiset difference). */
export function policyDiff(prev: Policy, next: Policy): PolicyDiff {
  const before = policyLines(prev);
  const after = policyLines(next);
  return { added: minus(after, before), removed: minus(before, after) };
}

function minus(a: readonly string[], b: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const l of b) left.set(l, (left.get(l) ?? 0) + 1);
  const out: string[] = [];
  for (const l of a) {
    const n = left.get(l) ?? 0;
    if (n > 0) left.set(l, n - 1);
    else out.push(l);
  }
  return out;
}
