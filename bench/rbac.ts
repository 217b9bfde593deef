/**
 * Benchmark 4: RBAC decisions on one core, FastEnforcer vs stock node-casbin.
 *
 * Policies (seeded, generated here): the size, 1,000 `p` rules (15% deny) and
 * 10,000 role bindings over 100 namespaces; and one ten times larger, 10,000 rules and
 * 100,000 bindings over 1,000 namespaces. Both have rules for `*` namespaces, resources
 * and actions, bindings in `*`, rules naming identities and a little role inheritance.
 *
 * Requests: 200,000 distinct random (subject, namespace, resource, action) per policy,
 * each decided once per run: no decision cache can help. Most ask as someone holding a
 * binding in that namespace; others ask elsewhere, as unknown identities or for `*`.
 * FastEnforcer resolves role links when it is built (build time shown apart) and keeps
 * no state that requests fill: each run decides all the requests once. Stock Casbin
 * (`enforceSync`, the baseline) decides the same requests, in order, for a bounded time
 * per run, so that it too sees each request once.
 *
 * Targets: ours >= 20,000 decisions/s and >= 50x stock on the policy; ours on
 * the larger policy >= 0.5x ours on the issue's.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { FastEnforcer } from "../src/rbac/fast-enforcer.js";
import { StockCasbinEnforcer } from "../src/rbac/casbin-enforcer.js";
import { ACTIONS, RESOURCES, type Effect, type Policy, type PolicyRule, type RoleBinding } from "../src/rbac/types.js";
import { canPin, cpuMs, ROOT, runBenchmark } from "./lib/proc.js";
import { cpuRate, fmtRate, fmtRatio, judge, median, rate, table, timedLoop, verdict, type BenchResult, type Sample } from "./lib/stats.js";
import { prng } from "../test/support/prng.js";

const REPS = 3;
const REQUESTS = Number(process.env.BENCH_RBAC_REQUESTS ?? 200_000);
const STOCK_MS = Number(process.env.BENCH_RBAC_STOCK_MS ?? 1000); // per run: 3 runs per policy
const TARGET_RATE = 20_000;
const TARGET_VS_STOCK = 50;
const TARGET_LARGE = 0.5;

interface Shape {
  readonly key: string;
  readonly label: string;
  readonly seed: number;
  readonly rules: number;
  readonly bindings: number;
  readonly namespaces: number;
  readonly roles: number;
  readonly identities: number;
}

const SHAPES: readonly Shape[] = [
  { key: "small", label: "1,000 rules / 10,000 bindings / 100 ns", seed: 7, rules: 1000, bindings: 10_000, namespaces: 100, roles: 50, identities: 2500 },
  { key: "large", label: "10,000 rules / 100,000 bindings / 1,000 ns", seed: 8, rules: 10_000, bindings: 100_000, namespaces: 1000, roles: 500, identities: 25_000 },
];

type Request = readonly [subject: string, namespace: string, resource: string, action: string];


function generate(s: Shape): { policy: Policy; requests: Request[] } {
  const rand = prng(s.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const namespaces = Array.from({ length: s.namespaces }, (_, i) => `team-${i}`);
  const roles = Array.from({ length: s.roles }, (_, i) => `role-${i}`);
  const identities = Array.from({ length: s.identities }, (_, i) => `user:u${i}`);

  const rules: PolicyRule[] = [];
  for (let i = 0; i < s.rules; i++) {
    const effect: Effect = rand() < 0.15 ? "deny" : "allow";
    rules.push({
      subject: rand() < 0.9 ? pick(roles) : pick(identities),
      namespace: rand() < 0.2 ? "*" : pick(namespaces),
      resource: rand() < 0.1 ? "*" : pick(RESOURCES),
      action: rand() < 0.1 ? "*" : pick(ACTIONS),
      effect,
    });
  }
  const bindings: RoleBinding[] = [];
  // A little role inheritance (one link per 20 roles), as authored policies have.
  for (let i = 0; i < s.roles / 20; i++) bindings.push({ member: pick(roles), role: pick(roles), namespace: rand() < 0.5 ? "*" : pick(namespaces) });
  while (bindings.length < s.bindings) {
    bindings.push({ member: pick(identities), role: pick(roles), namespace: rand() < 0.05 ? "*" : pick(namespaces) });
  }

  const seen = new Set<string>();
  const requests: Request[] = [];
  const unknown = Array.from({ length: 1000 }, (_, i) => `user:stranger${i}`);
  while (requests.length < REQUESTS) {
    const x = rand();
    let subject: string;
    let ns: string;
    if (x < 0.7) {
      const b = pick(bindings);
      subject = b.member;
      ns = b.namespace === "*" ? pick(namespaces) : b.namespace;
    } else {
      subject = x < 0.9 ? pick(identities) : pick(unknown);
      ns = rand() < 0.05 ? "*" : pick(namespaces);
    }
    const resource = rand() < 0.02 ? "*" : pick(RESOURCES);
    const action = rand() < 0.02 ? "*" : pick(ACTIONS);
    const key = `${subject}\n${ns}\n${resource}\n${action}`;
    if (seen.has(key)) continue;
    seen.add(key);
    requests.push([subject, ns, resource, action]);
  }
  return { policy: { rules, bindings }, requests };
}

interface Measured {
  readonly ours: Sample[];
  readonly stock: Sample[];
  readonly buildMs: number;
  readonly stockBuildMs: number;
  readonly allowedShare: number;
  readonly deniedByRuleShare: number;
  readonly checked: number;
  readonly disagreements: number;
}

/** Decides every request once. */
function oursRun(f: FastEnforcer, requests: readonly Request[]): Sample & { allowed: number; byRule: number } {
  let allowed = 0;
  let byRule = 0;
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let i = 0; i < requests.length; i++) {
    const r = requests[i] as Request;
    const d = f.decide(r[0], r[1], r[2], r[3]);
    if (d.allowed) allowed++;
    else if (d.rule !== "default-deny") byRule++;
  }
  return { ops: requests.length, ms: performance.now() - t0, cpuMs: cpuMs() - c0, allowed, byRule };
}

