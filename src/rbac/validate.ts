/**
 * Validation of an RBAC policy as a whole, before it is applied. Every problem is
 * collected, each with the 1-based line of its entry (for a Policy built without line
 * numbers: the entry's line in the canonical form, rules first, then bindings; 0 means
 * the whole file). Refused, with the issue code in brackets:
 *
 * - [syntax] an unknown line type, a wrong field count, an empty field, a field that is
 *   not a string; [too-large] a text over MAX_POLICY_BYTES;
 * - [unknown-resource] / [unknown-action] a name not in RESOURCES / ACTIONS and not `*`;
 * - [bad-effect] an effect other than `allow` or `deny`;
 * - [bad-subject] / [bad-member] a subject or member that is neither an identity (a string
 *   with ':' that `parseIdentity` accepts, without '..') nor a role name
 *   (/^[a-z][a-z0-9-]{0,62}$/); [bad-role] a bound role that is not a role name;
 * - [bad-namespace] a namespace that is not a DNS label or `*`;
 * - [undefined-role] a binding to a role that no rule defines. A role is defined when it is
 *   the subject of at least one `p` rule, or is itself bound (inherits) from a defined role;
 * - [role-cycle] a role that inherits, through any chain, from itself;
 * - [duplicate-rule] / [duplicate-binding] an entry equal, field by field, to an earlier one;
 * - [audit-mutation] nothing can edit the audit log: an allow rule for `audit` with
 *   `create`, `update` or `delete` is refused outright; an allow rule that covers one of
 *   them through `*` (resource `*`, or action `*` on `audit` or `*`) is refused unless the
 *   same subject has a deny rule covering that audit action in the same namespace or in
 *   `*` (so the deny applies wherever the allow does).
 */
import { pcError } from "../core/index.js";
import { actionReason, isIdentityLike, namespaceReason, quote, resourceReason, roleReason, subjectReason } from "./names.js";
import { describeIssues, readPolicyCsv } from "./policy-csv.js";
import { CLUSTER } from "./types.js";
import type { Policy, PolicyRule, RoleBinding } from "./types.js";

export type ValidationIssueCode =
  | "syntax"
  | "too-large"
  | "unknown-resource"
  | "unknown-action"
  | "bad-effect"
  | "bad-subject"
  | "bad-member"
  | "bad-role"
  | "bad-namespace"
  | "undefined-role"
  | "role-cycle"
  | "duplicate-rule"
  | "duplicate-binding"
  | "audit-mutation";

export interface ValidationIssue {
  /** 1-based line of the entry; 0 for the file as a whole. */
  readonly line: number;
  /** The field of the entry at fault, when one is. */
  readonly field?: string;
  readonly code?: ValidationIssueCode;
  readonly reason: string;
}

/** The audit actions that would edit the log. */
export const AUDIT_MUTATIONS = ["create", "update", "delete"] as const;

/** Every problem of a policy (or of its CSV text), sorted by line. */
export function validatePolicy(input: Policy | string): ValidationIssue[] {
  return checkPolicy(input).issues;
}

/**
 * Validates and returns the policy; throws PC_RBAC_POLICY_INVALID whose detail lists
 * every issue with its line when there is any (past MAX_LISTED_ISSUES they are counted;
 * the internal detail keeps them all).
 */
export function assertValidPolicy(input: Policy | string): Policy {
  const { policy, issues } = checkPolicy(input);
  if (issues.length > 0) throw pcError("PC_RBAC_POLICY_INVALID", describeIssues(issues), issues);
  return policy;
}

function checkPolicy(input: Policy | string): { policy: Policy; issues: ValidationIssue[] } {
  let policy: Policy;
  const issues: ValidationIssue[] = [];
  if (typeof input === "string") {
    const read = readPolicyCsv(input);
    policy = read.policy;
    issues.push(...read.issues);
  } else if (isPolicyShape(input)) {
    policy = input;
  } else {
    return { policy: { rules: [], bindings: [] }, issues: [{ line: 0, code: "syntax", reason: "policy must have rules and bindings lists" }] };
  }
  issues.push(...checkEntries(policy));
  issues.sort((a, b) => a.line - b.line);
  return { policy, issues };
}

