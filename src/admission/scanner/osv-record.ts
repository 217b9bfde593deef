/**
 * One OSV record (OSV schema 1.x, https://ossf.github.io/osv-schema/) as osv.dev exports
 * it, validated strictly at the scanner's edge:
 *
 * - every field the schema defines must have its type: strings, string arrays, objects;
 *   `modified`, `published` and `withdrawn` are RFC 3339 timestamps;
 * - `affected` is required (it may be empty); each entry names `package.ecosystem` and
 *   `package.name`; ranges are `ECOSYSTEM`, `SEMVER` or `GIT` (a GIT range needs `repo`);
 *   each event has exactly one of `introduced`, `fixed`, `last_affected`, `limit`, and
 *   each range has at least one `introduced` (without one it could never match, and a
 *   record that silently matches nothing is how vulnerabilities get missed);
 * - a `CVSS_V3` severity must be a valid CVSS v3.0/v3.1 vector; other severity types
 *   (`CVSS_V2`, `CVSS_V4`, `Ubuntu`, future ones) only need a string score;
 * - fields the schema does not define are tolerated, because osv.dev adds some
 *   (`upstream`, for example, arrived in 1.7) before every reader knows them.
 *
 * Every refusal is a ScanInputError (reason `osv_invalid`) naming the JSON path.
 */
import { parseStrictJson } from "../../core/index.js";
import { parseCvssV3 } from "./cvss.js";
import { ScanInputError, quote } from "./errors.js";

export type OsvRangeType = "ECOSYSTEM" | "SEMVER" | "GIT";

export type OsvEvent =
  | { readonly introduced: string }
  | { readonly fixed: string }
  | { readonly last_affected: string }
  | { readonly limit: string };

export interface OsvRange {
  readonly type: OsvRangeType;
  readonly repo?: string;
  readonly events: readonly OsvEvent[];
  readonly database_specific?: Readonly<Record<string, unknown>>;
}

export interface OsvSeverityEntry {
  readonly type: string;
  readonly score: string;
}

export interface OsvAffected {
  readonly package: { readonly ecosystem: string; readonly name: string; readonly purl?: string };
  readonly severity?: readonly OsvSeverityEntry[];
  readonly ranges?: readonly OsvRange[];
  readonly versions?: readonly string[];
  readonly ecosystem_specific?: Readonly<Record<string, unknown>>;
  readonly database_specific?: Readonly<Record<string, unknown>>;
}

export interface OsvRecord {
  readonly schema_version?: string;
  readonly id: string;
  readonly modified: string;
  readonly published?: string;
  readonly withdrawn?: string;
  readonly aliases?: readonly string[];
  readonly upstream?: readonly string[];
  readonly related?: readonly string[];
  readonly summary?: string;
  readonly details?: string;
  readonly severity?: readonly OsvSeverityEntry[];
  readonly affected: readonly OsvAffected[];
  readonly references?: readonly { readonly type: string; readonly url: string }[];
  readonly credits?: readonly { readonly name: string; readonly contact?: readonly string[]; readonly type?: string }[];
  readonly database_specific?: Readonly<Record<string, unknown>>;
}

export const EVENT_KINDS = ["introduced", "fixed", "last_affected", "limit"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const RANGE_TYPES: readonly string[] = ["ECOSYSTEM", "SEMVER", "GIT"];
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
/** Longest record text (in UTF-16 code units) parseOsvRecordJson reads; osv.dev records are far smaller. */
export const MAX_OSV_RECORD_CHARS = 16 * 1024 * 1024;

type Obj = Record<string, unknown>;

function fail(path: string, message: string): never {
  throw new ScanInputError("osv_invalid", path, message);
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function wrongType(v: unknown, path: string, expected: string): never {
  if (v === undefined) fail(path, `is required (${expected})`);
  fail(path, `must be ${expected}, not ${kind(v)}`);
}

function object(v: unknown, path: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) wrongType(v, path, "an object");
  return v as Obj;
}

function string(v: unknown, path: string, nonEmpty = true): string {
  if (typeof v !== "string") wrongType(v, path, "a string");
  if (nonEmpty && v.length === 0) fail(path, "must not be empty");
  return v;
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) wrongType(v, path, "an array");
  return v;
}

