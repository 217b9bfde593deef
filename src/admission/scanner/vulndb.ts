/**
 * Questions to the vulnerability database in force: its status, the records that name a
 * package, and the findings for one installed package version.
 *
 * Every question reads the version in force first and answers from that version only,
 * inside one read transaction, so an import switching meanwhile (in this process or
 * another) is seen entirely or not at all. Records are parsed and validated once per
 * version and kept in a bounded cache (least recently used out first); a new version
 * empties it. With no database imported, questions fail with PC_SCAN_VULNDB_MISSING (a
 * scan must deny, not pass, without one).
 */
import { pcError } from "../../core/index.js";
import type { Store, VulnDbImportRecord } from "../../store/index.js";
import { affectedVersions } from "./osv-match.js";
import { validateOsvRecord, type OsvRecord } from "./osv-record.js";
import { severityOf, type RecordSeverity, type SeverityLevel } from "./osv-severity.js";
import { ecosystemFamily } from "./versions/index.js";
import { packageKey, splitEcosystemName } from "./vulndb-keys.js";

export interface VulnDbStatus {
  /** The database version: the id of the import in force. */
  readonly version: number;
  /** The inputs as given to the import, joined with ", ". */
  readonly source: string;
  readonly sources: readonly string[];
  readonly records: number;
  readonly newestModified: string | null;
  readonly importedAt: Date;
  readonly importedBy: string;
  readonly sha256: string | null;
  /** Records per ecosystem (without release suffix). */
  readonly ecosystems: Readonly<Record<string, number>>;
}

export interface VulnFindingSeverity {
  readonly level: SeverityLevel;
  readonly score?: number;
  readonly source: RecordSeverity["source"];
}

/** One record that affects an installed package version. */
export interface VulnFinding {
  /** The record id (`DSA-5532-1`, `GHSA-35jh-r3h4-6jhm`). */
  readonly id: string;
  /** Other ids of the same vulnerability: the record's `aliases` and `upstream`. */
  readonly aliases: readonly string[];
  /** The record's `related` ids (a Debian advisory lists the CVEs it fixes there). */
  readonly related?: readonly string[];
  readonly package: string;
  /** As asked (`Debian:12`, `npm`). */
  readonly ecosystem: string;
  readonly installed: string;
  /** The smallest version that fixes it, when the record names one. */
  readonly fixed?: string;
  readonly severity: VulnFindingSeverity;
  readonly summary?: string;
}

export interface VulnDbOptions {
  /** Parsed records kept per version (default 50,000). */
  readonly cacheSize?: number;
}

interface Cached {
  readonly record: OsvRecord;
  severity?: VulnFindingSeverity;
}

const DEFAULT_CACHE = 50_000;

function statusOf(imp: VulnDbImportRecord): VulnDbStatus {
  return {
    version: imp.id,
    source: imp.sources.join(", "),
    sources: imp.sources,
    records: imp.records,
    newestModified: imp.newestModified,
    importedAt: new Date(imp.importedAt),
    importedBy: imp.importedBy,
    sha256: imp.sha256,
    ecosystems: imp.ecosystems,
  };
}

function uniq(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

export class VulnDb {
  private readonly cacheSize: number;
  private cacheVersion: number | undefined;
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly store: Store,
    opts: VulnDbOptions = {},
  ) {
    this.cacheSize = opts.cacheSize ?? DEFAULT_CACHE;
  }

  /** The database in force, or undefined when none was imported. */
  status(): VulnDbStatus | undefined {
    const imp = this.store.vulndb.active();
    return imp === undefined ? undefined : statusOf(imp);
  }

  /** Every import, oldest first (history: replaced and failed ones too). */
  imports(): readonly VulnDbImportRecord[] {
    return this.store.vulndb.list();
  }

  /** The version in force; PC_SCAN_VULNDB_MISSING when there is none. */
  version(): number {
    const v = this.store.vulndb.activeId();
    if (v === undefined) throw pcError("PC_SCAN_VULNDB_MISSING");
    return v;
  }

  /**
   * The records of the version in force that name `pkg` in `ecosystem` (`Debian:12`
   * finds entries for Debian 12 and for Debian without a release; `Debian` finds every
   * release's), ordered by id.
   */
  candidates(ecosystem: string, pkg: string): readonly OsvRecord[] {
    return this.lookup(ecosystem, pkg).map((c) => c.record);
  }

  /**
   * The findings for `pkg` at `version` in `ecosystem`, ordered by id. Withdrawn records
   * never match. A version or ecosystem the scanner cannot order throws ScanInputError.
   */
  match(ecosystem: string, pkg: string, version: string): VulnFinding[] {
    ecosystemFamily(ecosystem);
    const out: VulnFinding[] = [];
    for (const c of this.lookup(ecosystem, pkg)) {
      const r = c.record;
      if (r.withdrawn !== undefined) continue;
      const result = affectedVersions(r, ecosystem, pkg, version);
      if (!result.affected) continue;
      c.severity ??= severityView(severityOf(r));
      const aliases = uniq([...(r.aliases ?? []), ...(r.upstream ?? [])]);
      out.push({
        id: r.id,
        aliases,
        ...(r.related !== undefined && r.related.length > 0 ? { related: r.related } : {}),
        package: pkg,
        ecosystem,
        installed: version,
        ...(result.fixed !== undefined ? { fixed: result.fixed } : {}),
        severity: c.severity,
        ...(r.summary !== undefined ? { summary: r.summary } : {}),
      });
    }
    return out;
  }

  private lookup(ecosystemName: string, pkg: string): Cached[] {
    const { ecosystem, release } = splitEcosystemName(ecosystemName);
    const key = packageKey(ecosystem, pkg);
    return this.store.transaction(() => {
      const version = this.version();
      if (version !== this.cacheVersion) {
        this.cache.clear();
        this.cacheVersion = version;
      }
      const ids = this.store.vulndb.candidateIds(version, ecosystem, key, release === "" ? undefined : release);
      const found: (Cached | undefined)[] = ids.map((id) => this.cached(id));
      const missing = ids.filter((_, i) => found[i] === undefined);
      if (missing.length > 0) {
        const parsed = new Map<string, Cached>();
        for (const row of this.store.vulndb.recordsByIds(version, missing)) {
          const entry: Cached = { record: validateOsvRecord(JSON.parse(row.json)) };
          parsed.set(row.id, entry);
          this.remember(row.id, entry);
        }
        for (let i = 0; i < ids.length; i++) if (found[i] === undefined) found[i] = parsed.get(ids[i] as string);
      }
      return found.filter((c): c is Cached => c !== undefined);
    });
  }

  private cached(id: string): Cached | undefined {
    const c = this.cache.get(id);
    if (c !== undefined) {
      this.cache.delete(id);
      this.cache.set(id, c);
    }
    return c;
  }

  private remember(id: string, c: Cached): void {
    this.cache.set(id, c);
    while (this.cache.size > this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (oldest.done === true) break;
      this.cache.delete(oldest.value);
    }
  }
}

function severityView(s: RecordSeverity): VulnFindingSeverity {
  return Object.freeze(s.score !== undefined ? { level: s.level, score: s.score, source: s.source } : { level: s.level, source: s.source });
}