function isPolicyShape(p: unknown): p is Policy {
  if (typeof p !== "object" || p === null) return false;
  const o = p as { rules?: unknown; bindings?: unknown };
  return Array.isArray(o.rules) && Array.isArray(o.bindings);
}

const RULE_FIELDS = ["subject", "namespace", "resource", "action", "effect"] as const;
const BINDING_FIELDS = ["member", "role", "namespace"] as const;

/** The line an entry is reported on. */
function ruleLine(r: PolicyRule, index: number): number {
  return typeof r.line === "number" ? r.line : index + 1;
}
function bindingLine(policy: Policy, b: RoleBinding, index: number): number {
  return typeof b.line === "number" ? b.line : policy.rules.length + index + 1;
}

function checkEntries(policy: Policy): ValidationIssue[] {
  return entryIssues(policy).map((x) => x.issue);
}

/** An issue with the entry it is about (the very object of the policy's lists). */
export interface EntryIssue {
  readonly issue: ValidationIssue;
  readonly entry: PolicyRule | RoleBinding;
}

/** The issues of a policy's entries, each tied to its entry; in the policy's order. */
export function entryIssues(policy: Policy): EntryIssue[] {
  const issues: EntryIssue[] = [];
  let entry: PolicyRule | RoleBinding | undefined;
  const push = (line: number, code: ValidationIssueCode, field: string | undefined, reason: string | undefined) => {
    if (reason === undefined || entry === undefined) return;
    issues.push({ entry, issue: field ? { line, field, code, reason } : { line, code, reason } });
  };

  // Entries whose fields are all strings; the others are reported and left out.
  const rules: { r: PolicyRule; line: number }[] = [];
  policy.rules.forEach((r, i) => {
    entry = r;
    const line = ruleLine(r, i);
    const bad = typeof r === "object" && r !== null ? RULE_FIELDS.find((f) => typeof r[f] !== "string") : "rule";
    if (bad) push(line, "syntax", bad === "rule" ? undefined : bad, `${bad} must be a string`);
    else rules.push({ r, line });
  });
  const bindings: { b: RoleBinding; line: number }[] = [];
  policy.bindings.forEach((b, i) => {
    entry = b;
    const line = bindingLine(policy, b, i);
    const bad = typeof b === "object" && b !== null ? BINDING_FIELDS.find((f) => typeof b[f] !== "string") : "binding";
    if (bad) push(line, "syntax", bad === "binding" ? undefined : bad, `${bad} must be a string`);
    else bindings.push({ b, line });
  });

  const seenRules = new Map<string, number>();
  for (const { r, line } of rules) {
    entry = r;
    push(line, "bad-subject", "subject", subjectReason(r.subject));
    push(line, "bad-namespace", "namespace", namespaceReason(r.namespace));
    push(line, "unknown-resource", "resource", resourceReason(r.resource));
    push(line, "unknown-action", "action", actionReason(r.action));
    if (r.effect !== "allow" && r.effect !== "deny") {
      push(line, "bad-effect", "effect", `effect must be "allow" or "deny", not ${quote(r.effect)}`);
    }
    const key = [r.subject, r.namespace, r.resource, r.action, r.effect].join("\u0000");
    const first = seenRules.get(key);
    if (first !== undefined) push(line, "duplicate-rule", undefined, `duplicate rule (same as line ${first})`);
    else seenRules.set(key, line);
  }
  const plainRules = rules.map((x) => x.r);
  for (const { r, line } of rules) {
    entry = r;
    const problem = auditMutation(r, plainRules);
    if (problem) push(line, "audit-mutation", problem.field, problem.reason);
  }

  const defined = definedRoles(rules.map((x) => x.r), bindings.map((x) => x.b));
  const parents = roleEdges(bindings.map((x) => x.b));
  const seenBindings = new Map<string, number>();
  for (const { b, line } of bindings) {
    entry = b;
    push(line, "bad-member", "member", subjectReason(b.member));
    const roleProblem = isIdentityLike(b.role)
      ? `${quote(b.role)} is an identity; only a role can be bound`
      : roleReason(b.role);
    push(line, "bad-role", "role", roleProblem);
    push(line, "bad-namespace", "namespace", namespaceReason(b.namespace));
    if (roleProblem === undefined && !defined.has(b.role)) {
      push(line, "undefined-role", "role", `role ${quote(b.role)} is not defined by any rule`);
    }
    if (roleProblem === undefined && !isIdentityLike(b.member)) {
      const path = pathBetween(parents, b.role, b.member);
      if (path) push(line, "role-cycle", "role", `role inheritance cycle: ${[b.member, ...path].join(" -> ")}`);
    }
    const key = [b.member, b.role, b.namespace].join("\u0000");
    const first = seenBindings.get(key);
    if (first !== undefined) push(line, "duplicate-binding", undefined, `duplicate binding (same as line ${first})`);
    else seenBindings.set(key, line);
  }
  return issues;
}

