/**
 * CVSS v3.0 and v3.1 base scores (FIRST, "CVSS v3.1: Specification Document", §7.1,
 * Appendix A for Roundup; the v3.0 document for its own Roundup).
 *
 * The vector is parsed strictly: the prefix `CVSS:3.0/` or `CVSS:3.1/`, then `metric:value`
 * parts separated by `/`, in any order, each metric at most once, every base metric
 * present, only the metrics and values the specification defines (temporal and
 * environmental ones are validated but do not change the base score). Anything else is
 * refused with ScanInputError (reason `cvss_invalid`).
 *
 * Severity (§5): 0.0 none, 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0–10.0 critical.
 */
import { ScanInputError, quote } from "./errors.js";

export type Severity = "none" | "low" | "medium" | "high" | "critical";

export type CvssV3Version = "3.0" | "3.1";

export interface CvssV3 {
  readonly version: CvssV3Version;
  /** Every metric of the vector, base and others, as written. */
  readonly metrics: Readonly<Record<string, string>>;
  readonly baseScore: number;
  readonly severity: Severity;
}

const BASE: Readonly<Record<string, readonly string[]>> = {
  AV: ["N", "A", "L", "P"],
  AC: ["L", "H"],
  PR: ["N", "L", "H"],
  UI: ["N", "R"],
  S: ["U", "C"],
  C: ["H", "L", "N"],
  I: ["H", "L", "N"],
  A: ["H", "L", "N"],
};

const OTHER: Readonly<Record<string, readonly string[]>> = {
  E: ["X", "U", "P", "F", "H"],
  RL: ["X", "O", "T", "W", "U"],
  RC: ["X", "U", "R", "C"],
  CR: ["X", "L", "M", "H"],
  IR: ["X", "L", "M", "H"],
  AR: ["X", "L", "M", "H"],
  MAV: ["X", "N", "A", "L", "P"],
  MAC: ["X", "L", "H"],
  MPR: ["X", "N", "L", "H"],
  MUI: ["X", "N", "R"],
  MS: ["X", "U", "C"],
  MC: ["X", "N", "L", "H"],
  MI: ["X", "N", "L", "H"],
  MA: ["X", "N", "L", "H"],
};

const WEIGHT = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  PR_UNCHANGED: { N: 0.85, L: 0.62, H: 0.27 },
  PR_CHANGED: { N: 0.85, L: 0.68, H: 0.5 },
  UI: { N: 0.85, R: 0.62 },
  CIA: { H: 0.56, L: 0.22, N: 0 },
} as const;

const MAX_VECTOR_LENGTH = 256;

/** v3.1 Appendix A: round up to one decimal, free of floating-point artefacts. */
export function roundup31(value: number): number {
  const int = Math.round(value * 100000);
  if (int % 10000 === 0) return int / 100000;
  return (Math.floor(int / 10000) + 1) / 10;
}

/** v3.0 §7.4: "the smallest number, specified to one decimal place, that is equal to or higher than its input". */
export function roundup30(value: number): number {
  return Math.ceil(value * 10) / 10;
}

export function cvssSeverity(score: number): Severity {
  if (score === 0) return "none";
  if (score < 4) return "low";
  if (score < 7) return "medium";
  if (score < 9) return "high";
  return "critical";
}

function refuse(path: string, vector: string, why: string): ScanInputError {
  return new ScanInputError("cvss_invalid", path, `invalid CVSS v3 vector ${quote(vector)}: ${why}`);
}

export function parseCvssV3(vector: string, path = "vector"): CvssV3 {
  if (typeof vector !== "string") throw new ScanInputError("cvss_invalid", path, "a CVSS vector must be a string");
  if (vector.length > MAX_VECTOR_LENGTH) throw refuse(path, vector, `longer than ${MAX_VECTOR_LENGTH} characters`);
  const m = /^CVSS:(3\.[01])\/(.*)$/s.exec(vector);
  if (m === null) throw refuse(path, vector, 'expected the prefix "CVSS:3.0/" or "CVSS:3.1/"');
  const version = m[1] as CvssV3Version;
  const metrics: Record<string, string> = {};
  for (const part of (m[2] as string).split("/")) {
    const kv = /^([A-Z]+):([A-Z])$/.exec(part);
    if (kv === null) throw refuse(path, vector, `malformed metric ${quote(part)}`);
    const [, key, value] = kv as unknown as [string, string, string];
    const allowed = BASE[key] ?? OTHER[key];
    if (allowed === undefined) throw refuse(path, vector, `unknown metric ${key}`);
    if (Object.prototype.hasOwnProperty.call(metrics, key)) throw refuse(path, vector, `metric ${key} appears twice`);
    if (!allowed.includes(value)) throw refuse(path, vector, `${key}:${value} is not one of ${allowed.map((v) => `${key}:${v}`).join(", ")}`);
    metrics[key] = value;
  }
  const missing = Object.keys(BASE).filter((k) => metrics[k] === undefined);
  if (missing.length > 0) throw refuse(path, vector, `missing base metric${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
  const baseScore = baseScoreOf(version, metrics);
  return { version, metrics, baseScore, severity: cvssSeverity(baseScore) };
}

function baseScoreOf(version: CvssV3Version, m: Readonly<Record<string, string>>): number {
  const w = <T extends Record<string, number>>(table: T, key: string): number => table[m[key] as keyof T] as number;
  const changed = m.S === "C";
  const iss = 1 - (1 - w(WEIGHT.CIA, "C")) * (1 - w(WEIGHT.CIA, "I")) * (1 - w(WEIGHT.CIA, "A"));
  const impact = changed ? 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15) : 6.42 * iss;
  const exploitability =
    8.22 * w(WEIGHT.AV, "AV") * w(WEIGHT.AC, "AC") * w(changed ? WEIGHT.PR_CHANGED : WEIGHT.PR_UNCHANGED, "PR") * w(WEIGHT.UI, "UI");
  if (impact <= 0) return 0;
  const roundup = version === "3.1" ? roundup31 : roundup30;
  return changed ? roundup(Math.min(1.08 * (impact + exploitability), 10)) : roundup(Math.min(impact + exploitability, 10));
}

/** The CVSS major version a vector string claims, without validating it. */
export function cvssMajorVersion(vector: string): 2 | 3 | 4 | undefined {
  if (/^CVSS:3\.[0-9]\//.test(vector)) return 3;
  if (/^CVSS:4\.[0-9]\//.test(vector)) return 4;
  if (/^(\(?)AV:[LAN]\/AC:[HML]\/Au:[MSN]\//.test(vector)) return 2;
  return undefined;
}
