import type { FastifyRequest } from "fastify";
import { pcError } from "../../core/index.js";
import { SEVERITIES, type Severity } from "../../monitoring/index.js";
import { CLUSTER } from "../../rbac/index.js";
import { CLUSTER_WIDE, defineRoute, type Action, type Resource, type RouteDef } from "../route.js";
import { requireCaller } from "../server.js";
import { actorOf, type RouteContext } from "./context.js";

const anyObject = { type: "object", additionalProperties: true } as const;
const nullableString = { type: ["string", "null"] } as const;
const NAMESPACE = { type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$" } as const;
/** A container name as Docker allows it (or a container id). */
const CONTAINER_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
const ALERT_ID_RE = /^[a-z0-9-]{1,64}$/;
const NOTE = { type: "string", minLength: 1, maxLength: 1000 } as const;

const actionOut = {
  type: "object",
  required: ["id", "action", "state", "attempts", "result", "updatedAt"],
  properties: {
    id: { type: "string" },
    action: { type: "string" },
    state: { type: "string" },
    attempts: { type: "integer" },
    result: nullableString,
    updatedAt: { type: "string" },
  },
} as const;
const alertOut = {
  type: "object",
  required: ["id", "rule", "severity", "namespace", "deployment", "node", "container", "summary", "count", "firstSeen", "lastSeen", "status", "evidence", "actions"],
  properties: {
    id: { type: "string" },
    rule: { type: "string" },
    severity: { type: "string", enum: [...SEVERITIES] },
    namespace: nullableString,
    deployment: nullableString,
    node: nullableString,
    container: nullableString,
    summary: { type: "string" },
    count: { type: "integer" },
    firstSeen: { type: "string" },
    lastSeen: { type: "string" },
    status: { type: "string", enum: ["open", "acked"] },
    evidence: { type: "object", required: ["first", "last"], properties: { first: anyObject, last: anyObject } },
    ack: { type: "object", required: ["by", "at", "note"], properties: { by: { type: "string" }, at: { type: "string" }, note: { type: "string" } } },
    actions: { type: "array", items: actionOut },
  },
} as const;
const deliveryOut = {
  type: "object",
  required: ["id", "alertId", "sink", "state", "attempts", "nextAt", "lastError", "createdAt", "updatedAt"],
  properties: {
    id: { type: "string" },
    alertId: { type: "string" },
    sink: { type: "string" },
    state: { type: "string", enum: ["pending", "delivered", "dead"] },
    attempts: { type: "integer" },
    nextAt: { type: "string" },
    lastError: nullableString,
    createdAt: { type: "string" },
    updatedAt: { type: "string" },
  },
} as const;
const quarantineOut = {
  type: "object",
  required: ["id", "container", "containerId", "node", "namespace", "deployment", "alert", "rule", "networks", "since"],
  properties: {
    id: { type: "string" },
    container: { type: "string" },
    containerId: nullableString,
    node: { type: "string" },
    namespace: nullableString,
    deployment: nullableString,
    alert: nullableString,
    rule: { type: "string" },
    networks: { type: "array", items: { type: "string" } },
    since: { type: "string" },
    releasedAt: { type: "string" },
    releasedBy: { type: "string" },
  },
} as const;
const noteBody = { type: "object", additionalProperties: false, required: ["note"], properties: { note: NOTE } } as const;
const list = (items: object) => ({ type: "object", required: ["items"], properties: { items: { type: "array", items } } });

/**
 * Alerts, their webhook deliveries, and quarantines.
 *
 * An alert or a quarantine belongs to the namespace of its container (cluster-wide when
 * it has none: an unmanaged container, a node event). Reading or changing one is
 * authorised in that namespace, so these routes decide in the handler, where the
 * namespace is known (each decision is audited as `authz.decision`, as the guard does):
 * - a list with `?namespace=` needs the permission there; without it, a caller allowed
 *   cluster-wide sees everything, any other caller what it may read namespace by namespace;
 * - one alert or quarantine the caller may not read is answered as not found (404), so
 *   that its existence is not disclosed; one it may read but not change is forbidden (403).
 */
export function alertRoutes(ctx: RouteContext): RouteDef[] {
  /** Decides and records the decision as the route guard does; true when allowed. */
  const may = (req: FastifyRequest, resource: Resource, action: Action, namespace: string): boolean => {
    const caller = requireCaller(req);
    let allowed = false;
    let rule = "error";
    let failed = false;
    try {
      const d = ctx.policy.decide(caller.id, namespace, resource, action);
      allowed = d.allowed === true;
      rule = d.rule;
    } catch (e) {
      failed = true;
      req.log.error({ err: String(e) }, "authorizer failed; denying");
    }
    ctx.audit.record({
      type: "authz.decision",
      outcome: failed ? "error" : allowed ? "allowed" : "denied",
      actor: caller.id,
      actorSerial: caller.serial,
      sourceAddress: req.ip,
      route: `${resource}:${action}`,
      target: namespace,
      requestId: req.id,
      reason: rule,
    });
    if (failed) throw pcError("PC_RBAC_POLICY_UNAVAILABLE");
    return allowed;
  };
  /** The namespaces a caller may read `resource` in: "*" when cluster-wide, else a list (no audit per namespace). */
  const readable = (req: FastifyRequest, resource: Resource, namespace: string | undefined): readonly string[] | "*" => {
    if (namespace !== undefined) {
      if (!may(req, resource, "read", namespace)) throw pcError("PC_API_FORBIDDEN", `${resource}:read in ${namespace}`);
      return [namespace];
    }
    if (may(req, resource, "read", CLUSTER)) return "*";
    const caller = requireCaller(req);
    return ctx.namespaces
      .list()
      .map((n) => n.name)
      .filter((ns) => {
        try {
          return ctx.policy.decide(caller.id, ns, resource, "read").allowed;
        } catch {
          return false;
        }
      });
  };
  /** Whether the caller may read `resource` in a namespace (asked to choose between 404 and 403; not recorded). */
  const mayRead = (req: FastifyRequest, resource: Resource, namespace: string): boolean => {
    try {
      return ctx.policy.decide(requireCaller(req).id, namespace, resource, "read").allowed;
    } catch {
      return false;
    }
  };
  /** An alert the caller may read (read) or change (update); not found when it may not even read it. */
  const alertFor = (req: FastifyRequest, id: string, action: "read" | "update") => {
    if (!ALERT_ID_RE.test(id)) throw pcError("PC_MONITOR_ALERT_NOT_FOUND", id.slice(0, 80));
    const alert = ctx.alerts.get(id);
    const ns = alert.namespace ?? CLUSTER;
    if (may(req, "alerts", action, ns)) return alert;
    if (action === "read" || !mayRead(req, "alerts", ns)) throw pcError("PC_MONITOR_ALERT_NOT_FOUND", id);
    throw pcError("PC_API_FORBIDDEN", `alerts:${action} in ${ns}`);
  };
  return [
    defineRoute({
      method: "GET",
      url: "/v1/alerts",
      authz: { kind: "authenticated" },
      schema: {
        summary:
          "Alerts, newest last sighting first (?namespace=: that namespace's, needs alerts:read there; else every alert the caller may read; ?severity=high: that or higher; ?open=true; ?rule=; ?limit=)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            namespace: NAMESPACE,
            severity: { type: "string", enum: [...SEVERITIES] },
            open: { type: "string", enum: ["true", "false"] },
            rule: { type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z][a-z0-9-]*$" },
            deployment: { type: "string", minLength: 1, maxLength: 63 },
            limit: { type: "integer", minimum: 1, maximum: 1000 },
          },
        },
        response: { 200: list(alertOut) },
      },
      handler: async (req) => {
        const q = req.query as { namespace?: string; severity?: Severity; open?: string; rule?: string; deployment?: string; limit?: number };
        const namespaces = readable(req, "alerts", q.namespace);
        return {
          items: ctx.alerts.list({
            namespaces,
            ...(q.severity !== undefined ? { severity: q.severity } : {}),
            ...(q.open !== undefined ? { open: q.open === "true" } : {}),
            ...(q.rule !== undefined ? { rule: q.rule } : {}),
            ...(q.deployment !== undefined ? { deployment: q.deployment } : {}),
            ...(q.limit !== undefined ? { limit: q.limit } : {}),
          }),
        };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/alerts/deliveries",
      authz: { kind: "rbac", resource: "alerts", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Webhook deliveries of alerts, newest first (?state=dead: the dead-letter record; pending, delivered)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { state: { type: "string", enum: ["pending", "delivered", "dead"] }, limit: { type: "integer", minimum: 1, maximum: 1000 } },
        },
        response: { 200: list(deliveryOut) },
      },
      handler: async (req) => {
        const q = req.query as { state?: "pending" | "delivered" | "dead"; limit?: number };
        return { items: ctx.alerts.deliveries({ ...(q.state !== undefined ? { state: q.state } : {}), ...(q.limit !== undefined ? { limit: q.limit } : {}) }) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/alerts/:id",
      authz: { kind: "authenticated" },
      schema: { summary: "One alert, with its evidence and response actions (404 when the caller may not read alerts in its namespace)", response: { 200: alertOut } },
      handler: async (req) => {
        const { id } = req.params as { id: string };
        return alertFor(req, id, "read");
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/alerts/:id/ack",
      authz: { kind: "authenticated" },
      schema: {
        summary: "Acknowledge an alert with a note (alerts:update in its namespace); 409 PC_MONITOR_ALERT_ACKED when acknowledged before",
        body: noteBody,
        response: { 200: alertOut },
      },
      handler: async (req) => {
        const { id } = req.params as { id: string };
        alertFor(req, id, "update");
        return ctx.alerts.ack(id, actorOf(req), (req.body as { note: string }).note);
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/quarantines",
      authz: { kind: "authenticated" },
      schema: {
        summary: "Containers held in quarantine (?namespace=: that namespace's, needs quarantines:read there; else those the caller may read; ?all=true: released ones too)",
        querystring: { type: "object", additionalProperties: false, properties: { namespace: NAMESPACE, all: { type: "string", enum: ["true", "false"] } } },
        response: { 200: list(quarantineOut) },
      },
      handler: async (req) => {
        const q = req.query as { namespace?: string; all?: string };
        return { items: ctx.quarantines.list({ namespaces: readable(req, "quarantines", q.namespace), all: q.all === "true" }) };
      },
    }),
    defineRoute({
      method: "DELETE",
      url: "/v1/quarantines/:container",
      authz: { kind: "authenticated" },
      schema: {
        summary: "Release a quarantine (quarantines:delete in the container's namespace): the held container is removed, and the reconciler creates a fresh replica in its place",
        body: noteBody,
        response: { 200: quarantineOut },
      },
      handler: async (req) => {
        const { container } = req.params as { container: string };
        if (!CONTAINER_RE.test(container)) throw pcError("PC_MONITOR_QUARANTINE_NOT_FOUND", container.slice(0, 80));
        const q = ctx.quarantines.get(container);
        const ns = q.namespace ?? CLUSTER;
        if (!may(req, "quarantines", "delete", ns)) {
          if (!mayRead(req, "quarantines", ns)) throw pcError("PC_MONITOR_QUARANTINE_NOT_FOUND", container);
          throw pcError("PC_API_FORBIDDEN", `quarantines:delete in ${ns}`);
        }
        return ctx.quarantines.release(container, actorOf(req), (req.body as { note: string }).note);
      },
    }),
  ];
}
