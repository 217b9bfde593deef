/**
 * No escalation: a caller cannot grant, through a policy change, a permission it does not
 * hold itself in that namespace (Kubernetes' escalate and bind checks). The caller's
 * powers are those of the policy in force, asked through its enforcer; the change is the
 * difference between the policy in force and the new one, entries compared field by field.
 *
 * Terms. A permission is (namespace, resource, action) with concrete resource and action.
 * "The caller holds (n, r, a)" means the current enforcer allows (caller, n, r, a).
 * `scope(d)` is `[d]` for a namespace `d`; for `*` it is `*` itself (held cluster-wide:
 * under the model only roles bound in `*` with rules for `*` count) and every concrete
 * namespace that either policy names (elsewhere the `*` answer is the answer, so holding
 * it in all of these means holding it in every namespace). `expand(r, a)` is every
 * resource of RESOURCES for `*`, times every action of ACTIONS for `*`.
 *
 * What each change requires:
 * - An ADDED allow rule `p, S, D, R, A, allow` gives the holders of S every permission
 *   (n, r, a) with n in scope(D) and (r, a) in expand(R, A), except those that a deny rule
 *   of S in the new policy takes away again (its namespace n or `*`, resource r or `*`,
 *   action a or `*`). The caller must hold each of them.
 * - An ADDED binding `g, M, Ro, N` gives M the roles reachable from Ro over `g` links of
 *   domain N in the new policy (Ro included). For N a namespace, M gains every allow rule
 *   of those roles written for N or `*`, as permissions in N; for N = `*`, M gains every
 *   allow rule of those roles, each over scope(its namespace). Permissions that a deny rule
 *   of one of those roles takes away are left out. The caller must hold each of the rest.
 * - A REMOVED deny rule `p, S, D, R, A, deny` can lift a restriction, and so can a REMOVED
 *   binding `g, M, Ro, N` when Ro (or a role it inherits in N) has deny rules: removing a
 *   deny is a grant. For these the check is a difference: the candidates are the
 *   permissions the removed deny covered (scope(D) x expand(R, A); for a binding, the deny
 *   rules of Ro's roles as for an added binding), the holders are the identities that hold
 *   S (or M) through bindings of any domain, in either policy. A candidate is lifted when
 *   some holder is denied it by the policy in force and allowed it by the new one
 *   (`makeEnforcer(newPolicy)`, FastEnforcer by default, built only when needed). The
 *   caller must hold every lifted permission.
 * - Added deny rules, removed allow rules and removed bindings that lift nothing take
 *   powers away and need nothing beyond the route's own permission (`policies:update`,
 *   `role-bindings:update`).
 *
 * `enforcerOfCaller` must be the enforcer of `oldPolicy` (the policy in force): it answers
 * for the caller and, for removals, for the holders.
 * An enforcer that throws counts as "not held" (fail closed). The result lists each entry
 * that is refused with the permissions the caller lacks; the caller of this function
 * refuses the change with PC_RBAC_ESCALATION when the list is not empty.
 */
import { FastEnforcer } from "./fast-enforcer.js";
import { isIdentityLike } from "./names.js";
import { ACTIONS, bindingToCsv, CLUSTER, RESOURCES, ruleToCsv } from "./types.js";
import type { Action, Policy, PolicyEnforcer, PolicyRule, Resource, RoleBinding } from "./types.js";

export interface Permission {
  readonly namespace: string;
  readonly resource: Resource;
  readonly action: Action;
}

export interface EscalationIssue {
  /** What kind of change gives the powers. */
  readonly kind: "rule" | "binding" | "deny-removal" | "binding-removal";
  /** The entry, as its canonical CSV line. */
  readonly entry: string;
  /** Its line in the new policy (the old one for a removed entry), when known. */
  readonly line?: number;
  /** The permissions it gives that the caller does not hold. */
  readonly missing: readonly Permission[];
  readonly reason: string;
}

const MAX_LISTED = 6;

