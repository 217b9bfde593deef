/**
 * Events as monitoring handles them: an engine's event or one the gateway derives, made
 * into a MonitorEvent with an id that is the same every time the same event is seen (a
 * stream that resumes delivers the last events again) and different for any two events.
 *
 * The id is the hex SHA-256 of the RFC 8785 canonical JSON of the event's identifying
 * fields: { source, node, timeNano, type, action, actor, attributes[, cause] }. Canonical
 * JSON is unambiguous (every string is quoted and escaped, keys are sorted), so fields
 * cannot run into each other.
 *
 * Recorded events given to offline tools (`monitoring rules test`) are untrusted input:
 * parseRecordedEvent checks each line, with limits, and says which line is wrong and why.
 */
import { createHash } from "node:crypto";
import { canonicalize, isPortcullisError, parseStrictJson, pcError } from "../core/index.js";
import type { JsonValue } from "../core/index.js";
import type { EngineEvent } from "../runtime/index.js";
import { GATEWAY_EVENT_TYPE, type MonitorEvent } from "./types.js";

/** The node of a `docker events` line that names none. */
export const LOCAL_EVENT_NODE = "local";
/** Limits of recorded events: a line, the attributes of one event, any one string (UTF-8 bytes). */
export const RECORDED_EVENT_LIMITS = Object.freeze({ lineBytes: 64 * 1024, attributes: 256, stringBytes: 4 * 1024, events: 100_000 });

const NANOS_PER_MS = 1_000_000n;
const NANOS_PER_S = 1_000_000_000n;
/** A non-negative decimal integer without leading zeros, as wide as an engine writes. */
const DECIMAL_RE = /^(0|[1-9][0-9]{0,24})$/;
const ID_RE = /^[0-9a-f]{64}$/;

function sortedAttributes(a: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(a).sort()) out[k] = a[k] as string;
  return out;
}

function eventId(fields: {
  source: MonitorEvent["source"];
  node: string;
  timeNano: string;
  type: string;
  action: string;
  actor: string;
  attributes: Readonly<Record<string, string>>;
  cause?: string | undefined;
}): string {
  return createHash("sha256").update(canonicalize(fields), "utf8").digest("hex");
}

/** floor(timeNano / 1e6), exactly (a 19-digit timeNano does not fit a double). */
function msOf(timeNano: bigint): number {
  return Number(timeNano / NANOS_PER_MS);
}

/** An engine's event, as monitoring handles it. */
export function toMonitorEvent(node: string, e: EngineEvent): MonitorEvent {
  const nano = BigInt(e.timeNano);
  const timeNano = nano.toString();
  const attributes = sortedAttributes(e.Actor.Attributes);
  const fields = { source: "engine" as const, node, timeNano, type: e.Type, action: e.Action, actor: e.Actor.ID, attributes };
  return { id: eventId(fields), ...fields, timeMs: msOf(nano) };
}

/**
 * An event the gateway derives (drift, a runtime or image other than the admitted one,
 * new scan findings). `cause` is the id of the event it was derived from: deriving again
 * from the same event gives the same id, so it is recorded and judged once.
 */
export function gatewayEvent(input: {
  node: string;
  action: string;
  actor: string;
  attributes: Record<string, string>;
  timeMs: number;
  cause?: string;
}): MonitorEvent {
  if (!Number.isSafeInteger(input.timeMs) || input.timeMs < 0) {
    throw pcError("PC_INTERNAL", "a gateway event's time must be whole milliseconds since the epoch");
  }
  const timeNano = (BigInt(input.timeMs) * NANOS_PER_MS).toString();
  const attributes = sortedAttributes(input.attributes);
  const fields = {
    source: "gateway" as const,
    node: input.node,
    timeNano,
    type: GATEWAY_EVENT_TYPE,
    action: input.action,
    actor: input.actor,
    attributes,
  };
  return { id: eventId({ ...fields, cause: input.cause }), ...fields, timeMs: input.timeMs };
}

/**
 * The `since` of DockerEngine.events that resumes at `timeNano` (inclusive: the event at
 * that instant is delivered again): `SECONDS.NANOSECONDS`, nine digits after the point.
 */
export function sinceOf(timeNano: string): string {
  if (!DECIMAL_RE.test(timeNano)) throw pcError("PC_INTERNAL", "timeNano must be a decimal integer");
  const n = BigInt(timeNano);
  return `${n / NANOS_PER_S}.${(n % NANOS_PER_S).toString().padStart(9, "0")}`;
}

