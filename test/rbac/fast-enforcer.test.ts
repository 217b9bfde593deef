import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { StockCasbinEnforcer } from "../../src/rbac/casbin-enforcer.js";
import { FastEnforcer, MAX_HIERARCHY_LEVEL } from "../../src/rbac/fast-enforcer.js";
import type { Effect, Policy, PolicyRule, RoleBinding } from "../../src/rbac/types.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MODEL = readFileSync(resolve(ROOT, "policies/rbac/model.conf"), "utf8");

/** `p, a, b, c, d, e` / `g, a, b, c` lines to a Policy. */
function policyOf(lines: readonly string[]): Policy {
  const rules: PolicyRule[] = [];
  const bindings: RoleBinding[] = [];
  for (const line of lines) {
    const [kind, ...f] = line.split(",").map((s) => s.trim());
    if (kind === "p") {
      const [subject, namespace, resource, action, effect] = f as [string, string, string, string, string];
      rules.push({ subject, namespace, resource, action, effect } as PolicyRule);
    } else if (kind === "g") {
      const [member, role, namespace] = f as [string, string, string];
      bindings.push({ member, role, namespace });
    } else {
      throw new Error(`bad line ${line}`);
    }
  }
  return { rules, bindings };
}

const POLICY = policyOf([
  "p, platform-admin, *, *, *, allow",
  "p, platform-admin, *, secrets, read, deny",
  "p, platform-admin, *, audit, update, deny",
  "p, developer, *, deployments, deploy, allow",
  "p, developer, *, deployments, read, allow",
  "p, developer, *, secrets, use, allow",
  "p, developer, *, secrets, read, deny",
  "p, payments-ops, payments, nodes, read, allow",
  "p, payments-ops, payments, nodes, *, allow",
  "p, senior-dev, *, approvals, approve, allow",
  "p, user:carol, *, alerts, read, allow",
  "p, user:carol, billing, alerts, update, allow",
  "p, user:mallory, *, *, *, allow",
  "p, user:mallory, payments, secrets, *, deny",
  "p, developer, frozen, deployments, deploy, deny",
  "g, user:alice, developer, payments",
  "g, user:bob, platform-admin, *",
  "g, user:dave, senior-dev, payments",
  "g, senior-dev, developer, payments",
  "g, user:erin, developer, *",
  "g, user:frank, payments-ops, payments",
  "g, user:frank, developer, frozen",
]);

type Case = readonly [why: string, subject: string, namespace: string, resource: string, action: string, allowed: boolean, rule: string];

