import { createHmac } from "node:crypto";
import type { AuditEvent } from "../core/index.js";
import type { EntryBody, EntryHead, Outcome } from "./format.js";

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
 */
export type EntryHeadParts = Omit<EntryHead, "v" | "seq" | "time">;

export interface EntryParts {
  readonly head: EntryHeadParts;
  readonly body: EntryBody;
}

const OUTCOMES: ReadonlySet<string> = new Set<Outcome>(["allowed", "denied", "error"]);

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

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
  if (bodySha256 !== undefined && /^[0-9a-f]{64}$/.test(bodySha256)) body.bodySha256 = bodySha256;
  const target = str(event.target);
  if (target !== undefined) body.target = target;
  const matchOnly = str(event.matchOnly);
  if (matchOnly !== undefined) body.targetHmac = matchHmac(hmacKey, matchOnly);
  return { head, body };
}
