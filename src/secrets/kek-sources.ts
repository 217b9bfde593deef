/**
 * Where the key-encryption keys live. The keyring is one JSON document:
 *
 *   {"format":1,"active":"kek-20260101-0a1b2c3d","keys":[{"id":"…","key":"<base64url, 32 bytes>","createdAt":"<ISO 8601>"}]}
 *
 * - FileKekSource: a regular file (never a symbolic link) of mode exactly 0600 in a
 *   directory of mode 0700, by default `<data dir>/keys/keyring.json`; written
 *   atomically (temp file, fsync, rename, fsync of the directory).
 * - EnvKekSource: the same document in an environment variable, read once and then
 *   removed from the environment; it cannot be changed from here.
 *
 * Errors name the source and the problem, never a key.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Clock } from "../core/index.js";
import { parseStrictJson, pcError } from "../core/index.js";
import { writeFileAtomic } from "../store/index.js";
import type { Kek, KekSource } from "./types.js";

export const KEYRING_FORMAT = 1;
export const KEK_BYTES = 32;
/** KEK ids: `kek-<yyyymmdd>-<8 hex>` as made here, or any short token of this shape. */
export const KEK_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const DEFAULT_KEYRING_VARIABLE = "PORTCULLIS_KEYRING";

export interface KeyringDocument {
  readonly active: string;
  readonly keys: readonly Kek[];
}

/** `<data dir>/keys/keyring.json`. */
export function keyringPath(dataDir: string): string {
  return join(dataDir, "keys", "keyring.json");
}

/** A new KEK, `kek-<yyyymmdd>-<8 hex>`, from node:crypto. */
export function newKek(clock: Clock): Kek {
  const now = clock.now();
  const day = now.toISOString().slice(0, 10).replaceAll("-", "");
  return { id: `kek-${day}-${randomBytes(4).toString("hex")}`, key: randomBytes(KEK_BYTES), createdAt: now.toISOString() };
}

/** Parses and checks a keyring document; `where` names the source in errors. */
export function parseKeyring(text: string, where: string): KeyringDocument {
  const bad = (problem: string) => pcError("PC_SECRETS_KEYRING_INVALID", `${where}: ${problem}`);
  let raw: unknown;
  try {
    raw = parseStrictJson(text);
  } catch {
    throw bad("not valid JSON");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("not a JSON object");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!["format", "active", "keys"].includes(k)) throw bad(`unknown member ${JSON.stringify(k).slice(0, 40)}`);
  if (o.format !== KEYRING_FORMAT) throw bad(`format must be ${KEYRING_FORMAT}`);
  if (typeof o.active !== "string") throw bad("active must be a string");
  if (!Array.isArray(o.keys) || o.keys.length === 0) throw bad("keys must be a non-empty list");
  const keys: Kek[] = [];
  o.keys.forEach((entry: unknown, i: number) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad(`keys[${i}] is not an object`);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!["id", "key", "createdAt"].includes(k)) throw bad(`keys[${i}] has an unknown member ${JSON.stringify(k).slice(0, 40)}`);
    if (typeof e.id !== "string" || !KEK_ID_RE.test(e.id)) throw bad(`keys[${i}].id is not a valid KEK id`);
    if (typeof e.createdAt !== "string" || Number.isNaN(Date.parse(e.createdAt))) throw bad(`keys[${i}].createdAt is not a date`);
    if (typeof e.key !== "string" || !/^[A-Za-z0-9_-]+$/.test(e.key)) throw bad(`keys[${i}].key is not base64url`);
    const key = Buffer.from(e.key, "base64url");
    if (key.length !== KEK_BYTES || key.toString("base64url") !== e.key) {
      key.fill(0);
      throw bad(`keys[${i}].key is not ${KEK_BYTES} bytes`);
    }
    if (keys.some((k) => k.id === e.id)) throw bad(`keys[${i}].id is listed twice`);
    keys.push({ id: e.id, key, createdAt: e.createdAt });
  });
  if (!keys.some((k) => k.id === o.active)) throw bad("active names no key of the keyring");
  return { active: o.active, keys };
}

