import { CLUSTER_WIDE, defineRoute, type RouteDef } from "../route.js";
import { actorOf, type RouteContext } from "./context.js";
import { policyVersionRoutes } from "./policy-version-routes.js";

const MAX_FILES = 64;
const fileName = { type: "string", minLength: 1, maxLength: 105, pattern: "^[a-z0-9][a-z0-9._-]{0,99}\\.ya?ml$" } as const;
const fileIn = {
  type: "object",
  additionalProperties: false,
  required: ["name", "text"],
  properties: { name: fileName, text: { type: "string", maxLength: 192 * 1024 } },
} as const;
const fileOut = { type: "object", required: ["name", "text"], properties: { name: { type: "string" }, text: { type: "string" } } } as const;
const change = {
  type: "object",
  required: ["version", "changed"],
  properties: { version: { type: "integer" }, changed: { type: "array", items: { type: "string" } } },
} as const;

/** The admission policies: the set in force (or one version), apply, history, rollback. */
export function admissionRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/admission/policy",
      authz: { kind: "rbac", resource: "policies", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "The admission policy files in force, or those of one version (?version=N)",
        querystring: { type: "object", additionalProperties: false, properties: { version: { type: "string", pattern: "^[1-9][0-9]{0,8}$" } } },
        response: { 200: { type: "object", required: ["version", "files"], properties: { version: { type: "integer" }, files: { type: "array", items: fileOut } } } },
      },
      handler: async (req) => {
        const q = req.query as { version?: string };
        const v = q.version !== undefined ? ctx.admissionPolicy.get(Number(q.version)) : ctx.admissionPolicy.current();
        return { version: v.version, files: v.files };
      },
    }),
    defineRoute({
      method: "PUT",
      url: "/v1/admission/policy",
      authz: { kind: "rbac", resource: "policies", action: "update", namespace: CLUSTER_WIDE },
      bodyLimit: 256 * 1024,
      schema: {
        summary: "Apply a whole set of admission policy files: parsed as a whole, applied atomically, versioned",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["files", "message"],
          properties: {
            files: { type: "array", minItems: 1, maxItems: MAX_FILES, items: fileIn },
            message: { type: "string", minLength: 1, maxLength: 500 },
          },
        },
        response: { 200: change },
      },
      handler: async (req) => {
        const b = req.body as { files: { name: string; text: string }[]; message: string };
        return ctx.admissionPolicy.apply(b.files, actorOf(req), b.message);
      },
    }),
    ...policyVersionRoutes({
      prefix: "/v1/admission/policy",
      what: "admission policy",
      change,
      history: () => ctx.admissionPolicy.history(),
      rollback: (version, actor, message) => ctx.admissionPolicy.rollback(version, actor, message),
    }),
  ];
}