export function checkNoEscalation(
  enforcerOfCaller: PolicyEnforcer,
  caller: string,
  newPolicy: Policy,
  oldPolicy: Policy,
  makeEnforcer: (policy: Policy) => PolicyEnforcer = (policy) => new FastEnforcer(policy),
): EscalationIssue[] {
  const held = new Map<string, boolean>();
  const holds = (p: Permission): boolean => {
    const key = `${p.namespace}\u0000${p.resource}\u0000${p.action}`;
    let v = held.get(key);
    if (v === undefined) {
      try {
        v = enforcerOfCaller.decide(caller, p.namespace, p.resource, p.action).allowed === true;
      } catch {
        v = false;
      }
      held.set(key, v);
    }
    return v;
  };

  const namespaces = concreteNamespaces(oldPolicy, newPolicy);
  const scope = (d: string): string[] => (d === CLUSTER ? [CLUSTER, ...namespaces] : [d]);
  const denies = denyIndex(newPolicy);
  const issues: EscalationIssue[] = [];

  const report = (kind: "rule" | "binding", entry: string, line: number | undefined, wanted: Permission[]) => {
    const missing = unique(wanted).filter((p) => !holds(p));
    if (missing.length === 0) return;
    const issue: EscalationIssue = { kind, entry, missing, reason: `${caller} cannot add "${entry}": it does not hold ${describeMissing(missing)}` };
    issues.push(line === undefined ? issue : { ...issue, line });
  };

  // Added allow rules.
  const oldRules = new Set(oldPolicy.rules.map(ruleKey));
  for (const r of newPolicy.rules) {
    if (r.effect !== "allow" || oldRules.has(ruleKey(r))) continue;
    report("rule", ruleToCsv(r), r.line, granted(r, [r.subject], scope, denies));
  }

  // Added bindings.
  const oldBindings = new Set(oldPolicy.bindings.map(bindingKey));
  const links = linksByDomain(newPolicy.bindings);
  const allowsBySubject = new Map<string, PolicyRule[]>();
  for (const r of newPolicy.rules) {
    if (r.effect !== "allow") continue;
    const list = allowsBySubject.get(r.subject) ?? [];
    list.push(r);
    allowsBySubject.set(r.subject, list);
  }
  const byRole = new Map<string, Permission[]>();
  for (const b of newPolicy.bindings) {
    if (oldBindings.has(bindingKey(b))) continue;
    const key = `${b.role}\u0000${b.namespace}`;
    let wanted = byRole.get(key);
    if (!wanted) {
      wanted = bindingGrants(b, links, allowsBySubject, scope, denies);
      byRole.set(key, wanted);
    }
    report("binding", bindingToCsv(b), b.line, wanted);
  }

  // Removed deny rules and removed bindings: what they lift, for whom (see the header).
  const newRules = new Set(newPolicy.rules.map(ruleKey));
  const newBindings = new Set(newPolicy.bindings.map(bindingKey));
  const oldLinks = linksByDomain(oldPolicy.bindings);
  const oldDenies = denyIndex(oldPolicy);
  const members = reverseLinks([...oldPolicy.bindings, ...newPolicy.bindings]);
  let after: PolicyEnforcer | undefined;
  const liftedFor = (holders: readonly string[], candidates: readonly Permission[]) => {
    const identities = holders.filter(isIdentityLike);
    if (identities.length === 0 || candidates.length === 0) return { who: [] as string[], lifted: [] as Permission[] };
    after ??= makeEnforcer(newPolicy);
    const who = new Set<string>();
    const lifted: Permission[] = [];
    for (const p of unique(candidates)) {
      for (const id of identities) {
        // Fail closed: a failing new enforcer counts as allowing, a failing current one as denying.
        if (allows(after, id, p, true) && !allows(enforcerOfCaller, id, p, false)) {
          who.add(id);
          lifted.push(p);
          break;
        }
      }
    }
    return { who: [...who], lifted };
  };
  const reportRemoval = (kind: "deny-removal" | "binding-removal", entry: string, line: number | undefined, who: string[], lifted: Permission[]) => {
    const missing = lifted.filter((p) => !holds(p));
    if (missing.length === 0) return;
    const listed = who.slice(0, MAX_LISTED).join(", ") + (who.length > MAX_LISTED ? ` and ${who.length - MAX_LISTED} more` : "");
    const issue: EscalationIssue = {
      kind,
      entry,
      missing,
      reason: `${caller} cannot remove "${entry}": it lifts a deny for ${listed}; it does not hold ${describeMissing(missing)}`,
    };
    issues.push(line === undefined ? issue : { ...issue, line });
  };

  for (const r of oldPolicy.rules) {
    if (r.effect !== "deny" || newRules.has(ruleKey(r))) continue;
    const candidates: Permission[] = [];
    for (const n of scope(r.namespace)) {
      for (const [resource, action] of expand(r.resource, r.action)) candidates.push({ namespace: n, resource, action });
    }
    const { who, lifted } = liftedFor([r.subject, ...holdersOf(r.subject, members)], candidates);
    reportRemoval("deny-removal", ruleToCsv(r), r.line, who, lifted);
  }

  for (const b of oldPolicy.bindings) {
    if (newBindings.has(bindingKey(b))) continue;
    const roles = closure(b.role, oldLinks.get(b.namespace));
    const candidates: Permission[] = [];
    for (const role of roles) {
      for (const d of oldDenies.get(role) ?? []) {
        if (b.namespace === CLUSTER) {
          for (const n of scope(d.namespace)) for (const [resource, action] of expand(d.resource, d.action)) candidates.push({ namespace: n, resource, action });
        } else if (d.namespace === b.namespace || d.namespace === CLUSTER) {
          for (const [resource, action] of expand(d.resource, d.action)) candidates.push({ namespace: b.namespace, resource, action });
        }
      }
    }
    const { who, lifted } = liftedFor([b.member, ...holdersOf(b.member, members)], candidates);
    reportRemoval("binding-removal", bindingToCsv(b), b.line, who, lifted);
  }
  return issues;
}

