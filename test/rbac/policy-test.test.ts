import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FastEnforcer } from "../../src/rbac/fast-enforcer.js";
import {
  formatPolicyTestReport,
  MAX_TEST_BYTES,
  parsePolicyTestFile,
  policyForTests,
  runPolicyTestFile,
  runPolicyTests,
} from "../../src/rbac/policy-test.js";
import type { Policy } from "../../src/rbac/types.js";
import { assertValidPolicy } from "../../src/rbac/validate.js";
import { refusal } from "../support/refusal.js";

const POLICY_CSV = [
  "p, developer, *, deployments, deploy, allow",
  "p, developer, *, deployments, read, allow",
  "p, developer, *, secrets, read, deny",
  "p, viewer, *, *, read, allow",
  "g, user:dev1, developer, payments",
  "",
].join("\n");
const POLICY = assertValidPolicy(POLICY_CSV);
const fast = (p: Policy) => new FastEnforcer(p);

const GOOD = `
policy: ../policy.csv
bindings:
  - "g, user:v, viewer, *"
cases:
  - name: developer deploys in its namespace
    request: { subject: "user:dev1", namespace: payments, resource: deployments, action: deploy }
    expect: allow
    rule: "p, developer, *, deployments, deploy, allow"
  - name: developer cannot deploy elsewhere
    request: { subject: "user:dev1", namespace: billing, resource: deployments, action: deploy }
    expect: deny
    rule: default-deny
  - name: viewer from the extra binding reads secrets
    request:
      subject: user:v
      namespace: "*"
      resource: secrets
      action: read
    expect: allow
`;

describe("runPolicyTests", () => {
  it("passes the cases that get the expected decision", () => {
    const report = runPolicyTests(GOOD, POLICY, fast);
    expect(report).toEqual({
      passed: 3,
      failed: 0,
      cases: [
        { name: "developer deploys in its namespace", line: 6, ok: true, got: "allow", expected: "allow", rule: "p, developer, *, deployments, deploy, allow", expectedRule: "p, developer, *, deployments, deploy, allow" },
        { name: "developer cannot deploy elsewhere", line: 10, ok: true, got: "deny", expected: "deny", rule: "default-deny", expectedRule: "default-deny" },
        { name: "viewer from the extra binding reads secrets", line: 14, ok: true, got: "allow", expected: "allow", rule: "p, viewer, *, *, read, allow" },
      ],
    });
  });

  it("fails a case with the wrong decision or the wrong deciding rule, and runs the others", () => {
    const yaml = `
cases:
  - name: wrong decision
    request: { subject: "user:dev1", namespace: payments, resource: secrets, action: read }
    expect: allow
  - name: right decision, wrong rule
    request: { subject: "user:dev1", namespace: payments, resource: deployments, action: read }
    expect: allow
    rule: "p,developer,*,deployments,deploy,allow"
  - name: right
    request: { subject: "user:dev1", namespace: payments, resource: secrets, action: read }
    expect: deny
    rule: " p, developer, *, secrets, read,   deny "
`;
    const report = runPolicyTests(yaml, POLICY, fast);
    expect(report.passed).toBe(1);
    expect(report.failed).toBe(2);
    expect(report.cases.map((c) => [c.name, c.ok, c.got, c.reason])).toEqual([
      ["wrong decision", false, "deny", "expected allow, got deny (p, developer, *, secrets, read, deny)"],
      [
        "right decision, wrong rule",
        false,
        "allow",
        'expected the decision from "p, developer, *, deployments, deploy, allow", got it from "p, developer, *, deployments, read, allow"',
      ],
      ["right", true, "deny", undefined],
    ]);
    expect(formatPolicyTestReport(report)).toBe(
      [
        "FAIL wrong decision (line 3): expected allow, got deny (p, developer, *, secrets, read, deny)",
        'FAIL right decision, wrong rule (line 6): expected the decision from "p, developer, *, deployments, deploy, allow", got it from "p, developer, *, deployments, read, allow"',
        "ok   right",
        "1 passed, 2 failed",
        "",
      ].join("\n"),
    );
  });

  it("counts a case whose enforcer throws as failed", () => {
    const report = runPolicyTests(GOOD, POLICY, () => ({
      decide: () => {
        throw new Error("boom");
      },
    }));
    expect(report.failed).toBe(3);
    expect(report.cases[0]?.reason).toBe("the enforcer failed: boom");
    expect(report.cases[0]?.got).toBe("deny");
  });

  it("applies the extra bindings only for the test", () => {
    const seen: Policy[] = [];
    runPolicyTests(GOOD, POLICY, (p) => {
      seen.push(p);
      return fast(p);
    });
    expect(seen[0]?.bindings.map((b) => [b.member, b.role, b.namespace, b.line])).toEqual([
      ["user:dev1", "developer", "payments", 5],
      ["user:v", "viewer", "*", 4],
    ]);
    expect(POLICY.bindings).toHaveLength(1);
  });

  it("refuses a policy that does not validate", () => {
    const bad = { rules: POLICY.rules, bindings: [{ member: "user:x", role: "ghost", namespace: "*" }] };
    const e = refusal(() => runPolicyTests(GOOD, bad, fast));
    expect(e.code).toBe("PC_RBAC_POLICY_INVALID");
    expect(e.detail).toBe('line 5 (role): role "ghost" is not defined by any rule');
  });
});

