import { formatIdentity, parseIdentity, pcError } from "../../core/index.js";
import { ACTIONS, assertNamespaceName, CLUSTER, RESOURCES } from "../../rbac/index.js";
import { CLUSTER_WIDE, defineRoute, S, type RouteDef } from "../route.js";
import { requireCaller } from "../server.js";
import { actorOf, type RouteContext } from "./context.js";

// Namespace names are bounded here and checked as DNS labels by the domain, so that a bad
// name gets PC_RBAC_NAMESPACE_INVALID wherever it comes from (body, path or query).
const nsName = { type: "string", minLength: 1, maxLength: 253 } as const;
const nsOrCluster = nsName;
const role = { type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z][a-z0-9-]{0,62}$" } as const;
const namespaceOut = {
  type: "object",
  required: ["name", "labels", "createdAt", "createdBy"],
  properties: {
    name: { type: "string" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    createdAt: { type: "string" },
    createdBy: { type: "string" },
  },
} as const;
const change = {
  type: "object",
  required: ["version", "added", "removed"],
  properties: { version: { type: "integer" }, added: { type: "array", items: { type: "string" } }, removed: { type: "array", items: { type: "string" } } },
} as const;
const decision = {
  type: "object",
  required: ["allowed", "rule", "subject", "namespace", "resource", "action", "policyVersion"],
  properties: {
    allowed: { type: "boolean" },
    rule: { type: "string" },
    subject: { type: "string" },
    namespace: { type: "string" },
    resource: { type: "string" },
    action: { type: "string" },
    policyVersion: { type: "integer" },
  },
} as const;

const nsView = (n: { name: string; labels: Readonly<Record<string, string>>; createdAt: number; createdBy: string }) => ({
  name: n.name,
  labels: n.labels,
  createdAt: new Date(n.createdAt).toISOString(),
  createdBy: n.createdBy,
});

/** Namespaces, the RBAC policy and its history, role bindings, and can-i. */
export function rbacRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/namespaces",
      authz: { kind: "rbac", resource: "namespaces", action: "create", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Create a namespace",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["name"],
          properties: { name: nsName, labels: { type: "object", maxProperties: 64, additionalProperties: { type: "string", maxLength: 63 } } },
        },
        response: { 201: namespaceOut },
      },
      handler: async (req, reply) => {
        const b = req.body as { name: string; labels?: Record<string, string> };
        reply.code(201);
        return nsView(ctx.namespaces.create(b.name, b.labels ?? {}, actorOf(req)));
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces",
      authz: { kind: "rbac", resource: "namespaces", action: "read", namespace: CLUSTER_WIDE },
      schema: { summary: "List namespaces", response: { 200: { type: "object", required: ["items"], properties: { items: { type: "array", items: namespaceOut } } } } },
      handler: async () => ({ items: ctx.namespaces.list().map(nsView) }),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace",
      authz: { kind: "rbac", resource: "namespaces", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "Get a namespace", response: { 200: namespaceOut } },
      handler: async (req) => nsView(ctx.namespaces.get((req.params as { namespace: string }).namespace)),
    }),
    defineRoute({
      method: "DELETE",
      url: "/v1/namespaces/:namespace",
      authz: { kind: "rbac", resource: "namespaces", action: "delete", namespace: CLUSTER_WIDE },
      schema: { summary: "Delete an empty namespace", response: { 200: { type: "object", required: ["deleted"], properties: { deleted: { type: "string" } } } } },
      handler: async (req) => {
        const name = (req.params as { namespace: string }).namespace;
        ctx.namespaces.delete(name, actorOf(req));
        return { deleted: name };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/policy",
      authz: { kind: "rbac", resource: "policies", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "The RBAC policy in force, as CSV",
        response: { 200: { type: "object", required: ["version", "csv"], properties: { version: { type: "integer" }, csv: { type: "string" } } } },
      },
      handler: async () => {
        const s = ctx.policy.current();
        return { version: s.version, csv: s.csv };
      },
    }),
    defineRoute({
      method: "PUT",
      url: "/v1/policy",
      authz: { kind: "rbac", resource: "policies", action: "update", namespace: CLUSTER_WIDE },
      bodyLimit: 2 * 1024 * 1024,
      schema: {
        summary: "Apply a whole policy: validated as a whole, applied atomically, versioned",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["csv"],
          properties: { csv: { type: "string", maxLength: 1024 * 1024 }, message: { type: "string", maxLength: 500 } },
        },
        response: { 200: change },
      },
      handler: async (req) => {
        const b = req.body as { csv: string; message?: string };
        return ctx.policy.apply(b.csv, b.message ?? "", actorOf(req));
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/policy/history",
      authz: { kind: "rbac", resource: "policies", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Every policy version with its author, time, message and diff",
        response: {
          200: {
            type: "object",
            required: ["items"],
            properties: {
              items: {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    version: { type: "integer" },
                    author: { type: "string" },
                    time: { type: "string" },
                    message: { type: "string" },
                    added: { type: "array", items: { type: "string" } },
                    removed: { type: "array", items: { type: "string" } },
                    rollbackOf: { type: ["integer", "null"] },
                  },
                },
              },
            },
          },
        },
      },
      handler: async () => ({ items: ctx.policy.history() }),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/policy/rollback",
      authz: { kind: "rbac", resource: "policies", action: "update", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Return to an earlier policy version (as a new version)",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["version"],
          properties: { version: { type: "integer", minimum: 1 }, message: { type: "string", maxLength: 500 } },
        },
        response: { 200: change },
      },
      handler: async (req) => {
        const b = req.body as { version: number; message?: string };
        return ctx.policy.rollback(b.version, b.message, actorOf(req));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/role-bindings",
      authz: { kind: "rbac", resource: "role-bindings", action: "create", namespace: { param: "namespace" } },
      schema: {
        summary: "Bind an identity to a role in a namespace (`*`: cluster-wide)",
        body: { type: "object", additionalProperties: false, required: ["identity", "role"], properties: { identity: S.identity, role } },
        response: { 200: change },
      },
      handler: async (req) => {
        const b = req.body as { identity: string; role: string };
        const ns = (req.params as { namespace: string }).namespace;
        if (ns !== CLUSTER) ctx.namespaces.get(ns);
        return ctx.policy.bind(formatIdentity(parseIdentity(b.identity)), b.role, ns, actorOf(req));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/role-bindings/remove",
      authz: { kind: "rbac", resource: "role-bindings", action: "delete", namespace: { param: "namespace" } },
      schema: {
        summary: "Remove a role binding",
        body: { type: "object", additionalProperties: false, required: ["identity", "role"], properties: { identity: S.identity, role } },
        response: { 200: change },
      },
      handler: async (req) => {
        const b = req.body as { identity: string; role: string };
        const ns = (req.params as { namespace: string }).namespace;
        return ctx.policy.unbind(formatIdentity(parseIdentity(b.identity)), b.role, ns, actorOf(req));
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/can-i",
      authz: { kind: "authenticated" },
      schema: {
        summary: "Would this request be allowed? Asking about another identity needs policies:read",
        querystring: {
          type: "object",
          additionalProperties: false,
          required: ["resource", "action", "namespace"],
          properties: { resource: { type: "string", enum: [...RESOURCES] }, action: { type: "string", enum: [...ACTIONS] }, namespace: nsOrCluster, as: S.identity },
        },
        response: { 200: decision },
      },
      handler: async (req) => {
        const q = req.query as { resource: string; action: string; namespace: string; as?: string };
        const caller = requireCaller(req);
        const subject = q.as ? formatIdentity(parseIdentity(q.as)) : caller.id;
        if (subject !== caller.id) {
          const may = ctx.policy.decide(caller.id, CLUSTER, "policies", "read");
          if (!may.allowed) throw pcError("PC_API_FORBIDDEN", "asking for another identity needs policies:read");
        }
        if (q.namespace !== CLUSTER && !ctx.namespaces.exists(assertNamespaceName(q.namespace))) throw pcError("PC_RBAC_NAMESPACE_NOT_FOUND", q.namespace);
        const d = ctx.policy.decide(subject, q.namespace, q.resource, q.action);
        return { allowed: d.allowed, rule: d.rule, subject, namespace: q.namespace, resource: q.resource, action: q.action, policyVersion: d.version };
      },
    }),
  ];
}
