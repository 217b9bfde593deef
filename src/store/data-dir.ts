import { closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { pcError } from "../core/index.js";

/**
 * The data directory: 0700, key files 0600, and a marker that names the format it was
 * written in so that an older binary refuses a newer directory instead of damaging it.
 */
export const DATA_DIR_FORMAT = 1;
const MARKER = "portcullis-data.json";

export interface DataDirMarker {
  readonly format: number;
  readonly createdAt: string;
  readonly trustDomain: string;
}

/** Creates the directory, refusing one that already exists in any form. */
export function createDataDir(dir: string, marker: Omit<DataDirMarker, "format">): void {
  if (existsSync(dir)) throw pcError("PC_STORE_DATA_DIR_EXISTS", dir);
  mkdirSync(dirname(dir), { recursive: true });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") throw pcError("PC_STORE_DATA_DIR_EXISTS", dir);
    throw e;
  }
  writeFileAtomic(join(dir, MARKER), `${JSON.stringify({ format: DATA_DIR_FORMAT, ...marker }, null, 2)}\n`, 0o600);
}

/** Opens an existing directory after checking its format and permissions. */
export function openDataDir(dir: string): DataDirMarker {
  if (!existsSync(join(dir, MARKER))) throw pcError("PC_STORE_DATA_DIR_MISSING", `${dir} (run portcullis init)`);
  const st = statSync(dir);
  if ((st.mode & 0o077) !== 0) throw pcError("PC_STORE_DATA_DIR_PERMISSIONS", `${dir} must be 0700`);
  let marker: DataDirMarker;
  try {
    marker = JSON.parse(readFileSync(join(dir, MARKER), "utf8")) as DataDirMarker;
  } catch (e) {
    throw pcError("PC_STORE_CORRUPT", `${MARKER} is unreadable`, e);
  }
  if (typeof marker !== "object" || marker === null || typeof marker.format !== "number" || !Number.isInteger(marker.format)) {
    throw pcError("PC_STORE_CORRUPT", `${MARKER} has no format`);
  }
  if (marker.format > DATA_DIR_FORMAT) {
    throw pcError(
      "PC_STORE_DATA_DIR_TOO_NEW",
      `format ${marker.format}, this binary reads up to ${DATA_DIR_FORMAT}`,
    );
  }
  return marker;
}

/** Writes a file atomically (temp file, fsync, rename) with the given mode. */
export function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Writes a private key file, 0600. */
export function writeKeyFile(path: string, pem: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, pem, 0o600);
}

/** Reads a private key file, refusing one readable by group or others. */
export function readKeyFile(path: string): string {
  const st = statSync(path);
  if ((st.mode & 0o077) !== 0) throw pcError("PC_STORE_DATA_DIR_PERMISSIONS", `${path} must be 0600`);
  return readFileSync(path, "utf8");
}