const CASE = `  - name: one
    request: { subject: "user:dev1", namespace: payments, resource: deployments, action: deploy }
    expect: allow
`;

describe("parsePolicyTestFile refuses, with the line", () => {
  it.each([
    ["an unclosed flow sequence (reported where the input ends)", `cases:\n${CASE}  - name: [unclosed\n`, /^line 6: Flow sequence in block collection must be sufficiently indented and end with a \]$/],
    ["a nested mapping in a compact one", `cases:\n${CASE}  - name: two: x\n`, /^line 5: Nested mappings are not allowed in compact mappings$/],
    ["a bad indentation", `cases:\n  - name: one\n   request: x\n`, /^line 3: Sequence item without - indicator$/],
    ["a tab indentation", `cases:\n\t- name: x\n`, /^line 2: /],
    ["a duplicate top-level key", `cases:\n${CASE}cases:\n${CASE}`, /^line 5: Map keys must be unique/],
    ["a duplicate key in a request", "cases:\n  - name: one\n    request: { subject: user:a, subject: user:b, namespace: p, resource: alerts, action: read }\n    expect: allow\n", /^line 3: Map keys must be unique/],
    ["two documents", `cases:\n${CASE}---\ncases:\n${CASE}`, /^line 5: Source contains multiple documents/],
    ["an unresolved tag", `cases:\n${CASE}  - name: !custom two\n    request: { subject: "user:dev1", namespace: payments, resource: deployments, action: deploy }\n    expect: allow\n`, /^line 5: /],
  ])("%s", (_name, yaml, detail) => {
    const e = refusal(() => parsePolicyTestFile(yaml));
    expect(e.code).toBe("PC_RBAC_TEST_INVALID");
    expect(e.status).toBe(400);
    expect(e.detail).toMatch(detail);
  });

  const one = (request: string, extra = "") => `cases:\n  - name: one\n    request: ${request}\n    expect: allow\n${extra}`;
  const REQ = (over: Record<string, string>) => {
    const r = { subject: '"user:dev1"', namespace: "payments", resource: "deployments", action: "deploy", ...over };
    return `{ ${Object.entries(r).map(([k, v]) => `${k}: ${v}`).join(", ")} }`;
  };

  it.each([
    ["an unknown top-level key", `${one(REQ({}))}polcy: x\n`, 5, "polcy", 'unknown key "polcy" (allowed: policy, bindings, cases)'],
    ["an unknown case key", one(REQ({}), "    expected: deny\n"), 5, "cases[0].expected", 'unknown key "expected" (allowed: name, request, expect, rule)'],
    ["an unknown request key", one(REQ({ verb: "get" })), 3, "cases[0].request.verb", 'unknown key "verb" (allowed: subject, namespace, resource, action)'],
    ["a bad identity", one(REQ({ subject: '"user:Dev1"' })), 3, "cases[0].request.subject", '"user:Dev1" is not an identity (user:NAME, node:NAME or service:NAME, the NAME of lower-case letters, digits, \'.\', \'_\', \'-\')'],
    ["an identity with a space", one(REQ({ subject: '"user:dev 1"' })), 3, "cases[0].request.subject", '"user:dev 1" is not an identity (user:NAME, node:NAME or service:NAME, the NAME of lower-case letters, digits, \'.\', \'_\', \'-\')'],
    ["an identity with '..'", one(REQ({ subject: '"user:a..b"' })), 3, "cases[0].request.subject", `"user:a..b" is not an identity ('..' is not allowed in a name)`],
    ["a role as the subject", one(REQ({ subject: "developer" })), 3, "cases[0].request.subject", '"developer" is not an identity (user:NAME, node:NAME or service:NAME, the NAME of lower-case letters, digits, \'.\', \'_\', \'-\')'],
    ["a namespace that is not a DNS label", one(REQ({ namespace: "Pay_ments" })), 3, "cases[0].request.namespace", '"Pay_ments" is not a namespace (a DNS label: lower-case letters, digits and \'-\', at most 63, or "*")'],
    ["an unknown resource", one(REQ({ resource: "pods" })), 3, "cases[0].request.resource", 'unknown resource "pods"'],
    ["a wildcard resource", one(REQ({ resource: '"*"' })), 3, "cases[0].request.resource", 'unknown resource "*"'],
    ["an unknown action", one(REQ({ action: "fly" })), 3, "cases[0].request.action", 'unknown action "fly"'],
    ["a number where a string belongs", one(REQ({ namespace: "42" })), 3, "cases[0].request.namespace", "must be a string"],
    ["a missing request field", one("{ subject: user:a, namespace: p, resource: alerts }"), 3, "cases[0].request.action", "is required"],
    ["a request that is not a map", one("user:a"), 3, "cases[0].request", "must be a map with subject, namespace, resource and action"],
    ["an expectation other than allow or deny", "cases:\n  - name: one\n    request: " + REQ({}) + "\n    expect: yes\n", 4, "cases[0].expect", 'must be "allow" or "deny", not "yes"'],
    ["a missing expectation", "cases:\n  - name: one\n    request: " + REQ({}) + "\n", 2, "cases[0].expect", "is required"],
    ["a missing name", "cases:\n  - request: " + REQ({}) + "\n    expect: deny\n", 2, "cases[0].name", "is required"],
    ["an empty name", "cases:\n  - name: ''\n    request: " + REQ({}) + "\n    expect: deny\n", 2, "cases[0].name", "must not be empty"],
    ["a malformed rule", one(REQ({}), "    rule: p, developer\n"), 5, "cases[0].rule", 'must be "p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT" or "default-deny", not "p, developer"'],
    ["no cases", "policy: x.csv\n", 1, "cases", "is required"],
    ["an empty case list", "cases: []\n", 1, "cases", "must list at least one case"],
    ["cases that are not a list", "cases: { a: 1 }\n", 1, "cases", "must be a list"],
    ["a case that is not a map", "cases:\n  - just text\n", 2, "cases[0]", "must be a map with name, request and expect"],
    ["a repeated case name", `cases:\n${CASE}${CASE}`, 5, "cases[1].name", "repeats the name of the case on line 2"],
    ["an alias", `cases:\n  - name: &n one\n    request: ${REQ({})}\n    expect: allow\n  - name: *n\n    request: ${REQ({})}\n    expect: deny\n`, 5, "cases[1].name", "aliases are not allowed"],
    ["a policy path that is not a string", `policy: [a]\ncases:\n${CASE}`, 1, "policy", "must be a string"],
    ["bindings that are not a list", `bindings: "g, user:a, developer, *"\ncases:\n${CASE}`, 1, "bindings", 'must be a list of "g, MEMBER, ROLE, NAMESPACE" lines'],
    ["a rule among the bindings", `bindings:\n  - "p, developer, *, alerts, read, allow"\ncases:\n${CASE}`, 2, "bindings[0]", 'must be one "g, MEMBER, ROLE, NAMESPACE" line, not "p, developer, *, alerts, read, allow"'],
    ["a malformed binding", `bindings:\n  - "g, user:a, developer"\ncases:\n${CASE}`, 2, "bindings[0]", 'must be one "g, MEMBER, ROLE, NAMESPACE" line, not "g, user:a, developer"'],
  ])("%s", (_name, yaml, line, field, reason) => {
    const e = refusal(() => parsePolicyTestFile(yaml));
    expect(e.code).toBe("PC_RBAC_TEST_INVALID");
    expect(e.detail).toBe(`line ${line} (${field}): ${reason}`);
  });

  it("reports every problem at once, in line order", () => {
    const yaml = `cases:\n  - name: one\n    request: ${REQ({ subject: '"user:A"', namespace: "A" })}\n    expect: maybe\n    extra: 1\n`;
    const e = refusal(() => parsePolicyTestFile(yaml));
    expect(e.detail?.split("; ").map((s) => s.replace(/:.*$/, ""))).toEqual([
      "line 3 (cases[0].request.subject)",
      "line 3 (cases[0].request.namespace)",
      "line 4 (cases[0].expect)",
      "line 5 (cases[0].extra)",
    ]);
  });

  it(`refuses a file over ${MAX_TEST_BYTES} bytes`, () => {
    const e = refusal(() => parsePolicyTestFile(`cases:\n${CASE}${"#".repeat(MAX_TEST_BYTES)}\n`));
    expect(e.code).toBe("PC_RBAC_TEST_INVALID");
    expect(e.detail).toBe(`the test file is larger than ${MAX_TEST_BYTES} bytes`);
  });
});

