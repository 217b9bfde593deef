import { describe, expect, it } from "vitest";
import {
  describeIssues,
  formatPolicyCsv,
  MAX_POLICY_BYTES,
  parsePolicyCsv,
  policyDiff,
  readPolicyCsv,
} from "../../src/rbac/policy-csv.js";
import type { Policy } from "../../src/rbac/types.js";
import type { ValidationIssue } from "../../src/rbac/validate.js";
import { refusal } from "../support/refusal.js";

const TEXT = [
  "# a comment", // 1
  "", // 2
  "p, developer, *, deployments, deploy, allow", // 3
  "  p ,developer,  payments ,secrets,read ,  deny  ", // 4
  "   # an indented comment", // 5
  "g, user:dev1, developer, payments", // 6
  "\t", // 7
  "g,user:admin,developer,*", // 8
].join("\n");

describe("parsePolicyCsv", () => {
  it("reads rules and bindings with their lines, trimming whitespace and skipping comments", () => {
    expect(parsePolicyCsv(TEXT)).toEqual({
      rules: [
        { subject: "developer", namespace: "*", resource: "deployments", action: "deploy", effect: "allow", line: 3 },
        { subject: "developer", namespace: "payments", resource: "secrets", action: "read", effect: "deny", line: 4 },
      ],
      bindings: [
        { member: "user:dev1", role: "developer", namespace: "payments", line: 6 },
        { member: "user:admin", role: "developer", namespace: "*", line: 8 },
      ],
    });
  });

  it("accepts CRLF line ends and a byte-order mark, with the same lines", () => {
    const crlf = `\uFEFF${TEXT.split("\n").join("\r\n")}\r\n`;
    expect(parsePolicyCsv(crlf)).toEqual(parsePolicyCsv(TEXT));
  });

  it("reads an empty or comment-only file as an empty policy", () => {
    expect(parsePolicyCsv("")).toEqual({ rules: [], bindings: [] });
    expect(parsePolicyCsv("# nothing\n\n")).toEqual({ rules: [], bindings: [] });
  });

  it.each([
    ["an unknown line type", "x, developer, *", 2, undefined, 'unknown line type "x" (expected "p" or "g")'],
    ["an upper-case line type", "P, developer, *, deployments, deploy, allow", 2, undefined, 'unknown line type "P" (expected "p" or "g")'],
    ["a line of text", "allow everything", 2, undefined, 'unknown line type "allow everything" (expected "p" or "g")'],
    ["a rule with five fields", "p, developer, *, deployments, deploy", 2, undefined, "expected 6 fields (p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT), found 5"],
    ["a rule with seven fields", "p, developer, *, deployments, deploy, allow, x", 2, undefined, "expected 6 fields (p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT), found 7"],
    ["a binding with three fields", "g, user:dev1, developer", 2, undefined, "expected 4 fields (g, MEMBER, ROLE, NAMESPACE), found 3"],
    ["a binding with a trailing comma", "g, user:dev1, developer, payments,", 2, undefined, "expected 4 fields (g, MEMBER, ROLE, NAMESPACE), found 5"],
    ["an empty subject", "p, , *, deployments, deploy, allow", 2, "subject", "empty subject"],
    ["an empty effect", "p, developer, *, deployments, deploy,  ", 2, "effect", "empty effect"],
    ["an empty role", "g, user:dev1, , payments", 2, "role", "empty role"],
    ["an empty namespace", "g, user:dev1, developer,", 2, "namespace", "empty namespace"],
    ["a CSV-quoted field", 'p, "developer, x", *, deployments, deploy, allow', 2, undefined, "expected 6 fields (p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT), found 7"],
  ])("refuses %s with its line", (_name, bad, line, field, reason) => {
    const text = `p, developer, *, deployments, deploy, allow\n${bad}\n`;
    const issue: ValidationIssue = field ? { line, field, code: "syntax", reason } : { line, code: "syntax", reason };
    expect(readPolicyCsv(text).issues).toEqual([issue]);
    const e = refusal(() => parsePolicyCsv(text));
    expect(e.code).toBe("PC_RBAC_POLICY_INVALID");
    expect(e.status).toBe(400);
    expect(e.detail).toBe(describeIssues([issue]));
    expect(e.detail).toMatch(new RegExp(`^line ${line}`));
  });

  it("reports every malformed line at once and keeps the good ones", () => {
    const text = ["p, a, *, deployments, deploy", "g, user:x, a, *", "q, x", "", "g, user:y"].join("\r\n");
    const read = readPolicyCsv(text);
    expect(read.issues.map((i) => i.line)).toEqual([1, 3, 5]);
    expect(read.policy.bindings).toEqual([{ member: "user:x", role: "a", namespace: "*", line: 2 }]);
    const e = refusal(() => parsePolicyCsv(text));
    expect(e.detail).toMatch(/^line 1: expected 6 fields .*; line 3: unknown line type "q" .*; line 5: expected 4 fields /);
  });

  it(`refuses a text over ${MAX_POLICY_BYTES} bytes`, () => {
    const line = "g, user:someone, developer, payments\n";
    const text = line.repeat(Math.ceil(MAX_POLICY_BYTES / line.length) + 1);
    expect(readPolicyCsv(text).issues).toEqual([{ line: 0, code: "too-large", reason: `policy is larger than ${MAX_POLICY_BYTES} bytes` }]);
    const e = refusal(() => parsePolicyCsv(text));
    expect(e.code).toBe("PC_RBAC_POLICY_INVALID");
    expect(e.detail).toBe(`policy: policy is larger than ${MAX_POLICY_BYTES} bytes`);
  });
});