/** The timeNano of a time in milliseconds. */
export function timeNanoOf(ms: number): string {
  return (BigInt(Math.max(0, Math.floor(ms))) * NANOS_PER_MS).toString();
}

// ---------------------------------------------------------------------------------------
// Recorded events (untrusted).

class LineError extends Error {}

const bytes = (s: string): number => Buffer.byteLength(s, "utf8");

function str(o: Record<string, JsonValue>, key: string, opts: { required: boolean; nonEmpty?: boolean }): string | undefined {
  const v = o[key];
  if (v === undefined) {
    if (opts.required) throw new LineError(`${key} is missing`);
    return undefined;
  }
  if (typeof v !== "string") throw new LineError(`${key} must be a string`);
  if (opts.nonEmpty === true && v === "") throw new LineError(`${key} must not be empty`);
  if (bytes(v) > RECORDED_EVENT_LIMITS.stringBytes) throw new LineError(`${key} is longer than ${RECORDED_EVENT_LIMITS.stringBytes} bytes`);
  return v;
}

function isObject(v: JsonValue | undefined): v is Record<string, JsonValue> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function attributesOf(v: JsonValue | undefined, path: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new LineError(`${path} must be an object of strings`);
  const keys = Object.keys(v);
  if (keys.length > RECORDED_EVENT_LIMITS.attributes) throw new LineError(`${path} has more than ${RECORDED_EVENT_LIMITS.attributes} entries`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    const val = v[k];
    if (typeof val !== "string") throw new LineError(`${path}.${k.slice(0, 64)} must be a string`);
    if (bytes(k) > RECORDED_EVENT_LIMITS.stringBytes) throw new LineError(`${path} has a key longer than ${RECORDED_EVENT_LIMITS.stringBytes} bytes`);
    if (bytes(val) > RECORDED_EVENT_LIMITS.stringBytes) throw new LineError(`${path}.${k.slice(0, 64)} is longer than ${RECORDED_EVENT_LIMITS.stringBytes} bytes`);
    out[k] = val;
  }
  return out;
}

function unknownKeys(o: Record<string, JsonValue>, known: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw new LineError(`unknown field ${where}${k.slice(0, 64)}`);
  }
}

const DOCKER_KEYS = ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano", "node"] as const;
const RECORDED_KEYS = ["id", "node", "source", "type", "action", "actor", "attributes", "timeNano", "timeMs"] as const;
/** A key `timeNano` with a number: only the top-level one can be (nested values are strings). */
const TIME_NANO_NUMBER_RE = /"timeNano"\s*:\s*(-?[0-9][0-9.eE+-]*)/g;

/** The decimal text of the top-level timeNano, taken from the line (a double loses digits). */
function timeNanoText(line: string, o: Record<string, JsonValue>): string {
  const v = o.timeNano;
  let text: string;
  if (typeof v === "string") text = v;
  else if (typeof v === "number") {
    const found = [...line.matchAll(TIME_NANO_NUMBER_RE)].map((m) => m[1] as string);
    if (found.length !== 1) throw new LineError("timeNano is ambiguous");
    text = found[0] as string;
  } else if (v === undefined) throw new LineError("timeNano is missing");
  else throw new LineError("timeNano must be a decimal integer");
  if (!DECIMAL_RE.test(text)) throw new LineError("timeNano must be a non-negative decimal integer of at most 25 digits");
  return text;
}

function fromDockerLine(line: string, o: Record<string, JsonValue>): MonitorEvent {
  unknownKeys(o, DOCKER_KEYS, "");
  for (const k of ["status", "id", "from", "scope"]) str(o, k, { required: false });
  const type = str(o, "Type", { required: true, nonEmpty: true }) as string;
  const action = str(o, "Action", { required: true, nonEmpty: true }) as string;
  const node = str(o, "node", { required: false, nonEmpty: true }) ?? LOCAL_EVENT_NODE;
  const actor = o.Actor;
  if (!isObject(actor)) throw new LineError(actor === undefined ? "Actor is missing" : "Actor must be an object");
  unknownKeys(actor, ["ID", "Attributes"], "Actor.");
  const actorId = str(actor, "ID", { required: false }) ?? "";
  const attributes = attributesOf(actor.Attributes, "Actor.Attributes");
  const timeNano = timeNanoText(line, o);
  const time = o.time;
  if (time !== undefined) {
    if (typeof time !== "number" || !Number.isSafeInteger(time)) throw new LineError("time must be an integer");
    if (BigInt(time) !== BigInt(timeNano) / NANOS_PER_S) throw new LineError("time and timeNano disagree");
  }
  return toMonitorEvent(node, { Type: type, Action: action, Actor: { ID: actorId, Attributes: attributes }, time: Number(BigInt(timeNano) / NANOS_PER_S), timeNano });
}