describe("extra bindings", () => {
  it.each([
    ["an undefined role", "g, user:x, ghost, *", 'line 2 (bindings[0].role): role "ghost" is not defined by any rule'],
    ["a bad member", "g, user:X, developer, *", `line 2 (bindings[0].member): "user:X" is not an identity (user:NAME, node:NAME or service:NAME, the NAME of lower-case letters, digits, '.', '_', '-')`],
    ["a bad namespace", "g, user:x, developer, Pay", `line 2 (bindings[0].namespace): "Pay" is not a namespace (a DNS label: lower-case letters, digits and '-', at most 63, or "*")`],
    ["a duplicate of the policy's binding", "g, user:dev1, developer, payments", "line 2 (bindings[0]): duplicate binding (same as line 5)"],
  ])("refuses %s with its line in the test file", (_name, binding, detail) => {
    const yaml = `bindings:\n  - "${binding}"\ncases:\n${CASE}`;
    const file = parsePolicyTestFile(yaml);
    const e = refusal(() => policyForTests(file, POLICY));
    expect(e.code).toBe("PC_RBAC_TEST_INVALID");
    expect(e.detail).toBe(detail);
    expect(refusal(() => runPolicyTests(yaml, POLICY, fast)).detail).toBe(detail);
  });

  it("refuses a cycle the extra bindings close, on the extra binding's line only", () => {
    const policy = assertValidPolicy(`${POLICY_CSV}g, viewer, developer, *\n`);
    const e = refusal(() => policyForTests(parsePolicyTestFile(`bindings:\n  - "g, developer, viewer, *"\ncases:\n${CASE}`), policy));
    expect(e.detail).toBe("line 2 (bindings[0].role): role inheritance cycle: developer -> viewer -> developer");
  });
});

