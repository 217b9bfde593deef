/**
 * Check `image-scan`: the image passes the vulnerability scanner.
 *
 * Restricted input: spec.image, as the image id(s) the nodes hold for it
 * (attrs.image.idsByNode), each scanned by the configured ScanHook and judged by the
 * policy's parameters. Allowed values: an image whose scan has no finding at or above
 * `maxSeverity`, a database recent enough, and a non-empty inventory.
 *
 * Parameters (all optional):
 * - `maxSeverity`: critical | high | medium | low | none (default high): a finding at or
 *   above it is one violation, reason "vulnerability", whose detail names the id and its
 *   aliases, the package, the installed and fixed versions, the severity and the source
 *   file; the id and aliases are carried as the result's `findings` (what a waiver with
 *   `findings: [CVE-…]` matches);
 * - `unknownSeverity`: the level a finding of unknown severity is judged at (default
 *   critical: it blocks);
 * - `ignoreUnfixed` (default false): findings with no fixed version do not block;
 * - `maxDatabaseAge` (a duration: `7d`, `36h`; default none) with `databaseAgeMode`
 *   deny (default: a violation "vulnerability database too old") or warn (an allowed
 *   result "vulnerability database old", kept in the decision record);
 * - `requireScan` (default true): with no scanner configured the check denies ("no
 *   scanner configured"); false makes that case "ok" ("scan not required"). A configured
 *   scanner that fails still denies;
 * - `allowEmptyInventory` (default false): an image where no package is found is denied
 *   ("no packages found");
 * - `onNewFindings`: alert (default) | stop: what the periodic rescan does when a running
 *   image gets a new blocking finding (read by the rescan; admission only validates it).
 *
 * Fails closed: no image id to scan ("image not found"), a scanner error or timeout, an
 * unreadable image, no database: one denial with the reason. Every result carries the
 * scan summary (counts per severity, inventory, database): the "ok" result's detail, or
 * beside the violations one allowed result with reason "scan summary".
 */
import { formatDuration, isPortcullisError } from "../../core/index.js";
import { callHook } from "../hook.js";
import { ParamReader } from "../params.js";
import { deny, ok } from "../results.js";
import { databaseAgeOf, findingDetail, judgeScan, SEVERITY_THRESHOLDS, type ScanPolicy, type SeverityThreshold } from "../scanner/scan-verdict.js";
import type { ScanResult } from "../scanner/scanner.js";
import type { CheckContext, CheckDefinition, CheckResult, ParamsValidation } from "../types.js";

const NAME = "image-scan";
const FIELD = "spec.image";
const DURATION_RE = /^([1-9][0-9]{0,6})(s|m|h|d)$/;
const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DATABASE_AGE_MODES = ["deny", "warn"] as const;
export const ON_NEW_FINDINGS = ["alert", "stop"] as const;

export interface ImageScanParams extends ScanPolicy {
  readonly databaseAgeMode: (typeof DATABASE_AGE_MODES)[number];
  readonly requireScan: boolean;
  readonly onNewFindings: (typeof ON_NEW_FINDINGS)[number];
}

const PARAMS = [
  "maxSeverity",
  "unknownSeverity",
  "ignoreUnfixed",
  "maxDatabaseAge",
  "databaseAgeMode",
  "requireScan",
  "allowEmptyInventory",
  "onNewFindings",
] as const;

function parseAge(v: unknown): number | string {
  if (typeof v !== "string") return "must be a duration such as 7d, 36h or 90m";
  const m = DURATION_RE.exec(v);
  if (m === null) return "must be a duration such as 7d, 36h or 90m";
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}