function fromRecorded(o: Record<string, JsonValue>): MonitorEvent {
  unknownKeys(o, RECORDED_KEYS, "");
  const id = str(o, "id", { required: true }) as string;
  if (!ID_RE.test(id)) throw new LineError("id must be 64 lower-case hex digits");
  const node = str(o, "node", { required: true }) as string;
  const source = str(o, "source", { required: true });
  if (source !== "engine" && source !== "gateway") throw new LineError("source must be engine or gateway");
  const type = str(o, "type", { required: true, nonEmpty: true }) as string;
  const action = str(o, "action", { required: true, nonEmpty: true }) as string;
  const actor = str(o, "actor", { required: true }) as string;
  const attributes = sortedAttributes(attributesOf(o.attributes, "attributes"));
  if (typeof o.timeNano !== "string") throw new LineError(o.timeNano === undefined ? "timeNano is missing" : "timeNano must be a string of decimal digits");
  const timeNano = o.timeNano;
  if (!DECIMAL_RE.test(timeNano)) throw new LineError("timeNano must be a non-negative decimal integer of at most 25 digits");
  const timeMs = o.timeMs;
  if (timeMs === undefined) throw new LineError("timeMs is missing");
  if (typeof timeMs !== "number" || !Number.isSafeInteger(timeMs) || timeMs !== msOf(BigInt(timeNano))) {
    throw new LineError("timeMs must be timeNano / 1e6 rounded down");
  }
  const fields = { source, node, timeNano, type, action, actor, attributes } as const;
  if (source === "engine") {
    if (type === GATEWAY_EVENT_TYPE) throw new LineError(`an engine event cannot have type ${GATEWAY_EVENT_TYPE}`);
    // An engine event's id is a function of its fields: a changed field shows.
    if (eventId(fields) !== id) throw new LineError("id does not match the event's fields");
  } else if (type !== GATEWAY_EVENT_TYPE) {
    throw new LineError(`a gateway event has type ${GATEWAY_EVENT_TYPE}`);
  }
  return { id, ...fields, timeMs };
}

/**
 * One line of recorded events: a Docker event as `docker events --format '{{json .}}'`
 * prints it (its node is "local" unless the line has a `node` field), or a MonitorEvent
 * as the gateway exports it. Anything else is PC_MONITOR_EVENTS_INVALID with `line N: why`.
 */
export function parseRecordedEvent(line: string, lineNo: number): MonitorEvent {
  const fail = (why: string): never => {
    throw pcError("PC_MONITOR_EVENTS_INVALID", `line ${lineNo}: ${why}`);
  };
  if (bytes(line) > RECORDED_EVENT_LIMITS.lineBytes) fail(`longer than ${RECORDED_EVENT_LIMITS.lineBytes} bytes`);
  const text = line.trim();
  if (text === "") fail("empty");
  let v: JsonValue;
  try {
    v = parseStrictJson(text, 8);
  } catch (e) {
    if (isPortcullisError(e) && e.code === "PC_API_DUPLICATE_KEY") return fail(`duplicate key ${e.detail ?? ""}`.trim());
    return fail(`not JSON${isPortcullisError(e) && e.detail !== undefined ? ` (${e.detail})` : ""}`);
  }
  if (!isObject(v)) return fail("not a JSON object");
  try {
    if (v.Type !== undefined || v.Action !== undefined || v.Actor !== undefined) return fromDockerLine(text, v);
    if (v.source !== undefined) return fromRecorded(v);
  } catch (e) {
    if (e instanceof LineError) return fail(e.message);
    throw e;
  }
  return fail("neither a Docker event (Type, Action, Actor, timeNano) nor a recorded event (id, source, type, action, ...)");
}

/**
 * Every event of a recorded events text, one per line; blank lines are skipped, line
 * numbers count them. At most RECORDED_EVENT_LIMITS.events events.
 */
export function parseRecordedEvents(text: string): MonitorEvent[] {
  const out: MonitorEvent[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, "");
    if (line.trim() === "") continue;
    if (out.length >= RECORDED_EVENT_LIMITS.events) {
      throw pcError("PC_MONITOR_EVENTS_INVALID", `line ${i + 1}: more than ${RECORDED_EVENT_LIMITS.events} events`);
    }
    out.push(parseRecordedEvent(line, i + 1));
  }
  return out;
}
