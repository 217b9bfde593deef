import type { FastifyReply, FastifyRequest } from "fastify";
import type { Action, Resource } from "../rbac/index.js";

export type { Action, Resource } from "../rbac/index.js";

/**
 * Every route declares, in one place, who may call it. On the API port the caller is
 * always an mTLS identity; `authz` says which (resource, action) the authorizer must
 * allow. `authenticated` routes need only a valid identity (whoami, renewal of one's own
 * certificate). Bootstrap routes are `public`: they run on the server-auth-only port.
 */
/**
 * Where a route's namespace comes from: the cluster (`*`), a path parameter or a query
 * parameter. Never the body: authorization runs before the body is read.
 */
export type NamespaceSource = { readonly cluster: true } | { readonly param: string } | { readonly query: string };

export const CLUSTER_WIDE: NamespaceSource = { cluster: true };

export type Authz =
  | { readonly kind: "public" }
  | { readonly kind: "authenticated" }
  | { readonly kind: "rbac"; readonly resource: Resource; readonly action: Action; readonly namespace: NamespaceSource };

export interface RouteSchema {
  readonly summary: string;
  readonly body?: object;
  readonly querystring?: object;
  readonly response: Record<number, object>;
  /** For non-JSON responses. */
  readonly produces?: string;
}

export interface RouteDef {
  readonly method: "GET" | "POST" | "PUT" | "DELETE";
  readonly url: string;
  readonly authz: Authz;
  readonly schema: RouteSchema;
  /** Bytes; small by default. */
  readonly bodyLimit?: number;
  readonly handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

export const DEFAULT_BODY_LIMIT = 16 * 1024;

export function defineRoute(def: RouteDef): RouteDef {
  return def;
}

/** Reusable schema fragments. */
export const S = {
  error: {
    type: "object",
    required: ["code", "message", "requestId"],
    properties: { code: { type: "string" }, message: { type: "string" }, requestId: { type: "string" }, decision: { type: "object", additionalProperties: true } },
  },
  identity: { type: "string", minLength: 3, maxLength: 80, pattern: "^(user|node|service):[a-z0-9][a-z0-9._-]{0,62}$" },
  duration: { type: "string", maxLength: 12, pattern: "^[1-9][0-9]{0,6}(s|m|h|d)$" },
  pem: { type: "string", minLength: 1, maxLength: 12 * 1024 },
  issued: {
    type: "object",
    required: ["identity", "serial", "notBefore", "notAfter", "certificate", "chain", "caBundle"],
    properties: {
      identity: { type: "string" },
      serial: { type: "string" },
      notBefore: { type: "string" },
      notAfter: { type: "string" },
      certificate: { type: "string" },
      chain: { type: "string" },
      caBundle: { type: "string" },
      apiAddress: { type: "string" },
    },
  },
} as const;

/** Standard error responses, added to every route's schema. */
export const ERROR_RESPONSES = { 400: S.error, 401: S.error, 403: S.error, 404: S.error, 409: S.error, 413: S.error, 415: S.error, 500: S.error, 503: S.error };