/** The enforcer's answer; `onError` when it throws. */
function allows(e: PolicyEnforcer, subject: string, p: Permission, onError: boolean): boolean {
  try {
    return e.decide(subject, p.namespace, p.resource, p.action).allowed === true;
  } catch {
    return onError;
  }
}

/** role -> its direct members, over the links of every domain. */
function reverseLinks(bindings: readonly RoleBinding[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const b of bindings) {
    const list = m.get(b.role) ?? [];
    list.push(b.member);
    m.set(b.role, list);
  }
  return m;
}

/** Everything that holds `subject` through a chain of bindings in any domain (a superset of its holders). */
function holdersOf(subject: string, members: Map<string, string[]>): string[] {
  const seen = new Set<string>([subject]);
  const queue = [subject];
  while (queue.length > 0) {
    const cur = queue.shift() as string;
    for (const m of members.get(cur) ?? []) {
      if (!seen.has(m)) {
        seen.add(m);
        queue.push(m);
      }
    }
  }
  seen.delete(subject);
  return [...seen];
}

type DenyIndex = Map<string, PolicyRule[]>;

function denyIndex(policy: Policy): DenyIndex {
  const m: DenyIndex = new Map();
  for (const r of policy.rules) {
    if (r.effect !== "deny") continue;
    const list = m.get(r.subject) ?? [];
    list.push(r);
    m.set(r.subject, list);
  }
  return m;
}

/** Whether a deny rule of one of `subjects` applies to (namespace, resource, action). */
function deniedFor(subjects: readonly string[], namespace: string, resource: string, action: string, denies: DenyIndex): boolean {
  for (const s of subjects) {
    for (const d of denies.get(s) ?? []) {
      if (
        (d.namespace === namespace || d.namespace === CLUSTER) &&
        (d.resource === resource || d.resource === "*") &&
        (d.action === action || d.action === "*")
      ) {
        return true;
      }
    }
  }
  return false;
}

