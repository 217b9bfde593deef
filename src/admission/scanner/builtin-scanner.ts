/**
 * The built-in scanner: the image's `docker save` stream, read once (only the files the
 * inventory wants are kept), its package inventory, and every package matched against
 * the offline vulnerability database in force.
 *
 * Matching. Distribution advisories name source packages: a Debian binary package
 * (`libssl3`) is matched under its source package (`openssl`) at the source version the
 * dpkg status states (`Source: gcc-12 (12.2.0-14)`), else at its own version; Alpine
 * packages under their origin. The ecosystem carries the release the image states
 * (`Debian:12` from VERSION_ID 12, `Alpine:v3.18` from 3.18.4); with no release the
 * records of every release apply. dpkg packages of an image that is not Debian (Ubuntu)
 * are not matched against Debian's records. One finding per (id, package): two binary
 * packages of one source package give one finding.
 *
 * Fails closed: no database -> PC_SCAN_VULNDB_MISSING (before the image is read); an
 * image the engine cannot export or that is not an image archive ->
 * PC_SCAN_IMAGE_UNREADABLE; an installed version the matcher cannot order -> PC_SCAN_FAILED
 * (it cannot tell "not affected"). The AbortSignal destroys the export stream.
 */
import { isPortcullisError, pcError, systemClock, type Clock } from "../../core/index.js";
import { isScanInputError } from "./errors.js";
import { readImageFiles, type ImageReadLimits } from "./image-layers.js";
import { inventoryOf, inventoryWanted } from "./inventory.js";
import type { Inventory, InventoryPackage } from "./inventory-types.js";
import { sbomOf } from "./sbom.js";
import {
  dedupeFindings,
  IMAGE_ID_RE,
  throwIfAborted,
  type ExportImage,
  type InventorySummary,
  type ScanDatabaseState,
  type Scanner,
  type ScanFinding,
  type ScanResult,
} from "./scanner.js";
import type { VulnDb } from "./vulndb.js";

export interface BuiltinScannerOptions {
  readonly vulndb: VulnDb;
  readonly exportImage: ExportImage;
  readonly limits?: Partial<ImageReadLimits>;
  readonly clock?: Clock;
}

export class BuiltinScanner implements Scanner {
  readonly kind = "builtin" as const;
  private readonly clock: Clock;
  private lastDatabase: ScanDatabaseState | undefined;

  constructor(private readonly opts: BuiltinScannerOptions) {
    this.clock = opts.clock ?? systemClock;
  }

  async database(_signal?: AbortSignal): Promise<ScanDatabaseState> {
    // The version in force is one indexed read; the import's facts are read again only when it changes.
    const version = this.opts.vulndb.version();
    if (this.lastDatabase?.cacheKey === version) return this.lastDatabase;
    const status = this.opts.vulndb.status();
    if (status === undefined) throw pcError("PC_SCAN_VULNDB_MISSING");
    this.lastDatabase = Object.freeze({
      source: status.source,
      version: String(status.version),
      ...(status.newestModified !== null ? { builtAt: status.newestModified } : {}),
      cacheKey: status.version,
    });
    return this.lastDatabase;
  }

  async scan(imageId: string, signal: AbortSignal): Promise<ScanResult> {
    if (!IMAGE_ID_RE.test(imageId)) throw pcError("PC_SCAN_IMAGE_UNREADABLE", "not an image id (sha256:<hex>)");
    throwIfAborted(signal);
    const database = await this.database(signal);
    const inventory = await this.inventory(imageId, signal);
    throwIfAborted(signal);
    const findings = this.match(inventory, signal);
    const { cacheKey: _key, ...db } = database;
    return {
      imageId,
      scanner: "builtin",
      sbom: sbomOf(imageId, inventory, { clock: this.clock }),
      inventory: summaryOf(inventory),
      findings,
      database: db,
      scannedAt: this.clock.now().toISOString(),
    };
  }

