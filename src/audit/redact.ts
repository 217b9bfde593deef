import { createHmac } from "node:crypto";
import type { AuditDeployFacts, AuditEvent } from "../core/index.js";
import type { EntryBody, EntryDeploy, EntryHead, Outcome } from "./format.js";

/**
 * Redaction by construction: an event becomes an entry by copying the declared fields
 * one by one, each checked for its type. Nothing else of the event object is read, so a
 * property that is not declared (a body, a token, a CSR) cannot reach the log, and a
 * declared field with a value of the wrong type is left out rather than stringified.
 *
 * Event → entry:
 *   type, outcome, actor              → head.type, head.outcome, head.actor
 *   method + route                    → head.action = "METHOD route" (route alone without a method)
 *   resource, namespace               → head.resource, head.namespace
 *   actorSerial                       → body.actorSerial
 *   sourceAddress                     → body.source
 *   status                            → body.status
 *   reason                            → body.reasons = [reason]
 *   requestId                         → body.requestId
 *   bodySha256 (64 hex digits)        → body.bodySha256
 *   target                            → body.target
 *   matchOnly                         → body.targetHmac = hex HMAC-SHA256(log key, value)
 *   deploy                            → body.deploy, key by key (see `deployFacts`); left out if no key survives
 */
export type EntryHeadParts = Omit<EntryHead, "v" | "seq" | "time">;

export interface EntryParts {
  readonly head: EntryHeadParts;
  readonly body: EntryBody;
}

const OUTCOMES: ReadonlySet<string> = new Set<Outcome>(["allowed", "denied", "error"]);

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const SHA256_REF = /^sha256:[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** Runtime names as engines report them (`runc`, `runsc`, `io.containerd.runc.v2`). */
const RUNTIME_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function strs(v: unknown, ok: (s: string) => boolean = () => true): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const x of v as unknown[]) {
    if (typeof x !== "string" || !ok(x)) return undefined;
    out.push(x);
  }
  return out;
}

/**
 * The deploy facts of an event, key by key, each checked for its type (and, for digests
 * and runtime names, its form). A key with a value of another type is left out; keys
 * that are not declared are never read.
 *
 *   revision        positive integer
 *   jti, containers, nodes   string, strings
 *   digest, imageId `sha256:<64 hex>`
 *   runtime, actualRuntimes  runtime names (letters, digits, `.`, `_`, `-`)
 *   replicas        non-negative integer
 *   decisionSha256  64 hex digits
 */
export function deployFacts(d: AuditDeployFacts | undefined): EntryDeploy | undefined {
  if (typeof d !== "object" || d === null || Array.isArray(d)) return undefined;
  const out: { -readonly [K in keyof EntryDeploy]: EntryDeploy[K] } = {};
  if (Number.isSafeInteger(d.revision) && (d.revision as number) >= 1) out.revision = d.revision as number;
  const jti = str(d.jti);
  if (jti !== undefined) out.jti = jti;
  const digest = str(d.digest);
  if (digest !== undefined && SHA256_REF.test(digest)) out.digest = digest;
  const imageId = str(d.imageId);
  if (imageId !== undefined && SHA256_REF.test(imageId)) out.imageId = imageId;
  const runtime = str(d.runtime);
  if (runtime !== undefined && RUNTIME_NAME.test(runtime)) out.runtime = runtime;
  const actual = strs(d.actualRuntimes, (s) => RUNTIME_NAME.test(s));
  if (actual !== undefined) out.actualRuntimes = actual;
  const nodes = strs(d.nodes);
  if (nodes !== undefined) out.nodes = nodes;
  const containers = strs(d.containers);
  if (containers !== undefined) out.containers = containers;
  if (Number.isSafeInteger(d.replicas) && (d.replicas as number) >= 0) out.replicas = d.replicas as number;
  const decision = str(d.decisionSha256);
  if (decision !== undefined && HEX64.test(decision)) out.decisionSha256 = decision;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Hex HMAC-SHA256 of an identifier under the log's key. */
export function matchHmac(hmacKey: Buffer, value: string): string {
  return createHmac("sha256", hmacKey).update(value, "utf8").digest("hex");
}

/** Builds an entry's head and body from the declared fields of an event. */
export function entryParts(event: AuditEvent, hmacKey: Buffer): EntryParts {
  const type = str(event.type);
  const actor = str(event.actor);
  const outcome = str(event.outcome);
  if (type === undefined || type === "") throw new TypeError("an audit event needs a type");
  if (actor === undefined || actor === "") throw new TypeError("an audit event needs an actor");
  if (outcome === undefined || !OUTCOMES.has(outcome)) throw new TypeError("an audit event needs an outcome");

  const method = str(event.method);
  const route = str(event.route);
  const head: { -readonly [K in keyof EntryHeadParts]: EntryHeadParts[K] } = { type, outcome: outcome as Outcome, actor };
  const action = method !== undefined && route !== undefined ? `${method} ${route}` : route;
  if (action !== undefined) head.action = action;
  const resource = str(event.resource);
  if (resource !== undefined) head.resource = resource;
  const namespace = str(event.namespace);
  if (namespace !== undefined) head.namespace = namespace;

  const body: { -readonly [K in keyof EntryBody]: EntryBody[K] } = {};
  const actorSerial = str(event.actorSerial);
  if (actorSerial !== undefined) body.actorSerial = actorSerial;
  const source = str(event.sourceAddress);
  if (source !== undefined) body.source = source;
  if (typeof event.status === "number" && Number.isInteger(event.status)) body.status = event.status;
  const reason = str(event.reason);
  if (reason !== undefined) body.reasons = [reason];
  const requestId = str(event.requestId);
  if (requestId !== undefined) body.requestId = requestId;
  const bodySha256 = str(event.bodySha256);
  if (bodySha256 !== undefined && HEX64.test(bodySha256)) body.bodySha256 = bodySha256;
  const target = str(event.target);
  if (target !== undefined) body.target = target;
  const matchOnly = str(event.matchOnly);
  if (matchOnly !== undefined) body.targetHmac = matchHmac(hmacKey, matchOnly);
  const deploy = deployFacts(event.deploy);
  if (deploy !== undefined) body.deploy = deploy;
  return { head, body };
}