async function measure(shape: Shape, model: string): Promise<Measured> {
  const { policy, requests } = generate(shape);
  let t = performance.now();
  const fast = new FastEnforcer(policy);
  const buildMs = performance.now() - t;
  t = performance.now();
  const stock = await StockCasbinEnforcer.create(model, policy);
  const stockBuildMs = performance.now() - t;

  oursRun(fast, requests); // warm-up
  const ours: Sample[] = [];
  const stockRuns: Sample[] = [];
  let next = 0; // stock goes on through the same requests, each decided once
  let outcome = { allowed: 0, byRule: 0 };
  for (let rep = 0; rep < REPS; rep++) {
    const o = oursRun(fast, requests);
    outcome = o;
    ours.push(o);
    const start = next;
    const s = timedLoop(STOCK_MS, requests.length - start, (i) => {
      const r = requests[start + i] as Request;
      stock.allows(r[0], r[1], r[2], r[3]);
    });
    next += s.ops;
    stockRuns.push(s);
  }
  // The answers agree on what stock decided (the differential test checks this at length).
  let disagreements = 0;
  const checked = Math.min(next, 300);
  for (let i = 0; i < checked; i++) {
    const r = requests[i] as Request;
    const a = stock.decide(r[0], r[1], r[2], r[3]);
    const b = fast.decide(r[0], r[1], r[2], r[3]);
    if (a.allowed !== b.allowed || a.rule !== b.rule) disagreements++;
  }
  return {
    ours,
    stock: stockRuns,
    buildMs,
    stockBuildMs,
    allowedShare: outcome.allowed / requests.length,
    deniedByRuleShare: outcome.byRule / requests.length,
    checked,
    disagreements,
  };
}

