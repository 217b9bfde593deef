/**
 * What the vulnerability database import reads, and the limits it reads under: the
 * `*.json` files under a directory (here) or the entries of a zip (vulndb-zip.ts),
 * never written to disk.
 *
 * A directory is walked in name order, hidden entries (`.git`) skipped. Only `*.json`
 * files are read, opened without following a link and checked to be the regular file
 * that was listed. A symbolic link is never followed: one that leads out of the directory
 * is refused (PC_SCAN_ARCHIVE_UNSAFE); one that stays inside is skipped, since what it
 * points to is read where it is. A `*.json` that is not a regular file (a fifo, a device)
 * is refused. More files than `maxEntries`, a file larger than `maxEntryBytes`, files
 * larger than `maxTotalBytes` together: PC_SCAN_FILE_TOO_LARGE. Text that is not UTF-8:
 * PC_SCAN_VULNDB_INVALID.
 *
 * The digest of a directory is the SHA-256 of the sorted list of relative paths, each
 * with the SHA-256 of its file.
 */
import { createHash } from "node:crypto";
import { constants, type Stats } from "node:fs";
import { lstat, open, opendir, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { pcError, PortcullisError } from "../../core/index.js";

export interface VulnDbArchiveLimits {
  /** Files (zip entries, or `*.json` files of a directory) per import. */
  readonly maxEntries: number;
  /** Uncompressed size of one file. */
  readonly maxEntryBytes: number;
  /** Uncompressed size of all files of an import together. */
  readonly maxTotalBytes: number;
  /** Uncompressed / compressed size of a zip entry, for entries above `ratioFloorBytes`. */
  readonly maxRatio: number;
  readonly ratioFloorBytes: number;
}

/**
 * Generous for osv.dev's exports (its largest ecosystem zip holds some 10^5 records of a
 * few KiB each, compressed 4–10×), tight for anything built to exhaust memory or disk.
 */
export const DEFAULT_VULNDB_LIMITS: VulnDbArchiveLimits = Object.freeze({
  maxEntries: 2_000_000,
  maxEntryBytes: 4 * 1024 * 1024,
  maxTotalBytes: 8 * 1024 * 1024 * 1024,
  maxRatio: 100,
  ratioFloorBytes: 64 * 1024,
});

/** One file read from an input. */
export interface VulnDbInputFile {
  /** Where it came from, for messages: `DSA-5532-1.json (in /x/all.zip)`. */
  readonly location: string;
  readonly text: string;
}

/** Counters shared by the inputs of one import, so that the limits hold for the whole. */
export interface VulnDbReadTotals {
  entries: number;
  bytes: number;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

export function where(name: string, input: string): string {
  return `${name} (in ${input})`;
}

export function decode(bytes: Buffer, at: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: not UTF-8 text`);
  }
}

export function countEntry(totals: VulnDbReadTotals, limits: VulnDbArchiveLimits, size: number, at: string): void {
  totals.entries++;
  if (totals.entries > limits.maxEntries) {
    throw pcError("PC_SCAN_FILE_TOO_LARGE", `${at}: more than ${limits.maxEntries} files in one import`);
  }
  if (size > limits.maxEntryBytes) {
    throw pcError("PC_SCAN_FILE_TOO_LARGE", `${at}: ${size} bytes, more than the ${limits.maxEntryBytes} read per file`);
  }
  totals.bytes += size;
  if (totals.bytes > limits.maxTotalBytes) {
    throw pcError("PC_SCAN_FILE_TOO_LARGE", `${at}: the files of this import exceed ${limits.maxTotalBytes} bytes together`);
  }
}

/** Why an entry name is unsafe, or undefined. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.length === 0) return "an empty name";
  if (name.includes("\\")) return "a backslash in its name";
  if (/[\u0000-\u001f\u007f]/.test(name)) return "a control character in its name";
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) return "an absolute path";
  if (name.split("/").includes("..")) return "a '..' segment";
  return undefined;
}

/** A printable form of an entry name for messages. */
export function shown(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

async function readRegularFile(path: string, expected: Stats, limit: number, at: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: cannot be read`, e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.ino !== expected.ino || st.dev !== expected.dev) {
      throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: changed while it was read`);
    }
    if (st.size > limit) throw pcError("PC_SCAN_FILE_TOO_LARGE", `${at}: ${st.size} bytes, more than the ${limit} read per file`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    if (off !== buf.length) throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: changed while it was read`);
    return buf;
  } finally {
    await fh.close();
  }
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The `*.json` files under a directory, recursively, in name order. */
export async function* readDirectoryInput(
  input: string,
  limits: VulnDbArchiveLimits,
  totals: VulnDbReadTotals,
  digest: (hex: string) => void,
): AsyncGenerator<VulnDbInputFile> {
  let root: string;
  try {
    root = await realpath(input);
  } catch (e) {
    throw pcError("PC_SCAN_VULNDB_INVALID", `${input}: cannot be read`, e);
  }
  const hash = createHash("sha256");
  async function* walk(dir: string): AsyncGenerator<VulnDbInputFile> {
    let names: string[];
    try {
      // A folder swapped for a link after it was listed must not take the walk outside.
      if (!inside(root, await realpath(dir))) {
        throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${relative(root, dir)} (in ${input}): leads out of the directory`);
      }
      const d = await opendir(dir);
      names = [];
      for await (const ent of d) names.push(ent.name);
    } catch (e) {
      if (e instanceof PortcullisError) throw e;
      throw pcError("PC_SCAN_VULNDB_INVALID", `${relative(root, dir) || "."} (in ${input}): cannot be read`, e);
    }
    names.sort();
    for (const name of names) {
      if (name.startsWith(".")) continue;
      const path = join(dir, name);
      const rel = relative(root, path).split(sep).join("/");
      const at = where(shown(rel), input);
      let st: Stats;
      try {
        st = await lstat(path);
      } catch (e) {
        throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: cannot be read`, e);
      }
      if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = await realpath(path);
        } catch {
          throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: a symbolic link that leads nowhere`);
        }
        if (!inside(root, target)) throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: a symbolic link that leads out of the directory`);
        continue;
      }
      if (st.isDirectory()) {
        yield* walk(path);
        continue;
      }
      if (!name.toLowerCase().endsWith(".json")) continue;
      if (!st.isFile()) throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: not a regular file`);
      countEntry(totals, limits, st.size, at);
      const bytes = await readRegularFile(path, st, limits.maxEntryBytes, at);
      hash.update(`${rel}\0${createHash("sha256").update(bytes).digest("hex")}\n`);
      yield { location: at, text: decode(bytes, at) };
    }
  }
  yield* walk(root);
  digest(hash.digest("hex"));
}

/** Whether an input is a directory (else it is read as a zip). */
export async function isDirectoryInput(input: string): Promise<boolean> {
  try {
    return (await stat(input)).isDirectory();
  } catch (e) {
    throw pcError("PC_SCAN_VULNDB_INVALID", `${input}: cannot be read`, e);
  }
}
