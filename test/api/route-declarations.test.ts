/**
 * Every route that exists on either listener comes from a declaration that says who may
 * call it and what it answers; nothing else can be registered; the OpenAPI document
 * lists exactly the declared API routes; and the declared authorization is what the
 * server enforces, route by route.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiRoutes,
  bootstrapRoutes,
  buildServer,
  defineRoute,

  type RouteDef,
} from "../../src/api/index.js";
import { PortcullisError, silentLogger, type AuditEvent } from "../../src/core/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mtlsGet, mtlsJson } from "../support/tls-client.js";
import { creds, enrollNew, eventsSince, expectError, json, mark, type Enrolled } from "./api-support.js";
import { routeContextOf } from "./rbac-support.js";

/** "METHOD /path" for every route in fastify's route tree (printRoutes, commonPrefix off). */
function registeredRoutes(app: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] as string).length / 4;
    stack.length = depth;
    const path = `${stack.join("")}${m[2] as string}`;
    stack.push(m[2] as string);
    for (const method of (m[3] ?? "").split(",").map((s) => s.trim()).filter(Boolean)) out.push(`${method} ${path}`);
  }
  return out.sort();
}

const keyOf = (r: Pick<RouteDef, "method" | "url">) => `${r.method} ${r.url}`;

function declarations(t: TestGateway): { api: RouteDef[]; bootstrap: RouteDef[] } {
  const ctx = routeContextOf(t);
  return { api: apiRoutes(ctx), bootstrap: bootstrapRoutes(ctx) };
}

