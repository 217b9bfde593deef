import { pcError } from "../../core/index.js";
import { MAX_RULES_BYTES, parseMonitoringRules, replayMonitoringEvents, runMonitoringTests, type MonitoringRule } from "../../monitoring/index.js";
import { CLUSTER_WIDE, defineRoute, type RouteDef } from "../route.js";
import { actorOf, type RouteContext } from "./context.js";
import { policyVersionRoutes } from "./policy-version-routes.js";

const MAX_TEST_BYTES = 1024 * 1024;
const MAX_EVENTS_BYTES = 3 * 1024 * 1024;
const ISO_TIME = { type: "string", minLength: 10, maxLength: 40, pattern: "^\\d{4}-\\d\\d-\\d\\dT" } as const;

const change = {
  type: "object",
  required: ["version", "unchanged"],
  properties: { version: { type: "integer" }, unchanged: { type: "boolean" } },
} as const;
const anyObject = { type: "object", additionalProperties: true } as const;
const hitView = {
  type: "object",
  required: ["rule", "severity", "actions", "at", "node", "container", "summary"],
  properties: {
    rule: { type: "string" },
    severity: { type: "string" },
    actions: { type: "array", items: { type: "string" } },
    at: { type: "string" },
    node: { type: "string" },
    container: { type: "string" },
    summary: { type: "string" },
  },
} as const;
const testReport = {
  type: "object",
  required: ["cases", "passed", "failed"],
  properties: {
    cases: {
      type: "array",
      items: {
        type: "object",
        required: ["name", "line", "ok", "hits"],
        properties: { name: { type: "string" }, line: { type: "integer" }, ok: { type: "boolean" }, hits: { type: "array", items: hitView }, reason: { type: "string" } },
      },
    },
    passed: { type: "integer" },
    failed: { type: "integer" },
  },
} as const;
const replayReport = {
  type: "object",
  required: ["events", "hits"],
  properties: { events: { type: "integer" }, hits: { type: "array", items: hitView } },
} as const;
const recordedEvent = {
  type: "object",
  required: ["id", "node", "source", "type", "action", "actor", "attributes", "timeNano", "timeMs"],
  properties: {
    id: { type: "string" },
    node: { type: "string" },
    source: { type: "string" },
    type: { type: "string" },
    action: { type: "string" },
    actor: { type: "string" },
    attributes: { type: "object", additionalProperties: { type: "string" } },
    timeNano: { type: "string" },
    timeMs: { type: "integer" },
  },
} as const;

/** A rule as the API shows it: durations in milliseconds, as the rule set holds them. */
const ruleView = (r: MonitoringRule): Record<string, unknown> => ({ ...r });

function msOf(iso: string | undefined, what: string): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) throw pcError("PC_API_INVALID_BODY", `querystring/${what} must be an ISO 8601 time`);
  return ms;
}

/**
 * The monitoring rules: the file in force (or one version), apply, history, rollback,
 * offline tests and replays of candidate rules; and the events monitoring recorded, for
 * replays. Rules are policies (`policies:read` / `policies:update`); events are read
 * with `alerts:read`.
 */