export function serializeKeyring(doc: KeyringDocument): string {
  const keys = doc.keys.map((k) => ({ id: k.id, key: Buffer.from(k.key).toString("base64url"), createdAt: k.createdAt }));
  return `${JSON.stringify({ format: KEYRING_FORMAT, active: doc.active, keys }, null, 2)}\n`;
}

/** The keyring as a 0600 file in a 0700 directory. */
export class FileKekSource implements KekSource {
  readonly writable = true;
  readonly description: string;

  constructor(readonly path: string) {
    this.description = `file ${path}`;
  }

  load(): KeyringDocument {
    const bad = (problem: string) => pcError("PC_SECRETS_KEYRING_INVALID", `${this.description}: ${problem}`);
    let fd: number;
    try {
      // O_NOFOLLOW: a symbolic link in place of the file is refused, not followed.
      fd = openSync(this.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw pcError("PC_SECRETS_KEYRING_MISSING", this.description);
      if (code === "ELOOP") throw bad("is a symbolic link");
      throw bad(`cannot be opened (${code ?? "error"})`);
    }
    let text: string;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw bad("is not a regular file");
      if ((st.mode & 0o777) !== 0o600) throw bad(`mode is ${(st.mode & 0o777).toString(8).padStart(4, "0")}, must be 0600`);
      if (st.size > 1024 * 1024) throw bad("is too large");
      const dirMode = statSync(dirname(this.path)).mode & 0o777;
      if ((dirMode & 0o077) !== 0) throw bad(`directory mode is ${dirMode.toString(8).padStart(4, "0")}, must be 0700`);
      text = readFileSync(fd, "utf8");
    } catch (e) {
      if (e instanceof Error && (e as { code?: unknown }).code === "PC_SECRETS_KEYRING_INVALID") throw e;
      throw bad(`cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})`);
    } finally {
      closeSync(fd);
    }
    return parseKeyring(text, this.description);
  }

  save(doc: KeyringDocument): void {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path, serializeKeyring(doc), 0o600);
    // The rename is durable only once the directory entry is.
    const dfd = openSync(dir, constants.O_RDONLY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}

/**
 * The keyring from an environment variable, read once at construction; the variable is
 * then removed from `env`, so that no child process inherits it.
 */
export class EnvKekSource implements KekSource {
  readonly writable = false;
  readonly description: string;
  private readonly text: string | undefined;

  constructor(variable: string = DEFAULT_KEYRING_VARIABLE, env: NodeJS.ProcessEnv = process.env) {
    this.description = `environment variable ${variable}`;
    this.text = env[variable];
    delete env[variable];
  }

  load(): KeyringDocument {
    if (this.text === undefined || this.text.trim() === "") throw pcError("PC_SECRETS_KEYRING_MISSING", this.description);
    return parseKeyring(this.text, this.description);
  }

  save(_doc?: KeyringDocument): void {
    throw pcError("PC_SECRETS_KEYRING_READONLY", `the keyring comes from the ${this.description}`);
  }
}

/** Creates the keyring file with a first KEK (init); refuses an existing file. */
export function createKeyringFile(path: string, clock: Clock): Kek {
  if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) throw pcError("PC_SECRETS_KEYRING_INVALID", `file ${path}: already exists`);
  const kek = newKek(clock);
  new FileKekSource(path).save({ active: kek.id, keys: [kek] });
  return kek;
}

/** The configured source: the data dir's file, or the environment variable. */
export function kekSourceFor(kind: "file" | "env", dataDir: string, env: NodeJS.ProcessEnv = process.env): KekSource {
  return kind === "env" ? new EnvKekSource(DEFAULT_KEYRING_VARIABLE, env) : new FileKekSource(keyringPath(dataDir));
}
