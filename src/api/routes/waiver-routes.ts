import { parseDuration } from "../../core/index.js";
import { defineRoute, S, type RouteDef } from "../route.js";
import { actorOf, type RouteContext } from "./context.js";

const noBody = { type: "object", additionalProperties: false, properties: {} } as const;
const waiverOut = {
  type: "object",
  required: ["id", "namespace", "check", "owner", "justification", "ticket", "createdBy", "createdAt", "expiresAt", "status"],
  properties: {
    id: { type: "string" },
    namespace: { type: "string" },
    check: { type: "string" },
    deployment: { type: "string" },
    imageDigest: { type: "string" },
    findings: { type: "array", items: { type: "string" } },
    owner: { type: "string" },
    justification: { type: "string" },
    ticket: { type: "string" },
    createdBy: { type: "string" },
    createdAt: { type: "string" },
    expiresAt: { type: "string" },
    revokedAt: { type: "string" },
    revokedBy: { type: "string" },
    status: { type: "string", enum: ["active", "expired", "revoked"] },
  },
} as const;


type NsId = { namespace: string; id: string };

/**
 * Waivers of a namespace. Each route is authorized in the namespace of its path, and a
 * waiver takes its namespace from the path alone: a caller can only exempt requests in
 * a namespace where it holds `waivers:create`.
 */
export function waiverRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/waivers",
      authz: { kind: "rbac", resource: "waivers", action: "create", namespace: { param: "namespace" } },
      schema: {
        summary: "Create a waiver: one check (or named findings of it) exempted for the namespace, a deployment or an image digest, until it expires (at most 90 days)",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["check", "owner", "justification", "ticket", "expires"],
          properties: {
            check: { type: "string", minLength: 1, maxLength: 64 },
            deployment: { type: "string", minLength: 1, maxLength: 63 },
            imageDigest: { type: "string", minLength: 1, maxLength: 80 },
            findings: { type: "array", minItems: 1, maxItems: 100, items: { type: "string", minLength: 1, maxLength: 100 } },
            owner: S.identity,
            justification: { type: "string", maxLength: 2000 },
            ticket: { type: "string", maxLength: 200 },
            expires: { type: "string", minLength: 1, maxLength: 40 },
          },
        },
        response: { 201: waiverOut },
      },
      handler: async (req, reply) => {
        const { namespace } = req.params as { namespace: string };
        const b = req.body as { check: string; deployment?: string; imageDigest?: string; findings?: string[]; owner: string; justification: string; ticket: string; expires: string };
        const created = ctx.waivers.create({ ...b, namespace }, actorOf(req));
        reply.code(201);
        return created;
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/waivers",
      authz: { kind: "rbac", resource: "waivers", action: "read", namespace: { param: "namespace" } },
      schema: {
        summary: "The waivers in force in a namespace (?expiring=7d: only those that lapse within it; ?all=true: expired and revoked ones too)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { expiring: S.duration, all: { type: "string", enum: ["true", "false"] } },
        },
        response: { 200: { type: "object", required: ["items"], properties: { items: { type: "array", items: waiverOut } } } },
      },
      handler: async (req) => {
        const { namespace } = req.params as { namespace: string };
        const q = req.query as { expiring?: string; all?: string };
        const expiringWithinMs = q.expiring !== undefined ? parseDuration(q.expiring, "expiring") : undefined;
        return { items: ctx.waivers.list(namespace, { expiringWithinMs, includeExpired: q.all === "true" }) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/waivers/:id",
      authz: { kind: "rbac", resource: "waivers", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "One waiver of the namespace, with its status", response: { 200: waiverOut } },
      handler: async (req) => {
        const p = req.params as NsId;
        return ctx.waivers.get(p.id, p.namespace);
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/waivers/:id/revoke",
      authz: { kind: "rbac", resource: "waivers", action: "delete", namespace: { param: "namespace" } },
      schema: { summary: "Revoke a waiver at once (it is kept, marked revoked)", body: noBody, response: { 200: waiverOut } },
      handler: async (req) => {
        const p = req.params as NsId;
        return ctx.waivers.revoke(p.id, actorOf(req), p.namespace);
      },
    }),
  ];
}
