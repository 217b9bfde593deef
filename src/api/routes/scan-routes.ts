import { CLUSTER_WIDE, defineRoute, type RouteDef } from "../route.js";
import type { RouteContext } from "./context.js";

const anyObject = { type: "object", additionalProperties: true } as const;
const statusOut = {
  type: "object",
  required: ["scanner", "imports"],
  properties: {
    scanner: { type: "string" },
    active: anyObject,
    imports: { type: "array", items: anyObject },
  },
} as const;
/** The vulnerability database (its status) and images' SBOMs. */
export function scanRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/vulndb",
      authz: { kind: "rbac", resource: "vulndb", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "The vulnerability database in force (version, sources, records, newest record, ecosystems) and the history of imports; the scanner in use",
        response: { 200: statusOut },
      },
      handler: async () => ctx.scan.status(),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/nodes/:name/image-sbom",
      authz: { kind: "rbac", resource: "nodes", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "The CycloneDX 1.5 SBOM of an image the node holds (?image=repo:tag, repo@sha256:… or an image id), read from its layers",
        querystring: {
          type: "object",
          additionalProperties: false,
          required: ["image"],
          properties: { image: { type: "string", minLength: 1, maxLength: 512 } },
        },
        response: { 200: anyObject },
      },
      handler: async (req) => {
        const { name } = req.params as { name: string };
        const { image } = req.query as { image: string };
        return ctx.scan.sbom(name, image);
      },
    }),
  ];
}
