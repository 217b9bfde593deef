/**
 * The secret files of the gateway's containers, on an in-memory filesystem of the
 * gateway's host: `<tmpfsRoot>/<gatewayId>/<containerName>/<relative path>`, bind-mounted
 * read-only at /run/secrets in that one container.
 *
 * - The root is a tmpfs (or ramfs): when `tmpfsRoot` is not one, a tmpfs is mounted
 *   there (mode 0700, nosuid, nodev, noexec, 64 MiB). A value is never written to a disk
 *   filesystem: when no tmpfs can be had, every write fails with
 *   PC_SECRETS_TMPFS_UNAVAILABLE. `ensureReady` runs on the first write only, so a
 *   gateway without secret deployments needs no right to mount anything.
 * - The root and the gateway's directory are directories of this process's user (not
 *   symlinks), mode 0700.
 * - A container's directory is made fresh (a directory that exists is refused): 0700,
 *   each file 0400 (created with O_CREAT|O_EXCL|O_NOFOLLOW, so never through a link),
 *   nested directories 0500; everything is owned by the container's uid:gid, given to it
 *   only once every file is written (until then only this process can enter it). Every
 *   relative path is checked again with deploy's rule for secret paths. Each value
 *   buffer is zeroed once written, or when the write is refused.
 * - A failed write removes the directory it made and throws PC_SECRETS_INJECTION_FAILED;
 *   no message names a value.
 *
 * Container names are deterministic, so the directory is made before the container is
 * created, and found again by name to be removed (`remove`, `sweep`).
 */
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { chmod, chown, lstat, mkdir, open, readdir, rm, statfs } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize } from "node:path";
import { isPortcullisError, pcError } from "../core/index.js";
import { SECRETS_MOUNT_PATH, secretPathReason } from "../deploy/index.js";
import type { SecretFile } from "../secrets/index.js";

/** Where the per-gateway secret roots live unless the configuration names another place. */
export const DEFAULT_SECRETS_TMPFS_ROOT = "/run/portcullis/secrets";
export const TMPFS_MAGIC = 0x01021994;
export const RAMFS_MAGIC = 0x858458f6;
/** The options of the tmpfs mounted at the root when it is not one already. */
export const SECRETS_TMPFS_OPTIONS = "mode=0700,nosuid,nodev,noexec,size=64m";

const CONTAINER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const GATEWAY_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_ID = 2_147_483_647;

export interface SecretFilesOptions {
  /** The in-memory filesystem's mount point (config.secrets.tmpfsRoot). */
  readonly tmpfsRoot: string;
  /** This gateway's id: its directory below the root. */
  readonly gatewayId: string;
  /** Mounts a tmpfs at a path; defaults to `mount -t tmpfs` (needs the right to mount). */
  readonly mountTmpfs?: (path: string) => Promise<void>;
}

/** `mount -t tmpfs -o SECRETS_TMPFS_OPTIONS tmpfs <path>`, no shell; argv holds no value. */
export function mountTmpfs(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("mount", ["-t", "tmpfs", "-o", SECRETS_TMPFS_OPTIONS, "tmpfs", path], { timeout: 10_000 }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(`mount failed: ${String(stderr).trim().slice(0, 200) || error.message}`));
    });
  });
}

/** Whether a statfs type is an in-memory filesystem. */
export function isMemoryFs(type: number | bigint): boolean {
  const t = Number(type);
  return t === TMPFS_MAGIC || t === RAMFS_MAGIC;
}

function unavailable(detail: string, cause?: unknown): Error {
  return pcError("PC_SECRETS_TMPFS_UNAVAILABLE", detail, cause);
}

function injectionFailed(detail: string, cause?: unknown): Error {
  return pcError("PC_SECRETS_INJECTION_FAILED", detail, cause);
}

function checkContainerName(name: string): string {
  if (typeof name !== "string" || !CONTAINER_NAME_RE.test(name)) throw injectionFailed("the container name is not valid");
  return name;
}

/** Why a relative secret path is refused, or undefined: the rule of deploy's secret paths. */
export function relativePathReason(relativePath: string): string | undefined {
  if (typeof relativePath !== "string" || relativePath === "") return "is empty";
  if (relativePath.startsWith("/")) return "must be relative";
  return secretPathReason(`${SECRETS_MOUNT_PATH}/${relativePath}`);
}

