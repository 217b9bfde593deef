/**
 * Judging a scan result by a namespace's scan policy: which findings block, whether the
 * database is recent enough, whether an image without packages passes, and a summary
 * (counts per severity, the inventory, the database) for the decision record.
 *
 * - A finding blocks when its level is at or above `maxSeverity`
 *   (none < low < medium < high < critical). A finding of unknown severity is judged as
 *   `unknownSeverity` (default critical: unknown blocks, fail closed).
 * - `ignoreUnfixed`: a finding no fixed version is known for does not block.
 * - `maxDatabaseAgeMs`: the database's newest record must be at most this old at `now`;
 *   a database whose age is unknown counts as too old.
 * - An empty inventory (no package found) is refused unless `allowEmptyInventory`: a
 *   scanner that found nothing to judge has not shown the image is clean.
 *
 * Pure: no clock, no I/O.
 */
import { SEVERITY_LEVELS, severityCounts, type FindingSeverityLevel, type ScanFinding, type ScanResult } from "./scanner.js";

export const SEVERITY_THRESHOLDS = ["critical", "high", "medium", "low", "none"] as const;
export type SeverityThreshold = (typeof SEVERITY_THRESHOLDS)[number];

const RANK: Readonly<Record<SeverityThreshold, number>> = { none: 0, low: 1, medium: 2, high: 3, critical: 4 };

export interface ScanPolicy {
  readonly maxSeverity: SeverityThreshold;
  readonly unknownSeverity: SeverityThreshold;
  readonly ignoreUnfixed: boolean;
  readonly maxDatabaseAgeMs?: number;
  readonly allowEmptyInventory: boolean;
}

export const DEFAULT_SCAN_POLICY: ScanPolicy = Object.freeze({
  maxSeverity: "high",
  unknownSeverity: "critical",
  ignoreUnfixed: false,
  allowEmptyInventory: false,
});

export interface DatabaseAge {
  /** Milliseconds between the database's newest record and `now`; undefined when unknown. */
  readonly ageMs?: number;
  readonly tooOld: boolean;
}

export interface ScanVerdict {
  /** The findings that block, in the result's order. */
  readonly blocking: readonly ScanFinding[];
  /** Findings below the threshold, and unfixed ones ignored by `ignoreUnfixed`. */
  readonly below: number;
  readonly ignoredUnfixed: number;
  readonly counts: Readonly<Record<FindingSeverityLevel, number>>;
  readonly emptyInventory: boolean;
  /** Present when the policy bounds the database's age. */
  readonly databaseAge?: DatabaseAge;
  /** One line for the decision record. */
  readonly summary: string;
}

/** The level a finding is judged at. */
export function judgedLevel(f: ScanFinding, policy: Pick<ScanPolicy, "unknownSeverity">): SeverityThreshold {
  return f.severity.level === "unknown" ? policy.unknownSeverity : f.severity.level;
}

export function judgeScan(result: ScanResult, policy: ScanPolicy, now: Date): ScanVerdict {
  const blocking: ScanFinding[] = [];
  let below = 0;
  let ignoredUnfixed = 0;
  for (const f of result.findings) {
    if (RANK[judgedLevel(f, policy)] < RANK[policy.maxSeverity]) below++;
    else if (policy.ignoreUnfixed && (f.fixed === undefined || f.fixed === "")) ignoredUnfixed++;
    else blocking.push(f);
  }
  const counts = severityCounts(result.findings);
  const databaseAge = policy.maxDatabaseAgeMs === undefined ? undefined : databaseAgeOf(result, policy.maxDatabaseAgeMs, now);
  const emptyInventory = result.inventory.total === 0;
  return {
    blocking,
    below,
    ignoredUnfixed,
    counts,
    emptyInventory,
    ...(databaseAge !== undefined ? { databaseAge } : {}),
    summary: summaryLine(result, counts, blocking.length, policy, ignoredUnfixed),
  };
}

/** The age of the result's database at `now`, against a bound; unknown counts as too old. */
export function databaseAgeOf(result: Pick<ScanResult, "database">, maxMs: number, now: Date): DatabaseAge {
  const built = result.database.builtAt === undefined ? Number.NaN : Date.parse(result.database.builtAt);
  if (!Number.isFinite(built)) return { tooOld: true };
  const ageMs = Math.max(0, now.getTime() - built);
  return { ageMs, tooOld: ageMs > maxMs };
}

function summaryLine(
  result: ScanResult,
  counts: Readonly<Record<FindingSeverityLevel, number>>,
  blocking: number,
  policy: ScanPolicy,
  ignoredUnfixed: number,
): string {
  const inv = result.inventory;
  const ecosystems = Object.entries(inv.packages)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([e, n]) => `${e} ${n}`)
    .join(", ");
  const db = result.database;
  const severities = SEVERITY_LEVELS.map((l) => `${counts[l]} ${l}`).join(", ");
  return [
    `${result.imageId} scanned by ${result.scanner}`,
    `${inv.total} package(s)${ecosystems !== "" ? ` (${ecosystems})` : ""}${inv.os !== undefined ? ` on ${inv.os}` : ""}`,
    `${result.findings.length} finding(s): ${severities}`,
    `${blocking} at or above ${policy.maxSeverity}${ignoredUnfixed > 0 ? `, ${ignoredUnfixed} unfixed ignored` : ""}`,
    `database ${db.version}${db.builtAt !== undefined ? ` built ${db.builtAt}` : ""}`,
  ].join("; ");
}

/**
 * A blocking finding as a violation's detail. It names the id and every alias (a waiver
 * for any of them matches), the package, the installed and fixed versions, the severity
 * and the file the package was read from.
 */
export function findingDetail(f: ScanFinding, policy: Pick<ScanPolicy, "maxSeverity" | "unknownSeverity">): string {
  const ids = f.aliases.length > 0 ? `${f.id} (${f.aliases.join(", ")})` : f.id;
  const installedAs = f.installedPackage !== undefined ? ` installed as ${f.installedPackage}` : "";
  const severity =
    f.severity.level === "unknown"
      ? `severity unknown (judged ${policy.unknownSeverity})`
      : `severity ${f.severity.level}${f.severity.score !== undefined ? ` ${f.severity.score.toFixed(1)}` : ""}`;
  const fixed = f.fixed !== undefined && f.fixed !== "" ? `fixed in ${f.fixed}` : "no fixed version";
  const from = f.sourceFile !== "" ? `, from ${f.sourceFile}` : "";
  return `${ids} in ${f.ecosystem} package ${f.package} ${f.installed}${installedAs}${from}: ${severity}, at or above ${policy.maxSeverity}; ${fixed}`;
}
