/**
 * The five shipped roles, over real mTLS with enrolled users: what each may do through
 * the real routes and through can-i, the rule that decided each time (recorded as
 * `authz.decision`), and deny by default for an identity bound to nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTIONS, RESOURCES } from "../../src/rbac/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mark } from "./api-support.js";
import {
  call,
  canI,
  decided,
  decisionsSince,
  expectCode,
  pathOf,
  RawClient,
  rbacRoutesOf,
  sampleBody,
  setUpWorld,
  type Who,
  type World,
} from "./rbac-support.js";

type Role = "platform-admin" | "security-admin" | "developer" | "auditor" | "node";

/**
 * What each role may do, written from the issue's description of the roles (not from the
 * policy file): the tests compare the gateway's answers with this.
 */
function expected(role: Role, boundIn: string, namespace: string, resource: string, action: string): boolean {
  if (boundIn !== "*" && namespace !== boundIn) return false;
  const mutatesAudit = resource === "audit" && ["create", "update", "delete"].includes(action);
  switch (role) {
    case "platform-admin":
      return !(resource === "secrets" && action === "read") && !mutatesAudit;
    case "security-admin":
      return (action === "read" && resource !== "secrets") || ["policies", "role-bindings", "waivers", "alerts", "quarantines"].includes(resource);
    case "developer":
      return (
        (resource === "deployments" && (action === "deploy" || action === "read")) ||
        (resource === "secrets" && action === "use") ||
        (resource === "secret-metadata" && action === "read") ||
        (resource === "namespaces" && action === "read")
      );
    case "auditor":
      return (action === "read" && resource !== "secrets") || (resource === "audit" && action === "export");
    case "node":
      return (resource === "nodes" && (action === "read" || action === "update")) || (resource === "deployments" && action === "read") || (resource === "alerts" && action === "create");
  }
}

/** A recorded rule is "default-deny" or a line of the policy in force whose effect matches. */
function expectRuleOf(rule: string, allowed: boolean, csv: string, what: string): void {
  if (!allowed && rule === "default-deny") return;
  expect(rule, what).toMatch(allowed ? /^p, .*, allow$/ : /^p, .*, deny$/);
  expect(csv.split("\n"), `${what}: "${rule}" is a line of the policy in force`).toContain(rule);
}