export class SecretFiles {
  /** `<tmpfsRoot>/<gatewayId>`: this gateway's directory. */
  readonly root: string;
  private readonly tmpfsRoot: string;
  private readonly mount: (path: string) => Promise<void>;
  private ready: Promise<void> | undefined;

  constructor(options: SecretFilesOptions) {
    const base = options.tmpfsRoot;
    if (typeof base !== "string" || !isAbsolute(base) || base.includes("\0") || base.split("/").includes("..") || normalize(base) === "/") {
      throw pcError("PC_CONFIG_INVALID", "secrets.tmpfsRoot must be an absolute path other than / (no '..')");
    }
    if (typeof options.gatewayId !== "string" || !GATEWAY_ID_RE.test(options.gatewayId)) {
      throw pcError("PC_CONFIG_INVALID", "the gateway id is not valid for a directory name");
    }
    this.tmpfsRoot = normalize(base).replace(/\/+$/, "");
    this.root = join(this.tmpfsRoot, options.gatewayId);
    this.mount = options.mountTmpfs ?? mountTmpfs;
  }

  /** The directory of a container's secret files (whether or not it exists). */
  dirOf(containerName: string): string {
    return join(this.root, checkContainerName(containerName));
  }

  /**
   * Makes the root an in-memory filesystem (mounting one when needed) and this gateway's
   * directory in it; checks both. Once it succeeded it is not done again; a failure is
   * not kept, so a later call tries again.
   */
  ensureReady(): Promise<void> {
    this.ready ??= this.prepare().catch((e: unknown) => {
      this.ready = undefined;
      throw isPortcullisError(e) ? e : unavailable(`${this.tmpfsRoot} could not be prepared`, e);
    });
    return this.ready;
  }

