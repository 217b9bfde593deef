/**
 * Reading Trivy's JSON report (`trivy image --format json`, SchemaVersion 2) strictly into
 * the normalized findings, and Trivy's version document (`trivy --version --format json`)
 * into the database it uses.
 *
 * The report is outside input: every field read is type-checked; a report that is not
 * an object with `SchemaVersion: 2`, whose `Results` or vulnerabilities have the wrong
 * shape, whose severity is not one of Trivy's five, or whose `Metadata.ImageID` names
 * another image is refused (the caller turns that into PC_SCAN_FAILED). Fields this
 * reader does not use are ignored.
 *
 * Mapping: `VulnerabilityID` -> id, `VendorIDs` -> aliases, `PkgName`, `InstalledVersion`,
 * `FixedVersion` (Trivy may list several, comma-separated: the first), `Severity`
 * lower-cased, the score from `CVSS` (the severity source's V3 score, else NVD's, else the
 * highest), the source file from `PkgPath` (language packages) or the result's `Target`
 * for lock files, and the distribution's package database for OS packages. The ecosystem
 * is the result's `Type` in OSV's spelling (`debian` -> `Debian:<major>` with the OS
 * release, `npm`/`node-pkg` -> `npm`, `pip`/`python-pkg`/... -> `PyPI`).
 */
import type { Inventory, InventoryPackage, PackageEcosystem } from "./inventory-types.js";
import type { FindingSeverityLevel, InventorySummary, ScanFinding } from "./scanner.js";

export class TrivyReportError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = "TrivyReportError";
  }
}

export interface TrivyReport {
  readonly findings: ScanFinding[];
  readonly inventory: Inventory;
  readonly summary: InventorySummary;
  /** Metadata.ImageID, when the report states it. */
  readonly imageId?: string;
}

export interface TrivyDatabase {
  /** Trivy's own version (`0.50.1`). */
  readonly trivyVersion: string;
  /** VulnerabilityDB.Version: the DB schema version. */
  readonly schema: number;
  /** VulnerabilityDB.UpdatedAt (ISO 8601). */
  readonly updatedAt: string;
}

const SEVERITIES: Readonly<Record<string, FindingSeverityLevel>> = {
  CRITICAL: "critical",
  HIGH: "high",
  MEDIUM: "medium",
  LOW: "low",
  UNKNOWN: "unknown",
};
const ID_RE = /^[A-Za-z][A-Za-z0-9._:-]{1,99}$/;
const MAX_FIELD = 1024;

/** Trivy's package types in OSV's ecosystem names (those the inventory knows). */
const LANG_ECOSYSTEMS: Readonly<Record<string, PackageEcosystem>> = {
  npm: "npm",
  "node-pkg": "npm",
  yarn: "npm",
  pnpm: "npm",
  pip: "PyPI",
  pipenv: "PyPI",
  poetry: "PyPI",
  "python-pkg": "PyPI",
  uv: "PyPI",
};
const OS_ECOSYSTEMS: Readonly<Record<string, { readonly ecosystem: PackageEcosystem; readonly file: string }>> = {
  debian: { ecosystem: "Debian", file: "/var/lib/dpkg/status" },
  alpine: { ecosystem: "Alpine", file: "/lib/apk/db/installed" },
};

type Obj = Record<string, unknown>;

function obj(v: unknown, path: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new TrivyReportError(path, "must be an object");
  return v as Obj;
}
function str(v: unknown, path: string, opts: { optional?: boolean; empty?: boolean } = {}): string | undefined {
  if (v === undefined && opts.optional === true) return undefined;
  if (typeof v !== "string") throw new TrivyReportError(path, "must be a string");
  if (v.length > MAX_FIELD || /[\0-\x1f]/.test(v)) throw new TrivyReportError(path, "is too long or has control characters");
  if (v === "" && opts.empty !== true) throw new TrivyReportError(path, "must not be empty");
  return v;
}
function arr(v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new TrivyReportError(path, "must be a list");
  return v;
}