describe("the shipped roles over mTLS", () => {
  let t: TestGateway;
  let w: World;
  let csv: string;
  let who: Record<Role, { c: Who; id: string; boundIn: string }>;

  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpWorld(t);
    csv = t.gw.policy.current().csv;
    who = {
      "platform-admin": { c: w.admin, id: "user:admin", boundIn: "*" },
      "security-admin": { c: w.sec, id: "user:sec", boundIn: "*" },
      developer: { c: w.dev, id: "user:dev", boundIn: "payments" },
      auditor: { c: w.aud, id: "user:aud", boundIn: "*" },
      node: { c: w.node, id: "node:engine-1", boundIn: "*" },
    };
  });
  afterAll(async () => {
    await t?.close();
  });

  it("can-i answers, for each role, every resource x action in payments, billing and *, as the roles are described", async () => {
    const mismatches: string[] = [];
    for (const role of Object.keys(who) as Role[]) {
      const { c, id, boundIn } = who[role];
      const raw = await RawClient.open(t, c);
      try {
        for (const namespace of ["payments", "billing", "*"]) {
          for (const resource of RESOURCES) {
            for (const action of ACTIONS) {
              const q = new URLSearchParams({ action, resource, namespace }).toString();
              const a = await raw.send("GET", `/v1/can-i?${q}`);
              expect(a.status, a.text).toBe(200);
              const want = expected(role, boundIn, namespace, resource, action);
              if (a.body.allowed !== want) mismatches.push(`${role} ${namespace} ${resource}:${action} got ${String(a.body.allowed)} (${String(a.body.rule)})`);
              expect(a.body.subject).toBe(id);
              expectRuleOf(a.body.rule as string, a.body.allowed as boolean, csv, `${role} ${namespace} ${resource}:${action}`);
            }
          }
        }
      } finally {
        raw.close();
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("names the deny rule that stops the platform admin reading secrets or editing the audit log", async () => {
    const secrets = await canI(t, w.admin, "read", "secrets", "payments");
    expect(secrets.body).toMatchObject({ allowed: false, rule: "p, platform-admin, *, secrets, read, deny", subject: "user:admin" });
    for (const action of ["create", "update", "delete"]) {
      const a = await canI(t, w.admin, action, "audit", "*");
      expect(a.body).toMatchObject({ allowed: false, rule: `p, platform-admin, *, audit, ${action}, deny` });
    }
    const other = await canI(t, w.admin, "exec", "deployments", "billing");
    expect(other.body).toMatchObject({ allowed: true, rule: "p, platform-admin, *, *, *, allow" });
  });

  /**
   * Real routes. Each is called by every role; a denied call is 403 PC_API_FORBIDDEN, an
   * allowed one reaches its handler (whose answer is given here). Bodies that would change
   * the policy are invalid on purpose, so that "allowed" shows as the handler's refusal.
   */
  const ROUTES: { method: string; path: string; body?: unknown; resource: string; action: string; ns: string; ok: number; okCode?: string }[] = [
    { method: "GET", path: "/v1/namespaces", resource: "namespaces", action: "read", ns: "*", ok: 200 },
    { method: "GET", path: "/v1/namespaces/payments", resource: "namespaces", action: "read", ns: "payments", ok: 200 },
    { method: "GET", path: "/v1/namespaces/billing", resource: "namespaces", action: "read", ns: "billing", ok: 200 },
    { method: "POST", path: "/v1/namespaces", body: { name: "payments" }, resource: "namespaces", action: "create", ns: "*", ok: 409, okCode: "PC_RBAC_NAMESPACE_EXISTS" },
    { method: "DELETE", path: "/v1/namespaces/no-such", resource: "namespaces", action: "delete", ns: "*", ok: 404, okCode: "PC_RBAC_NAMESPACE_NOT_FOUND" },
    { method: "GET", path: "/v1/policy", resource: "policies", action: "read", ns: "*", ok: 200 },
    { method: "GET", path: "/v1/policy/history", resource: "policies", action: "read", ns: "*", ok: 200 },
    { method: "PUT", path: "/v1/policy", body: { csv: "p, only-one-field", message: "x" }, resource: "policies", action: "update", ns: "*", ok: 400, okCode: "PC_RBAC_POLICY_INVALID" },
    { method: "POST", path: "/v1/policy/rollback", body: { version: 999 }, resource: "policies", action: "update", ns: "*", ok: 404, okCode: "PC_RBAC_VERSION_NOT_FOUND" },
    { method: "POST", path: "/v1/namespaces/payments/role-bindings", body: { identity: "user:x", role: "no-such-role" }, resource: "role-bindings", action: "create", ns: "payments", ok: 400, okCode: "PC_RBAC_POLICY_INVALID" },
    { method: "POST", path: "/v1/namespaces/billing/role-bindings/remove", body: { identity: "user:x", role: "developer" }, resource: "role-bindings", action: "delete", ns: "billing", ok: 404, okCode: "PC_RBAC_BINDING_NOT_FOUND" },
    { method: "POST", path: "/v1/enroll-tokens", body: { identity: "user:newcomer" }, resource: "enroll-tokens", action: "create", ns: "*", ok: 201 },
    { method: "GET", path: "/v1/certificates", resource: "certificates", action: "read", ns: "*", ok: 200 },
    { method: "POST", path: "/v1/certificates/revoke", body: { serial: "0badc0de" }, resource: "certificates", action: "delete", ns: "*", ok: 404 },
  ];

  it.each(["platform-admin", "security-admin", "developer", "auditor", "node"] as Role[])(
    "%s: every route answers as the role allows, and each decision is recorded with its rule",
    async (role) => {
      const { c, id, boundIn } = who[role];
      for (const r of ROUTES) {
        const what = `${role} ${r.method} ${r.path}`;
        const allowed = expected(role, boundIn, r.ns, r.resource, r.action);
        const a = await decided(t, c, r.method, r.path, r.body);
        if (allowed) {
          expect(a.status, `${what}: ${a.text}`).toBe(r.ok);
          if (r.okCode) expect(a.body.code, what).toBe(r.okCode);
        } else {
          expectCode(a, 403, "PC_API_FORBIDDEN");
        }
        expect(a.decision, what).toMatchObject({
          type: "authz.decision",
          outcome: allowed ? "allowed" : "denied",
          actor: id,
          route: `${r.resource}:${r.action}`,
          target: r.ns,
        });
        expectRuleOf(a.decision.reason as string, allowed, csv, what);
      }
      // Routes that need only an identity work for every role, and record no RBAC decision.
      const m = mark(t);
      const me = await call(t, c, "GET", "/v1/whoami");
      expect(me.status).toBe(200);
      expect(me.body.identity).toBe(id);
      expect(decisionsSince(t, m)).toEqual([]);
    },
  );

  it("records the exact rule for the decisions the roles are known by", async () => {
    const cases: [Who, string, string, unknown, boolean, string][] = [
      [w.dev, "GET", "/v1/namespaces/payments", undefined, true, "p, developer, *, namespaces, read, allow"],
      [w.dev, "GET", "/v1/namespaces/billing", undefined, false, "default-deny"],
      [w.dev, "GET", "/v1/policy", undefined, false, "default-deny"],
      [w.sec, "PUT", "/v1/policy", { csv: "p, x" }, true, "p, security-admin, *, policies, *, allow"],
      [w.sec, "POST", "/v1/enroll-tokens", { identity: "user:zed" }, false, "default-deny"],
      [w.aud, "GET", "/v1/certificates", undefined, true, "p, auditor, *, *, read, allow"],
      [w.aud, "POST", "/v1/certificates/revoke", { serial: "01" }, false, "default-deny"],
      [w.admin, "POST", "/v1/enroll-tokens", { identity: "user:zed" }, true, "p, platform-admin, *, *, *, allow"],
    ];
    for (const [c, method, path, body, allowed, rule] of cases) {
      const a = await decided(t, c, method, path, body);
      expect(a.decision, `${method} ${path}`).toMatchObject({ outcome: allowed ? "allowed" : "denied", reason: rule });
    }
  });

  it("developer: reads and deploys in payments only, never reads secrets", async () => {
    const yes = await canI(t, w.dev, "deploy", "deployments", "payments");
    expect(yes.body).toMatchObject({ allowed: true, rule: "p, developer, *, deployments, deploy, allow", namespace: "payments" });
    const no = await canI(t, w.dev, "deploy", "deployments", "billing");
    expect(no.body).toMatchObject({ allowed: false, rule: "default-deny" });
    const secret = await canI(t, w.dev, "read", "secrets", "payments");
    expect(secret.body).toMatchObject({ allowed: false, rule: "p, developer, *, secrets, read, deny" });
    expect((await canI(t, w.dev, "use", "secrets", "payments")).body.allowed).toBe(true);
    expect((await canI(t, w.dev, "read", "secret-metadata", "payments")).body).toMatchObject({ allowed: true, rule: "p, developer, *, secret-metadata, read, allow" });
    expect((await canI(t, w.dev, "read", "secret-metadata", "billing")).body.allowed).toBe(false);
  });

  it("auditor: reads certificates, the policy and its history, may export the audit log, and mutates nothing", async () => {
    for (const path of ["/v1/certificates", "/v1/policy", "/v1/policy/history", "/v1/namespaces"]) {
      expect((await call(t, w.aud, "GET", path)).status, path).toBe(200);
    }
    expect((await canI(t, w.aud, "export", "audit", "*")).body).toMatchObject({ allowed: true, rule: "p, auditor, *, audit, export, allow" });
    expect((await canI(t, w.aud, "read", "secrets", "payments")).body).toMatchObject({ allowed: false, rule: "p, auditor, *, secrets, read, deny" });
    const before = t.gw.policy.current().version;
    const victim = t.issueClient("user:victim");
    for (const [method, path, body] of [
      ["POST", "/v1/namespaces", { name: "auditor-made" }],
      ["DELETE", "/v1/namespaces/billing", undefined],
      ["PUT", "/v1/policy", { csv: csv, message: "auditor" }],
      ["POST", "/v1/policy/rollback", { version: 1 }],
      ["POST", "/v1/enroll-tokens", { identity: "user:auditor-friend" }],
      ["POST", "/v1/certificates/revoke", { serial: victim.serial }],
      ["POST", "/v1/namespaces/payments/role-bindings", { identity: "user:aud", role: "developer" }],
    ] as const) {
      expectCode(await call(t, w.aud, method, path, body), 403, "PC_API_FORBIDDEN");
    }
    expect(t.gw.policy.current().version).toBe(before);
    expect(t.gw.namespaces.exists("auditor-made")).toBe(false);
    expect(t.gw.namespaces.exists("billing")).toBe(true);
    expect(t.gw.store.certificates.get(victim.serial)?.revokedAt ?? null).toBeNull();
    expect((await call(t, victim, "GET", "/v1/whoami")).status).toBe(200);
  });

  it("security-admin: applies policy but cannot create enroll tokens, namespaces or revoke", async () => {
    expect((await canI(t, w.sec, "update", "policies", "*")).body.allowed).toBe(true);
    expect((await canI(t, w.sec, "create", "enroll-tokens", "*")).body).toMatchObject({ allowed: false, rule: "default-deny" });
    expectCode(await call(t, w.sec, "POST", "/v1/enroll-tokens", { identity: "user:friend" }), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.sec, "POST", "/v1/namespaces", { name: "sec-made" }), 403, "PC_API_FORBIDDEN");
    expect((await canI(t, w.sec, "read", "secrets", "payments")).body).toMatchObject({ allowed: false, rule: "p, security-admin, *, secrets, read, deny" });
  });

  it("node: reads and updates nodes, reads deployments, raises alerts; nothing of the API's administration", async () => {
    expect((await canI(t, w.node, "read", "nodes", "*")).body).toMatchObject({ allowed: true, rule: "p, node, *, nodes, read, allow", subject: "node:engine-1" });
    expect((await canI(t, w.node, "read", "secrets", "payments")).body.allowed).toBe(false);
    expectCode(await call(t, w.node, "GET", "/v1/namespaces"), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.node, "GET", "/v1/certificates"), 403, "PC_API_FORBIDDEN");
  });
});