describe("formatPolicyCsv", () => {
  const policy: Policy = {
    rules: [
      { subject: "developer", namespace: "*", resource: "deployments", action: "deploy", effect: "allow" },
      { subject: "user:ops", namespace: "payments", resource: "*", action: "read", effect: "allow" },
    ],
    bindings: [{ member: "user:dev1", role: "developer", namespace: "payments" }],
  };

  it("writes rules, then bindings, one per line, in the order given", () => {
    expect(formatPolicyCsv(policy)).toBe(
      "p, developer, *, deployments, deploy, allow\np, user:ops, payments, *, read, allow\ng, user:dev1, developer, payments\n",
    );
    expect(formatPolicyCsv({ rules: [], bindings: [] })).toBe("");
  });

  it("round-trips: parse(format(p)) has p's entries, at the canonical lines", () => {
    expect(parsePolicyCsv(formatPolicyCsv(policy))).toEqual({
      rules: policy.rules.map((r, i) => ({ ...r, line: i + 1 })),
      bindings: policy.bindings.map((b, i) => ({ ...b, line: policy.rules.length + i + 1 })),
    });
  });

  it("is a fixed point on any parsed file: comments and spacing go, the entries stay", () => {
    const once = formatPolicyCsv(parsePolicyCsv(TEXT));
    expect(once).toBe(
      [
        "p, developer, *, deployments, deploy, allow",
        "p, developer, payments, secrets, read, deny",
        "g, user:dev1, developer, payments",
        "g, user:admin, developer, *",
        "",
      ].join("\n"),
    );
    expect(formatPolicyCsv(parsePolicyCsv(once))).toBe(once);
  });

  it("keeps bindings written before rules after the rules", () => {
    expect(formatPolicyCsv(parsePolicyCsv("g, user:a, r, *\np, r, *, alerts, read, allow\n"))).toBe(
      "p, r, *, alerts, read, allow\ng, user:a, r, *\n",
    );
  });
});

describe("policyDiff", () => {
  const prev = parsePolicyCsv("p, r, *, alerts, read, allow\np, r, *, alerts, update, allow\ng, user:a, r, *\n");

  it("lists added and removed canonical lines, ignoring order, comments and spacing", () => {
    const next = parsePolicyCsv("# new\np, r, *, alerts, update, allow\np,r,*,alerts,create,allow\ng, user:b, r, payments\n");
    expect(policyDiff(prev, next)).toEqual({
      added: ["p, r, *, alerts, create, allow", "g, user:b, r, payments"],
      removed: ["p, r, *, alerts, read, allow", "g, user:a, r, *"],
    });
  });

  it("is empty for the same entries in another order", () => {
    const next = parsePolicyCsv("g, user:a, r, *\np, r, *, alerts, update, allow\np, r, *, alerts, read, allow\n");
    expect(policyDiff(prev, next)).toEqual({ added: [], removed: [] });
  });

  it("counts repeated lines (a multiset difference)", () => {
    const twice = parsePolicyCsv("p, r, *, alerts, read, allow\np, r, *, alerts, read, allow\n");
    const once = parsePolicyCsv("p, r, *, alerts, read, allow\n");
    expect(policyDiff(once, twice)).toEqual({ added: ["p, r, *, alerts, read, allow"], removed: [] });
    expect(policyDiff(twice, once)).toEqual({ added: [], removed: ["p, r, *, alerts, read, allow"] });
  });

  it("treats a changed effect as one line removed and one added", () => {
    const next = parsePolicyCsv("p, r, *, alerts, read, deny\np, r, *, alerts, update, allow\ng, user:a, r, *\n");
    expect(policyDiff(prev, next)).toEqual({ added: ["p, r, *, alerts, read, deny"], removed: ["p, r, *, alerts, read, allow"] });
  });
});
