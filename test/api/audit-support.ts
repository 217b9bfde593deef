/**
 * Shared by the audit API tests: an auditor and a developer enrolled through the
 * bootstrap port and bound by the administrator, and streamed GETs over real mTLS.
 */
import type { ClientRequest, IncomingMessage } from "node:http";
import { request } from "node:https";
import { expect } from "vitest";
import { parseHostPort } from "../../src/core/index.js";
import type { TestGateway } from "../support/gateway.js";
import { adminPost, creds, enrollNew, type Enrolled } from "./api-support.js";
import type { Who } from "./rbac-support.js";

export interface AuditWorld {
  /** user:aud, auditor in every namespace. */
  readonly aud: Enrolled;
  /** user:dev, developer in payments. */
  readonly dev: Enrolled;
}

/** Namespace payments; user:aud bound to auditor in `*` (URL-encoded), user:dev developer in payments. */
export async function setUpAuditWorld(t: TestGateway): Promise<AuditWorld> {
  const ns = await adminPost(t, "/v1/namespaces", { name: "payments" });
  expect(ns.status, ns.body).toBe(201);
  const [aud, dev] = await Promise.all([enrollNew(t, "user:aud"), enrollNew(t, "user:dev")]);
  const a = await adminPost(t, "/v1/namespaces/%2A/role-bindings", { identity: "user:aud", role: "auditor" });
  expect(a.status, a.body).toBe(200);
  const d = await adminPost(t, "/v1/namespaces/payments/role-bindings", { identity: "user:dev", role: "developer" });
  expect(d.status, d.body).toBe(200);
  return { aud, dev };
}

/** A GET on its own mTLS connection; resolves with the response as soon as its head arrives. */
export function openGet(t: TestGateway, who: Who, path: string, headers: Record<string, string> = {}): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  const { host, port } = parseHostPort(t.api);
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: "GET", ...creds(t, who), agent: false, headers }, (res) => resolve({ req, res }));
    req.setTimeout(20_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** A GET whose whole body is read. */
export async function getText(t: TestGateway, who: Who, path: string): Promise<{ status: number; headers: IncomingMessage["headers"]; text: string }> {
  const { res } = await openGet(t, who, path);
  let text = "";
  res.setEncoding("utf8");
  for await (const c of res) text += c as string;
  return { status: res.statusCode ?? 0, headers: res.headers, text };
}

/** The non-empty lines of a JSONL text. */
export function linesOf(text: string): string[] {
  return text.split("\n").filter((l) => l.length > 0);
}