describe("deny by default", () => {
  let t: TestGateway;
  let w: World;
  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpWorld(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("an enrolled identity bound to nothing gets 403 on every RBAC route, recorded as default-deny; whoami works", async () => {
    const before = t.gw.policy.current().version;
    const routes = rbacRoutesOf(t);
    expect(routes.length).toBeGreaterThanOrEqual(13);
    for (const r of routes) {
      for (const ns of r.url.includes(":namespace") ? ["payments", "*"] : [undefined]) {
        const path = pathOf(r, ns);
        const a = await decided(t, w.nobody, r.method, path, sampleBody(r));
        expectCode(a, 403, "PC_API_FORBIDDEN");
        expect(a.decision, `${r.method} ${path}`).toMatchObject({ outcome: "denied", actor: "user:nobody", reason: "default-deny", route: `${r.authz.resource}:${r.authz.action}` });
      }
    }
    expect(t.gw.policy.current().version).toBe(before);
    const me = await call(t, w.nobody, "GET", "/v1/whoami");
    expect(me.status).toBe(200);
    expect(me.body.identity).toBe("user:nobody");
    // can-i about itself needs no permission: it answers no, with the default deny.
    const c = await canI(t, w.nobody, "read", "namespaces", "payments");
    expect(c.body).toMatchObject({ allowed: false, rule: "default-deny", subject: "user:nobody" });
  });
});
