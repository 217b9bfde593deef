import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkNoEscalation } from "../../src/rbac/escalation.js";
import type { Permission } from "../../src/rbac/escalation.js";
import { FastEnforcer } from "../../src/rbac/fast-enforcer.js";
import { formatPolicyCsv, parsePolicyCsv } from "../../src/rbac/policy-csv.js";
import { ACTIONS, RESOURCES } from "../../src/rbac/types.js";
import type { Policy, PolicyEnforcer } from "../../src/rbac/types.js";
import { assertValidPolicy } from "../../src/rbac/validate.js";

/**
 * The policy in force: the shipped one, with a security-admin bound in payments only
 * and a namespace `billing` that the policy names.
 */
const SHIPPED = readFileSync(new URL("../../policies/rbac/policy.csv", import.meta.url), "utf8");
const CURRENT = assertValidPolicy(
  `${SHIPPED}g, user:sec, security-admin, payments\ng, user:dev1, developer, billing\ng, user:carol, auditor, *\n`,
);
const enforcer = new FastEnforcer(CURRENT);

/** The current policy with lines added (at the end of the rules or bindings) and removed. */
function change(add: string[], remove: string[] = [], validate = true): Policy {
  const extra = parsePolicyCsv(add.join("\n"));
  const gone = new Set(remove.map((l) => formatPolicyCsv(parsePolicyCsv(l)).trim()));
  const keep = parsePolicyCsv(
    formatPolicyCsv(CURRENT)
      .split("\n")
      .filter((l) => !gone.has(l))
      .join("\n"),
  );
  const csv = formatPolicyCsv({ rules: [...keep.rules, ...extra.rules], bindings: [...keep.bindings, ...extra.bindings] });
  return validate ? assertValidPolicy(csv) : parsePolicyCsv(csv);
}

const check = (caller: string, next: Policy) => checkNoEscalation(enforcer, caller, next, CURRENT);
const perm = (namespace: string, resource: string, action: string) => ({ namespace, resource, action }) as Permission;
const sortPerms = (ps: readonly Permission[]) => [...ps].map((p) => `${p.namespace} ${p.resource} ${p.action}`).sort();

describe("a security-admin bound in payments", () => {
  it.each([
    ["grant secrets read in payments", ["p, user:x, payments, secrets, read, allow"], "rule", [perm("payments", "secrets", "read")]],
    ["grant deploy in payments", ["p, user:x, payments, deployments, deploy, allow"], "rule", [perm("payments", "deployments", "deploy")]],
    ["grant waivers in billing, where it holds nothing", ["p, user:x, billing, waivers, create, allow"], "rule", [perm("billing", "waivers", "create")]],
    [
      "grant waivers cluster-wide",
      ["p, user:x, *, waivers, create, allow"],
      "rule",
      [perm("*", "waivers", "create"), perm("billing", "waivers", "create")],
    ],
    [
      "bind a developer in payments",
      ["g, user:x, developer, payments"],
      "binding",
      [perm("payments", "deployments", "deploy"), perm("payments", "secrets", "use")],
    ],
    ["bind an auditor in payments", ["g, user:x, auditor, payments"], "binding", [perm("payments", "audit", "export")]],
  ])("cannot %s", (_name, add, kind, missing) => {
    const next = change(add);
    const issues = check("user:sec", next);
    expect(issues).toHaveLength(1);
    const [i] = issues;
    expect(i?.kind).toBe(kind);
    expect(i?.entry).toBe(add[0]);
    expect(i?.line).toBe(formatPolicyCsv(next).split("\n").indexOf(add[0] as string) + 1);
    expect(sortPerms(i?.missing ?? [])).toEqual(sortPerms(missing));
    expect(i?.reason).toMatch(new RegExp(`^user:sec cannot add "${add[0]?.replace(/\*/g, "\\*")}": it does not hold `));
  });

  it("names what it lacks in the reason", () => {
    const [i] = check("user:sec", change(["p, user:x, payments, secrets, read, allow"]));
    expect(i?.reason).toBe('user:sec cannot add "p, user:x, payments, secrets, read, allow": it does not hold secrets:read in payments');
  });

  it.each([
    ["grant waivers in payments", ["p, user:x, payments, waivers, create, allow"]],
    ["grant reading anything in payments", ["p, user:x, payments, *, read, allow", "p, user:x, payments, secrets, read, deny"]],
    ["bind another security-admin in payments (the role's secrets deny is not a grant)", ["g, user:x, security-admin, payments"]],
    ["add deny rules", ["p, user:x, *, *, *, deny", "p, developer, payments, deployments, deploy, deny"]],
  ])("can %s", (_name, add) => {
    expect(check("user:sec", change(add))).toEqual([]);
  });

  it("cannot lift a deny that keeps the admin from secret values", () => {
    const issues = check("user:sec", change([], ["p, platform-admin, *, secrets, read, deny"]));
    expect(issues.map((i) => [i.kind, i.entry])).toEqual([["deny-removal", "p, platform-admin, *, secrets, read, deny"]]);
    expect(sortPerms(issues[0]?.missing ?? [])).toEqual(sortPerms([perm("*", "secrets", "read"), perm("billing", "secrets", "read"), perm("payments", "secrets", "read")]));
    expect(issues[0]?.reason).toMatch(
      /^user:sec cannot remove "p, platform-admin, \*, secrets, read, deny": it lifts a deny for user:admin; it does not hold secrets:read in \* \(cluster-wide\), /,
    );
  });

  it("can remove a deny that lifts nothing (developers have no allow for secret values)", () => {
    expect(check("user:sec", change([], ["p, developer, *, secrets, read, deny"]))).toEqual([]);
  });
});