  private async prepare(): Promise<void> {
    await mkdirs(this.tmpfsRoot).catch((e: unknown) => {
      throw unavailable(`${this.tmpfsRoot} could not be created`, e);
    });
    if (!isMemoryFs((await statfs(this.tmpfsRoot)).type)) {
      await this.mount(this.tmpfsRoot).catch((e: unknown) => {
        throw unavailable(`${this.tmpfsRoot} is not an in-memory filesystem and one could not be mounted there`, e);
      });
      if (!isMemoryFs((await statfs(this.tmpfsRoot)).type)) throw unavailable(`${this.tmpfsRoot} is still not an in-memory filesystem after the mount`);
    }
    // The root is never changed, only checked: it may be a directory the operator made.
    const top = await this.ownDirectory(this.tmpfsRoot, false);
    await mkdir(this.root, { mode: 0o700 }).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw unavailable(`${this.root} could not be created`, e);
    });
    const mine = await this.ownDirectory(this.root, true);
    // The gateway's directory is on the same filesystem as the root: nothing is mounted over it.
    if (mine.dev !== top.dev || !isMemoryFs((await statfs(this.root)).type)) throw unavailable(`${this.root} is not on the in-memory filesystem of ${this.tmpfsRoot}`);
  }

  /** Checks that `path` is a directory of this process's user, not a link, mode 0700 (set to it when `fix`). */
  private async ownDirectory(path: string, fix: boolean): Promise<{ dev: number }> {
    const st = await lstat(path);
    if (st.isSymbolicLink() || !st.isDirectory()) throw unavailable(`${path} is not a directory`);
    const uid = process.getuid?.();
    if (uid === undefined || st.uid !== uid) throw unavailable(`${path} is not owned by the gateway's user`);
    if ((st.mode & 0o7777) !== 0o700) {
      if (!fix) throw unavailable(`${path} is not mode 0700`);
      await chmod(path, 0o700);
      const again = await lstat(path);
      if ((again.mode & 0o7777) !== 0o700 || again.isSymbolicLink()) throw unavailable(`${path} is not mode 0700`);
    }
    return { dev: st.dev };
  }

  /**
   * Writes a container's secret files; returns the directory to mount at /run/secrets.
   * Every value buffer is zeroed before this returns or throws.
   */
  async write(containerName: string, uid: number, gid: number, files: readonly SecretFile[]): Promise<string> {
    let made: string | undefined;
    try {
      const name = checkContainerName(containerName);
      for (const [field, id] of [["uid", uid], ["gid", gid]] as const) {
        if (!Number.isSafeInteger(id) || id < 1 || id > MAX_ID) throw injectionFailed(`the ${field} must be a positive integer (never root)`);
      }
      const rels = files.map((f, i) => {
        const why = relativePathReason(f.relativePath);
        if (why !== undefined) throw injectionFailed(`secret file ${i}: the path ${JSON.stringify(String(f.relativePath).slice(0, 200))} ${why}`);
        if (!Buffer.isBuffer(f.value)) throw injectionFailed(`secret file ${i}: the value is not a buffer`);
        return f.relativePath;
      });
      rels.forEach((p, i) => {
        const j = rels.findIndex((q, k) => k < i && (q === p || q.startsWith(`${p}/`) || p.startsWith(`${q}/`)));
        if (j >= 0) throw injectionFailed(`secret file ${i}: the path ${p} collides with ${rels[j]}`);
      });
      await this.ensureReady();
      const dir = join(this.root, name);
      try {
        await mkdir(dir, { mode: 0o700 });
      } catch (e) {
        throw injectionFailed(`the secret directory of ${name} ${(e as NodeJS.ErrnoException).code === "EEXIST" ? "exists already" : "could not be created"}`, e);
      }
      made = dir;
      const subdirs = new Set<string>();
      for (const f of files) {
        let rel = "";
        for (const seg of f.relativePath.split("/").slice(0, -1)) {
          rel = rel === "" ? seg : `${rel}/${seg}`;
          if (subdirs.has(rel)) continue;
          await mkdir(join(dir, rel), { mode: 0o700 });
          subdirs.add(rel);
        }
        await writeOne(join(dir, f.relativePath), f.value, uid, gid);
      }
      // Deepest first: a directory is closed (0500) only after what it holds.
      for (const rel of [...subdirs].sort((a, b) => b.split("/").length - a.split("/").length)) {
        const p = join(dir, rel);
        await chown(p, uid, gid);
        await chmod(p, 0o500);
      }
      await chown(dir, uid, gid);
      await chmod(dir, 0o700);
      made = undefined;
      return dir;
    } catch (e) {
      if (made !== undefined) await rm(made, { recursive: true, force: true }).catch(() => undefined);
      if (isPortcullisError(e)) throw e;
      throw injectionFailed(`the secret files of ${String(containerName).slice(0, 128)} could not be written`, e);
    } finally {
      for (const f of files) if (Buffer.isBuffer(f.value)) f.value.fill(0);
    }
  }

  /** Whether a container's directory exists (a real directory, not a link). */
  async has(containerName: string): Promise<boolean> {
    const st = await lstat(this.dirOf(containerName)).catch(() => undefined);
    return st !== undefined && st.isDirectory() && !st.isSymbolicLink();
  }

  /** Removes a container's directory and everything in it (a link is removed, not followed). */
  async remove(containerName: string): Promise<void> {
    await rm(this.dirOf(containerName), { recursive: true, force: true });
  }

  /** The container names that have a directory; none when the root was never made. */
  async list(): Promise<string[]> {
    try {
      return (await readdir(this.root)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }

  /**
   * Removes the directory of every container for which `isLive` says no (an entry that is
   * not a container name goes too); returns what was removed.
   */
  async sweep(isLive: (containerName: string) => Promise<boolean>): Promise<string[]> {
    const removed: string[] = [];
    for (const entry of await this.list()) {
      if (CONTAINER_NAME_RE.test(entry) && (await isLive(entry))) continue;
      await rm(join(this.root, entry), { recursive: true, force: true });
      removed.push(entry);
    }
    return removed;
  }
}

/**
 * `mkdir -p` with mode 0700, one level at a time. (Node's recursive mkdir never returns
 * when the kernel answers ENOENT for a directory whose parent exists, as below /proc.)
 */
async function mkdirs(path: string): Promise<void> {
  let at = "";
  for (const seg of path.split("/").filter((x) => x !== "")) {
    at = `${at}/${seg}`;
    try {
      await mkdir(at, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}

async function writeOne(path: string, value: Buffer, uid: number, gid: number): Promise<void> {
  const parent = await lstat(dirname(path));
  if (parent.isSymbolicLink() || !parent.isDirectory()) throw injectionFailed("a secret file's directory is not a directory");
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o400);
  try {
    let off = 0;
    while (off < value.length) off += (await fh.write(value, off, value.length - off)).bytesWritten;
    await fh.chown(uid, gid);
    await fh.chmod(0o400);
  } finally {
    await fh.close();
  }
}
