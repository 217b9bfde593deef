import { createHash } from "node:crypto";
import type { Store } from "./store.js";

/** Hex SHA-256 of a stored text: what a version's checksum covers. */
export const sha256Hex = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** A row of a versioned policy document (RBAC, admission policies, monitoring rules). */
export interface VersionRow {
  readonly version: number;
  readonly sha256: string;
  readonly author: string;
  readonly createdAt: number;
  readonly message: string;
  readonly rollbackOf: number | null;
}

/** A version as `history` lists it. */
export interface VersionHistoryEntry {
  readonly version: number;
  readonly author: string;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly message: string;
  /** Hex SHA-256 of the version as stored. */
  readonly sha256: string;
  readonly rollbackOf: number | null;
}

export function historyEntryOf(r: VersionRow): VersionHistoryEntry {
  return {
    version: r.version,
    author: r.author,
    createdAt: new Date(r.createdAt).toISOString(),
    message: r.message,
    sha256: r.sha256,
    rollbackOf: r.rollbackOf,
  };
}

export interface VersionedSnapshotOptions<R extends VersionRow, S> {
  /** The highest version (the one in force), or undefined when none is stored. */
  readonly latest: () => R | undefined;
  /** The stored text the row's checksum covers. */
  readonly content: (r: R) => string;
  /** Parses a version into what callers use; a throw makes the version unusable. */
  readonly build: (r: R) => S;
  /** The error every failure becomes (the domain's "unavailable" code). */
  readonly unavailable: (detail: string, cause?: unknown) => Error;
  /** What the document is called in those errors ("admission policy", "monitoring rules"). */
  readonly what: string;
}

/**
 * The version in force of a versioned policy document, parsed once per change. Versions
 * change through the document's service (which calls `invalidate`) or through another
 * connection to the database (which moves SQLite's data_version): only then is the row
 * read again. No version, an unreadable store, a version that fails its checksum or no
 * longer parses: `unavailable`, never a stale or unchecked document.
 */
export class VersionedSnapshot<R extends VersionRow, S> {
  private value: S | undefined;
  private version = -1;
  private sha256 = "";
  private dataVersion = -1;

  constructor(
    private readonly store: Store,
    private readonly opts: VersionedSnapshotOptions<R, S>,
  ) {}

  current(): S {
    const { what, unavailable } = this.opts;
    let dataVersion: number;
    let latest: R | undefined;
    try {
      dataVersion = this.store.dataVersion();
      if (this.value !== undefined && this.dataVersion === dataVersion) return this.value;
      latest = this.opts.latest();
    } catch (e) {
      throw unavailable(`the ${what} store is unreadable`, e);
    }
    if (latest === undefined) throw unavailable(`no ${what} version is stored`);
    const sum = sha256Hex(this.opts.content(latest));
    if (sum !== latest.sha256) throw unavailable(`${what} version ${latest.version} fails its checksum`);
    if (this.value !== undefined && this.version === latest.version && this.sha256 === sum) {
      this.dataVersion = dataVersion;
      return this.value;
    }
    let value: S;
    try {
      value = this.opts.build(latest);
    } catch (e) {
      throw unavailable(`${what} version ${latest.version} does not parse`, e);
    }
    this.value = value;
    this.version = latest.version;
    this.sha256 = sum;
    this.dataVersion = dataVersion;
    return value;
  }

  /** Drops the parsed version: the next `current()` reads the row again. */
  invalidate(): void {
    this.value = undefined;
  }
}
