/**
 * Shared by the RBAC integration tests: a gateway with the namespaces and enrolled users
 * the shipped roles are tried with, requests over real mTLS (one-shot, keep-alive, or a
 * raw request-target on a TLS socket), and the `authz.decision` events they leave.
 */
import { request } from "node:https";
import type { TLSSocket } from "node:tls";
import { expect } from "vitest";
import { apiRoutes, type RouteContext, type RouteDef } from "../../src/api/index.js";
import { parseHostPort, VERSION } from "../../src/core/index.js";
import type { StoredAccessEvent } from "../../src/store/index.js";
import type { ClientFiles, TestGateway } from "../support/gateway.js";
import { tlsConnect } from "../support/tls-client.js";
import { adminPost, creds, enrollNew, eventsSince, mark, type Enrolled } from "./api-support.js";

export type Who = Pick<ClientFiles, "certPem" | "keyPem">;

export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly body: any;
}

function answer(status: number, text: string): Answer {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status, text, body };
}

/** One request on its own mTLS connection; a JSON body only when given. */
export function call(t: TestGateway, who: Who, method: string, path: string, body?: unknown): Promise<Answer> {
  const { host, port } = parseHostPort(t.api);
  const payload = body === undefined ? undefined : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        method,
        path,
        ...creds(t, who),
        agent: false,
        timeout: 10_000,
        headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve(answer(res.statusCode ?? 0, text)));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Asserts an error answer `{ code, message, requestId }` with this status and code. */
export function expectCode(a: Answer, status: number, code: string): string {
  expect({ status: a.status, body: a.body }, a.text).toMatchObject({ status, body: { code } });
  expect(Object.keys(a.body as object).sort()).toEqual(["code", "message", "requestId"]);
  return (a.body as { message: string }).message;
}

