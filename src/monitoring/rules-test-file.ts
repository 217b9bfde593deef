/**
 * The test files of `monitoring rules test` (strict YAML; the format is described in
 * rules-test.ts): parsed and checked whole, every problem refused together as
 * PC_MONITOR_TEST_INVALID with its line and field path.
 */
import { formatPath, isPlainMap, isPortcullisError, issueCollector, namedCases, pcError, readStrictYaml, type Bad, type FieldPath } from "../core/index.js";
import { parseRecordedEvent } from "./event-ids.js";
import { ACTIONS, SEVERITIES, type ActionName, type MonitorEvent, type Severity, type StatsSample } from "./types.js";

export const MAX_MONITORING_TEST_BYTES = 1024 * 1024;
const MAX_CASES = 500;
const MAX_ITEMS = 10_000;

export interface MonitoringTestIssue {
  readonly line: number;
  readonly field: string;
  readonly reason: string;
}

export interface ExpectedHit {
  readonly rule: string;
  readonly severity?: Severity;
  /** Normalised as rules are: "alert" first. */
  readonly actions?: readonly ActionName[];
}

export interface MonitoringTestCase {
  readonly name: string;
  readonly line: number;
  readonly container?: TestContainer;
  readonly events: readonly MonitorEvent[];
  readonly samples: readonly StatsSample[];
  readonly states: readonly { readonly at: number; readonly status: string; readonly health: string | undefined }[];
  readonly expect: readonly ExpectedHit[];
}