describe("removing a binding to a role with deny rules", () => {
  // user:x is a security-admin in payments, kept from waivers there by the `blocked` role.
  const before = assertValidPolicy(
    `${formatPolicyCsv(CURRENT)}p, blocked, payments, waivers, *, deny\ng, user:x, security-admin, payments\ng, user:x, blocked, payments\n`,
  );
  const after = assertValidPolicy(formatPolicyCsv(before).replace("g, user:x, blocked, payments\n", ""));
  const e = new FastEnforcer(before);

  it("is a grant: a caller without waivers in payments cannot do it", () => {
    const issues = checkNoEscalation(e, "user:carol", after, before);
    expect(issues.map((i) => [i.kind, i.entry, i.line])).toEqual([
      ["binding-removal", "g, user:x, blocked, payments", formatPolicyCsv(before).split("\n").indexOf("g, user:x, blocked, payments") + 1],
    ]);
    expect(issues[0]?.missing.map((p) => `${p.namespace} ${p.resource} ${p.action}`)).toEqual(
      ["create", "update", "delete", "deploy", "use", "approve", "export", "exec"].map((a) => `payments waivers ${a}`),
    );
    expect(issues[0]?.reason).toMatch(/^user:carol cannot remove "g, user:x, blocked, payments": it lifts a deny for user:x; it does not hold waivers:create in payments/);
  });

  it("a caller that holds waivers in payments can", () => {
    expect(checkNoEscalation(e, "user:sec", after, before)).toEqual([]);
  });

  it("removing a developer binding lifts nothing (no other role allows secret values)", () => {
    expect(check("user:nobody", change([], ["g, user:dev1, developer, billing"]))).toEqual([]);
  });
});