export function validateImageScanParams(raw: unknown): ParamsValidation<ImageScanParams> {
  const r = new ParamReader(raw, PARAMS);
  const maxSeverity: SeverityThreshold = r.oneOf("maxSeverity", SEVERITY_THRESHOLDS, "high");
  const unknownSeverity: SeverityThreshold = r.oneOf("unknownSeverity", SEVERITY_THRESHOLDS, "critical");
  const ignoreUnfixed = r.bool("ignoreUnfixed", false);
  const maxDatabaseAgeMs = r.parsed("maxDatabaseAge", parseAge);
  const databaseAgeMode = r.oneOf("databaseAgeMode", DATABASE_AGE_MODES, "deny");
  if (r.has("databaseAgeMode") && !r.has("maxDatabaseAge")) r.issues.push({ field: "databaseAgeMode", reason: "only with maxDatabaseAge" });
  const requireScan = r.bool("requireScan", true);
  const allowEmptyInventory = r.bool("allowEmptyInventory", false);
  const onNewFindings = r.oneOf("onNewFindings", ON_NEW_FINDINGS, "alert");
  return r.result({
    maxSeverity,
    unknownSeverity,
    ignoreUnfixed,
    ...(maxDatabaseAgeMs !== undefined ? { maxDatabaseAgeMs } : {}),
    databaseAgeMode,
    requireScan,
    allowEmptyInventory,
    onNewFindings,
  });
}

/** Why a scan could not be judged, from the scanner's error code. */
const FAILURE_REASONS: Readonly<Record<string, string>> = {
  PC_SCAN_VULNDB_MISSING: "no vulnerability database",
  PC_SCAN_IMAGE_UNREADABLE: "image unreadable",
  PC_SCAN_ARCHIVE_UNSAFE: "image archive unsafe",
  PC_SCAN_FILE_TOO_LARGE: "image file too large",
  PC_SCAN_TIMEOUT: "scanner timed out",
  PC_SCAN_FAILED: "scanner failed",
};

function failure(imageId: string, error: unknown): CheckResult {
  if (isPortcullisError(error) && FAILURE_REASONS[error.code] !== undefined) {
    return deny(NAME, FIELD, FAILURE_REASONS[error.code] as string, `${imageId} could not be scanned: ${error.message} (${error.code}); the request is denied`);
  }
  return deny(NAME, FIELD, "scanner failed", `the scanner failed on ${imageId}; the request is denied`);
}

/** Answers already found well formed (the cache answers the same object again). */
const WELL_FORMED = new WeakSet<object>();

/** The answer's shape, checked before it is judged (a hook is outside code). */
function isScanResult(v: unknown, imageId: string): v is ScanResult {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  if (r.imageId !== imageId) return false;
  if (WELL_FORMED.has(v)) return true;
  if (!wellFormed(r)) return false;
  // Only a frozen answer (the scan cache freezes what it keeps) can be trusted to stay as checked.
  if (frozen(r)) WELL_FORMED.add(v);
  return true;
}

function frozen(r: Record<string, unknown>): boolean {
  const findings = r.findings as readonly Record<string, unknown>[];
  return (
    Object.isFrozen(r) && Object.isFrozen(r.inventory) && Object.isFrozen(r.database) && Object.isFrozen(findings) &&
    findings.every((f) => Object.isFrozen(f) && Object.isFrozen(f.aliases) && Object.isFrozen(f.severity))
  );
}

function wellFormed(r: Record<string, unknown>): boolean {
  const inv = r.inventory as Record<string, unknown> | null | undefined;
  const db = r.database as Record<string, unknown> | null | undefined;
  return (
    typeof inv === "object" && inv !== null && typeof inv.total === "number" &&
    typeof db === "object" && db !== null && typeof db.version === "string" &&
    Array.isArray(r.findings) &&
    r.findings.every((f: unknown) => {
      if (typeof f !== "object" || f === null) return false;
      const x = f as Record<string, unknown>;
      const sev = x.severity as Record<string, unknown> | null | undefined;
      return (
        typeof x.id === "string" && x.id !== "" && Array.isArray(x.aliases) && x.aliases.every((a) => typeof a === "string") &&
        typeof x.package === "string" && typeof x.ecosystem === "string" && typeof x.installed === "string" &&
        (x.fixed === undefined || typeof x.fixed === "string") && typeof x.sourceFile === "string" &&
        typeof sev === "object" && sev !== null && typeof sev.level === "string" &&
        ["critical", "high", "medium", "low", "none", "unknown"].includes(sev.level)
      );
    })
  );
}

/** What a result and a policy's parameters give whatever the time: memoized per (result, params). */
interface FindingsJudgement {
  readonly violations: readonly CheckResult[];
  readonly summary: CheckResult;
  readonly ok: CheckResult;
}

/**
 * Results come back as the same object from the scan cache's memory, and parameters are
 * parsed once per policy version, so a repeated decision reuses its judgement (the
 * results are frozen; the chain copies them).
 */