export interface TestContainer {
  readonly managed: boolean;
  readonly namespace?: string;
  readonly deployment?: string;
  readonly name?: string;
  readonly node?: string;
  readonly requester?: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface MonitoringTestFile {
  /** The rules path as written (relative to the test file). */
  readonly rules?: string;
  readonly cases: readonly MonitoringTestCase[];
}


const TOP = ["rules", "cases"];
const CASE = ["name", "container", "events", "samples", "states", "expect"];
const CONTAINER = ["managed", "namespace", "deployment", "name", "node", "requester", "labels"];
const SAMPLE_NUMBERS = ["cpuPercent", "memoryBytes", "memoryLimitBytes", "memoryPercent", "pids", "netRxBytes", "netTxBytes"] as const;
const SAMPLE_STRINGS = ["node", "containerId", "containerName", "namespace", "deployment"] as const;
const SAMPLE = ["at", ...SAMPLE_NUMBERS, ...SAMPLE_STRINGS];
const STATE = ["at", "status", "health"];
const EXPECT = ["rule", "severity", "actions"];
const TEXT = (v: unknown, max = 253): v is string => typeof v === "string" && v !== "" && v.length <= max;

function invalid(issues: readonly MonitoringTestIssue[]) {
  const sorted = [...issues].sort((a, b) => a.line - b.line);
  const listed = sorted.slice(0, 50).map((i) => `line ${i.line}${i.field ? ` (${i.field})` : ""}: ${i.reason}`);
  if (sorted.length > 50) listed.push(`and ${sorted.length - 50} more`);
  return pcError("PC_MONITOR_TEST_INVALID", listed.join("; "), sorted);
}

/** Parses and checks a test file; throws PC_MONITOR_TEST_INVALID listing every problem. */
export function parseMonitoringTestFile(yamlText: string): MonitoringTestFile {
  if (typeof yamlText !== "string") throw pcError("PC_MONITOR_TEST_INVALID", "the test file is not text");
  if (Buffer.byteLength(yamlText, "utf8") > MAX_MONITORING_TEST_BYTES) {
    throw pcError("PC_MONITOR_TEST_INVALID", `the test file is larger than ${MAX_MONITORING_TEST_BYTES} bytes`);
  }
  const read = readStrictYaml(yamlText);
  if (!read.ok) throw invalid(read.issues.map((i) => ({ line: i.line, field: formatPath(i.path), reason: i.reason })));
  const { doc } = read;
  const { issues, bad, keys } = issueCollector(doc);
  const root = doc.value;
  if (!isPlainMap(root)) throw invalid([{ line: doc.lineOf([]), field: "", reason: "the file must be a map with a `cases` list" }]);
  keys(root, [], TOP);
  let rules: string | undefined;
  if (root.rules !== undefined) {
    if (!TEXT(root.rules, 4096)) bad(["rules"], "must be the path of a rules file");
    else rules = root.rules;
  }
  const cases = namedCases(root.cases, bad, (c, path) => parseCase(c, path, bad, keys, doc.lineOf), MAX_CASES);
  if (issues.length > 0) throw invalid(issues);
  return { ...(rules !== undefined ? { rules } : {}), cases };
}

function parseCase(
  c: unknown,
  path: FieldPath,
  bad: Bad,
  keys: (v: Record<string, unknown>, path: FieldPath, allowed: readonly string[]) => void,
  lineOf: (path: FieldPath) => number,
): MonitoringTestCase | undefined {
  if (!isPlainMap(c)) return bad(path, "must be a map with name, events (or samples, states) and expect");
  keys(c, path, CASE);
  const at = (k: string): FieldPath => [...path, k];
  let ok = true;
  const fail: Bad = (p, reason) => {
    ok = false;
    return bad(p, reason);
  };
  const name = typeof c.name === "string" && c.name.trim() !== "" && c.name.length <= 200 ? c.name : fail(at("name"), "is required: a non-empty string of at most 200 characters");
  const container = c.container === undefined ? undefined : parseContainer(c.container, at("container"), fail, keys);
  const list = (k: "events" | "samples" | "states"): unknown[] => {
    const v = c[k];
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      fail(at(k), "must be a list");
      return [];
    }
    if (v.length > MAX_ITEMS) {
      fail(at(k), `holds ${v.length} entries; at most ${MAX_ITEMS}`);
      return [];
    }
    return v;
  };
  const events: MonitorEvent[] = [];
  list("events").forEach((e, i) => {
    const ev = parseTestEvent(e, [...path, "events", i], fail, lineOf);
    if (ev !== undefined) events.push(ev);
  });
  const samples: StatsSample[] = [];
  list("samples").forEach((s, i) => {
    const sample = parseSample(s, [...path, "samples", i], fail, keys, container);
    if (sample !== undefined) samples.push(sample);
  });
  const states: { at: number; status: string; health: string | undefined }[] = [];
  list("states").forEach((s, i) => {
    const p = [...path, "states", i];
    if (!isPlainMap(s)) return fail(p, "must be a map (at, status, health)");
    keys(s, p, STATE);
    const t = timeOf(s.at, [...p, "at"], fail);
    if (!TEXT(s.status, 64)) fail([...p, "status"], "is required: a container status such as running or restarting");
    if (s.health !== undefined && !TEXT(s.health, 64)) fail([...p, "health"], "must be a health such as healthy or unhealthy");
    if (t !== undefined && TEXT(s.status, 64)) states.push({ at: t, status: s.status, health: TEXT(s.health, 64) ? s.health : undefined });
    return undefined;
  });
  if (c.events === undefined && c.samples === undefined && c.states === undefined) fail(path, "must give events, samples or states");
  const expect: ExpectedHit[] = [];
  if (!Array.isArray(c.expect)) fail(at("expect"), "is required: the list of hits the case must raise, in order ([] for none)");
  else {
    c.expect.forEach((x: unknown, i: number) => {
      const p = [...path, "expect", i];
      if (!isPlainMap(x)) return fail(p, "must be a map (rule, severity, actions)");
      keys(x, p, EXPECT);
      if (!TEXT(x.rule, 63)) return fail([...p, "rule"], "is required: a rule name");
      let severity: Severity | undefined;
      if (x.severity !== undefined) {
        if ((SEVERITIES as readonly unknown[]).includes(x.severity)) severity = x.severity as Severity;
        else fail([...p, "severity"], `must be one of ${SEVERITIES.join(", ")}`);
      }
      let actions: ActionName[] | undefined;
      if (x.actions !== undefined) {
        if (!Array.isArray(x.actions) || !x.actions.every((a) => (ACTIONS as readonly unknown[]).includes(a))) fail([...p, "actions"], `must be a list of ${ACTIONS.join(", ")}`);
        else actions = ["alert", ...(x.actions as ActionName[]).filter((a) => a !== "alert")];
      }
      expect.push({ rule: x.rule, ...(severity !== undefined ? { severity } : {}), ...(actions !== undefined ? { actions } : {}) });
      return undefined;
    });
  }
  if (!ok || name === undefined) return undefined;
  return { name, line: lineOf(path), ...(container !== undefined ? { container } : {}), events, samples, states, expect };
}

