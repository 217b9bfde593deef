/**
 * Whether a package version is affected by an OSV record, with OSV's own semantics
 * (schema "Evaluation"): a version is affected if an `affected` entry for its package
 * lists it in `versions` or places it inside one of its `ranges`.
 *
 * - A range's events are sorted by the range's version order (`introduced: "0"` first);
 *   walking them, `introduced` (inclusive) opens an affected span, `fixed` (exclusive)
 *   and `last_affected` (inclusive) close it. With `limit` events, only versions below
 *   some limit are considered (`"*"` is infinity). Events of equal version keep their
 *   order in the record.
 * - `ECOSYSTEM` ranges use the package ecosystem's order, `SEMVER` ranges SemVer 2.0;
 *   `GIT` ranges name commits, which an installed package does not have: they are skipped.
 * - The package matches on ecosystem and name. A record entry without a release suffix
 *   (`Debian`) applies to every release (`Debian:12`); a query without one matches every
 *   release's entry. PyPI names compare in their PEP 503 normal form.
 * - A withdrawn record affects nothing.
 *
 * The installed version is validated first. An event of a matching entry that cannot be
 * read in its order makes the question unanswerable: ScanInputError names its JSON path
 * rather than guessing "not affected". A `versions` entry that cannot be read (osv.dev
 * lists some that predate their ecosystem's rules) still matches its exact string.
 */
import { ScanInputError } from "./errors.js";
import { EVENT_KINDS, type EventKind, type OsvAffected, type OsvRange, type OsvRecord } from "./osv-record.js";
import { compareParsed, ecosystemFamily, parseVersion, type Ecosystem, type ParsedVersion } from "./versions/index.js";

export interface AffectedResult {
  readonly affected: boolean;
  /**
   * When affected: the smallest version named by a `fixed` event of the matching entries
   * that is newer than the installed one and itself not affected by the record.
   */
  readonly fixed?: string;
}

interface SortedEvent {
  readonly kind: EventKind;
  readonly text: string;
  /** undefined for `introduced: "0"` and `limit: "*"`. */
  readonly version: ParsedVersion | undefined;
}

/** PEP 503: lower case, runs of `-`, `_` and `.` become one `-`. */
export function normalizePypiName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

function ecosystemMatches(entry: string, query: string): boolean {
  if (entry === query) return true;
  const [eBase, eRelease] = splitEcosystem(entry);
  const [qBase, qRelease] = splitEcosystem(query);
  return eBase === qBase && (eRelease === undefined || qRelease === undefined);
}

function splitEcosystem(name: string): [string, string | undefined] {
  const colon = name.indexOf(":");
  return colon < 0 ? [name, undefined] : [name.slice(0, colon), name.slice(colon + 1)];
}

function packageMatches(entry: OsvAffected, ecosystem: string, family: Ecosystem, name: string): boolean {
  if (!ecosystemMatches(entry.package.ecosystem, ecosystem)) return false;
  if (family === "PyPI") return normalizePypiName(entry.package.name) === normalizePypiName(name);
  return entry.package.name === name;
}

function eventOf(e: Record<string, string>): { kind: EventKind; text: string } {
  const kind = EVENT_KINDS.find((k) => Object.prototype.hasOwnProperty.call(e, k)) as EventKind;
  return { kind, text: e[kind] as string };
}

function sortedEvents(range: OsvRange, family: Ecosystem, path: string): SortedEvent[] {
  const order: Ecosystem = range.type === "SEMVER" ? "npm" : family;
  const events = range.events.map((raw, i) => {
    const { kind, text } = eventOf(raw as Record<string, string>);
    const special = (kind === "introduced" && text === "0") || (kind === "limit" && text === "*");
    const version = special ? undefined : parseVersion(order, text, `${path}.events[${i}].${kind}`);
    return { kind, text, version, index: i };
  });
  const rank = (e: (typeof events)[number]): number =>
    e.version !== undefined ? 0 : e.kind === "introduced" ? -1 : 1;
  events.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    if (ra !== 0 || rb !== 0) return ra - rb || a.index - b.index;
    return compareParsed(a.version as ParsedVersion, b.version as ParsedVersion) || a.index - b.index;
  });
  return events;
}