/** The permissions an allow rule gives, less those the deny rules of `subjects` take away. */
function granted(r: PolicyRule, subjects: readonly string[], scope: (d: string) => string[], denies: DenyIndex, only?: string): Permission[] {
  const out: Permission[] = [];
  const where = only === undefined ? scope(r.namespace) : [only];
  for (const n of where) {
    for (const [resource, action] of expand(r.resource, r.action)) {
      if (!deniedFor(subjects, n, resource, action, denies)) out.push({ namespace: n, resource, action });
    }
  }
  return out;
}

/** What `g, M, Ro, N` gives M (see the header). */
function bindingGrants(
  b: RoleBinding,
  links: Map<string, Map<string, string[]>>,
  allowsBySubject: Map<string, PolicyRule[]>,
  scope: (d: string) => string[],
  denies: DenyIndex,
): Permission[] {
  const roles = closure(b.role, links.get(b.namespace));
  const out: Permission[] = [];
  for (const role of roles) {
    for (const r of allowsBySubject.get(role) ?? []) {
      if (b.namespace === CLUSTER) out.push(...granted(r, roles, scope, denies));
      else if (r.namespace === b.namespace || r.namespace === CLUSTER) out.push(...granted(r, roles, scope, denies, b.namespace));
    }
  }
  return out;
}

/** `start` and every role reachable from it over the links of one domain. */
function closure(start: string, links: Map<string, string[]> | undefined): string[] {
  const seen = new Set<string>([start]);
  const queue = [start];
  while (queue.length > 0) {
    const cur = queue.shift() as string;
    for (const next of links?.get(cur) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return [...seen];
}

/** domain -> member -> roles, for role-to-role links (identities are never roles). */
function linksByDomain(bindings: readonly RoleBinding[]): Map<string, Map<string, string[]>> {
  const m = new Map<string, Map<string, string[]>>();
  for (const b of bindings) {
    if (isIdentityLike(b.member)) continue;
    let dom = m.get(b.namespace);
    if (!dom) m.set(b.namespace, (dom = new Map()));
    const list = dom.get(b.member) ?? [];
    list.push(b.role);
    dom.set(b.member, list);
  }
  return m;
}

function expand(resource: string, action: string): [Resource, Action][] {
  const rs = resource === "*" ? RESOURCES : (RESOURCES as readonly string[]).includes(resource) ? [resource as Resource] : [];
  const as = action === "*" ? ACTIONS : (ACTIONS as readonly string[]).includes(action) ? [action as Action] : [];
  const out: [Resource, Action][] = [];
  for (const r of rs) for (const a of as) out.push([r, a]);
  return out;
}

function concreteNamespaces(...policies: Policy[]): string[] {
  const s = new Set<string>();
  for (const p of policies) {
    for (const r of p.rules) if (r.namespace !== CLUSTER) s.add(r.namespace);
    for (const b of p.bindings) if (b.namespace !== CLUSTER) s.add(b.namespace);
  }
  return [...s].sort();
}

function unique(ps: readonly Permission[]): Permission[] {
  const seen = new Set<string>();
  const out: Permission[] = [];
  for (const p of ps) {
    const k = `${p.namespace}\u0000${p.resource}\u0000${p.action}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(p);
    }
  }
  return out;
}

function describeMissing(missing: readonly Permission[]): string {
  const listed = missing
    .slice(0, MAX_LISTED)
    .map((p) => `${p.resource}:${p.action} in ${p.namespace === CLUSTER ? "* (cluster-wide)" : p.namespace}`)
    .join(", ");
  const more = missing.length > MAX_LISTED ? ` and ${missing.length - MAX_LISTED} more` : "";
  return `${listed}${more}`;
}

const ruleKey = (r: PolicyRule): string => [r.subject, r.namespace, r.resource, r.action, r.effect].join("\u0000");
const bindingKey = (b: RoleBinding): string => [b.member, b.role, b.namespace].join("\u0000");