const JUDGED = new WeakMap<ScanResult, WeakMap<ImageScanParams, FindingsJudgement>>();

function judgeFindings(result: ScanResult, params: ImageScanParams): FindingsJudgement {
  let byParams = JUDGED.get(result);
  const hit = byParams?.get(params);
  if (hit !== undefined) return hit;
  const v = judgeScan(result, { ...params, maxDatabaseAgeMs: undefined }, new Date(0));
  const violations: CheckResult[] = v.blocking.map((f) =>
    Object.freeze(deny(NAME, FIELD, "vulnerability", findingDetail(f, params), Object.freeze([f.id, ...f.aliases]))),
  );
  if (v.emptyInventory && !params.allowEmptyInventory) {
    violations.push(
      Object.freeze(deny(NAME, FIELD, "no packages found", `the scanner found no package in ${result.imageId} (no dpkg, apk, npm or Python package metadata); allowEmptyInventory is false`)),
    );
  }
  const judgement: FindingsJudgement = {
    violations: Object.freeze(violations),
    summary: Object.freeze({ check: NAME, allowed: true, reason: "scan summary", detail: v.summary, field: FIELD }),
    ok: Object.freeze(ok(NAME, v.summary, FIELD)),
  };
  if (!WELL_FORMED.has(result)) return judgement;
  if (byParams === undefined) {
    byParams = new WeakMap();
    JUDGED.set(result, byParams);
  }
  byParams.set(params, judgement);
  return judgement;
}

function judged(result: ScanResult, params: ImageScanParams, now: Date): CheckResult[] {
  const j = judgeFindings(result, params);
  const violations: CheckResult[] = [...j.violations];
  const notes: CheckResult[] = [];
  const age = params.maxDatabaseAgeMs === undefined ? undefined : databaseAgeOf(result, params.maxDatabaseAgeMs, now);
  if (age?.tooOld === true) {
    const text = age.ageMs === undefined ? "of unknown age" : `${Math.floor(age.ageMs / 3_600_000)} h old`;
    const detail = `the vulnerability database (version ${result.database.version}) is ${text}; at most ${formatDuration(params.maxDatabaseAgeMs ?? 0)} (maxDatabaseAge)`;
    if (params.databaseAgeMode === "deny") violations.push(deny(NAME, FIELD, "vulnerability database too old", detail));
    else notes.push({ check: NAME, allowed: true, reason: "vulnerability database old", detail, field: FIELD });
  }
  if (violations.length === 0) return [j.ok, ...notes];
  return [...violations, ...notes, j.summary];
}

async function run(attrs: Parameters<CheckDefinition<ImageScanParams>["run"]>[0], params: ImageScanParams, context: CheckContext): Promise<CheckResult[]> {
  const hook = context.hooks.scan;
  if (hook === undefined) {
    return params.requireScan
      ? [deny(NAME, FIELD, "no scanner configured", `no image scanner is configured and the policy requires a scan (requireScan); ${attrs.spec.image} is not admitted`)]
      : [ok(NAME, "scan not required: no scanner configured", FIELD)];
  }
  const ids = [...new Set(Object.values(attrs.image?.idsByNode ?? {}))].sort();
  if (ids.length === 0) {
    return [deny(NAME, FIELD, "image not found", `no node holds ${attrs.spec.image}; it cannot be scanned`)];
  }
  const now = context.now ?? new Date();
  const out: CheckResult[] = [];
  for (const imageId of ids) {
    const outcome = await callHook(hook.timeoutMs, (signal) => hook.scan(imageId, signal));
    if (outcome.kind === "timed out") {
      out.push(deny(NAME, FIELD, "scanner timed out", `the scanner did not answer within ${outcome.timeoutMs} ms for ${imageId}; the request is denied`));
    } else if (outcome.kind === "failed") {
      out.push(failure(imageId, outcome.error));
    } else if (!isScanResult(outcome.value, imageId)) {
      out.push(deny(NAME, FIELD, "scanner failed", `the scanner gave an answer for ${imageId} that is not a scan result; the request is denied`));
    } else {
      out.push(...judged(outcome.value, params, now));
    }
  }
  return out;
}

export const imageScanCheck: CheckDefinition<ImageScanParams> = {
  name: NAME,
  validateParams: validateImageScanParams,
  run,
};