function inRange(v: ParsedVersion, events: readonly SortedEvent[]): boolean {
  const limits = events.filter((e) => e.kind === "limit");
  if (limits.length > 0 && !limits.some((e) => e.version === undefined || compareParsed(v, e.version) < 0)) return false;
  let vulnerable = false;
  for (const e of events) {
    const cmp = e.version === undefined ? 1 : compareParsed(v, e.version);
    if (e.kind === "introduced" && cmp >= 0) vulnerable = true;
    else if (e.kind === "fixed" && cmp >= 0) vulnerable = false;
    else if (e.kind === "last_affected" && cmp > 0) vulnerable = false;
  }
  return vulnerable;
}

function listed(v: ParsedVersion, versions: readonly string[], family: Ecosystem): boolean {
  for (const listedVersion of versions) {
    if (listedVersion === v.text) return true;
    let parsed: ParsedVersion;
    try {
      parsed = parseVersion(family, listedVersion);
    } catch {
      continue; // osv.dev enumerates some versions its ecosystem's parser never accepted
    }
    if (compareParsed(v, parsed) === 0) return true;
  }
  return false;
}

interface SortedRange {
  /** A SEMVER range orders versions as SemVer 2.0, whatever the package's ecosystem. */
  readonly semver: boolean;
  readonly events: readonly SortedEvent[];
}

interface Matcher {
  readonly family: Ecosystem;
  readonly entries: readonly { readonly entry: OsvAffected; readonly ranges: readonly SortedRange[] }[];
}

function matcherFor(record: OsvRecord, ecosystem: string, name: string): Matcher {
  const family = ecosystemFamily(ecosystem);
  const entries = record.affected.flatMap((entry, i) => {
    if (!packageMatches(entry, ecosystem, family, name)) return [];
    const ranges = (entry.ranges ?? []).flatMap((r, j) =>
      r.type === "GIT" ? [] : [{ semver: r.type === "SEMVER", events: sortedEvents(r, family, `$.affected[${i}].ranges[${j}]`) }],
    );
    return [{ entry, ranges }];
  });
  return { family, entries };
}

function isAffected(m: Matcher, v: ParsedVersion, semver: ParsedVersion | undefined): boolean {
  for (const { entry, ranges } of m.entries) {
    if (listed(v, entry.versions ?? [], m.family)) return true;
    for (const range of ranges) {
      const target = range.semver && m.family !== "npm" ? semver : v;
      if (target === undefined) {
        throw new ScanInputError("version_invalid", "version", `${JSON.stringify(v.text)} is not a semantic version, which a SEMVER range needs`);
      }
      if (inRange(target, range.events)) return true;
    }
  }
  return false;
}

function asSemver(text: string): ParsedVersion | undefined {
  try {
    return parseVersion("npm", text);
  } catch {
    return undefined;
  }
}

/**
 * Is `name` at `version`, in `ecosystem` (`Debian:12`, `Alpine:v3.18`, `npm`, `PyPI`),
 * affected by `record`? The record must have been validated (validateOsvRecord).
 */
export function affectedVersions(record: OsvRecord, ecosystem: string, name: string, version: string): AffectedResult {
  const family = ecosystemFamily(ecosystem);
  const v = parseVersion(family, version, "version");
  if (record.withdrawn !== undefined) return { affected: false };
  const m = matcherFor(record, ecosystem, name);
  if (!isAffected(m, v, asSemver(version))) return { affected: false };
  const candidates = m.entries
    .flatMap(({ ranges }) => ranges.flatMap((r) => r.events))
    .filter((e) => e.kind === "fixed" && e.version !== undefined && e.version.ecosystem === family)
    .map((e) => e.version as ParsedVersion)
    .filter((f) => compareParsed(f, v) > 0)
    .sort(compareParsed);
  const fix = candidates.find((f) => !isAffected(m, f, asSemver(f.text)));
  return fix === undefined ? { affected: true } : { affected: true, fixed: fix.text };
}