const CASES: readonly Case[] = [
  // a binding in one namespace
  ["binding in payments grants in payments", "user:alice", "payments", "deployments", "deploy", true, "p, developer, *, deployments, deploy, allow"],
  ["binding in payments does not grant in billing", "user:alice", "billing", "deployments", "deploy", false, "default-deny"],
  ["binding in payments does not grant cluster-wide", "user:alice", "*", "deployments", "deploy", false, "default-deny"],
  ["explicit deny beats a matching allow", "user:alice", "payments", "secrets", "read", false, "p, developer, *, secrets, read, deny"],
  ["a * namespace rule applies in the bound namespace", "user:alice", "payments", "secrets", "use", true, "p, developer, *, secrets, use, allow"],
  // a binding in *
  ["a * binding grants in any namespace", "user:erin", "billing", "deployments", "read", true, "p, developer, *, deployments, read, allow"],
  ["a * binding grants in a namespace nobody else uses", "user:erin", "brand-new", "deployments", "read", true, "p, developer, *, deployments, read, allow"],
  ["a * binding grants cluster-wide", "user:erin", "*", "deployments", "read", true, "p, developer, *, deployments, read, allow"],
  ["a namespace deny reaches a * binding", "user:erin", "frozen", "deployments", "deploy", false, "p, developer, frozen, deployments, deploy, deny"],
  ["platform-admin everywhere", "user:bob", "payments", "nodes", "delete", true, "p, platform-admin, *, *, *, allow"],
  ["platform-admin cannot read secret values", "user:bob", "payments", "secrets", "read", false, "p, platform-admin, *, secrets, read, deny"],
  ["nobody edits the audit log", "user:bob", "*", "audit", "update", false, "p, platform-admin, *, audit, update, deny"],
  // * in a request is a literal
  ["a request for resource * matches only rules for *", "user:bob", "payments", "*", "*", true, "p, platform-admin, *, *, *, allow"],
  ["a request for resource * does not match a specific rule", "user:alice", "payments", "*", "deploy", false, "default-deny"],
  ["a request for action * does not match a specific rule", "user:alice", "payments", "deployments", "*", false, "default-deny"],
  // inheritance
  ["inheritance: senior-dev gets developer in payments", "user:dave", "payments", "deployments", "deploy", true, "p, developer, *, deployments, deploy, allow"],
  ["inheritance: and its own rules", "user:dave", "payments", "approvals", "approve", true, "p, senior-dev, *, approvals, approve, allow"],
  ["inheritance does not cross namespaces", "user:dave", "billing", "approvals", "approve", false, "default-deny"],
  ["a namespace rule outside its namespace", "user:frank", "billing", "nodes", "read", false, "default-deny"],
  ["the last matching allow is reported", "user:frank", "payments", "nodes", "read", true, "p, payments-ops, payments, nodes, *, allow"],
  ["a binding in frozen plus its deny", "user:frank", "frozen", "deployments", "deploy", false, "p, developer, frozen, deployments, deploy, deny"],
  ["a binding in frozen grants its allows", "user:frank", "frozen", "deployments", "read", true, "p, developer, *, deployments, read, allow"],
  // identities named in rules
  ["direct identity rule, * namespace", "user:carol", "payments", "alerts", "read", true, "p, user:carol, *, alerts, read, allow"],
  ["direct identity rule, one namespace", "user:carol", "billing", "alerts", "update", true, "p, user:carol, billing, alerts, update, allow"],
  ["direct identity rule, other namespace", "user:carol", "payments", "alerts", "update", false, "default-deny"],
  ["direct identity deny beats its allow", "user:mallory", "payments", "secrets", "use", false, "p, user:mallory, payments, secrets, *, deny"],
  ["direct identity allow elsewhere", "user:mallory", "billing", "secrets", "use", true, "p, user:mallory, *, *, *, allow"],
  // a role name as the subject: a name always holds itself, in any namespace
  ["a role name as subject gets the role's rules", "developer", "anywhere", "deployments", "deploy", true, "p, developer, *, deployments, deploy, allow"],
  ["a role name as subject gets the role's denies", "platform-admin", "x", "secrets", "read", false, "p, platform-admin, *, secrets, read, deny"],
  ["a role name does not get roles it is inherited by", "developer", "payments", "approvals", "approve", false, "default-deny"],
  // unknown input
  ["unknown subject", "user:nobody", "payments", "deployments", "deploy", false, "default-deny"],
  ["unknown resource", "user:alice", "payments", "Deployments", "deploy", false, "default-deny"],
  ["unknown action", "user:alice", "payments", "deployments", "Deploy", false, "default-deny"],
  ["empty strings", "", "", "", "", false, "default-deny"],
  ["prototype names are plain strings", "__proto__", "constructor", "toString", "hasOwnProperty", false, "default-deny"],
  ["case matters in subjects", "USER:ALICE", "payments", "deployments", "deploy", false, "default-deny"],
];

describe("FastEnforcer: hand-written cases, checked against stock Casbin", () => {
  let stock: StockCasbinEnforcer;
  const fast = new FastEnforcer(POLICY);
  beforeAll(async () => {
    stock = await StockCasbinEnforcer.create(MODEL, POLICY);
  });

  it.each(CASES)("%s", (_why, sub, ns, res, act, allowed, rule) => {
    expect(fast.decide(sub, ns, res, act)).toEqual({ allowed, rule });
    expect(stock.decide(sub, ns, res, act)).toEqual({ allowed, rule });
    expect(stock.allows(sub, ns, res, act)).toBe(allowed);
  });

  it("keeps no state between decisions: the same answers twice, in any order", () => {
    const again = new FastEnforcer(POLICY);
    for (const [, sub, ns, res, act, allowed, rule] of [...CASES].reverse()) {
      expect(again.decide(sub, ns, res, act)).toEqual({ allowed, rule });
    }
    for (const [, sub, ns, res, act, allowed, rule] of CASES) expect(again.decide(sub, ns, res, act)).toEqual({ allowed, rule });
  });

  it("lists the names that apply to a subject", () => {
    expect(fast.namesFor("user:dave", "payments")).toEqual(["developer", "senior-dev", "user:dave"]);
    expect(fast.namesFor("user:dave", "billing")).toEqual(["user:dave"]);
    expect(fast.namesFor("user:erin", "billing")).toEqual(["developer", "user:erin"]);
  });
});