/** Roles that are the subject of a rule, or inherit from such a role (a fixed point). */
function definedRoles(rules: readonly PolicyRule[], bindings: readonly RoleBinding[]): Set<string> {
  const defined = new Set<string>();
  for (const r of rules) if (!isIdentityLike(r.subject)) defined.add(r.subject);
  const inherits = bindings.filter((b) => !isIdentityLike(b.member));
  let grew = true;
  while (grew) {
    grew = false;
    for (const b of inherits) {
      if (defined.has(b.role) && !defined.has(b.member)) {
        defined.add(b.member);
        grew = true;
      }
    }
  }
  return defined;
}

/** role -> the roles it is bound to (inherits from), in any namespace. */
function roleEdges(bindings: readonly RoleBinding[]): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  for (const b of bindings) {
    if (isIdentityLike(b.member) || isIdentityLike(b.role)) continue;
    const list = edges.get(b.member) ?? [];
    list.push(b.role);
    edges.set(b.member, list);
  }
  return edges;
}

/** A path of roles from `from` to `to` following inheritance, or undefined. */
function pathBetween(edges: Map<string, string[]>, from: string, to: string): string[] | undefined {
  const prev = new Map<string, string | null>([[from, null]]);
  const queue = [from];
  while (queue.length > 0) {
    const cur = queue.shift() as string;
    if (cur === to) {
      const path: string[] = [];
      for (let n: string | null = cur; n !== null; n = prev.get(n) ?? null) path.unshift(n);
      return path;
    }
    for (const next of edges.get(cur) ?? []) {
      if (!prev.has(next)) {
        prev.set(next, cur);
        queue.push(next);
      }
    }
  }
  return undefined;
}

/** The audit-mutation problem of an allow rule, if it has one. */
function auditMutation(r: PolicyRule, all: readonly PolicyRule[]): { field: string; reason: string } | undefined {
  if (r.effect !== "allow" || (r.resource !== "audit" && r.resource !== "*")) return undefined;
  if (r.resource === "audit" && (AUDIT_MUTATIONS as readonly string[]).includes(r.action)) {
    return { field: "action", reason: `allows audit ${r.action}; nothing can edit the audit log` };
  }
  const covered = AUDIT_MUTATIONS.filter((a) => r.action === "*" || r.action === a);
  const missing = covered.filter(
    (a) =>
      !all.some(
        (d) =>
          d.effect === "deny" &&
          d.subject === r.subject &&
          (d.namespace === r.namespace || d.namespace === CLUSTER) &&
          (d.resource === "audit" || d.resource === "*") &&
          (d.action === a || d.action === "*"),
      ),
  );
  if (missing.length === 0) return undefined;
  return {
    field: r.resource === "*" ? "resource" : "action",
    reason:
      `allows audit ${missing.join(", ")} through "*"; nothing can edit the audit log: ` +
      `add ${missing.map((a) => `"p, ${r.subject}, ${r.namespace}, audit, ${a}, deny"`).join(", ")}`,
  };
}