  private async inventory(imageId: string, signal: AbortSignal): Promise<Inventory> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.opts.exportImage(imageId);
    } catch (e) {
      throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the engine cannot export the image", e);
    }
    const destroy = () => {
      const d = (stream as { destroy?: (e?: Error) => void }).destroy;
      if (typeof d === "function") d.call(stream, new Error("scan aborted"));
    };
    if (signal.aborted) {
      destroy();
      throwIfAborted(signal);
    }
    signal.addEventListener("abort", destroy, { once: true });
    try {
      const view = await readImageFiles(stream, { ...(this.opts.limits ?? {}), wanted: inventoryWanted });
      return inventoryOf(view);
    } catch (e) {
      throwIfAborted(signal);
      throw e;
    } finally {
      signal.removeEventListener("abort", destroy);
    }
  }

  private match(inventory: Inventory, signal: AbortSignal): ScanFinding[] {
    const out: ScanFinding[] = [];
    const asked = new Set<string>();
    for (const p of inventory.packages) {
      const q = queryOf(p, inventory);
      if (q === undefined) continue;
      // Binary packages of one source package at one version ask the same question once.
      const key = `${q.ecosystem}\0${q.name}\0${q.version}`;
      if (asked.has(key)) continue;
      asked.add(key);
      if (asked.size % 64 === 0) throwIfAborted(signal);
      let found;
      try {
        found = this.opts.vulndb.match(q.ecosystem, q.name, q.version);
      } catch (e) {
        if (isPortcullisError(e)) throw e;
        if (isScanInputError(e)) throw pcError("PC_SCAN_FAILED", `cannot match ${p.ecosystem} package ${p.name} ${p.version}: ${e.message}`, e);
        throw e;
      }
      for (const f of found) {
        out.push({
          id: f.id,
          aliases: [...new Set([...f.aliases, ...(f.related ?? [])])].filter((a) => a !== f.id),
          package: q.name,
          ...(q.name !== p.name ? { installedPackage: p.name } : {}),
          ecosystem: q.ecosystem,
          installed: q.version,
          ...(f.fixed !== undefined ? { fixed: f.fixed } : {}),
          severity: f.severity.score !== undefined ? { level: f.severity.level, score: f.severity.score } : { level: f.severity.level },
          sourceFile: p.sourceFile,
        });
      }
    }
    return dedupeFindings(out);
  }
}

interface Query {
  readonly ecosystem: string;
  readonly name: string;
  readonly version: string;
}

/** The question a package asks the database, or undefined when its ecosystem cannot be matched. */
export function queryOf(p: InventoryPackage, inventory: Pick<Inventory, "os">): Query | undefined {
  const os = inventory.os;
  switch (p.ecosystem) {
    case "Debian": {
      if (os !== undefined && os.id !== "debian") return undefined;
      const major = os?.versionId !== undefined ? /^(\d+)/.exec(os.versionId)?.[1] : undefined;
      const src = p.sourcePackage ?? { name: p.name, version: p.version };
      return { ecosystem: major !== undefined ? `Debian:${major}` : "Debian", name: src.name, version: src.version };
    }
    case "Alpine": {
      if (os !== undefined && os.id !== "alpine") return undefined;
      const minor = os?.versionId !== undefined ? /^(\d+\.\d+)/.exec(os.versionId)?.[1] : undefined;
      // apk origins are source packages; Alpine's records name them at the binary's version.
      return { ecosystem: minor !== undefined ? `Alpine:v${minor}` : "Alpine", name: p.sourcePackage?.name ?? p.name, version: p.version };
    }
    case "npm":
      return { ecosystem: "npm", name: p.name, version: p.version };
    case "PyPI":
      return { ecosystem: "PyPI", name: p.name, version: p.version };
  }
}

export function summaryOf(inventory: Inventory): InventorySummary {
  const packages: Record<string, number> = {};
  for (const p of inventory.packages) packages[p.ecosystem] = (packages[p.ecosystem] ?? 0) + 1;
  const os = inventory.os;
  return {
    packages,
    total: inventory.packages.length,
    ...(os !== undefined ? { os: os.versionId !== undefined ? `${os.id} ${os.versionId}` : os.id } : {}),
  };
}
