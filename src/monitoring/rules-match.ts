/**
 * The `match` of a monitoring rule (exactly one of event, stats, restarts, state), and
 * the field checks the rules file shares: closed maps, string maps, durations. Every
 * problem goes to `bad` with its field path; a part with a problem yields undefined.
 */
import { isPlainMap, parseDuration, type FieldPath } from "../core/index.js";
import { DERIVED_ACTIONS, GATEWAY_EVENT_TYPE, STATS_METRICS, type RuleMatch, type StatsMetric } from "./types.js";

export type Bad = (path: FieldPath, reason: string) => undefined;

export const DAY_MS = 24 * 3_600_000;
/** Entries of a list or map in a rule. */
export const MAX_LIST = 64;
/** Docker label keys are free-form; keep them printable and bounded. */
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,252}$/;
const MAX_VALUE = 1024;
const PLAIN_WORD = /^[a-z][a-z0-9_]{0,63}$/;

/** The event types of Docker's API 1.41, and the gateway's own. */
export const EVENT_TYPES = ["container", "image", "network", "volume", "daemon", "plugin", "service", "node", "secret", "config", GATEWAY_EVENT_TYPE] as const;
/** Docker's container actions (API 1.41): a container rule naming another is a typo. */
export const CONTAINER_ACTIONS = [
  "attach", "commit", "copy", "create", "destroy", "detach", "die", "exec_create", "exec_detach", "exec_die", "exec_start", "export",
  "health_status", "kill", "oom", "pause", "rename", "resize", "restart", "start", "stop", "top", "unpause", "update", "prune",
] as const;
/** What `docker ps` reports as State, and the health of a container with a healthcheck. */
export const CONTAINER_STATES = ["created", "running", "paused", "restarting", "removing", "exited", "dead"] as const;
export const HEALTH_STATES = ["starting", "healthy", "unhealthy"] as const;
/** Metrics in percent: thresholds 0..1000 (a multi-core container can pass 100% CPU). */
export const PERCENT_METRICS: readonly StatsMetric[] = ["cpu_percent", "memory_percent"];

/** A closed map: unknown fields and missing required ones are problems. */
export function fields(v: unknown, path: FieldPath, allowed: readonly string[], required: readonly string[], bad: Bad): Record<string, unknown> | undefined {
  if (!isPlainMap(v)) return bad(path, `must be a map (${allowed.join(", ")})`);
  for (const k of Object.keys(v)) if (!allowed.includes(k)) bad([...path, k], `unknown field (allowed: ${allowed.join(", ")})`);
  for (const k of required) if (v[k] === undefined || v[k] === null) bad([...path, k], "is required");
  return v;
}

/** A map of label or attribute names to string values. */
export function parseStringMap(v: unknown, path: FieldPath, bad: Bad, what: "label" | "attribute"): Record<string, string> | undefined {
  if (!isPlainMap(v)) return bad(path, `must be a map of ${what} names to string values`);
  const entries = Object.entries(v);
  if (entries.length > MAX_LIST) return bad(path, `holds ${entries.length} entries; at most ${MAX_LIST}`);
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, val] of entries) {
    if (!LABEL_KEY.test(k)) {
      ok = false;
      bad([...path, k], `must be a ${what} name: letters, digits, '.', '_', '/' and '-', at most 253`);
    } else if (typeof val !== "string") {
      ok = false;
      bad([...path, k], "must be a string (quote numbers and booleans)");
    } else if (val.length > MAX_VALUE) {
      ok = false;
      bad([...path, k], `is longer than ${MAX_VALUE} characters`);
    } else out[k] = val;
  }
  return ok ? out : undefined;
}

const MATCH_KINDS = ["event", "stats", "restarts", "state"] as const;

