import { describe, expect, it } from "vitest";
import { assertValidPolicy, validatePolicy } from "../../src/rbac/validate.js";
import type { ValidationIssue } from "../../src/rbac/validate.js";
import type { Policy } from "../../src/rbac/types.js";
import { refusal } from "../support/refusal.js";

/** Three good lines; each case appends its own from line 4 on. */
const BASE = [
  "p, developer, *, deployments, deploy, allow", // 1
  "p, developer, *, secrets, read, deny", // 2
  "g, user:dev1, developer, payments", // 3
];

const text = (...extra: string[]) => [...BASE, ...extra].join("\n");

type Row = [name: string, lines: string[], expected: ValidationIssue[]];

const issue = (line: number, code: string, field: string | undefined, reason: string): ValidationIssue =>
  (field ? { line, field, code, reason } : { line, code, reason }) as ValidationIssue;

const NOT_IDENTITY = (s: string) =>
  `${JSON.stringify(s)} is not an identity (user:NAME, node:NAME or service:NAME, the NAME of lower-case letters, digits, '.', '_', '-')`;
const NOT_ROLE = (s: string) =>
  `${JSON.stringify(s)} is not a role name (a lower-case letter, then up to 62 lower-case letters, digits or '-')`;
const NOT_NAMESPACE = (s: string) =>
  `${JSON.stringify(s)} is not a namespace (a DNS label: lower-case letters, digits and '-', at most 63, or "*")`;

describe("validatePolicy accepts", () => {
  it.each([
    ["the base policy", []],
    ["a direct grant to an identity", ["p, user:ops, payments, deployments, read, allow"]],
    ["identities of every kind", ["p, node:engine-1, *, nodes, update, allow", "p, service:ci.build, payments, deployments, deploy, allow"]],
    ["wildcards for resource and action", ["p, viewer, payments, *, read, allow", "p, ops, payments, deployments, *, allow"]],
    ["a cluster-wide binding", ["g, user:lead, developer, *"]],
    ["a role defined by inheritance only", ["g, viewer, developer, *", "g, user:v, viewer, payments"]],
    ["inheritance through several roles", ["g, a, developer, *", "g, b, a, *", "g, user:v, b, payments"]],
    ["allow and deny for the same request", ["p, developer, *, secrets, read, allow"]],
    ["a role with deny rules only", ["p, blocked, *, *, *, deny", "g, user:x, blocked, *"]],
    ["a 63-character namespace and role", [`p, r${"a".repeat(62)}, ${"n".repeat(63)}, alerts, read, allow`]],
    ["audit read and export", ["p, auditor, *, audit, read, allow", "p, auditor, *, audit, export, allow"]],
    [
      "everything with the three audit denies in *",
      ["p, admin, *, *, *, allow", "p, admin, *, audit, create, deny", "p, admin, *, audit, update, deny", "p, admin, *, audit, delete, deny"],
    ],
    [
      "everything in a namespace with denies in that namespace",
      ["p, admin, payments, *, *, allow", "p, admin, payments, audit, create, deny", "p, admin, payments, audit, update, deny", "p, admin, payments, audit, delete, deny"],
    ],
    ["everything in a namespace with one deny of audit * in *", ["p, admin, payments, *, *, allow", "p, admin, *, audit, *, deny"]],
    ["a resource wildcard for update with its audit deny", ["p, editor, *, *, update, allow", "p, editor, *, audit, update, deny"]],
    ["a resource wildcard for actions that do not edit", ["p, viewer, *, *, read, allow", "p, viewer, *, *, export, allow"]],
  ])("%s", (_name, lines) => {
    expect(validatePolicy(text(...lines))).toEqual([]);
    expect(assertValidPolicy(text(...lines)).rules.length).toBeGreaterThan(0);
  });
});