export function monitoringRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/monitoring/rules",
      authz: { kind: "rbac", resource: "policies", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "The monitoring rules file in force (or of one version, ?version=N), with its rules as parsed",
        querystring: { type: "object", additionalProperties: false, properties: { version: { type: "string", pattern: "^[1-9][0-9]{0,8}$" } } },
        response: {
          200: {
            type: "object",
            required: ["version", "text", "rules"],
            properties: { version: { type: "integer" }, text: { type: "string" }, rules: { type: "array", items: anyObject } },
          },
        },
      },
      handler: async (req) => {
        const q = req.query as { version?: string };
        if (q.version !== undefined) {
          const v = ctx.monitoringRules.get(Number(q.version));
          return { version: v.version, text: v.text, rules: parseMonitoringRules(v.text).rules.map(ruleView) };
        }
        const cur = ctx.monitoringRules.current();
        return { version: cur.version, text: cur.text, rules: cur.set.rules.map(ruleView) };
      },
    }),
    defineRoute({
      method: "PUT",
      url: "/v1/monitoring/rules",
      authz: { kind: "rbac", resource: "policies", action: "update", namespace: CLUSTER_WIDE },
      bodyLimit: MAX_RULES_BYTES * 2 + 4096,
      schema: {
        summary: "Apply a monitoring rules file: validated whole, versioned; the text in force already changes nothing",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["text"],
          properties: { text: { type: "string", minLength: 1, maxLength: MAX_RULES_BYTES }, message: { type: "string", maxLength: 500 } },
        },
        response: { 200: change },
      },
      handler: async (req) => {
        const b = req.body as { text: string; message?: string };
        return ctx.monitoringRules.apply(b.text, actorOf(req), b.message);
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/monitoring/rules/test",
      authz: { kind: "rbac", resource: "policies", action: "read", namespace: CLUSTER_WIDE },
      bodyLimit: (MAX_RULES_BYTES + MAX_TEST_BYTES + MAX_EVENTS_BYTES) * 2,
      schema: {
        summary: "Test candidate rules without applying them: a test file's cases (tests), a replay of recorded events (events, JSON lines), or both",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["rules"],
          anyOf: [{ required: ["tests"] }, { required: ["events"] }],
          properties: {
            rules: { type: "string", minLength: 1, maxLength: MAX_RULES_BYTES },
            tests: { type: "string", minLength: 1, maxLength: MAX_TEST_BYTES },
            events: { type: "string", maxLength: MAX_EVENTS_BYTES },
          },
        },
        response: { 200: { type: "object", properties: { tests: testReport, replay: replayReport } } },
      },
      handler: async (req) => {
        const b = req.body as { rules: string; tests?: string; events?: string };
        return {
          ...(b.tests !== undefined ? { tests: runMonitoringTests(b.tests, b.rules) } : {}),
          ...(b.events !== undefined ? { replay: replayMonitoringEvents(b.rules, b.events) } : {}),
        };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/monitoring/events",
      authz: { kind: "rbac", resource: "alerts", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Events monitoring recorded, oldest first (each item is a line `monitoring rules test --events` accepts)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            node: { type: "string", minLength: 1, maxLength: 63 },
            since: ISO_TIME,
            until: ISO_TIME,
            type: { type: "string", minLength: 1, maxLength: 32, pattern: "^[a-z][a-z0-9_]*$" },
            limit: { type: "string", pattern: "^[1-9][0-9]{0,4}$" },
          },
        },
        response: { 200: { type: "object", required: ["items"], properties: { items: { type: "array", items: recordedEvent } } } },
      },
      handler: async (req) => {
        const q = req.query as { node?: string; since?: string; until?: string; type?: string; limit?: string };
        const limit = q.limit !== undefined ? Number(q.limit) : undefined;
        if (limit !== undefined && limit > 10_000) throw pcError("PC_API_INVALID_BODY", "querystring/limit must be at most 10000");
        const sinceMs = msOf(q.since, "since");
        const untilMs = msOf(q.until, "until");
        return {
          items: ctx.recordedEvents.list({
            ...(q.node !== undefined ? { node: q.node } : {}),
            ...(sinceMs !== undefined ? { sinceMs } : {}),
            ...(untilMs !== undefined ? { untilMs } : {}),
            ...(q.type !== undefined ? { type: q.type } : {}),
            ...(limit !== undefined ? { limit } : {}),
          }),
        };
      },
    }),
    ...policyVersionRoutes({
      prefix: "/v1/monitoring/rules",
      what: "monitoring rules",
      change,
      history: () => ctx.monitoringRules.history(),
      rollback: (version, actor, message) => ctx.monitoringRules.rollback(version, actor, message),
    }),
  ];
}
