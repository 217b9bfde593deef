/**
 * Scan results cached by (image id, database version): a hit costs no export and no scan;
 * a new database version (a new import, a newer Trivy database) misses, so a verdict is
 * never given from an older database than the one in force.
 *
 * Two levels: the `scan_results` table (shared by every process of the data directory and
 * kept across restarts; an import's rows go when the import is purged) and a small
 * in-memory map in front of it (least recently used out first), so a repeated verdict
 * parses nothing. A stored result that no longer parses, or that names another image,
 * scanner or database, is a miss and is scanned again.
 */
import { systemClock, type Clock } from "../../core/index.js";
import type { Store } from "../../store/index.js";
import type { Scanner, ScanResult } from "./scanner.js";

export interface ScanCacheOptions {
  /** Results kept in memory (default 256). */
  readonly memoryEntries?: number;
  readonly clock?: Clock;
}

export interface CachedScan {
  readonly result: ScanResult;
  /** True when the result came from the cache (no scan ran). */
  readonly cached: boolean;
}

const DEFAULT_MEMORY = 256;

export class ScanCache {
  private readonly memory = new Map<string, ScanResult>();
  private readonly memoryEntries: number;
  private readonly clock: Clock;

  constructor(
    private readonly store: Store,
    opts: ScanCacheOptions = {},
  ) {
    this.memoryEntries = opts.memoryEntries ?? DEFAULT_MEMORY;
    this.clock = opts.clock ?? systemClock;
  }

  /** The cached result of `imageId` by `scanner` against database `cacheKey`, if any. */
  get(scanner: Scanner["kind"], imageId: string, cacheKey: number, databaseVersion: string): ScanResult | undefined {
    const key = memoryKey(imageId, cacheKey);
    const hot = this.memory.get(key);
    if (hot !== undefined && fits(hot, scanner, imageId, databaseVersion)) {
      this.memory.delete(key);
      this.memory.set(key, hot);
      return hot;
    }
    const row = this.store.vulndb.scanResult(imageId, cacheKey);
    if (row === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.result);
    } catch {
      return undefined;
    }
    if (!isResultShape(parsed) || !fits(parsed, scanner, imageId, databaseVersion)) return undefined;
    this.remember(key, parsed);
    return parsed;
  }

  put(result: ScanResult, cacheKey: number): void {
    this.store.vulndb.putScanResult(result.imageId, cacheKey, JSON.stringify(result), this.clock.now().getTime());
    this.remember(memoryKey(result.imageId, cacheKey), result);
  }

  /**
   * The scan of `imageId` by `scanner`: from the cache when the database in force has a
   * result for it, else scanned now and stored.
   */
  async scan(scanner: Scanner, imageId: string, signal: AbortSignal): Promise<CachedScan> {
    const db = await scanner.database(signal);
    if (db.cacheKey !== undefined) {
      const hit = this.get(scanner.kind, imageId, db.cacheKey, db.version);
      if (hit !== undefined) return { result: hit, cached: true };
    }
    const result = await scanner.scan(imageId, signal);
    // The database may have switched during the scan: file the result only under the one it used.
    if (db.cacheKey !== undefined && result.database.version === db.version) this.put(result, db.cacheKey);
    return { result, cached: false };
  }

  private remember(key: string, result: ScanResult): void {
    deepFreeze(result);
    this.memory.delete(key);
    this.memory.set(key, result);
    while (this.memory.size > this.memoryEntries) {
      const oldest = this.memory.keys().next();
      if (oldest.done === true) break;
      this.memory.delete(oldest.value);
    }
  }
}

/** Results served from memory are shared between decisions: nothing may change them. */
function deepFreeze(v: unknown): void {
  if (typeof v !== "object" || v === null || Object.isFrozen(v)) return;
  Object.freeze(v);
  for (const x of Object.values(v)) deepFreeze(x);
}

const memoryKey = (imageId: string, cacheKey: number) => `${cacheKey}\0${imageId}`;

function fits(r: ScanResult, scanner: Scanner["kind"], imageId: string, databaseVersion: string): boolean {
  return r.scanner === scanner && r.imageId === imageId && r.database.version === databaseVersion;
}

function isResultShape(v: unknown): v is ScanResult {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  const db = r.database as Record<string, unknown> | undefined;
  return (
    typeof r.imageId === "string" &&
    (r.scanner === "builtin" || r.scanner === "trivy") &&
    Array.isArray(r.findings) &&
    typeof r.inventory === "object" && r.inventory !== null &&
    typeof db === "object" && db !== null && typeof db.version === "string"
  );
}

/** What the admission chain calls (its ScanHook): the scan of an image through the cache. */
export interface CachedScanHook {
  readonly timeoutMs?: number;
  scan(imageId: string, signal: AbortSignal): Promise<ScanResult>;
}

/**
 * The scan hook of a scanner behind a cache; `timeoutMs` bounds each admission's wait;
 * `onCache` hears of each verdict whether it came from the cache (a hit) or a scan.
 */
export function cachedScanHook(scanner: Scanner, cache: ScanCache, timeoutMs?: number, onCache?: (hit: boolean) => void): CachedScanHook {
  return {
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    scan: async (imageId, signal) => {
      const r = await cache.scan(scanner, imageId, signal);
      onCache?.(r.cached);
      return r.result;
    },
  };
}