function scoreOf(v: Obj, path: string): number | undefined {
  if (v.CVSS === undefined || v.CVSS === null) return undefined;
  const cvss = obj(v.CVSS, `${path}.CVSS`);
  const scores = new Map<string, number>();
  for (const [source, entry] of Object.entries(cvss)) {
    const e = obj(entry, `${path}.CVSS.${source}`);
    if (e.V3Score === undefined) continue;
    if (typeof e.V3Score !== "number" || !Number.isFinite(e.V3Score) || e.V3Score < 0 || e.V3Score > 10) {
      throw new TrivyReportError(`${path}.CVSS.${source}.V3Score`, "must be a number from 0 to 10");
    }
    scores.set(source, e.V3Score);
  }
  const from = typeof v.SeveritySource === "string" ? scores.get(v.SeveritySource) : undefined;
  return from ?? scores.get("nvd") ?? (scores.size > 0 ? Math.max(...scores.values()) : undefined);
}

function ecosystemOf(type: string, cls: string, os: { family?: string; release?: string }): string {
  if (cls === "os-pkgs") {
    const known = OS_ECOSYSTEMS[type];
    if (known === undefined) return type;
    if (known.ecosystem === "Debian" && os.release !== undefined) {
      const major = /^(\d+)/.exec(os.release)?.[1];
      return major !== undefined ? `Debian:${major}` : "Debian";
    }
    if (known.ecosystem === "Alpine" && os.release !== undefined) {
      const minor = /^(\d+\.\d+)/.exec(os.release)?.[1];
      return minor !== undefined ? `Alpine:v${minor}` : "Alpine";
    }
    return known.ecosystem;
  }
  return LANG_ECOSYSTEMS[type] ?? type;
}

function sourceFileOf(cls: string, type: string, target: string, pkgPath: string | undefined): string {
  if (pkgPath !== undefined && pkgPath !== "") return pkgPath.startsWith("/") ? pkgPath : `/${pkgPath}`;
  if (cls === "os-pkgs") return OS_ECOSYSTEMS[type]?.file ?? "";
  // A lock file's result names the file as its target.
  return target.includes("/") || target.includes(".") ? (target.startsWith("/") ? target : `/${target}`) : "";
}