describe("route declarations", () => {
  let t: TestGateway;
  let alice: Enrolled;
  beforeAll(async () => {
    t = await startTestGateway();
    alice = await enrollNew(t, "user:alice");
  });
  afterAll(async () => {
    await t?.close();
  });

  it("every route of both listeners is declared, and every declaration is registered", () => {
    const d = declarations(t);
    const api = registeredRoutes(t.gw.api);
    const boot = registeredRoutes(t.gw.bootstrap);
    expect(api.length).toBeGreaterThan(0);
    expect(boot.length).toBeGreaterThan(0);
    expect(api).toEqual(d.api.map(keyOf).sort());
    expect(boot).toEqual(d.bootstrap.map(keyOf).sort());
    for (const r of [...d.api, ...d.bootstrap]) {
      expect(t.gw[d.api.includes(r) ? "api" : "bootstrap"].hasRoute({ method: r.method, url: r.url }), keyOf(r)).toBe(true);
    }
    // The listeners do not share routes: enrollment is not on the API port, nothing of the API is on bootstrap.
    expect(api.filter((r) => boot.includes(r))).toEqual([]);
  });

  it("every declaration says who may call it and declares a success response schema", () => {
    const d = declarations(t);
    for (const r of d.api) expect(["authenticated", "rbac"], keyOf(r)).toContain(r.authz.kind);
    for (const r of d.bootstrap) expect(r.authz.kind, keyOf(r)).toBe("public");
    for (const r of [...d.api, ...d.bootstrap]) {
      const success = Object.keys(r.schema.response).map(Number).filter((s) => s >= 200 && s < 300);
      expect(success.length, `${keyOf(r)} has no 2xx response schema`).toBeGreaterThan(0);
      for (const s of success) expect(r.schema.response[s], keyOf(r)).toMatchObject({ type: expect.any(String) });
      expect(r.schema.summary.length, keyOf(r)).toBeGreaterThan(0);
      if (r.method === "POST") {
        expect(r.schema.body, `${keyOf(r)} has no body schema`).toMatchObject({ type: "object", additionalProperties: false });
      }
    }
  });

  it("/v1/openapi.json lists exactly the declared API routes, with their authorization and responses", async () => {
    const d = declarations(t);
    const r = await mtlsGet(t.api, "/v1/openapi.json", creds(t, alice));
    expect(r.status).toBe(200);
    const doc = json<{ openapi: string; paths: Record<string, Record<string, { "x-portcullis-authz": unknown; responses: Record<string, unknown> }>> }>(r);
    expect(doc.openapi).toMatch(/^3\./);
    const listed = Object.entries(doc.paths)
      .flatMap(([url, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${url.replace(/\{(\w+)\}/g, ":$1")}`))
      .sort();
    expect(listed).toEqual(d.api.map(keyOf).sort());
    expect(listed).toEqual(registeredRoutes(t.gw.api));
    for (const route of d.api) {
      const op = doc.paths[route.url.replace(/:(\w+)/g, "{$1}")]?.[route.method.toLowerCase()];
      expect(op?.["x-portcullis-authz"], keyOf(route)).toEqual(route.authz);
      for (const status of Object.keys(route.schema.response)) expect(op?.responses, keyOf(route)).toHaveProperty(status);
      // Every error answer is documented with the one error shape.
      for (const status of ["400", "401", "403", "404", "413", "415", "500"]) expect(op?.responses, keyOf(route)).toHaveProperty(status);
    }
  });

  it("enforces each API route's declared authorization before it reads the body", async () => {
    const d = declarations(t);
    const asAlice = creds(t, alice);
    for (const route of d.api) {
      const before = mark(t);
      // A body that is not even valid for the route: authorization must come first.
      const url = route.url.replace(/:(\w+)/g, "payments");
      const r = route.method === "GET" ? await mtlsGet(t.api, url, asAlice) : await mtlsJson(t.api, route.method, url, asAlice, '{"unexpected": true}');
      expect(r.ok, keyOf(route)).toBe(true);
      if (route.authz.kind === "rbac") {
        expectError(r, 403, "PC_API_FORBIDDEN");
        const decision = eventsSince(t, before).find((e) => e.type === "authz.decision");
        expect(decision, keyOf(route)).toMatchObject({ outcome: "denied", actor: "user:alice", route: `${route.authz.resource}:${route.authz.action}` });
      } else {
        expect(r.status, `${keyOf(route)}: ${r.body ?? ""}`).not.toBe(403);
        expect(r.status, keyOf(route)).not.toBe(401);
      }
    }
  });

  it("the running listeners accept no new route", () => {
    const handler = async () => ({ pwned: true });
    expect(() => t.gw.api.get("/v1/backdoor", handler)).toThrow();
    expect(() => t.gw.bootstrap.get("/v1/backdoor", handler)).toThrow();
    expect(t.gw.api.hasRoute({ method: "GET", url: "/v1/backdoor" })).toBe(false);
    expect(t.gw.bootstrap.hasRoute({ method: "GET", url: "/v1/backdoor" })).toBe(false);
  });
});

describe("buildServer refuses routes without a declaration", () => {
  const audit = { record: (_e: AuditEvent) => undefined, recordAfter: (_e: AuditEvent) => undefined, append: async (_e: AuditEvent) => undefined, flush: () => undefined };
  const ok = defineRoute({
    method: "GET",
    url: "/v1/ok",
    authz: { kind: "authenticated" },
    schema: { summary: "ok", response: { 200: { type: "object", properties: { ok: { type: "boolean" } } } } },
    handler: async () => ({ ok: true, secret: "must not be sent" }),
  });
  const build = (kind: "api" | "bootstrap", routes: RouteDef[]) =>
    buildServer({
      kind,
      https: {},
      routes,
      logger: silentLogger,
      audit,
      authorizer: { authorize: () => ({ allowed: false, rule: "default-deny" }) },
      trustDomain: "portcullis.local",
      isRevoked: () => true,
    });
  const servers: FastifyInstance[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  function expectUndeclared(fn: () => unknown): void {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PortcullisError);
    expect((err as PortcullisError).code).toBe("PC_API_ROUTE_UNDECLARED");
  }

  it("throws PC_API_ROUTE_UNDECLARED for an undeclared route, method or wildcard", async () => {
    const app = await build("bootstrap", [{ ...ok, authz: { kind: "public" } }]);
    servers.push(app);
    expectUndeclared(() => app.get("/v1/extra", async () => ({})));
    expectUndeclared(() => app.post("/v1/ok", async () => ({})));
    expectUndeclared(() => app.all("/v1/ok", async () => ({})));
    expectUndeclared(() => app.route({ method: ["GET", "DELETE"], url: "/v1/ok", handler: async () => ({}) }));
  });

  it("refuses an undeclared route registered from a plugin", async () => {
    const app = await build("bootstrap", [{ ...ok, authz: { kind: "public" } }]);
    servers.push(app);
    const attempt = async () => {
      await app.register(async (child) => {
        child.get("/sneaky", async () => ({}));
      });
      await app.ready();
    };
    await expect(attempt()).rejects.toMatchObject({ code: "PC_API_ROUTE_UNDECLARED" });
    expect(app.hasRoute({ method: "GET", url: "/sneaky" })).toBe(false);
  });

  it("refuses a public route on the API port and a non-public one on the bootstrap port", async () => {
    await expect(build("api", [{ ...ok, authz: { kind: "public" } }])).rejects.toMatchObject({ code: "PC_API_ROUTE_UNDECLARED" });
    await expect(build("bootstrap", [ok])).rejects.toMatchObject({ code: "PC_API_ROUTE_UNDECLARED" });
  });

  it("answers with the declared response schema only (undeclared fields are not sent)", async () => {
    const app = await build("bootstrap", [{ ...ok, authz: { kind: "public" } }]);
    servers.push(app);
    const res = await app.inject({ method: "GET", url: "/v1/ok" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });
});