async function main(): Promise<BenchResult> {
  const model = readFileSync(resolve(ROOT, "policies/rbac/model.conf"), "utf8");
  const results = new Map<string, Measured>();
  for (const s of SHAPES) results.set(s.key, await measure(s, model));
  const get = (k: string) => results.get(k) as Measured;
  const wall = (xs: readonly Sample[]) => median(xs.map(rate));
  const perCpu = (xs: readonly Sample[]) => median(xs.map(cpuRate));
  const shares = [...results.values()].flatMap((m) => [...m.ours, ...m.stock].map((x) => (x.ms > 0 ? x.cpuMs / x.ms : 1)));

  const small = get("small");
  const large = get("large");
  const oursSmall = judge(wall(small.ours), perCpu(small.ours), shares);
  const oursLarge = judge(wall(large.ours), perCpu(large.ours), shares);
  const stockSmall = judge(wall(small.stock), perCpu(small.stock), shares);
  const stockLarge = judge(wall(large.stock), perCpu(large.stock), shares);
  const vsStock = oursSmall.value / stockSmall.value;
  const vsStockLarge = oursLarge.value / stockLarge.value;
  const largeRatio = oursLarge.value / oursSmall.value;
  const pass = oursSmall.value >= TARGET_RATE && vsStock >= TARGET_VS_STOCK && largeRatio >= TARGET_LARGE;

  const rows = SHAPES.flatMap((s) => {
    const m = get(s.key);
    return [
      { name: `FastEnforcer.decide, ${s.label}`, runs: m.ours.map(rate), perCpu: m.ours.map(cpuRate), note: `build ${m.buildMs.toFixed(0)} ms` },
      {
        name: `baseline: casbin enforceSync, ${s.label}`,
        runs: m.stock.map(rate),
        perCpu: m.stock.map(cpuRate),
        note: `${m.stock.reduce((a, x) => a + x.ops, 0)} requests; build ${m.stockBuildMs.toFixed(0)} ms`,
      },
    ];
  });
  const pin = canPin() && process.send ? "taskset -c 0" : "one thread, not pinned";
  const title = `Benchmark 4: RBAC decisions, ${REQUESTS.toLocaleString("en-US")} distinct requests per policy, each decided once per run (${pin}; ${REPS} runs, median)`;
  const footer = [
    `answers: ${(small.allowedShare * 100).toFixed(0)}% allowed, ${(small.deniedByRuleShare * 100).toFixed(0)}% denied by a deny rule, the rest denied by default (issue's policy); ` +
      `${(large.allowedShare * 100).toFixed(0)}% / ${(large.deniedByRuleShare * 100).toFixed(0)}% (10x policy)`,
    `agreement with casbin on the first requests: ${small.checked - small.disagreements}/${small.checked} and ${large.checked - large.disagreements}/${large.checked}`,
    `ratio ours / casbin, issue's policy: ${fmtRatio(vsStock)}; 10x policy: ${fmtRatio(vsStockLarge)}`,
    `target ours >= ${TARGET_RATE.toLocaleString("en-US")}/s: ${fmtRate(oursSmall.value)}/s (${oursSmall.basis})  ${verdict(oursSmall.value, TARGET_RATE)}`,
    `target ours >= ${TARGET_VS_STOCK}x casbin: ${fmtRatio(vsStock)}  ${verdict(vsStock, TARGET_VS_STOCK)}`,
    `target ours on the 10x policy >= ${TARGET_LARGE}x ours on the issue's: ${fmtRatio(largeRatio)}  ${verdict(largeRatio, TARGET_LARGE)}`,
    ...oursSmall.notes,
  ];
  if (small.disagreements + large.disagreements > 0) throw new Error("FastEnforcer and casbin disagree");
  return {
    id: "rbac",
    title,
    table: table(title, rows, footer),
    summary:
      `rbac: ${fmtRate(oursSmall.value)}/s vs casbin ${fmtRate(stockSmall.value)}/s = ${fmtRatio(vsStock)}; 10x policy ${fmtRatio(largeRatio)} of that; ` +
      `targets >= ${TARGET_RATE.toLocaleString("en-US")}/s, >= ${TARGET_VS_STOCK}x, >= ${TARGET_LARGE}x ${pass ? "PASS" : "FAIL"}`,
    pass,
  };
}

runBenchmark(main);
