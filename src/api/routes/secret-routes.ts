import type { FastifyRequest } from "fastify";
import { pcError } from "../../core/index.js";
import { MAX_SECRET_BYTES, type SecretActor, type SecretMeta } from "../../secrets/index.js";
import { CLUSTER_WIDE, defineRoute, type RouteDef } from "../route.js";
import { actorOf, type RouteContext } from "./context.js";

/**
 * Secrets of a namespace, and the cluster's keyring.
 *
 * - Values travel base64 in JSON, only in two directions: in with create/update (the
 *   caller holds secrets:create / secrets:update), out with an explicit read (secrets:read,
 *   `Cache-Control: no-store`). Every other answer is metadata, and every response schema
 *   names its fields, so nothing else is ever serialised.
 * - A value is checked here before the service sees it: strict base64, not empty, at most
 *   64 KiB decoded (PC_SECRETS_VALUE_INVALID, PC_SECRETS_TOO_LARGE). Messages never carry
 *   any part of a value; request bodies are not logged.
 * - Deleting a secret that a running deployment uses is refused (PC_SECRETS_IN_USE,
 *   naming the deployments) unless `?force=true`, which first stops those deployments.
 */

/** Base64 of the largest value, plus room for the JSON around it; bigger values are refused by size, not by the body limit. */
export const SECRET_BODY_LIMIT = 128 * 1024;
const MAX_VALUE_CHARS = SECRET_BODY_LIMIT - 1024;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const NAME = { type: "string", minLength: 1, maxLength: 63 } as const;
const VALUE = { type: "string", maxLength: MAX_VALUE_CHARS } as const;

const versionOut = {
  type: "object",
  required: ["version", "size", "createdAt", "createdBy"],
  additionalProperties: false,
  properties: { version: { type: "integer" }, size: { type: "integer" }, createdAt: { type: "string" }, createdBy: { type: "string" }, kekId: { type: "string" } },
} as const;
const usedByOut = {
  type: "object",
  required: ["deployment", "revision", "version", "path"],
  additionalProperties: false,
  properties: { deployment: { type: "string" }, revision: { type: "integer" }, version: { type: "integer" }, path: { type: "string" } },
} as const;
const metaOut = {
  type: "object",
  required: ["namespace", "name", "createdAt", "createdBy", "latest", "versions", "usedBy"],
  additionalProperties: false,
  properties: {
    namespace: { type: "string" },
    name: { type: "string" },
    createdAt: { type: "string" },
    createdBy: { type: "string" },
    latest: { type: "integer" },
    versions: { type: "array", items: versionOut },
    usedBy: { type: "array", items: usedByOut },
  },
} as const;
const kekStatusOut = {
  type: "object",
  required: ["active", "keks", "rewrapping"],
  additionalProperties: false,
  properties: {
    active: { type: "string" },
    rewrapping: { type: "boolean" },
    keks: {
      type: "array",
      items: {
        type: "object",
        required: ["id", "createdAt", "active", "dataKeys"],
        additionalProperties: false,
        properties: { id: { type: "string" }, createdAt: { type: "string" }, active: { type: "boolean" }, dataKeys: { type: "integer" } },
      },
    },
  },
} as const;
const noBody = { type: "object", additionalProperties: false, properties: {} } as const;

type NsName = { namespace: string; name: string };

/** Decodes a value as sent: strict base64, not empty, at most MAX_SECRET_BYTES. */
export function decodeSecretValue(text: string): Buffer {
  if (text === "") throw pcError("PC_SECRETS_VALUE_INVALID", "value is empty; a secret holds 1 to 65536 bytes");
  if (!BASE64_RE.test(text)) throw pcError("PC_SECRETS_VALUE_INVALID", "value must be base64 (RFC 4648, with padding)");
  const bytes = (text.length / 4) * 3 - (text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0);
  if (bytes > MAX_SECRET_BYTES) throw pcError("PC_SECRETS_TOO_LARGE", `the value is ${bytes} bytes; a secret holds at most ${MAX_SECRET_BYTES} bytes (64 KiB)`);
  return Buffer.from(text, "base64");
}

