/**
 * Differential test: FastEnforcer against stock node-casbin on random policies and
 * random requests (seeded, so every run sees the same ones). Both the decision and the
 * reported rule must agree on every request.
 *
 * Stock Casbin scans every rule per request (about 290 requests/s at 1,000 rules and
 * 10,000 bindings), so the 100,000-request sample runs on four moderately sized
 * policies, and a further sample on one policy of the full size.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { StockCasbinEnforcer } from "../../src/rbac/casbin-enforcer.js";
import { FastEnforcer } from "../../src/rbac/fast-enforcer.js";
import { ACTIONS, RESOURCES, type Effect, type Policy, type PolicyRule, type RoleBinding } from "../../src/rbac/types.js";
import { prng } from "../support/prng.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const MODEL = readFileSync(resolve(ROOT, "policies/rbac/model.conf"), "utf8");


interface Shape {
  readonly seed: number;
  readonly rules: number;
  readonly bindings: number;
  readonly namespaces: number;
  readonly roles: number;
  readonly identities: number;
}

interface World {
  readonly policy: Policy;
  readonly namespaces: readonly string[];
  readonly roles: readonly string[];
  readonly identities: readonly string[];
  readonly rand: () => number;
}

const CHAIN = 13; // longer than Casbin's 10 links
const CYCLE = ["cyc-a", "cyc-b", "cyc-c"];
const ODD_NAMES = ["", "*", "__proto__", "constructor", "toString", "user:u1 ", "USER:U1", "role-0*", "a b"];
const UNKNOWN_RESOURCES = ["Deployments", "secret", "", "__proto__", "deployments ", "x"];
const UNKNOWN_ACTIONS = ["Read", "list", "", "constructor", "*read", "y"];

function generate(shape: Shape): World {
  const rand = prng(shape.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const namespaces = Array.from({ length: shape.namespaces }, (_, i) => `ns-${i}`);
  const plainRoles = Array.from({ length: shape.roles }, (_, i) => `role-${i}`);
  const chain = Array.from({ length: CHAIN }, (_, i) => `chain-${i}`);
  const roles = [...plainRoles, ...chain, ...CYCLE];
  const identities = Array.from({ length: shape.identities }, (_, i) => `user:u${i}`);
  const ns = () => (rand() < 0.2 ? "*" : pick(namespaces));

  const bindings: RoleBinding[] = [];
  // A chain longer than Casbin follows, in ns-0 and (its first half) in *; a cycle in ns-1 and in *.
  for (let i = 0; i + 1 < CHAIN; i++) bindings.push({ member: chain[i] as string, role: chain[i + 1] as string, namespace: "ns-0" });
  for (let i = 0; i + 1 < CHAIN / 2; i++) bindings.push({ member: chain[i] as string, role: chain[i + 1] as string, namespace: "*" });
  for (const dom of ["ns-1", "*"]) {
    CYCLE.forEach((r, i) => bindings.push({ member: r, role: CYCLE[(i + 1) % CYCLE.length] as string, namespace: dom }));
  }
  for (let i = 0; i < 4; i++) {
    bindings.push({ member: pick(identities), role: "chain-0", namespace: pick(["ns-0", "*"]) });
    bindings.push({ member: pick(identities), role: pick(CYCLE), namespace: pick(["ns-1", "*"]) });
  }
  // Role inheritance between plain roles, or into the chain and the cycle: about one link
  // per role (stock Casbin searches role graphs depth-first without memory, so dense ones
  // would make the reference slow, not the comparison better).
  for (let i = 0; i < shape.roles; i++) bindings.push({ member: pick(plainRoles), role: pick(roles), namespace: ns() });
  const bound = identities.slice(0, Math.ceil(identities.length * 0.8)); // the rest have no binding
  while (bindings.length < shape.bindings) {
    bindings.push({ member: pick(bound), role: pick(roles), namespace: rand() < 0.15 ? "*" : pick(namespaces) });
  }

  const rules: PolicyRule[] = [];
  // Every chain role and cycle role holds something, so depth and cycles show in answers.
  chain.forEach((r, i) => rules.push({ subject: r, namespace: pick(["*", "ns-0"]), resource: pick(RESOURCES), action: pick(ACTIONS), effect: i % 5 === 4 ? "deny" : "allow" }));
  for (const r of CYCLE) rules.push({ subject: r, namespace: pick(["*", "ns-1"]), resource: pick(RESOURCES), action: "*", effect: "allow" });
  while (rules.length < shape.rules) {
    const x = rand();
    const subject = x < 0.8 ? pick(roles) : x < 0.97 ? pick(identities) : pick(["*", "unbound-role"]);
    const effect: Effect = rand() < 0.15 ? "deny" : "allow";
    rules.push({
      subject,
      namespace: ns(),
      resource: rand() < 0.12 ? "*" : pick(RESOURCES),
      action: rand() < 0.12 ? "*" : pick(ACTIONS),
      effect,
    });
  }
  return { policy: { rules, bindings }, namespaces, roles, identities, rand };
}

type Request = readonly [subject: string, namespace: string, resource: string, action: string];

function requests(w: World, n: number): Request[] {
  const { rand, policy } = w;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const ghosts = Array.from({ length: 20 }, (_, i) => `user:ghost${i}`);
  const namespace = (): string => {
    const x = rand();
    return x < 0.8 ? pick(w.namespaces) : x < 0.9 ? "*" : x < 0.97 ? `ns-unknown-${Math.floor(rand() * 5)}` : pick(ODD_NAMES);
  };
  const holdersByRole = new Map<string, RoleBinding[]>();
  for (const b of policy.bindings) holdersByRole.set(b.role, [...(holdersByRole.get(b.role) ?? []), b]);
  const denies = policy.rules.filter((r) => r.effect === "deny");
  const out: Request[] = [];
  for (let i = 0; i < n; i++) {
    const x = rand();
    if (x < 0.4) {
      // Aim at a rule: someone who holds its subject, where the holding applies.
      const r = rand() < 0.3 ? pick(denies) : pick(policy.rules);
      const holders = holdersByRole.get(r.subject) ?? [];
      const fitting = holders.filter((b) => r.namespace === "*" || b.namespace === "*" || b.namespace === r.namespace);
      const b = fitting.length > 0 && rand() < 0.9 ? pick(fitting) : holders.length > 0 ? pick(holders) : undefined;
      const subject = b?.member ?? r.subject;
      const ns = r.namespace !== "*" ? r.namespace : b && b.namespace !== "*" ? b.namespace : namespace();
      const resource = r.resource === "*" || rand() < 0.1 ? pick(RESOURCES) : r.resource;
      const action = r.action === "*" || rand() < 0.1 ? pick(ACTIONS) : r.action;
      out.push([subject, ns, resource, action]);
      continue;
    }
    // Anyone else, asking for anything: identities with and without bindings, unknown
    // identities, role names, odd strings.
    const subject = x < 0.6 ? pick(w.identities) : x < 0.67 ? pick(ghosts) : x < 0.93 ? pick(w.roles) : pick(ODD_NAMES);
    const ns = namespace();
    const y = rand();
    const resource = y < 0.85 ? pick(RESOURCES) : y < 0.93 ? "*" : pick(UNKNOWN_RESOURCES);
    const z = rand();
    const action = z < 0.85 ? pick(ACTIONS) : z < 0.93 ? "*" : pick(UNKNOWN_ACTIONS);
    out.push([subject, ns, resource, action]);
  }
  return out;
}

interface Outcome {
  readonly total: number;
  readonly allowed: number;
  readonly deniedByRule: number;
  readonly defaultDeny: number;
  readonly mismatches: number;
  readonly firstMismatches: readonly string[];
}

async function compare(shape: Shape, n: number): Promise<Outcome> {
  const w = generate(shape);
  const stock = await StockCasbinEnforcer.create(MODEL, w.policy);
  const fast = new FastEnforcer(w.policy);
  let allowed = 0;
  let deniedByRule = 0;
  let defaultDeny = 0;
  let mismatches = 0;
  const firstMismatches: string[] = [];
  for (const [s, d, o, a] of requests(w, n)) {
    const want = stock.decide(s, d, o, a);
    const got = fast.decide(s, d, o, a);
    if (want.allowed) allowed++;
    else if (want.rule === "default-deny") defaultDeny++;
    else deniedByRule++;
    if (got.allowed !== want.allowed || got.rule !== want.rule) {
      mismatches++;
      if (firstMismatches.length < 5) {
        firstMismatches.push(`${JSON.stringify([s, d, o, a])}: casbin ${JSON.stringify(want)}, fast ${JSON.stringify(got)}`);
      }
    }
  }
  return { total: n, allowed, deniedByRule, defaultDeny, mismatches, firstMismatches };
}

function expectAgreement(o: Outcome, minShare: number): void {
  expect(o.firstMismatches, `${o.mismatches} of ${o.total} requests differ`).toEqual([]);
  expect(o.mismatches).toBe(0);
  // The sample must exercise every kind of answer.
  expect(o.allowed, "allowed").toBeGreaterThan(o.total * minShare);
  expect(o.deniedByRule, "denied by an explicit deny rule").toBeGreaterThan(o.total * minShare);
  expect(o.defaultDeny, "denied by default").toBeGreaterThan(o.total * minShare);
}

const MODERATE: readonly Shape[] = [
  { seed: 101, rules: 50, bindings: 400, namespaces: 8, roles: 8, identities: 80 },
  { seed: 202, rules: 60, bindings: 1000, namespaces: 20, roles: 12, identities: 200 },
  { seed: 303, rules: 40, bindings: 200, namespaces: 5, roles: 5, identities: 40 },
  { seed: 404, rules: 70, bindings: 1500, namespaces: 30, roles: 15, identities: 300 },
];
const PER_MODERATE = 25_000;

describe("FastEnforcer agrees with stock Casbin", () => {
  const totals = { total: 0, allowed: 0, deniedByRule: 0, defaultDeny: 0 };

  it.each(MODERATE)(`on ${PER_MODERATE.toLocaleString("en-US")} random requests, policy seed $seed ($rules rules, $bindings bindings, $namespaces namespaces)`, async (shape) => {
    const o = await compare(shape, PER_MODERATE);
    expectAgreement(o, 0.05);
    totals.total += o.total;
    totals.allowed += o.allowed;
    totals.deniedByRule += o.deniedByRule;
    totals.defaultDeny += o.defaultDeny;
  });

  it("on at least 100,000 requests in all, of every kind", () => {
    expect(totals.total).toBeGreaterThanOrEqual(100_000);
    expect(totals.allowed + totals.deniedByRule + totals.defaultDeny).toBe(totals.total);
    for (const k of ["allowed", "deniedByRule", "defaultDeny"] as const) expect(totals[k], k).toBeGreaterThan(10_000);
  });

  it("on 2,000 random requests against a full-size policy (1,000 rules, 10,000 bindings, 100 namespaces)", async () => {
    const o = await compare({ seed: 505, rules: 1000, bindings: 10_000, namespaces: 100, roles: 40, identities: 2000 }, 2000);
    expectAgreement(o, 0.03);
  });
});
