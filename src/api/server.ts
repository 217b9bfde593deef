import type { TLSSocket, Server as TlsServer } from "node:tls";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { AuditEvent, AuditSink, Logger, MetricsSink } from "../core/index.js";
import { newRequestId, NO_METRICS, parseStrictJson, pcError } from "../core/index.js";
import type { Authorizer } from "./authz.js";
import { authorizeRequest } from "./authorize.js";
import { errorBody, sendError } from "./errors.js";
import { callerOf, type Caller } from "./identity.js";
import { DEFAULT_BODY_LIMIT, ERROR_RESPONSES, type RouteDef } from "./route.js";

declare module "fastify" {
  interface FastifyRequest {
    caller?: Caller;
  }
}

export interface ServerDeps {
  readonly kind: "api" | "bootstrap";
  readonly https: Record<string, unknown>;
  readonly routes: readonly RouteDef[];
  readonly logger: Logger;
  readonly audit: AuditSink;
  readonly authorizer: Authorizer;
  readonly trustDomain: string;
  /** Checked on every API request: a certificate revoked after the handshake is refused. */
  readonly isRevoked: (serial: string) => boolean;
  /** Requests answered and authorization decisions (default: kept nowhere). */
  readonly metrics?: MetricsSink;
}

/** Finds the request's caller; only the API port has one. */
export function requireCaller(req: FastifyRequest): Caller {
  if (!req.caller) throw pcError("PC_API_UNAUTHENTICATED");
  return req.caller;
}

function outcomeOf(status: number): AuditEvent["outcome"] {
  if (status < 400) return "allowed";
  if (status === 401 || status === 403) return "denied";
  return status >= 500 ? "error" : "denied";
}

/**
 * Builds one listener. Every route is registered from a declaration; a route without
 * one cannot exist, because the onRoute hook refuses any registration that does not
 * carry its authz. JSON bodies are parsed strictly (duplicate keys refused), schemas
 * reject unknown fields, and every error is `{ code, message, requestId }`.
 */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    https: deps.https,
    loggerInstance: deps.logger,
    genReqId: () => newRequestId(),
    requestIdHeader: false,
    bodyLimit: DEFAULT_BODY_LIMIT,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  const declared = new Set(deps.routes.map((r) => `${r.method} ${r.url}`));
  app.addHook("onRoute", (opts) => {
    const methods = Array.isArray(opts.method) ? opts.method : [opts.method];
    for (const m of methods) {
      if (!declared.has(`${m} ${opts.url}`)) {
        throw pcError("PC_API_ROUTE_UNDECLARED", `${m} ${opts.url}`);
      }
    }
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, parseStrictJson(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  app.setErrorHandler((err, req, reply) => sendError(req, reply, err as Error));
  app.setNotFoundHandler((req, reply) => sendError(req, reply, pcError("PC_API_NOT_FOUND")));

  // Every answer names its request id, so that a caller can find it in the audit log.
  // On the API port the caller's identity is established first, from the verified peer
  // certificate (callback-style: this runs on every request).
  const api = deps.kind === "api";
  const requestType = `${deps.kind}.request`;
  app.addHook("onRequest", (req, reply, done) => {
    reply.header("x-request-id", req.id);
    if (!api) return done();
    try {
      const caller = callerOf(req.raw.socket as TLSSocket, deps.trustDomain);
      req.caller = caller; // so that the audit log names who was refused
      if (deps.isRevoked(caller.serial)) return done(pcError("PC_PKI_CERT_REVOKED"));
      done();
    } catch (e) {
      done(e as Error);
    }
  });

  // While closing, a response to a request that was already in flight ends its
  // connection: otherwise a keep-alive client holds the shutdown for the keep-alive
  // timeout (fastify marks only requests that arrive after close began).
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });

  // Fail closed: no answer leaves before its audit entry is durable. Entries of
  // concurrent requests share one commit. If the write fails, the caller gets 503
  // PC_AUDIT_WRITE_FAILED instead of the answer (a change a handler made has already
  // been recorded, with its own entry, in its own transaction).
  app.addHook("onSend", (req, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    const c = req.caller;
    deps.audit
      .append({
        type: requestType,
        outcome: outcomeOf(reply.statusCode),
        actor: c?.id ?? "anonymous",
        actorSerial: c?.serial,
        sourceAddress: req.ip,
        method: req.method,
        route: req.routeOptions.url ?? "unmatched",
        status: reply.statusCode,
        requestId: req.id,
      })
      .then(
        () => done(null, payload),
        (e: unknown) => {
          req.log.error({ err: String(e) }, "cannot record the request in the audit log; refusing the answer");
          if (payload && typeof (payload as { destroy?: unknown }).destroy === "function") (payload as { destroy: () => void }).destroy();
          reply.code(503).header("content-type", "application/json; charset=utf-8");
          done(null, JSON.stringify(errorBody(pcError("PC_AUDIT_WRITE_FAILED"), req.id)));
        },
      );
  });

  // Every answer is counted under its route pattern (never the raw URL), once it has left.
  const metrics = deps.metrics ?? NO_METRICS;
  const listener = deps.kind;
  app.addHook("onResponse", (req, reply, done) => {
    metrics.request(listener, req.routeOptions.url ?? "unmatched", req.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  for (const r of deps.routes) {
    const authz = r.authz;
    if (deps.kind === "bootstrap" && authz.kind !== "public") throw pcError("PC_API_ROUTE_UNDECLARED", `${r.url} is not public`);
    if (deps.kind === "api" && authz.kind === "public") throw pcError("PC_API_ROUTE_UNDECLARED", `${r.url} cannot be public on the API port`);
    app.route({
      method: r.method,
      url: r.url,
      bodyLimit: r.bodyLimit ?? DEFAULT_BODY_LIMIT,
      schema: {
        ...(r.schema.body ? { body: r.schema.body } : {}),
        ...(r.schema.querystring ? { querystring: r.schema.querystring } : {}),
        response: { ...ERROR_RESPONSES, ...r.schema.response },
      },
      // Authorization runs before the body is read or validated: a caller who may not
      // use the route learns nothing about its input and costs no parsing.
      ...(authz.kind === "rbac"
        ? {
            onRequest: (req: FastifyRequest, _reply: unknown, done: (e?: Error) => void) => {
              try {
                authorizeRequest(req, requireCaller(req), authz, deps.authorizer, deps.audit, metrics);
                done();
              } catch (e) {
                done(e as Error);
              }
            },
          }
        : {}),
      handler: r.handler,
    });
  }
  return app;
}

export function tlsServerOf(app: FastifyInstance): TlsServer {
  return app.server as unknown as TlsServer;
}