/** A keep-alive mTLS connection that sends exact request-targets, one request at a time. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private waiting: ((e?: Error) => void) | undefined;
  private closed = false;

  private constructor(private readonly socket: TLSSocket) {
    socket.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.waiting?.(new Error("connection closed"));
    });
    socket.on("error", () => undefined);
  }

  static async open(t: TestGateway, who: Who): Promise<RawClient> {
    const c = await tlsConnect(t.api, { ...creds(t, who), servername: "localhost" });
    if (!c.socket) throw new Error(`connect failed: ${c.error ?? ""}`);
    return new RawClient(c.socket);
  }

  /** Sends `METHOD target HTTP/1.1` exactly as given and reads one response. */
  async send(method: string, target: string, body?: unknown): Promise<Answer> {
    if (this.closed) throw new Error("connection closed");
    const payload = body === undefined ? "" : JSON.stringify(body);
    const head = [`${method} ${target} HTTP/1.1`, "Host: localhost", "Connection: keep-alive"];
    if (body !== undefined) head.push("Content-Type: application/json", `Content-Length: ${Buffer.byteLength(payload)}`);
    this.socket.write(`${head.join("\r\n")}\r\n\r\n${payload}`);
    for (;;) {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        const headText = this.buf.subarray(0, end).toString("latin1");
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headText)?.[1] ?? "0");
        if (this.buf.length >= end + 4 + len) {
          const text = this.buf.subarray(end + 4, end + 4 + len).toString("utf8");
          this.buf = this.buf.subarray(end + 4 + len);
          return answer(Number(headText.split(" ")[1]), text);
        }
      }
      await new Promise<void>((resolve, reject) => {
        this.waiting = (e) => {
          this.waiting = undefined;
          if (e) reject(e);
          else resolve();
        };
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The route context of a running gateway, as the server builds it. */
export function routeContextOf(t: TestGateway): RouteContext {
  return {
    pki: t.gw.pki,
    policy: t.gw.policy,
    namespaces: t.gw.namespaces,
    nodes: t.gw.nodes,
    nodeEvents: (node) => t.gw.monitoring.streams.state(node),
    deployments: t.gw.deploy,
    audit: t.gw.audit,
    openAuditReader: t.gw.openAuditReader,
    config: t.gw.config,
    version: VERSION,
    onRevocation: () => undefined,
    apiAddress: () => t.api,
    health: async () => ({}),
    admissionPolicy: t.gw.admissionPolicy,
    monitoringRules: t.gw.monitoringRules,
    recordedEvents: t.gw.store.monitorEvents,
    waivers: t.gw.waivers,
    secrets: t.gw.secrets,
    scan: t.gw.scanViews,
    alerts: t.gw.alerts,
    quarantines: t.gw.quarantines,
    metrics: t.gw.metrics,
    secretUsers: { running: () => false, stopUsing: async () => undefined },
  };
}

/** The API route declarations of a running gateway (the ones the server registered). */
export function declaredApiRoutes(t: TestGateway): RouteDef[] {
  return apiRoutes(routeContextOf(t));
}

export type RbacRoute = RouteDef & { authz: Extract<RouteDef["authz"], { kind: "rbac" }> };

export function rbacRoutesOf(t: TestGateway): RbacRoute[] {
  return declaredApiRoutes(t).filter((r): r is RbacRoute => r.authz.kind === "rbac");
}

/** The concrete path of a declared route, its `:namespace` filled in. */
export function pathOf(r: Pick<RouteDef, "url">, namespace = "payments"): string {
  return r.url.replace(":namespace", namespace);
}

/** A body that passes each route's schema (so that only authorization can refuse it). */
export function sampleBody(r: Pick<RouteDef, "method" | "url">): unknown {
  const key = `${r.method} ${r.url}`;
  switch (key) {
    case "POST /v1/namespaces":
      return { name: "never-made" };
    case "PUT /v1/policy":
      return { csv: "p, x", message: "never applied" };
    case "POST /v1/policy/rollback":
      return { version: 1 };
    case "POST /v1/namespaces/:namespace/role-bindings":
    case "POST /v1/namespaces/:namespace/role-bindings/remove":
      return { identity: "user:nobody", role: "developer" };
    case "POST /v1/enroll-tokens":
      return { identity: "user:never" };
    case "POST /v1/certificates/revoke":
      return { serial: "01" };
    case "POST /v1/namespaces/:namespace/deployments":
    case "POST /v1/namespaces/:namespace/admission/review":
      return { request: "not.a.request" };
    case "PUT /v1/admission/policy":
      return { files: [{ name: "never.yaml", text: "never: applied\n" }], message: "never applied" };
    case "POST /v1/admission/policy/rollback":
      return { version: 1 };
    case "PUT /v1/monitoring/rules":
      return { text: "never: applied\n", message: "never applied" };
    case "POST /v1/monitoring/rules/rollback":
      return { version: 1 };
    case "POST /v1/monitoring/rules/test":
      return { rules: "never: applied\n", events: "" };
    case "POST /v1/namespaces/:namespace/waivers":
      return { check: "image-reference", owner: "user:nobody", justification: "never created at all", ticket: "SEC-0", expires: "1d" };
    default:
      return r.method === "GET" || r.method === "DELETE" ? undefined : {};
  }
}

/** The `authz.decision` events recorded since `since`. */
export function decisionsSince(t: TestGateway, since: number): StoredAccessEvent[] {
  return eventsSince(t, since).filter((e) => e.type === "authz.decision");
}

/** Calls a route and returns the answer with the one authz.decision it produced. */
export async function decided(t: TestGateway, who: Who, method: string, path: string, body?: unknown): Promise<Answer & { decision: StoredAccessEvent }> {
  const m = mark(t);
  const a = await call(t, who, method, path, body);
  const ds = decisionsSince(t, m);
  expect(ds, `${method} ${path}: one authz.decision`).toHaveLength(1);
  return { ...a, decision: ds[0] as StoredAccessEvent };
}

export interface World {
  readonly t: TestGateway;
  readonly admin: Who;
  readonly sec: Enrolled;
  readonly dev: Enrolled;
  readonly aud: Enrolled;
  readonly node: Enrolled;
  /** Enrolled, bound to nothing. */
  readonly nobody: Enrolled;
  /** The policy CSV of version 1 (as GET /v1/policy answered it before any change). */
  readonly v1Csv: string;
}

/**
 * Namespaces payments and billing; user:sec security-admin (*), user:dev developer in
 * payments, user:aud auditor (*), node:engine-1 node (*), all bound by the administrator
 * through the API; every identity enrolled through the bootstrap port.
 */
export async function setUpWorld(t: TestGateway): Promise<World> {
  const admin = t.admin;
  const v1 = await call(t, admin, "GET", "/v1/policy");
  expect(v1.status, v1.text).toBe(200);
  expect(v1.body.version).toBe(1);
  for (const name of ["payments", "billing"]) {
    const r = await adminPost(t, "/v1/namespaces", { name });
    expect(r.status, r.body).toBe(201);
  }
  const [sec, dev, aud, node, nobody] = await Promise.all(
    ["user:sec", "user:dev", "user:aud", "node:engine-1", "user:nobody"].map((id) => enrollNew(t, id)),
  );
  for (const [identity, role, ns] of [
    ["user:sec", "security-admin", "*"],
    ["user:dev", "developer", "payments"],
    ["user:aud", "auditor", "*"],
    ["node:engine-1", "node", "*"],
  ] as const) {
    const r = await adminPost(t, `/v1/namespaces/${ns}/role-bindings`, { identity, role });
    expect(r.status, r.body).toBe(200);
  }
  return { t, admin, sec: sec as Enrolled, dev: dev as Enrolled, aud: aud as Enrolled, node: node as Enrolled, nobody: nobody as Enrolled, v1Csv: v1.body.csv as string };
}

/** GET /v1/can-i as `who`. */
export async function canI(t: TestGateway, who: Who, action: string, resource: string, namespace: string, as?: string): Promise<Answer> {
  const q = new URLSearchParams({ action, resource, namespace });
  if (as) q.set("as", as);
  return call(t, who, "GET", `/v1/can-i?${q.toString()}`);
}

/** The version and CSV in force, read as the administrator. */
export async function policyInForce(t: TestGateway): Promise<{ version: number; csv: string }> {
  const r = await call(t, t.admin, "GET", "/v1/policy");
  expect(r.status, r.text).toBe(200);
  return r.body as { version: number; csv: string };
}