/** Parses a Trivy JSON report (already JSON.parse'd) for `imageId`. */
export function parseTrivyReport(raw: unknown): TrivyReport {
  const report = obj(raw, "$");
  if (report.SchemaVersion !== 2) throw new TrivyReportError("$.SchemaVersion", "must be 2");
  str(report.ArtifactName, "$.ArtifactName");
  let imageId: string | undefined;
  let osFamily: string | undefined;
  let osRelease: string | undefined;
  if (report.Metadata !== undefined && report.Metadata !== null) {
    const md = obj(report.Metadata, "$.Metadata");
    imageId = str(md.ImageID, "$.Metadata.ImageID", { optional: true });
    if (md.OS !== undefined && md.OS !== null) {
      const os = obj(md.OS, "$.Metadata.OS");
      osFamily = str(os.Family, "$.Metadata.OS.Family", { optional: true });
      osRelease = str(os.Name, "$.Metadata.OS.Name", { optional: true });
    }
  }
  const findings: ScanFinding[] = [];
  const packages: InventoryPackage[] = [];
  const counts: Record<string, number> = {};
  arr(report.Results, "$.Results").forEach((r, i) => {
    const path = `$.Results[${i}]`;
    const result = obj(r, path);
    const target = str(result.Target, `${path}.Target`) as string;
    const cls = str(result.Class, `${path}.Class`) as string;
    const type = str(result.Type, `${path}.Type`, { optional: true, empty: true }) ?? "";
    const ecosystem = ecosystemOf(type, cls, { ...(osFamily !== undefined ? { family: osFamily } : {}), ...(osRelease !== undefined ? { release: osRelease } : {}) });
    const inventoryEcosystem = cls === "os-pkgs" ? OS_ECOSYSTEMS[type]?.ecosystem : LANG_ECOSYSTEMS[type];
    arr(result.Packages, `${path}.Packages`).forEach((p, j) => {
      const pp = `${path}.Packages[${j}]`;
      const pkg = obj(p, pp);
      const name = str(pkg.Name, `${pp}.Name`) as string;
      const version = str(pkg.Version, `${pp}.Version`) as string;
      const file = sourceFileOf(cls, type, target, str(pkg.FilePath, `${pp}.FilePath`, { optional: true, empty: true }));
      const countAs = inventoryEcosystem ?? (type !== "" ? type : cls);
      counts[countAs] = (counts[countAs] ?? 0) + 1;
      if (inventoryEcosystem !== undefined) {
        const srcName = str(pkg.SrcName, `${pp}.SrcName`, { optional: true, empty: true });
        const srcVersion = str(pkg.SrcVersion, `${pp}.SrcVersion`, { optional: true, empty: true });
        packages.push({
          ecosystem: inventoryEcosystem,
          name,
          version,
          sourceFile: file,
          ...(cls === "os-pkgs" ? { sourcePackage: { name: srcName || name, version: srcVersion || version } } : {}),
        });
      }
    });
    arr(result.Vulnerabilities, `${path}.Vulnerabilities`).forEach((x, j) => {
      const vp = `${path}.Vulnerabilities[${j}]`;
      const v = obj(x, vp);
      const id = str(v.VulnerabilityID, `${vp}.VulnerabilityID`) as string;
      if (!ID_RE.test(id)) throw new TrivyReportError(`${vp}.VulnerabilityID`, "is not a vulnerability id");
      const level = typeof v.Severity === "string" ? SEVERITIES[v.Severity] : undefined;
      if (level === undefined) throw new TrivyReportError(`${vp}.Severity`, "must be one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN");
      const aliases = arr(v.VendorIDs, `${vp}.VendorIDs`).map((a, k) => str(a, `${vp}.VendorIDs[${k}]`) as string);
      for (const a of aliases) if (!ID_RE.test(a)) throw new TrivyReportError(`${vp}.VendorIDs`, "holds something that is not a vulnerability id");
      const fixedText = str(v.FixedVersion, `${vp}.FixedVersion`, { optional: true, empty: true });
      const fixed = fixedText?.split(",")[0]?.trim();
      const score = scoreOf(v, vp);
      findings.push({
        id,
        aliases: [...new Set(aliases)].filter((a) => a !== id),
        package: str(v.PkgName, `${vp}.PkgName`) as string,
        ecosystem,
        installed: str(v.InstalledVersion, `${vp}.InstalledVersion`) as string,
        ...(fixed !== undefined && fixed !== "" ? { fixed } : {}),
        severity: score !== undefined ? { level, score } : { level },
        sourceFile: sourceFileOf(cls, type, target, str(v.PkgPath, `${vp}.PkgPath`, { optional: true, empty: true })),
      });
    });
  });
  const osId = osFamily?.toLowerCase();
  const inventory: Inventory = {
    ...(osId !== undefined && /^[a-z0-9._-]+$/.test(osId) ? { os: { id: osId, name: osFamily as string, ...(osRelease !== undefined ? { versionId: osRelease } : {}) } } : {}),
    packages,
    unread: [],
  };
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const summary: InventorySummary = {
    packages: counts,
    total,
    ...(osId !== undefined ? { os: osRelease !== undefined ? `${osId} ${osRelease}` : osId } : {}),
  };
  return { findings, inventory, summary, ...(imageId !== undefined ? { imageId } : {}) };
}

/** Parses `trivy --version --format json`; undefined when it names no vulnerability database. */
export function parseTrivyVersion(raw: unknown): TrivyDatabase | undefined {
  const doc = obj(raw, "$");
  const trivyVersion = str(doc.Version, "$.Version") as string;
  if (doc.VulnerabilityDB === undefined || doc.VulnerabilityDB === null) return undefined;
  const db = obj(doc.VulnerabilityDB, "$.VulnerabilityDB");
  if (typeof db.Version !== "number" || !Number.isSafeInteger(db.Version)) throw new TrivyReportError("$.VulnerabilityDB.Version", "must be an integer");
  const updatedAt = str(db.UpdatedAt, "$.VulnerabilityDB.UpdatedAt") as string;
  if (!Number.isFinite(Date.parse(updatedAt))) throw new TrivyReportError("$.VulnerabilityDB.UpdatedAt", "must be a time");
  return { trivyVersion, schema: db.Version, updatedAt };
}
