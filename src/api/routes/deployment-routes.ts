import { CLUSTER_WIDE, defineRoute, type RouteDef } from "../route.js";
import { requireCaller } from "../server.js";
import { approvalRoutes } from "./approval-routes.js";
import type { RouteContext } from "./context.js";

const looseObject = { type: "object", additionalProperties: true } as const;
const looseList = { type: "array", items: looseObject } as const;

/** The largest signed request accepted: a 64 KiB manifest, base64url-encoded, plus claims. */
const SIGNED_REQUEST_LIMIT = 128 * 1024;

type NsName = { namespace: string; name: string };

/** Deployments: signed changes, and reads of their state, history and logs. */
export function deploymentRoutes(ctx: RouteContext): RouteDef[] {
  const deployments = ctx.deployments;
  return [
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/deployments",
      authz: { kind: "rbac", resource: "deployments", action: "deploy", namespace: { param: "namespace" } },
      bodyLimit: SIGNED_REQUEST_LIMIT + 1024,
      schema: {
        summary: "Create, update, scale or delete a deployment with a signed request (compact JWS); 202 when it waits for approvals",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["request"],
          properties: { request: { type: "string", minLength: 1, maxLength: SIGNED_REQUEST_LIMIT } },
        },
        response: { 200: looseObject, 202: looseObject },
      },
      handler: async (req, reply) => {
        const caller = requireCaller(req);
        const { namespace } = req.params as { namespace: string };
        const rbac = ctx.policy.decide(caller.id, namespace, "deployments", "deploy");
        const answer = await deployments.pipeline.submit((req.body as { request: string }).request, caller, {
          namespace,
          requestId: req.id,
          sourceAddress: req.ip,
          rbac: { rule: rbac.rule, policyVersion: rbac.version, allowed: rbac.allowed },
        });
        if ("pending" in answer) reply.code(202);
        return answer;
      },
    }),
    defineRoute({
      method: "POST",
      // The namespace is in the path: authorization needs it before the body is read.
      url: "/v1/namespaces/:namespace/admission/review",
      authz: { kind: "rbac", resource: "deployments", action: "deploy", namespace: { param: "namespace" } },
      bodyLimit: SIGNED_REQUEST_LIMIT + 1024,
      schema: {
        summary: "Dry run: the signature, every admission check and placement feasibility of a signed request, with no side effects",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["request"],
          properties: { request: { type: "string", minLength: 1, maxLength: SIGNED_REQUEST_LIMIT } },
        },
        response: { 200: looseObject },
      },
      handler: async (req) => {
        const caller = requireCaller(req);
        const { namespace } = req.params as { namespace: string };
        const rbac = ctx.policy.decide(caller.id, namespace, "deployments", "deploy");
        return deployments.pipeline.review((req.body as { request: string }).request, caller, {
          namespace,
          requestId: req.id,
          sourceAddress: req.ip,
          rbac: { rule: rbac.rule, policyVersion: rbac.version, allowed: rbac.allowed },
        });
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/decisions/:id",
      authz: { kind: "rbac", resource: "deployments", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "A stored decision record: every check, the waivers, the placement, the runtime", response: { 200: looseObject } },
      handler: async (req) => {
        const p = req.params as { namespace: string; id: string };
        return deployments.decision(p.namespace, p.id);
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/deployments",
      authz: { kind: "rbac", resource: "deployments", action: "read", namespace: CLUSTER_WIDE },
      schema: { summary: "Every deployment, in every namespace", response: { 200: looseList } },
      handler: async () => deployments.views.list(),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/deployments",
      authz: { kind: "rbac", resource: "deployments", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "The deployments of a namespace", response: { 200: looseList } },
      handler: async (req) => deployments.views.list((req.params as { namespace: string }).namespace),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/deployments/:name",
      authz: { kind: "rbac", resource: "deployments", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "One deployment: replicas, nodes, runtimes, health and revision", response: { 200: looseObject } },
      handler: async (req) => {
        const p = req.params as NsName;
        return deployments.views.get(p.namespace, p.name);
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/deployments/:name/revisions",
      authz: { kind: "rbac", resource: "deployments", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "The revisions of a deployment, with their signed manifests", response: { 200: looseList } },
      handler: async (req) => {
        const p = req.params as NsName;
        return deployments.views.history(p.namespace, p.name);
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/deployments/:name/logs",
      authz: { kind: "rbac", resource: "deployments", action: "read", namespace: { param: "namespace" } },
      schema: {
        summary: "The last lines each replica wrote",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { tail: { type: "string", pattern: "^[1-9][0-9]{0,3}$|^10000$" } },
        },
        response: { 200: looseList },
      },
      handler: async (req) => {
        const p = req.params as NsName;
        const tail = Number((req.query as { tail?: string }).tail ?? 100);
        return deployments.views.logs(p.namespace, p.name, tail);
      },
    }),
    ...approvalRoutes(ctx),
  ];
}
