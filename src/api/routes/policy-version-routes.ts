import type { Actor } from "../../pki/index.js";
import { CLUSTER_WIDE, defineRoute, type RouteDef } from "../route.js";
import { actorOf } from "./context.js";

/** A version of a versioned policy document, as `history` lists it. */
export const historyEntry = {
  type: "object",
  required: ["version", "author", "createdAt", "message", "sha256", "rollbackOf"],
  properties: {
    version: { type: "integer" },
    author: { type: "string" },
    createdAt: { type: "string" },
    message: { type: "string" },
    sha256: { type: "string" },
    rollbackOf: { type: ["integer", "null"] },
  },
} as const;

/**
 * The history and rollback routes of a versioned policy document (the admission
 * policies, the monitoring rules): `GET <prefix>/history` (policies:read) and
 * `POST <prefix>/rollback` (policies:update), both cluster-wide.
 */
export function policyVersionRoutes(opts: {
  readonly prefix: string;
  /** What the document is called in the summaries ("admission policy", "monitoring rules"). */
  readonly what: string;
  /** The response schema of a change. */
  readonly change: Record<string, unknown>;
  readonly history: () => unknown[];
  readonly rollback: (version: number, actor: Actor, message?: string) => unknown;
}): RouteDef[] {
  return [
    defineRoute({
      method: "GET",
      url: `${opts.prefix}/history`,
      authz: { kind: "rbac", resource: "policies", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: `Every ${opts.what} version with its author, time, message and checksum`,
        response: { 200: { type: "object", required: ["items"], properties: { items: { type: "array", items: historyEntry } } } },
      },
      handler: async () => ({ items: opts.history() }),
    }),
    defineRoute({
      method: "POST",
      url: `${opts.prefix}/rollback`,
      authz: { kind: "rbac", resource: "policies", action: "update", namespace: CLUSTER_WIDE },
      schema: {
        summary: `Return to an earlier ${opts.what} version (as a new version)`,
        body: {
          type: "object",
          additionalProperties: false,
          required: ["version"],
          properties: { version: { type: "integer", minimum: 1, maximum: 999_999_999 }, message: { type: "string", minLength: 1, maxLength: 500 } },
        },
        response: { 200: opts.change },
      },
      handler: async (req) => {
        const b = req.body as { version: number; message?: string };
        return opts.rollback(b.version, actorOf(req), b.message);
      },
    }),
  ];
}