export function parseMatch(v: unknown, path: FieldPath, bad: Bad): RuleMatch | undefined {
  const m = fields(v, path, MATCH_KINDS, [], bad);
  if (m === undefined) return undefined;
  const given = MATCH_KINDS.filter((k) => m[k] !== undefined);
  if (given.length !== 1) {
    if (Object.keys(m).every((k) => (MATCH_KINDS as readonly string[]).includes(k))) {
      bad(path, given.length === 0 ? `must hold exactly one of ${MATCH_KINDS.join(", ")}` : `holds ${given.join(" and ")}; exactly one of ${MATCH_KINDS.join(", ")}`);
    }
    return undefined;
  }
  const kind = given[0] as (typeof MATCH_KINDS)[number];
  const at: FieldPath = [...path, kind];
  switch (kind) {
    case "event":
      return parseEventMatch(m.event, at, bad);
    case "stats":
      return parseStatsMatch(m.stats, at, bad);
    case "restarts":
      return parseRestartsMatch(m.restarts, at, bad);
    case "state":
      return parseStateMatch(m.state, at, bad);
  }
}

function parseEventMatch(v: unknown, path: FieldPath, bad: Bad): RuleMatch | undefined {
  const e = fields(v, path, ["type", "actions", "attributes"], ["type", "actions"], bad);
  if (e === undefined) return undefined;
  let ok = !Object.keys(e).some((k) => !["type", "actions", "attributes"].includes(k)) && e.type !== undefined && e.actions !== undefined;
  const fail: Bad = (p, reason) => {
    ok = false;
    return bad(p, reason);
  };
  let type: string | undefined;
  if (e.type !== undefined && e.type !== null) {
    if (typeof e.type === "string" && (EVENT_TYPES as readonly string[]).includes(e.type)) type = e.type;
    else fail([...path, "type"], `unknown event type ${JSON.stringify(e.type)} (one of ${EVENT_TYPES.join(", ")})`);
  }
  const known: readonly string[] | undefined =
    type === "container" ? CONTAINER_ACTIONS : type === GATEWAY_EVENT_TYPE ? Object.values(DERIVED_ACTIONS) : undefined;
  const actions: string[] = [];
  if (e.actions !== undefined && e.actions !== null) {
    if (!Array.isArray(e.actions) || e.actions.length === 0 || e.actions.length > MAX_LIST) fail([...path, "actions"], `must be a list of 1 to ${MAX_LIST} event actions`);
    else {
      e.actions.forEach((a: unknown, i: number) => {
        const p = [...path, "actions", i];
        if (typeof a !== "string" || !PLAIN_WORD.test(a)) fail(p, "must be an event action (lower-case letters, digits and '_'), without the engine's detail");
        else if (known !== undefined && !known.includes(a)) fail(p, `unknown ${type} action ${JSON.stringify(a)} (one of ${known.join(", ")})`);
        else if (actions.includes(a)) fail(p, `repeats ${JSON.stringify(a)}`);
        else actions.push(a);
      });
    }
  }
  let attributes: Record<string, string> = {};
  if (e.attributes !== undefined && e.attributes !== null) {
    const parsed = parseStringMap(e.attributes, [...path, "attributes"], fail, "attribute");
    if (parsed !== undefined) attributes = parsed;
  }
  if (!ok || type === undefined) return undefined;
  return { kind: "event", type, actions, attributes };
}

function parseStatsMatch(v: unknown, path: FieldPath, bad: Bad): RuleMatch | undefined {
  const s = fields(v, path, ["metric", "above", "for"], ["metric", "above"], bad);
  if (s === undefined) return undefined;
  let ok = !Object.keys(s).some((k) => !["metric", "above", "for"].includes(k)) && s.metric !== undefined && s.above !== undefined;
  const fail: Bad = (p, reason) => {
    ok = false;
    return bad(p, reason);
  };
  let metric: StatsMetric | undefined;
  if (s.metric !== undefined && s.metric !== null) {
    if ((STATS_METRICS as readonly unknown[]).includes(s.metric)) metric = s.metric as StatsMetric;
    else fail([...path, "metric"], `unknown metric ${JSON.stringify(s.metric)} (one of ${STATS_METRICS.join(", ")})`);
  }
  let above: number | undefined;
  if (s.above !== undefined && s.above !== null) {
    const max = metric !== undefined && PERCENT_METRICS.includes(metric) ? 1000 : Number.MAX_SAFE_INTEGER;
    if (typeof s.above !== "number" || !Number.isFinite(s.above)) fail([...path, "above"], "must be a finite number");
    else if (s.above < 0 || s.above > max) fail([...path, "above"], max === 1000 ? "must be from 0 to 1000 (percent)" : `must be from 0 to ${max}`);
    else above = s.above;
  }
  const forMs = s.for === undefined ? 0 : durationOf(s.for, [...path, "for"], 0, DAY_MS, fail);
  if (!ok || metric === undefined || above === undefined || forMs === undefined) return undefined;
  return { kind: "stats", metric, above, forMs };
}

