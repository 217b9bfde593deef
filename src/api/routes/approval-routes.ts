import { pcError } from "../../core/index.js";
import { defineRoute, type RouteDef } from "../route.js";
import { requireCaller } from "../server.js";
import type { ApproveMeta } from "../approval-types.js";
import type { RouteContext } from "./context.js";

const looseObject = { type: "object", additionalProperties: true } as const;
const looseList = { type: "array", items: looseObject } as const;
/** An approval is a small compact JWS: claims and a signature, no manifest. */
const APPROVAL_LIMIT = 8 * 1024;
const REQUEST_ID = { type: "string", minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9_-]+$" } as const;

/** Deploy requests waiting for approvals (the two-person rule), and the approvals themselves. */
export function approvalRoutes(ctx: RouteContext): RouteDef[] {
  const pipeline = ctx.deployments.pipeline;
  const decide = (namespace: string): ApproveMeta["decide"] => (identity, resource, action) => {
    const d = ctx.policy.decide(identity, namespace, resource, action);
    return { rule: d.rule, policyVersion: d.version, allowed: d.allowed };
  };
  return [
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/approvals",
      authz: { kind: "rbac", resource: "approvals", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "The deploy requests of a namespace waiting for approvals", response: { 200: looseList } },
      handler: async (req) => {
        const { namespace } = req.params as { namespace: string };
        return pipeline.pendingIn(namespace, { decide: decide(namespace) });
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/approvals/:requestId",
      authz: { kind: "rbac", resource: "approvals", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "One deploy request waiting for approvals: its digest, jti, approvals so far and expiry", response: { 200: looseObject } },
      handler: async (req) => {
        const p = req.params as { namespace: string; requestId: string };
        return pipeline.pending(p.namespace, p.requestId, { decide: decide(p.namespace) });
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/approvals/:requestId",
      authz: { kind: "rbac", resource: "approvals", action: "approve", namespace: { param: "namespace" } },
      bodyLimit: APPROVAL_LIMIT + 1024,
      schema: {
        summary: "Approve a deploy request with a signed approval (compact JWS); the last one needed runs the request",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["approval"],
          properties: { approval: { type: "string", minLength: 1, maxLength: APPROVAL_LIMIT } },
        },
        response: { 200: looseObject },
      },
      handler: async (req) => {
        const caller = requireCaller(req);
        const p = req.params as { namespace: string; requestId: string };
        if (!REQUEST_ID_RE.test(p.requestId)) throw pcError("PC_ADMISSION_PENDING_NOT_FOUND", p.requestId.slice(0, 128));
        return pipeline.approve(p.requestId, (req.body as { approval: string }).approval, caller, {
          namespace: p.namespace,
          requestId: req.id,
          sourceAddress: req.ip,
          trustDomain: ctx.config.trustDomain,
          decide: decide(p.namespace),
        });
      },
    }),
  ];
}

const REQUEST_ID_RE = new RegExp(REQUEST_ID.pattern);
