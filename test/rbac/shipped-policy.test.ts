import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { StockCasbinEnforcer } from "../../src/rbac/casbin-enforcer.js";
import { FastEnforcer } from "../../src/rbac/fast-enforcer.js";
import { parsePolicyCsv } from "../../src/rbac/policy-csv.js";
import {
  formatPolicyTestReport,
  parsePolicyTestFile,
  policyForTests,
  runParsedPolicyTests,
  runPolicyTestFile,
} from "../../src/rbac/policy-test.js";
import { ruleToCsv } from "../../src/rbac/types.js";
import { validatePolicy } from "../../src/rbac/validate.js";

/**
 * The shipped policy (policies/rbac/policy.csv) validates, and every test file in
 * policies/rbac/tests/ passes against it, with FastEnforcer and with stock Casbin.
 */
const DIR = fileURLToPath(new URL("../../policies/rbac/", import.meta.url));
const CSV = readFileSync(`${DIR}policy.csv`, "utf8");
const MODEL = readFileSync(`${DIR}model.conf`, "utf8");
const TEST_FILES = readdirSync(`${DIR}tests`).filter((f) => f.endsWith(".yaml")).sort();
const ROLES = ["platform-admin", "security-admin", "developer", "auditor", "node", "approver", "secret-reader", "metrics-reader"];

describe("the shipped policy", () => {
  const policy = parsePolicyCsv(CSV);

  it("validates with zero issues", () => {
    expect(validatePolicy(CSV)).toEqual([]);
  });

  it("defines exactly the eight roles, and grants nothing to identities directly", () => {
    expect([...new Set(policy.rules.map((r) => r.subject))]).toEqual(ROLES);
  });

  it("has exactly one live binding: the administrator, cluster-wide", () => {
    expect(policy.bindings.map((b) => [b.member, b.role, b.namespace])).toEqual([["user:admin", "platform-admin", "*"]]);
  });

  it.each(ROLES)("documents an example binding for %s", (role) => {
    expect(CSV).toMatch(new RegExp(`^# Example: g, [a-z]+:[a-z0-9-]+, ${role}, [a-z*]+`, "m"));
  });

  it("denies reading secret values to every role but secret-reader, explicitly or by default", () => {
    const denied = policy.rules.filter((r) => r.effect === "deny" && r.resource === "secrets" && r.action === "read").map((r) => r.subject);
    expect(denied).toEqual(["platform-admin", "security-admin", "developer", "auditor"]);
    expect(policy.rules.some((r) => r.subject === "node" && (r.resource === "secrets" || r.resource === "*"))).toBe(false);
    expect(policy.rules.some((r) => r.subject === "approver" && (r.resource === "secrets" || r.resource === "*"))).toBe(false);
    const valueReaders = policy.rules.filter((r) => r.effect === "allow" && r.resource === "secrets" && (r.action === "read" || r.action === "*")).map((r) => r.subject);
    expect(valueReaders).toEqual(["secret-reader"]);
  });

  it("gives secret-reader only secrets read and secret-metadata read", () => {
    const rules = policy.rules.filter((r) => r.subject === "secret-reader").map((r) => [r.namespace, r.resource, r.action, r.effect]);
    expect(rules).toEqual([["*", "secrets", "read", "allow"], ["*", "secret-metadata", "read", "allow"]]);
  });

  it("gives the auditor only read and export", () => {
    const auditorAllows = policy.rules.filter((r) => r.subject === "auditor" && r.effect === "allow").map((r) => r.action);
    expect(new Set(auditorAllows)).toEqual(new Set(["read", "export"]));
  });
});

describe("policies/rbac/tests", () => {
  it("holds a test file for every shipped role", () => {
    expect(TEST_FILES).toEqual(expect.arrayContaining(ROLES.map((r) => `${r}.yaml`)));
    const bound = new Set(
      TEST_FILES.flatMap((f) => parsePolicyTestFile(readFileSync(`${DIR}tests/${f}`, "utf8")).bindings.map((b) => b.role)),
    );
    for (const role of ROLES) expect(bound.has(role) || role === "platform-admin", role).toBe(true);
  });

  it.each(TEST_FILES)("%s passes with FastEnforcer", (name) => {
    const report = runPolicyTestFile(`${DIR}tests/${name}`, { makeEnforcer: (p) => new FastEnforcer(p) });
    expect(report.cases.length).toBeGreaterThan(0);
    expect(report.failed, formatPolicyTestReport(report)).toBe(0);
    // Both verdicts are exercised: a file of only allows or only denies proves half.
    expect(new Set(report.cases.map((c) => c.expected)).size, name).toBe(name === "audit-log.yaml" ? 1 : 2);
  });

  it.each(TEST_FILES)("%s passes with stock Casbin, with the same deciding rules", async (name) => {
    const file = parsePolicyTestFile(readFileSync(`${DIR}tests/${name}`, "utf8"));
    expect(file.policy).toBe("../policy.csv");
    const policy = policyForTests(file, parsePolicyCsv(CSV));
    const stock = runParsedPolicyTests(file, await StockCasbinEnforcer.create(MODEL, policy));
    expect(stock.failed, formatPolicyTestReport(stock)).toBe(0);
    const fast = runParsedPolicyTests(file, new FastEnforcer(policy));
    expect(fast.cases.map((c) => [c.name, c.got, c.rule])).toEqual(stock.cases.map((c) => [c.name, c.got, c.rule]));
  });

  it("cases that name a deciding rule name a rule of the shipped policy", () => {
    const rules = new Set(parsePolicyCsv(CSV).rules.map(ruleToCsv));
    for (const f of TEST_FILES) {
      for (const c of parsePolicyTestFile(readFileSync(`${DIR}tests/${f}`, "utf8")).cases) {
        if (c.rule !== undefined && c.rule !== "default-deny") expect(rules.has(c.rule), `${f}: ${c.name}`).toBe(true);
      }
    }
  });
});