function secretActor(req: FastifyRequest): SecretActor {
  const a = actorOf(req);
  return { id: a.identity, ...(a.serial !== undefined ? { serial: a.serial } : {}), ...(a.requestId !== undefined ? { requestId: a.requestId } : {}), ...(a.sourceAddress !== undefined ? { sourceAddress: a.sourceAddress } : {}) };
}

/** Metadata as answered: only the fields of the schema, whatever the service's object holds. */
function metaView(m: SecretMeta): SecretMeta {
  return {
    namespace: m.namespace,
    name: m.name,
    createdAt: m.createdAt,
    createdBy: m.createdBy,
    latest: m.latest,
    versions: m.versions.map((v) => ({ version: v.version, size: v.size, createdAt: v.createdAt, createdBy: v.createdBy, kekId: v.kekId })),
    usedBy: m.usedBy.map((u) => ({ deployment: u.deployment, revision: u.revision, version: u.version, path: u.path })),
  };
}

/** Runs `fn` with the value, then zeroes the buffer. */
async function withValue<T>(text: string, fn: (value: Buffer) => Promise<T> | T): Promise<T> {
  const value = decodeSecretValue(text);
  try {
    return await fn(value);
  } finally {
    value.fill(0);
  }
}

export function secretRoutes(ctx: RouteContext): RouteDef[] {
  const secrets = ctx.secrets;
  return [
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/secrets",
      authz: { kind: "rbac", resource: "secrets", action: "create", namespace: { param: "namespace" } },
      bodyLimit: SECRET_BODY_LIMIT,
      schema: {
        summary: "Create a secret with its first version: value is base64, at most 64 KiB decoded; answers metadata only",
        body: { type: "object", additionalProperties: false, required: ["name", "value"], properties: { name: NAME, value: VALUE } },
        response: { 201: metaOut },
      },
      handler: async (req, reply) => {
        const { namespace } = req.params as { namespace: string };
        const b = req.body as { name: string; value: string };
        const meta = await withValue(b.value, (value) => secrets.create(namespace, b.name, value, secretActor(req)));
        reply.code(201);
        return metaView(meta);
      },
    }),
    defineRoute({
      method: "PUT",
      url: "/v1/namespaces/:namespace/secrets/:name",
      authz: { kind: "rbac", resource: "secrets", action: "update", namespace: { param: "namespace" } },
      bodyLimit: SECRET_BODY_LIMIT,
      schema: {
        summary: "Add a new version of a secret (deployments keep the version they pinned until redeployed); answers metadata only",
        body: { type: "object", additionalProperties: false, required: ["value"], properties: { value: VALUE } },
        response: { 200: metaOut },
      },
      handler: async (req) => {
        const p = req.params as NsName;
        const b = req.body as { value: string };
        return metaView(await withValue(b.value, (value) => secrets.update(p.namespace, p.name, value, secretActor(req))));
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/secrets",
      authz: { kind: "rbac", resource: "secret-metadata", action: "read", namespace: { param: "namespace" } },
      schema: {
        summary: "The secrets of a namespace: names, versions, sizes, creators, times and the deployments using each; never a value",
        response: { 200: { type: "object", required: ["items"], additionalProperties: false, properties: { items: { type: "array", items: metaOut } } } },
      },
      handler: async (req) => {
        const { namespace } = req.params as { namespace: string };
        return { items: (await secrets.list(namespace)).map(metaView) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/namespaces/:namespace/secrets/:name",
      authz: { kind: "rbac", resource: "secret-metadata", action: "read", namespace: { param: "namespace" } },
      schema: { summary: "One secret's metadata, with its versions and the deployments using it; never a value", response: { 200: metaOut } },
      handler: async (req) => {
        const p = req.params as NsName;
        return metaView(await secrets.get(p.namespace, p.name));
      },
    }),
    defineRoute({
      method: "DELETE",
      url: "/v1/namespaces/:namespace/secrets/:name",
      authz: { kind: "rbac", resource: "secrets", action: "delete", namespace: { param: "namespace" } },
      schema: {
        summary: "Delete a secret and every version; refused while a running deployment uses it, unless ?force=true, which stops those deployments first",
        querystring: { type: "object", additionalProperties: false, properties: { force: { type: "string", enum: ["true", "false"] } } },
        response: {
          200: {
            type: "object",
            required: ["namespace", "name", "deleted", "stopped"],
            additionalProperties: false,
            properties: { namespace: { type: "string" }, name: { type: "string" }, deleted: { type: "boolean" }, stopped: { type: "array", items: { type: "string" } } },
          },
        },
      },
      handler: async (req) => {
        const p = req.params as NsName;
        const force = (req.query as { force?: string }).force === "true";
        const actor = secretActor(req);
        const meta = await secrets.get(p.namespace, p.name);
        const running = [...new Set(meta.usedBy.map((u) => u.deployment))].filter((d) => ctx.secretUsers.running(p.namespace, d)).sort();
        if (running.length > 0 && !force) {
          throw pcError("PC_SECRETS_IN_USE", `secret ${p.name} is used by running deployment(s) ${running.join(", ")} in ${p.namespace}; stop them, or delete with --force to stop them first`);
        }
        const stopped: string[] = [];
        for (const d of running) {
          await ctx.secretUsers.stopUsing(p.namespace, d, `secret ${p.name} deleted with --force by ${actor.id}`, actor);
          stopped.push(d);
        }
        await secrets.delete(p.namespace, p.name, actor);
        return { namespace: p.namespace, name: p.name, deleted: true, stopped };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/namespaces/:namespace/secrets/:name/read",
      authz: { kind: "rbac", resource: "secrets", action: "read", namespace: { param: "namespace" } },
      schema: {
        summary: "Read a secret's value (the latest version, or `version`): an explicit, audited read; answered with Cache-Control: no-store",
        body: { type: "object", additionalProperties: false, properties: { version: { type: "integer", minimum: 1, maximum: 2_147_483_647 } } },
        response: {
          200: {
            type: "object",
            required: ["name", "version", "value"],
            additionalProperties: false,
            properties: { name: { type: "string" }, version: { type: "integer" }, value: { type: "string" } },
          },
        },
      },
      handler: async (req, reply) => {
        const p = req.params as NsName;
        const b = (req.body ?? {}) as { version?: number };
        reply.header("cache-control", "no-store");
        const r = await secrets.read(p.namespace, p.name, b.version, secretActor(req));
        try {
          return { name: p.name, version: r.version, value: r.value.toString("base64") };
        } finally {
          r.value.fill(0);
        }
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/keyring",
      authz: { kind: "rbac", resource: "keyring", action: "read", namespace: CLUSTER_WIDE },
      schema: { summary: "The key-encryption keys: which is active, how many data keys each wraps, whether a rotation is still rewrapping; never a key", response: { 200: kekStatusOut } },
      handler: async () => kekStatusView(await secrets.kekStatus()),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/keyring/rotate",
      authz: { kind: "rbac", resource: "keyring", action: "update", namespace: CLUSTER_WIDE },
      schema: { summary: "Make a new key-encryption key active and rewrap every data key under it; answers the keyring's status", body: noBody, response: { 200: kekStatusOut } },
      handler: async (req) => {
        await secrets.rotateKek(secretActor(req));
        return kekStatusView(await secrets.kekStatus());
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/keyring/retire",
      authz: { kind: "rbac", resource: "keyring", action: "update", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Remove a key-encryption key that wraps no data key any more; answers the keyring's status",
        body: { type: "object", additionalProperties: false, required: ["kek"], properties: { kek: { type: "string", minLength: 1, maxLength: 64 } } },
        response: { 200: kekStatusOut },
      },
      handler: async (req) => {
        await secrets.retireKek((req.body as { kek: string }).kek, secretActor(req));
        return kekStatusView(await secrets.kekStatus());
      },
    }),
  ];
}

type KekStatusLike = Awaited<ReturnType<RouteContext["secrets"]["kekStatus"]>>;

function kekStatusView(s: KekStatusLike): KekStatusLike {
  return { active: s.active, rewrapping: s.rewrapping, keks: s.keks.map((k) => ({ id: k.id, createdAt: k.createdAt, active: k.active, dataKeys: k.dataKeys })) };
}