function parseRestartsMatch(v: unknown, path: FieldPath, bad: Bad): RuleMatch | undefined {
  const r = fields(v, path, ["count", "within"], ["count", "within"], bad);
  if (r === undefined) return undefined;
  let ok = !Object.keys(r).some((k) => !["count", "within"].includes(k)) && r.count !== undefined && r.within !== undefined;
  const fail: Bad = (p, reason) => {
    ok = false;
    return bad(p, reason);
  };
  let count: number | undefined;
  if (r.count !== undefined && r.count !== null) {
    if (typeof r.count !== "number" || !Number.isInteger(r.count) || r.count < 1 || r.count > 1000) fail([...path, "count"], "must be a whole number from 1 to 1000");
    else count = r.count;
  }
  const withinMs = r.within === undefined || r.within === null ? undefined : durationOf(r.within, [...path, "within"], 1_000, DAY_MS, fail);
  if (!ok || count === undefined || withinMs === undefined) return undefined;
  return { kind: "restarts", count, withinMs };
}

function parseStateMatch(v: unknown, path: FieldPath, bad: Bad): RuleMatch | undefined {
  const s = fields(v, path, ["status", "health", "for"], [], bad);
  if (s === undefined) return undefined;
  let ok = !Object.keys(s).some((k) => !["status", "health", "for"].includes(k));
  const fail: Bad = (p, reason) => {
    ok = false;
    return bad(p, reason);
  };
  const list = (key: "status" | "health", known: readonly string[]): string[] => {
    const out: string[] = [];
    const val = s[key];
    if (val === undefined || val === null) return out;
    if (!Array.isArray(val) || val.length === 0) {
      fail([...path, key], `must be a non-empty list (of ${known.join(", ")})`);
      return out;
    }
    val.forEach((x: unknown, i: number) => {
      if (typeof x !== "string" || !known.includes(x)) fail([...path, key, i], `unknown ${key} ${JSON.stringify(x)} (one of ${known.join(", ")})`);
      else if (out.includes(x)) fail([...path, key, i], `repeats ${JSON.stringify(x)}`);
      else out.push(x);
    });
    return out;
  };
  const status = list("status", CONTAINER_STATES);
  const health = list("health", HEALTH_STATES);
  if (ok && status.length === 0 && health.length === 0) fail(path, "must name a status, a health, or both");
  const forMs = s.for === undefined ? 0 : durationOf(s.for, [...path, "for"], 0, DAY_MS, fail);
  if (!ok || forMs === undefined) return undefined;
  return { kind: "state", status, health, forMs };
}

/** A duration (`0s`, `90s`, `15m`, `24h`) within [minMs, maxMs]. */
export function durationOf(v: unknown, path: FieldPath, minMs: number, maxMs: number, bad: Bad): number | undefined {
  const range = `from ${minMs === 0 ? "0s" : "1s"} to 24h`;
  if (typeof v !== "string") return bad(path, `must be a duration such as 30s, 5m or 1h (${range})`);
  let ms: number;
  if (/^0(s|m|h|d)$/.test(v)) ms = 0;
  else {
    try {
      ms = parseDuration(v);
    } catch {
      return bad(path, `must be a duration such as 30s, 5m or 1h (${range})`);
    }
  }
  if (ms < minMs || ms > maxMs) return bad(path, `is out of bounds (${range})`);
  return ms;
}
