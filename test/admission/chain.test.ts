import { describe, expect, it } from "vitest";
import {
  CHECKS,
  evaluate,
  type ActiveWaiver,
  type AdmissionDecision,
  type AdmissionPolicySet,
  type CheckDefinition,
  type CheckMode,
  type CheckResult,
} from "../../src/admission/index.js";
import { attrs, D, E, NOW, policySet, policyYaml } from "./fixture.js";

const brief = (rs: AdmissionDecision["results"]) => rs.map((r) => [r.policy, r.check, r.mode, r.allowed, r.reason]);

/** A set of one policy for every namespace running `checks` in `mode`, over `extra` checks. */
function customSet(extra: Record<string, CheckDefinition<unknown>["run"]>, mode: CheckMode = "enforce") {
  const checks = new Map(CHECKS);
  for (const [name, run] of Object.entries(extra)) checks.set(name, { name, validateParams: () => ({ ok: true, params: {} }), run });
  const set: AdmissionPolicySet = {
    version: 3,
    policies: [{ name: "custom", file: "custom.yaml", line: 1, selector: {}, checks: Object.keys(extra).map((check) => ({ check, mode, params: {} })) }],
    files: [],
  };
  return { set, checks };
}

describe("evaluate: fail closed", () => {
  it("denies when no policy selects the namespace", async () => {
    const set = policySet(policyYaml("only-web", "signer: { mode: enforce }", "{ namespaces: [web] }"));
    const d = await evaluate(attrs(), set, { now: NOW });
    expect(d.allowed).toBe(false);
    expect(d.denials.map((r) => [r.check, r.reason])).toEqual([["policy", "no admission policy selects the namespace"]]);
    expect(d.policyVersion).toBe(7);
  });

  const failing: [string, CheckDefinition<unknown>["run"], string][] = [
    ["a check that throws", () => { throw new Error("kaput"); }, "check failed"],
    ["a check that rejects", async () => Promise.reject(new Error("kaput")), "check failed"],
    ["a check that returns a non-array", () => ({ allowed: true }) as unknown as CheckResult[], "check failed"],
    ["a check that returns nothing", () => [], "check failed"],
    ["a check that returns malformed results", () => [{ allowed: "yes" }] as unknown as CheckResult[], "check failed"],
    ["a check that never answers", () => new Promise<CheckResult[]>(() => undefined), "check timed out"],
  ];
  it.each(failing)("denies %s, without throwing", async (_n, run, reason) => {
    const { set, checks } = customSet({ flaky: run }, "audit");
    const d = await evaluate(attrs(), set, { now: NOW, checks, checkTimeoutMs: 40 });
    expect(d.allowed).toBe(false);
    // The chain's own denials are enforced whatever the mode the policy gives the check.
    expect(brief(d.denials)).toEqual([["custom", "flaky", "enforce", false, reason]]);
    expect(d.denials[0]?.detail).not.toContain("kaput");
  });

  it("denies a check no registry knows", async () => {
    const set: AdmissionPolicySet = { version: 1, policies: [{ name: "p", file: "p", line: 1, selector: {}, checks: [{ check: "nope", mode: "warn", params: {} }] }], files: [] };
    const d = await evaluate(attrs(), set, { now: NOW });
    expect(brief(d.denials)).toEqual([["p", "nope", "enforce", false, "check failed"]]);
  });

  it("still runs and reports the other checks", async () => {
    const { set, checks } = customSet({ boom: () => { throw new Error("x"); }, fine: () => [{ check: "fine", allowed: true, reason: "ok", detail: "", field: "" }] });
    const d = await evaluate(attrs(), set, { now: NOW, checks });
    expect(brief(d.results)).toEqual([["custom", "boom", "enforce", false, "check failed"], ["custom", "fine", "enforce", true, "ok"]]);
  });
});

describe("evaluate: selection and modes", () => {
  const three = policySet(
    policyYaml("all", "signer: { mode: enforce }"),
    policyYaml("prod", "approvals: { mode: enforce }", "{ labels: { tier: prod } }"),
    policyYaml("pay", "resources: { mode: warn, params: { maxPids: 10 } }\nruntime-class: { mode: audit, params: { required: sandboxed } }", "{ namespaces: [payments], labels: { tier: prod } }"),
  );

  it("runs the checks of every policy that selects the namespace, and only those", async () => {
    const plain = await evaluate(attrs(), three, { now: NOW });
    expect([...new Set(plain.results.map((r) => r.policy))]).toEqual(["all"]);
    const prod = await evaluate(attrs({ labels: { tier: "prod" } }), three, { now: NOW });
    expect([...new Set(prod.results.map((r) => r.policy))]).toEqual(["all", "prod", "pay"]);
  });

  it("denies enforce violations, warns warn ones, records audit ones only", async () => {
    const a = attrs({ labels: { tier: "prod", "portcullis.io/approvals": "1" }, spec: { runtime: "standard" } });
    const d = await evaluate(a, three, { now: NOW });
    expect(d.allowed).toBe(false);
    expect(brief(d.denials)).toEqual([["prod", "approvals", "enforce", false, "approvals required"]]);
    expect(brief(d.warnings)).toEqual([["pay", "resources", "warn", false, "pids above the maximum"]]);
    expect(d.results.filter((r) => r.mode === "audit").map((r) => [r.check, r.allowed, r.reason])).toEqual([["runtime-class", false, "sandboxed runtime required"]]);
  });

  it("allows when only warn and audit checks find violations", async () => {
    const d = await evaluate(attrs({ labels: { tier: "prod" }, spec: { runtime: "standard" } }), three, { now: NOW });
    expect(d.allowed).toBe(true);
    expect(d.denials).toEqual([]);
    expect(d.warnings).toHaveLength(1);
  });
});