function has(o: Obj, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function optional<T>(o: Obj, key: string, path: string, check: (v: unknown, p: string) => T): void {
  if (has(o, key)) check(o[key], `${path}.${key}`);
}

function strings(v: unknown, path: string): void {
  array(v, path).forEach((s, i) => string(s, `${path}[${i}]`, false));
}

function timestamp(v: unknown, path: string): void {
  const s = string(v, path);
  if (!RFC3339.test(s) || Number.isNaN(Date.parse(s))) fail(path, `must be an RFC 3339 timestamp, not ${quote(s)}`);
}

function severities(v: unknown, path: string): void {
  array(v, path).forEach((entry, i) => {
    const p = `${path}[${i}]`;
    const o = object(entry, p);
    const type = string(o.type, `${p}.type`);
    const score = string(o.score, `${p}.score`);
    if (type === "CVSS_V3") {
      try {
        parseCvssV3(score, `${p}.score`);
      } catch (e) {
        if (!(e instanceof ScanInputError)) throw e;
        fail(e.path, e.message.slice(e.path.length + 2));
      }
    }
  });
}

function event(v: unknown, path: string): EventKind {
  const o = object(v, path);
  const kinds = EVENT_KINDS.filter((k) => has(o, k));
  if (kinds.length !== 1) {
    fail(path, `must have exactly one of ${EVENT_KINDS.join(", ")}${kinds.length > 1 ? `, not ${kinds.join(" and ")}` : ""}`);
  }
  const k = kinds[0] as EventKind;
  string(o[k], `${path}.${k}`);
  return k;
}

function range(v: unknown, path: string): void {
  const o = object(v, path);
  const type = string(o.type, `${path}.type`);
  if (!RANGE_TYPES.includes(type)) fail(`${path}.type`, `must be one of ${RANGE_TYPES.join(", ")}, not ${quote(type)}`);
  if (type === "GIT") string(o.repo, `${path}.repo`);
  else optional(o, "repo", path, string);
  const events = array(o.events, `${path}.events`);
  const kinds = events.map((e, i) => event(e, `${path}.events[${i}]`));
  if (!kinds.includes("introduced")) fail(`${path}.events`, "must contain at least one introduced event");
  optional(o, "database_specific", path, object);
}

function affected(v: unknown, path: string): void {
  const o = object(v, path);
  const pkg = object(o.package, `${path}.package`);
  string(pkg.ecosystem, `${path}.package.ecosystem`);
  string(pkg.name, `${path}.package.name`);
  optional(pkg, "purl", `${path}.package`, string);
  optional(o, "severity", path, severities);
  if (has(o, "ranges")) array(o.ranges, `${path}.ranges`).forEach((r, i) => range(r, `${path}.ranges[${i}]`));
  optional(o, "versions", path, strings);
  optional(o, "ecosystem_specific", path, object);
  optional(o, "database_specific", path, object);
}

/** Validates one parsed OSV record and returns it typed; throws ScanInputError with the JSON path. */
export function validateOsvRecord(value: unknown): OsvRecord {
  const o = object(value, "$");
  string(o.id, "$.id");
  timestamp(o.modified, "$.modified");
  optional(o, "schema_version", "$", string);
  optional(o, "published", "$", timestamp);
  optional(o, "withdrawn", "$", timestamp);
  for (const key of ["aliases", "upstream", "related"]) optional(o, key, "$", strings);
  optional(o, "summary", "$", (s, p) => string(s, p, false));
  optional(o, "details", "$", (s, p) => string(s, p, false));
  optional(o, "severity", "$", severities);
  array(o.affected, "$.affected").forEach((a, i) => affected(a, `$.affected[${i}]`));
  if (has(o, "references")) {
    array(o.references, "$.references").forEach((r, i) => {
      const ro = object(r, `$.references[${i}]`);
      string(ro.type, `$.references[${i}].type`);
      string(ro.url, `$.references[${i}].url`);
    });
  }
  if (has(o, "credits")) {
    array(o.credits, "$.credits").forEach((c, i) => {
      const co = object(c, `$.credits[${i}]`);
      string(co.name, `$.credits[${i}].name`);
      optional(co, "contact", `$.credits[${i}]`, strings);
      optional(co, "type", `$.credits[${i}]`, string);
    });
  }
  optional(o, "database_specific", "$", object);
  return value as OsvRecord;
}

/** Parses record text strictly (duplicate keys refused, size bounded) and validates it. */
export function parseOsvRecordJson(text: string): OsvRecord {
  if (text.length > MAX_OSV_RECORD_CHARS) fail("$", `record is longer than ${MAX_OSV_RECORD_CHARS} characters`);
  let value: unknown;
  try {
    value = parseStrictJson(text);
  } catch (e) {
    fail("$", `not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return validateOsvRecord(value);
}
