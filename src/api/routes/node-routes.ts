import { issueNodeServerCertificate } from "../../pki/index.js";
import type { NodeRecord } from "../../store/index.js";
import type { NodeStatus } from "../../runtime/index.js";
import { assertNodeName } from "../../runtime/index.js";
import { CLUSTER_WIDE, defineRoute, S, type RouteDef } from "../route.js";
import { actorOf, type RouteContext } from "./context.js";

// Names, endpoints and labels are bounded here and checked by the runtime, so that a bad
// value gets PC_RUNTIME_NODE_INVALID with its reason wherever it comes from.
const nodeName = { type: "string", minLength: 1, maxLength: 253 } as const;
const labels = { type: "object", maxProperties: 64, additionalProperties: { type: "string", maxLength: 63 } } as const;
const nodeOut = {
  type: "object",
  required: ["name", "endpoint", "labels", "state", "publishHost", "createdAt", "createdBy"],
  properties: {
    name: { type: "string" },
    endpoint: { type: "string" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    state: { type: "string", enum: ["active", "draining"] },
    publishHost: { type: "string" },
    createdAt: { type: "string" },
    createdBy: { type: "string" },
    /** The node's event stream: up, connecting, or degraded (down, reconnecting); absent before monitoring saw the node. */
    events: { type: "string", enum: ["connecting", "up", "degraded"] },
  },
} as const;
const statusOut = {
  type: "object",
  required: ["health", "runtimes", "capacity", "version", "checkedAt"],
  properties: {
    health: { type: "string", enum: ["ok", "unreachable"] },
    runtimes: { type: "array", items: { type: "string" } },
    capacity: {
      type: "object",
      required: ["nanoCpus", "memoryBytes", "pids"],
      properties: { nanoCpus: { type: "integer" }, memoryBytes: { type: "integer" }, pids: { type: "integer" } },
    },
    version: { type: "string" },
    checkedAt: { type: "string" },
  },
} as const;

const base = (n: NodeRecord) => ({
  name: n.name,
  endpoint: n.endpoint,
  labels: n.labels,
  state: n.state,
  publishHost: n.publishHost,
  createdAt: new Date(n.createdAt).toISOString(),
  createdBy: n.createdBy,
});

/**
 * An engine's server certificate, and `engineClientCa`: the engine-client CA, the one
 * CA the engine is to trust for client certificates (`dockerd --tlscacert`).
 */
const nodeIssued = {
  ...S.issued,
  required: [...S.issued.required, "engineClientCa"],
  properties: { ...S.issued.properties, engineClientCa: { type: "string" } },
} as const;

/** Actions that take no parameters: an empty object. */
const noBody = { type: "object", additionalProperties: false, properties: {} } as const;

const withStatus = (view: (n: NodeRecord) => ReturnType<typeof base>, n: NodeRecord, status: NodeStatus) => ({ ...view(n), status });
const nameOf = (params: unknown): string => (params as { name: string }).name;

/** Nodes: the engines the gateway schedules onto, and their server certificates. */
export function nodeRoutes(ctx: RouteContext): RouteDef[] {
  const view = (n: NodeRecord) => {
    const events = ctx.nodeEvents(n.name);
    return { ...base(n), ...(events !== undefined ? { events } : {}) };
  };
  return [
    defineRoute({
      method: "POST",
      url: "/v1/nodes",
      authz: { kind: "rbac", resource: "nodes", action: "create", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Register a Docker engine as a node (unix:///PATH or tcp://HOST:PORT with mutual TLS)",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["name", "endpoint"],
          properties: { name: nodeName, endpoint: { type: "string", minLength: 1, maxLength: 300 }, labels, publishHost: { type: "string", minLength: 1, maxLength: 64 } },
        },
        response: { 201: nodeOut },
      },
      handler: async (req, reply) => {
        const b = req.body as { name: string; endpoint: string; labels?: Record<string, string>; publishHost?: string };
        const rec = ctx.nodes.add(b.name, b.endpoint, b.labels ?? {}, actorOf(req), b.publishHost === undefined ? {} : { publishHost: b.publishHost });
        reply.code(201);
        return view(rec);
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/nodes",
      authz: { kind: "rbac", resource: "nodes", action: "read", namespace: CLUSTER_WIDE },
      schema: { summary: "List nodes", response: { 200: { type: "object", required: ["items"], properties: { items: { type: "array", items: nodeOut } } } } },
      handler: async () => ({ items: ctx.nodes.list().map(view) }),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/nodes/:name",
      authz: { kind: "rbac", resource: "nodes", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "A node with its health, runtimes and capacity",
        response: { 200: { ...nodeOut, required: [...nodeOut.required, "status"], properties: { ...nodeOut.properties, status: statusOut } } },
      },
      handler: async (req) => {
        const rec = ctx.nodes.get(nameOf(req.params));
        return withStatus(view, rec, await ctx.nodes.status(rec.name));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/nodes/:name/drain",
      authz: { kind: "rbac", resource: "nodes", action: "update", namespace: CLUSTER_WIDE },
      schema: { summary: "Place no new replicas on a node", body: noBody, response: { 200: nodeOut } },
      handler: async (req) => view(ctx.nodes.drain(nameOf(req.params), actorOf(req))),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/nodes/:name/activate",
      authz: { kind: "rbac", resource: "nodes", action: "update", namespace: CLUSTER_WIDE },
      schema: { summary: "Place replicas on a drained node again", body: noBody, response: { 200: nodeOut } },
      handler: async (req) => view(ctx.nodes.activate(nameOf(req.params), actorOf(req))),
    }),
    defineRoute({
      method: "DELETE",
      url: "/v1/nodes/:name",
      authz: { kind: "rbac", resource: "nodes", action: "delete", namespace: CLUSTER_WIDE },
      schema: { summary: "Remove a node that holds no replicas", response: { 200: { type: "object", required: ["removed"], properties: { removed: { type: "string" } } } } },
      handler: async (req) => {
        const name = nameOf(req.params);
        ctx.nodes.remove(name, actorOf(req), ctx.nodeReplicas);
        return { removed: name };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/nodes/:name/certificate",
      authz: { kind: "rbac", resource: "nodes", action: "create", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Issue an engine's server certificate (dockerd --tlsverify) for the key in a CSR, with the engine-client CA for --tlscacert",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["csr", "sans"],
          properties: { csr: S.pem, sans: { type: "array", minItems: 1, maxItems: 16, items: { type: "string", minLength: 1, maxLength: 253 } } },
        },
        response: { 201: nodeIssued },
      },
      handler: async (req, reply) => {
        const b = req.body as { csr: string; sans: string[] };
        const name = assertNodeName(nameOf(req.params));
        const issued = issueNodeServerCertificate(ctx.pki, name, b.csr, b.sans, actorOf(req));
        reply.code(201);
        return { ...issued, engineClientCa: ctx.pki.engineClients.certPem };
      },
    }),
  ];
}