function parseContainer(
  v: unknown,
  path: FieldPath,
  bad: Bad,
  keys: (v: Record<string, unknown>, path: FieldPath, allowed: readonly string[]) => void,
): TestContainer | undefined {
  if (!isPlainMap(v)) return bad(path, `must be a map (${CONTAINER.join(", ")})`);
  keys(v, path, CONTAINER);
  if (typeof v.managed !== "boolean") bad([...path, "managed"], "is required: true or false");
  for (const k of ["namespace", "deployment", "name", "node", "requester"]) if (v[k] !== undefined && !TEXT(v[k])) bad([...path, k], "must be a non-empty string");
  const labels: Record<string, string> = {};
  if (v.labels !== undefined) {
    if (!isPlainMap(v.labels)) bad([...path, "labels"], "must be a map of strings");
    else for (const [k, val] of Object.entries(v.labels)) if (typeof val === "string") labels[k] = val;
      else bad([...path, "labels", k], "must be a string");
  }
  if (typeof v.managed !== "boolean") return undefined;
  const opt = (k: string): string | undefined => (TEXT(v[k]) ? (v[k] as string) : undefined);
  const out: { -readonly [K in keyof TestContainer]: TestContainer[K] } = { managed: v.managed, labels };
  for (const k of ["namespace", "deployment", "name", "node", "requester"] as const) {
    const s = opt(k);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

/** A Docker event or a recorded event, as a map or a JSON line. */
function parseTestEvent(v: unknown, path: FieldPath, bad: Bad, lineOf: (path: FieldPath) => number): MonitorEvent | undefined {
  let line: string;
  if (typeof v === "string") line = v;
  else if (isPlainMap(v)) {
    // YAML reads a bare 19-digit timeNano as a number: keep it as the decimal string.
    const o = { ...v };
    if (typeof o.timeNano === "number" && Number.isInteger(o.timeNano) && o.timeNano >= 0) o.timeNano = BigInt(o.timeNano).toString();
    line = JSON.stringify(o);
  } else return bad(path, "must be an event: a map or a JSON line");
  try {
    return parseRecordedEvent(line, lineOf(path));
  } catch (e) {
    if (isPortcullisError(e) && e.code === "PC_MONITOR_EVENTS_INVALID") return bad(path, `not a Docker or recorded event: ${(e.detail ?? "").replace(/^line \d+: /, "")}`);
    throw e;
  }
}

/** Milliseconds since the epoch, or an ISO 8601 time. */
function timeOf(v: unknown, path: FieldPath, bad: Bad): number | undefined {
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v) && Number.isFinite(Date.parse(v))) return Date.parse(v);
  return bad(path, "is required: milliseconds since the epoch or an ISO 8601 time");
}

function parseSample(
  v: unknown,
  path: FieldPath,
  bad: Bad,
  keys: (v: Record<string, unknown>, path: FieldPath, allowed: readonly string[]) => void,
  container: TestContainer | undefined,
): StatsSample | undefined {
  if (!isPlainMap(v)) return bad(path, "must be a map of StatsSample fields (at, memoryBytes, memoryLimitBytes, ...)");
  keys(v, path, SAMPLE);
  let ok = true;
  const at = timeOf(v.at, [...path, "at"], bad);
  const num: Partial<Record<(typeof SAMPLE_NUMBERS)[number], number>> = {};
  for (const k of SAMPLE_NUMBERS) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x !== "number" || !Number.isFinite(x) || x < 0) {
      ok = false;
      bad([...path, k], "must be a finite number, 0 or more");
    } else num[k] = x;
  }
  const str: Partial<Record<(typeof SAMPLE_STRINGS)[number], string>> = {};
  for (const k of SAMPLE_STRINGS) {
    const x = v[k];
    if (x === undefined) continue;
    if (typeof x !== "string" || x.length > 253) {
      ok = false;
      bad([...path, k], "must be a string");
    } else str[k] = x;
  }
  if (!ok || at === undefined) return undefined;
  const memoryBytes = num.memoryBytes ?? 0;
  const memoryLimitBytes = num.memoryLimitBytes ?? 0;
  return {
    node: str.node ?? container?.node ?? "local",
    containerId: str.containerId ?? "test-container",
    containerName: str.containerName ?? container?.name ?? "test-container",
    namespace: str.namespace ?? container?.namespace ?? "",
    deployment: str.deployment ?? container?.deployment ?? "",
    at,
    cpuPercent: num.cpuPercent,
    memoryBytes,
    memoryLimitBytes,
    memoryPercent: num.memoryPercent ?? (memoryLimitBytes > 0 ? (memoryBytes / memoryLimitBytes) * 100 : undefined),
    pids: num.pids ?? 0,
    netRxBytes: num.netRxBytes ?? 0,
    netTxBytes: num.netTxBytes ?? 0,
  };
}