describe("validatePolicy refuses, with the line and the field", () => {
  const rows: Row[] = [
    // syntax
    ["an unknown line type", ["r, developer, *"], [issue(4, "syntax", undefined, 'unknown line type "r" (expected "p" or "g")')]],
    ["a wrong field count", ["p, developer, *, deployments, allow"], [issue(4, "syntax", undefined, "expected 6 fields (p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT), found 5")]],
    ["an empty field", ["g, user:x, , payments"], [issue(4, "syntax", "role", "empty role")]],
    // vocabulary
    ["an unknown resource", ["p, developer, *, pods, read, allow"], [issue(4, "unknown-resource", "resource", 'unknown resource "pods"')]],
    ["a resource in upper case", ["p, developer, *, Deployments, read, allow"], [issue(4, "unknown-resource", "resource", 'unknown resource "Deployments"')]],
    ["a resource pattern", ["p, developer, *, deploy*, read, allow"], [issue(4, "unknown-resource", "resource", 'unknown resource "deploy*"')]],
    ["an unknown action", ["p, developer, *, deployments, fly, allow"], [issue(4, "unknown-action", "action", 'unknown action "fly"')]],
    ["an action named like a resource", ["p, developer, *, deployments, secrets, allow"], [issue(4, "unknown-action", "action", 'unknown action "secrets"')]],
    ["an effect in upper case", ["p, developer, *, deployments, read, Allow"], [issue(4, "bad-effect", "effect", 'effect must be "allow" or "deny", not "Allow"')]],
    ["an unknown effect", ["p, developer, *, deployments, read, permit"], [issue(4, "bad-effect", "effect", 'effect must be "allow" or "deny", not "permit"')]],
    // subjects
    ["an identity in upper case", ["p, user:Alice, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_IDENTITY("user:Alice"))]],
    ["an identity with a space", ["p, user:al ice, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_IDENTITY("user:al ice"))]],
    ["an identity with '..'", ["p, user:a..b, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", `"user:a..b" is not an identity ('..' is not allowed in a name)`)]],
    ["an identity with a trailing *", ["p, user:alice*, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_IDENTITY("user:alice*"))]],
    ["an identity of an unknown kind", ["p, admin:alice, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_IDENTITY("admin:alice"))]],
    ["an identity with a path", ["p, user:a/../b, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_IDENTITY("user:a/../b"))]],
    ["a role in upper case", ["p, Developer, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_ROLE("Developer"))]],
    ["a role with a trailing *", ["p, dev*, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_ROLE("dev*"))]],
    ["a role that starts with a digit", ["p, 1dev, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_ROLE("1dev"))]],
    ["a role of 64 characters", [`p, r${"a".repeat(63)}, *, alerts, read, allow`], [issue(4, "bad-subject", "subject", NOT_ROLE(`r${"a".repeat(63)}`))]],
    ["a subject *", ["p, *, *, alerts, read, allow"], [issue(4, "bad-subject", "subject", NOT_ROLE("*"))]],
    // bindings
    ["a member with a space", ["g, user:dev 2, developer, payments"], [issue(4, "bad-member", "member", NOT_IDENTITY("user:dev 2"))]],
    ["a member with '..'", ["g, user:dev..2, developer, payments"], [issue(4, "bad-member", "member", `"user:dev..2" is not an identity ('..' is not allowed in a name)`)]],
    ["a member with a trailing *", ["g, user:*, developer, payments"], [issue(4, "bad-member", "member", NOT_IDENTITY("user:*"))]],
    ["an identity bound as a role", ["g, user:dev2, user:dev1, payments"], [issue(4, "bad-role", "role", '"user:dev1" is an identity; only a role can be bound')]],
    ["a role name in upper case", ["g, user:dev2, DEVELOPER, payments"], [issue(4, "bad-role", "role", NOT_ROLE("DEVELOPER"))]],
    ["a binding to an undefined role", ["g, user:dev2, deployer, payments"], [issue(4, "undefined-role", "role", 'role "deployer" is not defined by any rule')]],
    ["a binding to a role that inherits from nothing defined", ["g, viewer, reader, *", "g, user:v, viewer, *"], [
      issue(4, "undefined-role", "role", 'role "reader" is not defined by any rule'),
      issue(5, "undefined-role", "role", 'role "viewer" is not defined by any rule'),
    ]],
    ["a role bound to itself", ["g, developer, developer, payments"], [issue(4, "role-cycle", "role", "role inheritance cycle: developer -> developer")]],
    ["an inheritance cycle", ["p, lead, *, approvals, approve, allow", "g, developer, lead, *", "g, lead, developer, payments"], [
      issue(5, "role-cycle", "role", "role inheritance cycle: developer -> lead -> developer"),
      issue(6, "role-cycle", "role", "role inheritance cycle: lead -> developer -> lead"),
    ]],
    // namespaces
    ["a namespace in upper case", ["p, developer, Payments, alerts, read, allow"], [issue(4, "bad-namespace", "namespace", NOT_NAMESPACE("Payments"))]],
    ["a namespace with an underscore", ["g, user:dev2, developer, pay_ments"], [issue(4, "bad-namespace", "namespace", NOT_NAMESPACE("pay_ments"))]],
    ["a namespace with a dot", ["g, user:dev2, developer, pay.ments"], [issue(4, "bad-namespace", "namespace", NOT_NAMESPACE("pay.ments"))]],
    ["a namespace that starts with '-'", ["p, developer, -payments, alerts, read, allow"], [issue(4, "bad-namespace", "namespace", NOT_NAMESPACE("-payments"))]],
    ["a namespace of 64 characters", [`g, user:dev2, developer, ${"n".repeat(64)}`], [issue(4, "bad-namespace", "namespace", NOT_NAMESPACE("n".repeat(64)))]],
    ["a namespace pattern", ["p, developer, pay*, alerts, read, allow"], [issue(4, "bad-namespace", "namespace", NOT_NAMESPACE("pay*"))]],
    // duplicates
    ["a duplicate rule", ["p, developer, *, alerts, read, allow", "p,developer,*,alerts,read,allow"], [issue(5, "duplicate-rule", undefined, "duplicate rule (same as line 4)")]],
    ["a duplicate of line 1", ["p, developer, *, deployments, deploy, allow"], [issue(4, "duplicate-rule", undefined, "duplicate rule (same as line 1)")]],
    ["a duplicate binding", ["g, user:dev1, developer, payments"], [issue(4, "duplicate-binding", undefined, "duplicate binding (same as line 3)")]],
    // the audit log
    ["an allow of audit update", ["p, developer, *, audit, update, allow"], [issue(4, "audit-mutation", "action", "allows audit update; nothing can edit the audit log")]],
    ["an allow of audit delete to an identity", ["p, user:ops, payments, audit, delete, allow"], [issue(4, "audit-mutation", "action", "allows audit delete; nothing can edit the audit log")]],
    ["an allow of audit create even with a deny", ["p, ops, *, audit, create, allow", "p, ops, *, audit, create, deny"], [issue(4, "audit-mutation", "action", "allows audit create; nothing can edit the audit log")]],
    ["an allow of everything without audit denies", ["p, admin, *, *, *, allow"], [
      issue(4, "audit-mutation", "resource", 'allows audit create, update, delete through "*"; nothing can edit the audit log: add "p, admin, *, audit, create, deny", "p, admin, *, audit, update, deny", "p, admin, *, audit, delete, deny"'),
    ]],
    ["an allow of everything with two of the three denies", ["p, admin, *, *, *, allow", "p, admin, *, audit, create, deny", "p, admin, *, audit, update, deny"], [
      issue(4, "audit-mutation", "resource", 'allows audit delete through "*"; nothing can edit the audit log: add "p, admin, *, audit, delete, deny"'),
    ]],
    ["an allow of audit * without denies", ["p, ops, payments, audit, *, allow"], [
      issue(4, "audit-mutation", "action", 'allows audit create, update, delete through "*"; nothing can edit the audit log: add "p, ops, payments, audit, create, deny", "p, ops, payments, audit, update, deny", "p, ops, payments, audit, delete, deny"'),
    ]],
    ["an allow of * delete", ["p, janitor, *, *, delete, allow"], [
      issue(4, "audit-mutation", "resource", 'allows audit delete through "*"; nothing can edit the audit log: add "p, janitor, *, audit, delete, deny"'),
    ]],
    ["a cluster-wide allow whose denies are only in one namespace", ["p, admin, *, *, update, allow", "p, admin, payments, audit, update, deny"], [
      issue(4, "audit-mutation", "resource", 'allows audit update through "*"; nothing can edit the audit log: add "p, admin, *, audit, update, deny"'),
    ]],
    ["an allow whose denies belong to another subject", ["p, admin, *, *, update, allow", "p, developer, *, audit, update, deny"], [
      issue(4, "audit-mutation", "resource", 'allows audit update through "*"; nothing can edit the audit log: add "p, admin, *, audit, update, deny"'),
    ]],
    ["an allow whose deny is for another namespace", ["p, admin, billing, *, update, allow", "p, admin, payments, audit, update, deny"], [
      issue(4, "audit-mutation", "resource", 'allows audit update through "*"; nothing can edit the audit log: add "p, admin, billing, audit, update, deny"'),
    ]],
  ];

  it.each(rows)("%s", (_name, lines, expected) => {
    const issues = validatePolicy(text(...lines));
    expect(issues).toEqual(expected);
    const e = refusal(() => assertValidPolicy(text(...lines)));
    expect(e.code).toBe("PC_RBAC_POLICY_INVALID");
    expect(e.status).toBe(400);
    for (const i of expected) expect(e.detail).toContain(`line ${i.line}${i.field ? ` (${i.field})` : ""}: ${i.reason}`);
  });
});

describe("validatePolicy on a file with many problems", () => {
  const bad = [
    "# a policy with five problems", // 1
    "p, developer, *, deployments, deploy, allow", // 2
    "p, developer, *, deployments, launch, allow", // 3
    "q, nonsense", // 4
    "g, user:dev1, developer, Payments", // 5
    "p, developer, *, deployments, deploy, allow", // 6
    "g, user:dev2, tester, payments", // 7
  ].join("\n");

  it("reports every one, in line order", () => {
    expect(validatePolicy(bad).map((i) => [i.line, i.code])).toEqual([
      [3, "unknown-action"],
      [4, "syntax"],
      [5, "bad-namespace"],
      [6, "duplicate-rule"],
      [7, "undefined-role"],
    ]);
  });

  it("refuses it with one error whose detail lists them all", () => {
    const e = refusal(() => assertValidPolicy(bad));
    expect(e.code).toBe("PC_RBAC_POLICY_INVALID");
    expect(e.detail).toBe(
      [
        'line 3 (action): unknown action "launch"',
        'line 4: unknown line type "q" (expected "p" or "g")',
        `line 5 (namespace): ${NOT_NAMESPACE("Payments")}`,
        "line 6: duplicate rule (same as line 2)",
        'line 7 (role): role "tester" is not defined by any rule',
      ].join("; "),
    );
  });

  it("reports several problems of one entry", () => {
    expect(validatePolicy("p, Dev, NS, pods, fly, maybe\n").map((i) => [i.line, i.field])).toEqual([
      [1, "subject"],
      [1, "namespace"],
      [1, "resource"],
      [1, "action"],
      [1, "effect"],
    ]);
  });
});

describe("validatePolicy on Policy values", () => {
  it("numbers entries without lines as in the canonical form: rules first, then bindings", () => {
    const policy: Policy = {
      rules: [
        { subject: "developer", namespace: "*", resource: "deployments", action: "deploy", effect: "allow" },
        { subject: "developer", namespace: "*", resource: "deployments", action: "deploy", effect: "allow" },
      ],
      bindings: [
        { member: "user:dev1", role: "developer", namespace: "payments" },
        { member: "user:dev\n1", role: "developer", namespace: "payments" },
      ],
    };
    expect(validatePolicy(policy)).toEqual([
      issue(2, "duplicate-rule", undefined, "duplicate rule (same as line 1)"),
      issue(4, "bad-member", "member", NOT_IDENTITY("user:dev\n1")),
    ]);
  });

  it("refuses fields that are not strings and a value that is not a policy", () => {
    const policy = {
      rules: [{ subject: "developer", namespace: "*", resource: "deployments", action: 7, effect: "allow" }],
      bindings: [],
    } as unknown as Policy;
    expect(validatePolicy(policy)).toEqual([issue(1, "syntax", "action", "action must be a string")]);
    expect(validatePolicy({ rules: "x" } as unknown as Policy)).toEqual([issue(0, "syntax", undefined, "policy must have rules and bindings lists")]);
  });

  it("returns the policy it validated", () => {
    const p = assertValidPolicy(text());
    expect(p.rules.map((r) => r.line)).toEqual([1, 2]);
    expect(p.bindings).toEqual([{ member: "user:dev1", role: "developer", namespace: "payments", line: 3 }]);
  });
});

describe("a policy with very many problems", () => {
  it("lists the first 1000 in the detail and counts the rest", () => {
    const lines = Array.from({ length: 1005 }, (_, i) => `g, user:u${i}, ghost, payments`);
    const e = refusal(() => assertValidPolicy(lines.join("\n")));
    const parts = e.detail?.split("; ") ?? [];
    expect(parts).toHaveLength(1001);
    expect(parts[0]).toBe('line 1 (role): role "ghost" is not defined by any rule');
    expect(parts[999]).toBe('line 1000 (role): role "ghost" is not defined by any rule');
    expect(parts[1000]).toBe("and 5 more issues");
    expect((e.internal as unknown[]).length).toBe(1005);
  });
});
