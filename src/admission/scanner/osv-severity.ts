/**
 * The severity of an OSV record, from the best source it has:
 *
 * 1. a `CVSS_V3` vector (the record's `severity`, or an `affected[].severity`): its base
 *    score computed here (the highest, when there are several);
 * 2. else `database_specific.severity`, the word some databases give (GitHub's advisories:
 *    `LOW`, `MODERATE`, `HIGH`, `CRITICAL`), read case-insensitively;
 * 3. else unknown.
 *
 * `CVSS_V2` and `CVSS_V4` vectors are not scored (v2 is obsolete; v4 has a different
 * formula, not implemented yet): on their own they leave the level unknown unless step 2
 * gives one. Ubuntu priorities and Debian urgencies (`ecosystem_specific.urgency`) rank
 * how soon a distribution means to ship a fix, not how severe the flaw is, so they are
 * not read as severities.
 */
import { cvssSeverity, parseCvssV3, type Severity } from "./cvss.js";
import type { OsvRecord, OsvSeverityEntry } from "./osv-record.js";

export type SeverityLevel = Severity | "unknown";

export interface RecordSeverity {
  readonly level: SeverityLevel;
  /** The CVSS v3 base score, when the level comes from one. */
  readonly score?: number;
  /** The vector the score was computed from. */
  readonly vector?: string;
  readonly source: "cvss_v3" | "database_specific" | "none";
}

const WORDS: Readonly<Record<string, Severity>> = {
  none: "none",
  low: "low",
  moderate: "medium",
  medium: "medium",
  high: "high",
  important: "high",
  critical: "critical",
};

export function severityOf(record: OsvRecord): RecordSeverity {
  const entries: { entry: OsvSeverityEntry; path: string }[] = [
    ...(record.severity ?? []).map((entry, i) => ({ entry, path: `$.severity[${i}].score` })),
    ...record.affected.flatMap((a, i) =>
      (a.severity ?? []).map((entry, j) => ({ entry, path: `$.affected[${i}].severity[${j}].score` })),
    ),
  ];
  let best: { score: number; vector: string } | undefined;
  for (const { entry, path } of entries) {
    if (entry.type !== "CVSS_V3") continue;
    const { baseScore } = parseCvssV3(entry.score, path);
    if (best === undefined || baseScore > best.score) best = { score: baseScore, vector: entry.score };
  }
  if (best !== undefined) return { level: cvssSeverity(best.score), score: best.score, vector: best.vector, source: "cvss_v3" };
  const word = record.database_specific?.severity;
  if (typeof word === "string") {
    const level = WORDS[word.trim().toLowerCase()];
    if (level !== undefined) return { level, source: "database_specific" };
  }
  return { level: "unknown", source: "none" };
}