describe("FastEnforcer: rule order decides which rule is reported", () => {
  const order = policyOf([
    "p, a, *, nodes, read, allow",
    "p, b, *, nodes, *, deny",
    "p, b, ns, *, read, allow",
    "p, a, ns, nodes, read, deny",
    "p, a, ns, nodes, *, allow",
    "g, u, a, ns",
    "g, u, b, ns",
  ]);
  it.each([
    ["first matching deny", "u", "ns", "nodes", "read", false, "p, b, *, nodes, *, deny"],
    ["last matching allow", "u", "ns", "audit", "read", true, "p, b, ns, *, read, allow"],
    ["last matching allow among several", "a", "ns", "nodes", "update", true, "p, a, ns, nodes, *, allow"],
    ["a deny rule is found whatever its position", "a", "ns", "nodes", "read", false, "p, a, ns, nodes, read, deny"],
  ] as const)("%s", async (_why, sub, ns, res, act, allowed, rule) => {
    const stock = await StockCasbinEnforcer.create(MODEL, order);
    expect(stock.decide(sub, ns, res, act)).toEqual({ allowed, rule });
    expect(new FastEnforcer(order).decide(sub, ns, res, act)).toEqual({ allowed, rule });
  });

  it("repeated rules are kept in place, as Casbin's file adapter keeps them", async () => {
    const dup = policyOf(["p, a, *, nodes, read, allow", "p, a, *, nodes, *, allow", "p, a, *, nodes, read, allow"]);
    const stock = await StockCasbinEnforcer.create(MODEL, dup);
    const want = { allowed: true, rule: "p, a, *, nodes, read, allow" };
    expect(stock.decide("a", "x", "nodes", "read")).toEqual(want);
    expect(new FastEnforcer(dup).decide("a", "x", "nodes", "read")).toEqual(want);
  });

  it("a rule with an effect other than allow or deny never decides", async () => {
    const odd: Policy = {
      rules: [
        { subject: "a", namespace: "*", resource: "nodes", action: "read", effect: "maybe" as Effect },
        { subject: "a", namespace: "*", resource: "nodes", action: "*", effect: "allow" },
      ],
      bindings: [],
    };
    const stock = await StockCasbinEnforcer.create(MODEL, odd);
    for (const act of ["read", "update"]) {
      expect(new FastEnforcer(odd).decide("a", "x", "nodes", act)).toEqual(stock.decide("a", "x", "nodes", act));
    }
    expect(new FastEnforcer({ rules: odd.rules.slice(0, 1), bindings: [] }).decide("a", "x", "nodes", "read").allowed).toBe(false);
  });
});

describe("FastEnforcer: role hierarchy depth and cycles, as Casbin's role manager", () => {
  // user -> r0 -> r1 -> ... -> r11 in namespace "deep"; each ri may read a resource of its own.
  const N = 12;
  const lines = ["g, user:deep, r0, deep"];
  for (let i = 0; i + 1 < N; i++) lines.push(`g, r${i}, r${i + 1}, deep`);
  for (let i = 0; i < N; i++) lines.push(`p, r${i}, *, res-${i}, read, allow`);
  lines.push("g, c1, c2, loop", "g, c2, c3, loop", "g, c3, c1, loop", "g, user:loop, c1, loop", "p, c3, loop, nodes, read, allow");
  lines.push("p, c1, loop, nodes, update, deny");
  const deep = policyOf(lines);
  let stock: StockCasbinEnforcer;
  const fast = new FastEnforcer(deep);
  beforeAll(async () => {
    stock = await StockCasbinEnforcer.create(MODEL, deep);
  });

  it(`follows at most ${MAX_HIERARCHY_LEVEL} links`, () => {
    for (let i = 0; i < N; i++) {
      const want = i < MAX_HIERARCHY_LEVEL; // user:deep reaches r(i) over i + 1 links
      expect(fast.decide("user:deep", "deep", `res-${i}`, "read").allowed, `r${i}`).toBe(want);
      expect(stock.decide("user:deep", "deep", `res-${i}`, "read").allowed, `r${i} (stock)`).toBe(want);
      // from r0 itself, r(i) is i links away
      expect(fast.decide("r0", "deep", `res-${i}`, "read").allowed).toBe(i <= MAX_HIERARCHY_LEVEL);
      expect(stock.decide("r0", "deep", `res-${i}`, "read").allowed).toBe(i <= MAX_HIERARCHY_LEVEL);
    }
  });

  it("terminates on cycles and finds every role of the cycle", () => {
    for (const sub of ["user:loop", "c1", "c2", "c3"]) {
      for (const act of ["read", "update"]) {
        expect(fast.decide(sub, "loop", "nodes", act)).toEqual(stock.decide(sub, "loop", "nodes", act));
      }
    }
    expect(fast.decide("user:loop", "loop", "nodes", "read").allowed).toBe(true);
    expect(fast.decide("c2", "loop", "nodes", "update").allowed).toBe(false);
    expect(fast.namesFor("c2", "loop")).toEqual(["c1", "c2", "c3"]);
  });
});

describe("FastEnforcer: empty policies", () => {
  it("denies everything with no rules, where stock Casbin allows the all-empty request", async () => {
    const empty: Policy = { rules: [], bindings: [] };
    const stock = await StockCasbinEnforcer.create(MODEL, empty);
    // Casbin evaluates the matcher once with empty policy values when there are no rules.
    expect(stock.allows("", "", "", "")).toBe(true);
    expect(new FastEnforcer(empty).decide("", "", "", "")).toEqual({ allowed: false, rule: "default-deny" });
    expect(stock.decide("user:a", "ns", "nodes", "read")).toEqual({ allowed: false, rule: "default-deny" });
    expect(new FastEnforcer(empty).decide("user:a", "ns", "nodes", "read")).toEqual({ allowed: false, rule: "default-deny" });
  });
});