describe("a platform-admin bound cluster-wide", () => {
  it.each([
    ["grant deploy cluster-wide", ["p, developer, *, deployments, delete, allow"]],
    ["grant a new role everything but what the admin lacks", ["p, ops, *, *, *, allow", "p, ops, *, secrets, read, deny", "p, ops, *, audit, create, deny", "p, ops, *, audit, update, deny", "p, ops, *, audit, delete, deny"]],
    ["bind another platform-admin cluster-wide", ["g, user:x, platform-admin, *"]],
    ["bind a developer in a new namespace", ["g, user:x, developer, search"]],
    ["bind an auditor", ["g, user:x, auditor, *"]],
  ])("can %s", (_name, add) => {
    expect(check("user:admin", change(add))).toEqual([]);
  });

  it("cannot grant audit update, which it lacks by an explicit deny", () => {
    // Validation alone refuses such a rule; escalation refuses it as well.
    const next: Policy = { rules: [...CURRENT.rules, { subject: "user:x", namespace: "*", resource: "audit", action: "update", effect: "allow" }], bindings: CURRENT.bindings };
    const issues = check("user:admin", next);
    expect(issues).toHaveLength(1);
    expect(sortPerms(issues[0]?.missing ?? [])).toEqual(sortPerms([perm("*", "audit", "update"), perm("billing", "audit", "update"), perm("payments", "audit", "update")]));
  });

  it("cannot grant secret values through a wildcard", () => {
    const add = ["p, ops, *, *, *, allow", "p, ops, *, audit, create, deny", "p, ops, *, audit, update, deny", "p, ops, *, audit, delete, deny"];
    const issues = check("user:admin", change(add));
    expect(issues.map((i) => i.entry)).toEqual(["p, ops, *, *, *, allow"]);
    expect(sortPerms(issues[0]?.missing ?? [])).toEqual(sortPerms([perm("*", "secrets", "read"), perm("billing", "secrets", "read"), perm("payments", "secrets", "read")]));
  });

  it("cannot bind a role that inherits powers it lacks", () => {
    const add = ["p, reader, *, secrets, read, allow", "g, lead, reader, payments", "p, lead, *, approvals, approve, allow", "g, user:x, lead, payments"];
    const issues = check("user:admin", change(add));
    expect(issues.map((i) => [i.kind, i.entry])).toEqual([
      ["rule", "p, reader, *, secrets, read, allow"],
      ["binding", "g, lead, reader, payments"],
      ["binding", "g, user:x, lead, payments"],
    ]);
    expect(issues[2]?.missing).toEqual([perm("payments", "secrets", "read")]);
  });

  it("cannot remove the audit denies (removing a deny is a grant)", () => {
    // Validation alone refuses the resulting policy; escalation refuses it as well.
    const issues = check("user:admin", change([], ["p, platform-admin, *, audit, update, deny"], false));
    expect(issues.map((i) => [i.kind, i.entry])).toEqual([["deny-removal", "p, platform-admin, *, audit, update, deny"]]);
    expect(sortPerms(issues[0]?.missing ?? [])).toEqual(sortPerms([perm("*", "audit", "update"), perm("billing", "audit", "update"), perm("payments", "audit", "update")]));
  });

  it("can remove a deny on a power it holds", () => {
    const withDeny = assertValidPolicy(`${formatPolicyCsv(CURRENT)}p, developer, payments, deployments, deploy, deny\n`);
    const e = new FastEnforcer(withDeny);
    expect(checkNoEscalation(e, "user:admin", CURRENT, withDeny)).toEqual([]);
  });
});

describe("removals", () => {
  it.each([
    ["user:admin", "an allow rule", ["p, developer, *, deployments, deploy, allow"]],
    ["user:sec", "a binding", ["g, user:dev1, developer, billing"]],
    ["user:nobody", "every allow rule and binding of a role", ["p, auditor, *, *, read, allow", "p, auditor, *, audit, read, allow", "p, auditor, *, audit, export, allow", "g, user:carol, auditor, *"]],
    ["user:nobody", "the live admin binding", ["g, user:admin, platform-admin, *"]],
  ])("%s may remove %s", (caller, _what, remove) => {
    expect(check(caller, change([], remove))).toEqual([]);
  });

  it("an unchanged or reordered policy needs nothing", () => {
    expect(check("user:nobody", CURRENT)).toEqual([]);
    const reordered: Policy = { rules: [...CURRENT.rules].reverse(), bindings: [...CURRENT.bindings].reverse() };
    expect(check("user:nobody", reordered)).toEqual([]);
  });

  it("an identity with no powers can grant nothing", () => {
    const issues = check("user:nobody", change(["p, user:x, payments, alerts, read, allow"]));
    expect(issues.map((i) => i.missing)).toEqual([[perm("payments", "alerts", "read")]]);
  });
});

describe("fail closed", () => {
  it("counts a permission as not held when the enforcer throws", () => {
    const broken: PolicyEnforcer = {
      decide: () => {
        throw new Error("store unreadable");
      },
    };
    const issues = checkNoEscalation(broken, "user:admin", change(["p, user:x, payments, alerts, read, allow"]), CURRENT);
    expect(issues.map((i) => i.missing)).toEqual([[perm("payments", "alerts", "read")]]);
  });

  it("counts a removal as lifting when the new policy's enforcer throws", () => {
    const broken = () => ({
      decide: (): never => {
        throw new Error("cannot build");
      },
    });
    const next = change([], ["p, developer, *, secrets, read, deny"]);
    expect(checkNoEscalation(enforcer, "user:sec", next, CURRENT)).toEqual([]);
    const issues = checkNoEscalation(enforcer, "user:sec", next, CURRENT, broken);
    expect(issues.map((i) => i.kind)).toEqual(["deny-removal"]);
  });

  it("expands * to every resource and action", () => {
    const issues = check("user:nobody", change(["p, ops, search, *, *, allow", "p, ops, search, audit, create, deny", "p, ops, search, audit, update, deny", "p, ops, search, audit, delete, deny"]));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.missing).toHaveLength(RESOURCES.length * ACTIONS.length - 3);
    expect(issues[0]?.reason).toMatch(/ and \d+ more$/);
  });
});
