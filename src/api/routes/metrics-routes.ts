import { CLUSTER_WIDE, defineRoute, type RouteDef } from "../route.js";
import type { RouteContext } from "./context.js";

/** The Prometheus text format, as prom-client writes it. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4";

/**
 * GET /metrics: the gateway's Prometheus metrics (text format 0.0.4). The series name
 * namespaces, deployments and containers, so reading them needs `metrics:read`
 * cluster-wide (the role metrics-reader, for a Prometheus server's identity).
 */
export function metricsRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "GET",
      url: "/metrics",
      authz: { kind: "rbac", resource: "metrics", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "The gateway's metrics, in the Prometheus text format (0.0.4)",
        produces: METRICS_CONTENT_TYPE,
        response: { 200: { type: "string" } },
      },
      handler: async (_req, reply) => {
        const m = await ctx.metrics.render();
        reply.type(m.contentType).header("cache-control", "no-store");
        return m.body;
      },
    }),
  ];
}