describe("runPolicyTestFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-policy-test-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "tests"));
  writeFileSync(join(dir, "policy.csv"), POLICY_CSV);
  writeFileSync(join(dir, "tests", "good.yaml"), GOOD);
  writeFileSync(join(dir, "tests", "nopolicy.yaml"), `cases:\n${CASE}`);
  writeFileSync(join(dir, "tests", "missing.yaml"), `policy: ../nothing.csv\ncases:\n${CASE}`);

  it("reads the policy the file names, relative to the file", () => {
    expect(runPolicyTestFile(join(dir, "tests", "good.yaml"), { makeEnforcer: fast }).passed).toBe(3);
  });

  it("tests a candidate policy instead when one is given", () => {
    const candidate = POLICY_CSV.replace("p, developer, *, deployments, deploy, allow", "p, developer, *, deployments, deploy, deny");
    const report = runPolicyTestFile(join(dir, "tests", "good.yaml"), { policyCsv: candidate, makeEnforcer: fast });
    expect(report.cases.map((c) => c.ok)).toEqual([false, true, true]);
  });

  it("refuses a file that names no policy when none is given", () => {
    const e = refusal(() => runPolicyTestFile(join(dir, "tests", "nopolicy.yaml"), { makeEnforcer: fast }));
    expect(e.code).toBe("PC_RBAC_TEST_INVALID");
    expect(runPolicyTestFile(join(dir, "tests", "nopolicy.yaml"), { policyCsv: POLICY_CSV, makeEnforcer: fast }).passed).toBe(1);
  });

  it("refuses a missing test file or policy file", () => {
    expect(refusal(() => runPolicyTestFile(join(dir, "tests", "absent.yaml"), { makeEnforcer: fast })).code).toBe("PC_RBAC_TEST_INVALID");
    expect(refusal(() => runPolicyTestFile(join(dir, "tests", "missing.yaml"), { makeEnforcer: fast })).code).toBe("PC_RBAC_POLICY_INVALID");
  });

  it("refuses a candidate policy that does not validate, with its line", () => {
    const e = refusal(() => runPolicyTestFile(join(dir, "tests", "good.yaml"), { policyCsv: "p, developer, *, deployments, fly, allow\n", makeEnforcer: fast }));
    expect(e.code).toBe("PC_RBAC_POLICY_INVALID");
    expect(e.detail).toBe('line 1 (action): unknown action "fly"');
  });
});