describe("evaluate: waivers", () => {
  const set = policySet(policyYaml("base", "resources: { mode: enforce, params: { maxMemory: 1Gi } }\nimage-identity: { mode: enforce }"));
  const big = () => attrs({ spec: { resources: { cpus: 1, memory: "2Gi", pids: 10 } } });
  const waiver = (o: Partial<ActiveWaiver> = {}): ActiveWaiver => ({
    id: "w-1",
    check: "resources",
    scope: { namespace: "payments" },
    expiresAt: NOW.getTime() + 60_000,
    ...o,
  });
  const outcome = async (w: ActiveWaiver, a = big()) => {
    const d = await evaluate(a, set, { now: NOW, waivers: [w] });
    return { allowed: d.allowed, waived: d.results.filter((r) => r.waiver !== undefined).map((r) => [r.check, r.waiver]), warnings: d.warnings.length };
  };

  it("moves a violation in scope to the warnings, marked with the waiver", async () => {
    expect(await outcome(waiver())).toEqual({ allowed: true, waived: [["resources", "w-1"]], warnings: 1 });
    expect(await outcome(waiver({ scope: { namespace: "payments", deployment: "web", imageDigest: D } }))).toEqual({ allowed: true, waived: [["resources", "w-1"]], warnings: 1 });
  });

  const outside: [string, Partial<ActiveWaiver>][] = [
    ["another namespace", { scope: { namespace: "billing" } }],
    ["another deployment", { scope: { namespace: "payments", deployment: "api" } }],
    ["another image", { scope: { namespace: "payments", imageDigest: E } }],
    ["another check", { check: "hardening" }],
    ["expired exactly now", { expiresAt: NOW.getTime() }],
    ["expired before", { expiresAt: NOW.getTime() - 1 }],
    ["findings that the detail does not name", { findings: ["CVE-2024-1"] }],
    ["an empty findings list", { findings: [] }],
  ];
  it.each(outside)("does not apply with %s", async (_n, o) => {
    expect(await outcome(waiver(o))).toEqual({ allowed: false, waived: [], warnings: 0 });
  });

  it("does not apply findings to a result that names no finding ids, whatever its detail says", async () => {
    expect(await outcome(waiver({ findings: ["nothing", "is 2Gi"] }))).toEqual({ allowed: false, waived: [], warnings: 0 });
  });

  const withIds = (findings: string[] | undefined, detail: string) =>
    customSet({ scanner: () => [{ check: "scanner", allowed: false, reason: "vulnerability", detail, field: "spec.image", ...(findings ? { findings } : {}) }] });
  const idWaiver = (findings: string[]): ActiveWaiver => ({ id: "w-2", check: "scanner", findings, scope: { namespace: "payments" }, expiresAt: NOW.getTime() + 60_000 });
  const waivedBy = async (c: ReturnType<typeof withIds>, w: ActiveWaiver) => {
    const d = await evaluate(attrs(), c.set, { now: NOW, checks: c.checks, waivers: [w] });
    return d.results.filter((r) => r.waiver !== undefined).length;
  };

  const idCases: [string, string[] | undefined, string, string[], number][] = [
    ["its id", ["CVE-2024-1234", "DSA-1-1"], "CVE-2024-1234 in openssl", ["CVE-2024-1234"], 1],
    ["an alias", ["DSA-1-1", "CVE-2024-1234"], "DSA-1-1 in openssl", ["CVE-2024-1234"], 1],
    ["the id written in lower case", ["CVE-2024-1234"], "CVE-2024-1234", ["cve-2024-1234"], 1],
    ["a prefix of the id (no)", ["CVE-2024-12345"], "CVE-2024-12345 in openssl", ["CVE-2024-1234"], 0],
    ["an id longer than the finding's (no)", ["CVE-2024-1"], "CVE-2024-1 in tar", ["CVE-2024-12"], 0],
    ["an id the image wrote into the package name (no)", ["CVE-2024-9999"], "CVE-2024-9999 in npm package evil-CVE-2024-1234 1.0.0", ["CVE-2024-1234"], 0],
    ["an id the image wrote into a path, with no ids carried (no)", undefined, "CVE-2024-9999 from /app/CVE-2024-1234/package.json", ["CVE-2024-1234"], 0],
  ];
  it.each(idCases)("a waiver of findings matches a result's ids whole: %s", async (_n, ids, detail, waived, n) => {
    expect(await waivedBy(withIds(ids, detail), idWaiver(waived))).toBe(n);
  });

  it("never exempts the chain's own denials", async () => {
    const none = policySet(policyYaml("elsewhere", "signer: { mode: enforce }", "{ namespaces: [web] }"));
    const d = await evaluate(attrs(), none, { now: NOW, waivers: [waiver({ check: "policy" })] });
    expect(d.allowed).toBe(false);
    expect(d.denials[0]?.waiver).toBeUndefined();
  });

  it("matches an image digest of a tag by the id every node agrees on", async () => {
    const tag = "registry.corp.example/team/web:1.0";
    const a = attrs({ spec: { image: tag, resources: { cpus: 1, memory: "2Gi", pids: 10 } }, image: { reference: tag, idsByNode: { n1: E, n2: E } } });
    const tagSet = policySet(policyYaml("base", "resources: { mode: enforce, params: { maxMemory: 1Gi } }"));
    const d = await evaluate(a, tagSet, { now: NOW, waivers: [waiver({ scope: { namespace: "payments", imageDigest: E } })] });
    expect(d.allowed).toBe(true);
    expect(d.warnings.map((r) => r.waiver)).toEqual(["w-1"]);
  });
});
