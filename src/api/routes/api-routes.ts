import { parseDuration } from "../../core/index.js";
import { openApiDocument } from "../openapi.js";
import { CLUSTER_WIDE, defineRoute, S, type RouteDef } from "../route.js";
import { requireCaller } from "../server.js";
import { actorOf, type RouteContext } from "./context.js";
import { admissionRoutes } from "./admission-routes.js";
import { auditRoutes } from "./audit-routes.js";
import { deploymentRoutes } from "./deployment-routes.js";
import { nodeRoutes } from "./node-routes.js";
import { rbacRoutes } from "./rbac-routes.js";
import { secretRoutes } from "./secret-routes.js";
import { waiverRoutes } from "./waiver-routes.js";
import { scanRoutes } from "./scan-routes.js";
import { monitoringRoutes } from "./monitoring-routes.js";
import { alertRoutes } from "./alert-routes.js";
import { metricsRoutes } from "./metrics-routes.js";

const certificateListItem = {
  type: "object",
  required: ["serial", "identity", "profile", "notBefore", "notAfter", "status"],
  properties: {
    serial: { type: "string" },
    identity: { type: "string" },
    profile: { type: "string" },
    fingerprint: { type: "string" },
    notBefore: { type: "string" },
    notAfter: { type: "string" },
    status: { type: "string", enum: ["valid", "expired", "revoked"] },
    revokedAt: { type: "string" },
    revocationReason: { type: "string" },
  },
} as const;

const REASONS = ["unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"];

/** The routes of the API port (mutual TLS). */
export function apiRoutes(ctx: RouteContext): RouteDef[] {
  const routes: RouteDef[] = [
    defineRoute({
      method: "GET",
      url: "/v1/whoami",
      authz: { kind: "authenticated" },
      schema: {
        summary: "The caller's identity, as established by its client certificate",
        response: {
          200: {
            type: "object",
            required: ["identity", "serial", "notAfter"],
            properties: { identity: { type: "string" }, serial: { type: "string" }, fingerprint: { type: "string" }, notAfter: { type: "string" } },
          },
        },
      },
      handler: async (req) => {
        const c = requireCaller(req);
        return { identity: c.id, serial: c.serial, fingerprint: c.fingerprint, notAfter: c.notAfter.toISOString() };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/openapi.json",
      authz: { kind: "authenticated" },
      schema: { summary: "This document", response: { 200: { type: "object", additionalProperties: true } } },
      handler: async () => doc,
    }),
    defineRoute({
      method: "POST",
      url: "/v1/enroll-tokens",
      authz: { kind: "rbac", resource: "enroll-tokens", action: "create", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Create a one-time enrollment token bound to an identity",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["identity"],
          properties: { identity: S.identity, ttl: S.duration, certTtl: S.duration },
        },
        response: {
          201: {
            type: "object",
            required: ["id", "token", "identity", "expiresAt"],
            properties: { id: { type: "string" }, token: { type: "string" }, identity: { type: "string" }, expiresAt: { type: "string" } },
          },
        },
      },
      handler: async (req, reply) => {
        const b = req.body as { identity: string; ttl?: string; certTtl?: string };
        const ttl = b.ttl ? parseDuration(b.ttl, "ttl") : undefined;
        const certTtl = b.certTtl ? parseDuration(b.certTtl, "certTtl") : undefined;
        reply.code(201);
        return ctx.pki.createEnrollToken(b.identity, ttl, actorOf(req), certTtl);
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/certificates/renew",
      authz: { kind: "authenticated" },
      schema: {
        summary: "Renew the caller's own certificate for a new key",
        body: { type: "object", additionalProperties: false, required: ["csr"], properties: { csr: S.pem } },
        response: { 201: S.issued },
      },
      handler: async (req, reply) => {
        const c = requireCaller(req);
        reply.code(201);
        return ctx.pki.renew(c.identity, (req.body as { csr: string }).csr, actorOf(req));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/certificates/revoke",
      authz: { kind: "rbac", resource: "certificates", action: "delete", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Revoke one certificate by serial, or every certificate of an identity",
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            serial: { type: "string", minLength: 1, maxLength: 64, pattern: "^[0-9a-fA-F:]+$" },
            identity: S.identity,
            reason: { type: "string", enum: REASONS },
          },
          oneOf: [{ required: ["serial"] }, { required: ["identity"] }],
        },
        response: {
          200: {
            type: "object",
            required: ["revoked"],
            properties: { revoked: { type: "array", items: { type: "string" } }, tokensRevoked: { type: "integer" } },
          },
        },
      },
      handler: async (req) => {
        const b = req.body as { serial?: string; identity?: string; reason?: string };
        const reason = b.reason ?? "unspecified";
        const out = b.serial ? ctx.pki.revokeSerial(b.serial, reason, actorOf(req)) : ctx.pki.revokeIdentity(b.identity as string, reason, actorOf(req));
        ctx.onRevocation();
        return out;
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/certificates",
      authz: { kind: "rbac", resource: "certificates", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "List issued certificates",
        querystring: { type: "object", additionalProperties: false, properties: { identity: S.identity } },
        response: { 200: { type: "object", required: ["items"], properties: { items: { type: "array", items: certificateListItem } } } },
      },
      handler: async (req) => {
        const q = req.query as { identity?: string };
        const now = Date.now();
        return {
          items: ctx.pki.list(q.identity).map((c) => ({
            serial: c.serial,
            identity: c.identity,
            profile: c.profile,
            fingerprint: c.fingerprint,
            notBefore: new Date(c.notBefore).toISOString(),
            notAfter: new Date(c.notAfter).toISOString(),
            status: c.revokedAt !== null ? "revoked" : c.notAfter <= now ? "expired" : "valid",
            ...(c.revokedAt !== null ? { revokedAt: new Date(c.revokedAt).toISOString(), revocationReason: c.revocationReason ?? "unspecified" } : {}),
          })),
        };
      },
    }),
  ];
  routes.push(...rbacRoutes(ctx), ...auditRoutes(ctx), ...nodeRoutes(ctx), ...deploymentRoutes(ctx), ...admissionRoutes(ctx), ...waiverRoutes(ctx), ...secretRoutes(ctx), ...scanRoutes(ctx));
  routes.push(...metricsRoutes(ctx));
  routes.push(...monitoringRoutes(ctx));
  routes.push(...alertRoutes(ctx));
  const doc = openApiDocument("portcullis API", ctx.version, routes);
  return routes;
}
