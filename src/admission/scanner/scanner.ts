/**
 * The scanner contract and its normalized result. Every scanner (the built-in one, the
 * trivy adapter) answers a scan with the same `ScanResult`: the image's SBOM, a summary of
 * its inventory, the findings (one per vulnerability id and package), the database that
 * judged it and which scanner ran. The admission gate judges only this shape, so its
 * policy reads the same whichever scanner is configured.
 *
 * Failures are PortcullisErrors: PC_SCAN_VULNDB_MISSING (no database), PC_SCAN_IMAGE_UNREADABLE
 * (the image cannot be exported or read), PC_SCAN_ARCHIVE_UNSAFE / PC_SCAN_FILE_TOO_LARGE
 * (the archive is refused), PC_SCAN_FAILED (the scanner failed or answered something that
 * is not its report), PC_SCAN_TIMEOUT (stopped after its time limit).
 */
import type { SeverityLevel } from "./osv-severity.js";
import type { CycloneDxBom } from "./sbom.js";

export type ScannerKind = "builtin" | "trivy";

export const SEVERITY_LEVELS = ["critical", "high", "medium", "low", "none", "unknown"] as const satisfies readonly SeverityLevel[];
export type FindingSeverityLevel = (typeof SEVERITY_LEVELS)[number];

export interface FindingSeverity {
  readonly level: FindingSeverityLevel;
  /** A CVSS base score, when the level comes from one. */
  readonly score?: number;
}

export interface ScanFinding {
  /** The vulnerability's id as the database names it (`CVE-2023-5363`, `DSA-5532-1`, `GHSA-…`). */
  readonly id: string;
  /** Other ids of the same vulnerability (CVE ids of an advisory, upstream ids), without `id`. */
  readonly aliases: readonly string[];
  /** The package the advisory names (for Debian, the source package). */
  readonly package: string;
  /** The installed binary package, when it differs from `package` (Debian `libssl3` of `openssl`). */
  readonly installedPackage?: string;
  /** `Debian:12`, `Alpine:v3.18`, `npm`, `PyPI`. */
  readonly ecosystem: string;
  readonly installed: string;
  /** The smallest version that fixes it, when known. */
  readonly fixed?: string;
  readonly severity: FindingSeverity;
  /** The file in the image the package was read from (absolute); "" when the scanner does not say. */
  readonly sourceFile: string;
}

export interface InventorySummary {
  /** Packages found, per ecosystem (`Debian`, `Alpine`, `npm`, `PyPI`, …). */
  readonly packages: Readonly<Record<string, number>>;
  readonly total: number;
  /** The operating system (`debian 12`), when the image states one. */
  readonly os?: string;
}

export interface ScanDatabase {
  /** Where the database came from (the import's sources, or "trivy"). */
  readonly source: string;
  /** Its version: the import id of the built-in database, Trivy's DB schema version and date. */
  readonly version: string;
  /** When its newest record was modified (ISO 8601), when known. */
  readonly builtAt?: string;
}

export interface ScanResult {
  readonly imageId: string;
  readonly scanner: ScannerKind;
  readonly sbom: CycloneDxBom;
  readonly inventory: InventorySummary;
  /** Sorted by id, then package, installed version and source file. */
  readonly findings: readonly ScanFinding[];
  readonly database: ScanDatabase;
  /** When the scan ran (ISO 8601). */
  readonly scannedAt: string;
}

/** What a scanner needs to know before it scans: the database it would use, and its cache key. */
export interface ScanDatabaseState extends ScanDatabase {
  /**
   * The integer a cached result is keyed by (scan_results.db_version): a new database
   * gives a new key, so results of an older one are never served. Absent when the
   * database cannot be told apart (a Trivy server): results are then not cached.
   */
  readonly cacheKey?: number;
}

export interface Scanner {
  readonly kind: ScannerKind;
  /** The database a scan would use now; PC_SCAN_VULNDB_MISSING when there is none. */
  database(signal: AbortSignal): Promise<ScanDatabaseState>;
  /** Scans the image (an image id, `sha256:<hex>`). Aborting stops the work and rejects. */
  scan(imageId: string, signal: AbortSignal): Promise<ScanResult>;
}

/** Exports an image as a `docker save` archive stream (the runtime's `DockerEngine.exportImage`). */
export type ExportImage = (imageId: string) => Promise<NodeJS.ReadableStream>;

export const IMAGE_ID_RE = /^sha256:[0-9a-f]{64}$/;

const FINDING_ORDER = (a: ScanFinding, b: ScanFinding): number =>
  cmp(a.id, b.id) || cmp(a.package, b.package) || cmp(a.installed, b.installed) || cmp(a.sourceFile, b.sourceFile);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One finding per (id, package): the same advisory reached through two binary packages of
 * one source package, or a package stated in two files, is one finding (the first in
 * order keeps its installed version and file). Sorted.
 */
export function dedupeFindings(findings: readonly ScanFinding[]): ScanFinding[] {
  const sorted = [...findings].sort(FINDING_ORDER);
  const seen = new Set<string>();
  const out: ScanFinding[] = [];
  for (const f of sorted) {
    const key = `${f.id}\0${f.ecosystem}\0${f.package}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}

/** Counts of findings per severity level (every level present, zero when none). */
export function severityCounts(findings: readonly Pick<ScanFinding, "severity">[]): Record<FindingSeverityLevel, number> {
  const counts = Object.fromEntries(SEVERITY_LEVELS.map((l) => [l, 0])) as Record<FindingSeverityLevel, number>;
  for (const f of findings) counts[f.severity.level]++;
  return counts;
}

/** Rejects with the signal's reason when aborted (a scan stops at the next step). */
export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("aborted");
}
