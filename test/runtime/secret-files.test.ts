/**
 * SecretFiles on the real filesystem: the root becomes a tmpfs (a real `mount` where it is
 * not one), never a disk; a container's directory and files get their modes and owner;
 * every relative path is checked again; a planted link is never followed; a failed write
 * leaves nothing and names no value; values are zeroed once written.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMemoryFs, relativePathReason, SecretFiles, TMPFS_MAGIC } from "../../src/runtime/index.js";
import type { SecretFile } from "../../src/secrets/index.js";

const ROOT = process.getuid?.() === 0;
const itRoot = ROOT ? it : it.skip;
/** Test roots on /dev/shm (already a tmpfs): no mount needed. */
const shmBase = mkdtempSync("/dev/shm/portcullis-secret-files-");
const mounted: string[] = [];

function value(text: string): Buffer {
  return Buffer.from(text);
}

function files(...pairs: [string, string][]): SecretFile[] {
  return pairs.map(([relativePath, v]) => ({ relativePath, value: value(v) }));
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; detail: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: string; detail?: string; message: string };
    return { code: err.code, detail: err.detail ?? "", message: err.message };
  }
  throw new Error("expected a refusal");
}

const mode = (p: string) => lstatSync(p).mode & 0o7777;
let n = 0;
const fresh = (opts: Partial<ConstructorParameters<typeof SecretFiles>[0]> = {}) =>
  new SecretFiles({ tmpfsRoot: join(shmBase, `root${n++}`), gatewayId: "gw0123456789", mountTmpfs: () => Promise.reject(new Error("no mount expected")), ...opts });

afterAll(() => {
  for (const m of mounted) {
    try {
      execFileSync("umount", [m]);
    } catch {
      // already gone
    }
    rmSync(m, { recursive: true, force: true });
  }
  rmSync(shmBase, { recursive: true, force: true });
});

describe("SecretFiles: the root", () => {
  itRoot("on a filesystem that is not in memory, mounts a tmpfs (mode 0700) and writes there", async () => {
    const base = mkdtempSync(join(tmpdir(), "portcullis-secrets-root-"));
    mounted.push(base);
    expect(isMemoryFs(statfsSync(base).type)).toBe(false);
    const sf = new SecretFiles({ tmpfsRoot: base, gatewayId: "gwmount" });
    await sf.ensureReady();
    expect(statfsSync(base).type).toBe(TMPFS_MAGIC);
    expect(mode(base)).toBe(0o700);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).toMatch(new RegExp(` ${base} rw,nosuid,nodev,noexec,.* tmpfs tmpfs `));
    const dir = await sf.write("pc-gwmount-ns-a-r1-0", 10001, 10001, files(["x", "v"]));
    expect(statfsSync(dir).type).toBe(TMPFS_MAGIC);
    await sf.remove("pc-gwmount-ns-a-r1-0");
  });

  it("on a tmpfs already, mounts nothing; the root and the gateway's directory are 0700", async () => {
    const sf = fresh();
    await sf.ensureReady();
    expect(mode(sf.root)).toBe(0o700);
    expect(isMemoryFs(statfsSync(sf.root).type)).toBe(true);
  });

  it("fails closed when no tmpfs can be had: PC_SECRETS_TMPFS_UNAVAILABLE, nothing written to the disk", async () => {
    const base = mkdtempSync(join(tmpdir(), "portcullis-secrets-disk-"));
    try {
      const sf = new SecretFiles({ tmpfsRoot: base, gatewayId: "gwdisk", mountTmpfs: () => Promise.reject(new Error("mount: permission denied")) });
      expect((await refusal(sf.ensureReady())).code).toBe("PC_SECRETS_TMPFS_UNAVAILABLE");
      const v = value("disk-must-never-see-this");
      const r = await refusal(sf.write("pc-gwdisk-ns-a-r1-0", 10001, 10001, [{ relativePath: "x", value: v }]));
      expect(r.code).toBe("PC_SECRETS_TMPFS_UNAVAILABLE");
      expect(v.every((b) => b === 0)).toBe(true);
      expect(readdirSync(base)).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("fails closed, and at once, where the root cannot even be created (below /proc)", async () => {
    const sf = new SecretFiles({ tmpfsRoot: "/proc/portcullis-no-tmpfs/secrets", gatewayId: "gwproc" });
    expect(await refusal(sf.ensureReady())).toMatchObject({ code: "PC_SECRETS_TMPFS_UNAVAILABLE", detail: "/proc/portcullis-no-tmpfs/secrets could not be created" });
  }, 5_000);

  it("refuses a root that is a symlink", async () => {
    const target = join(shmBase, `target${n++}`);
    mkdirSync(target, { mode: 0o700 });
    const link = join(shmBase, `link${n++}`);
    symlinkSync(target, link);
    const sf = new SecretFiles({ tmpfsRoot: link, gatewayId: "gwlink", mountTmpfs: () => Promise.reject(new Error("no")) });
    const r = await refusal(sf.ensureReady());
    expect(r).toMatchObject({ code: "PC_SECRETS_TMPFS_UNAVAILABLE", detail: `${link} is not a directory` });
    expect(readdirSync(target)).toEqual([]);
  });

  itRoot("refuses a root that another user owns", async () => {
    const base = join(shmBase, `other${n++}`);
    mkdirSync(base, { mode: 0o700 });
    chownSync(base, 4242, 4242);
    const sf = new SecretFiles({ tmpfsRoot: base, gatewayId: "gwother", mountTmpfs: () => Promise.reject(new Error("no")) });
    expect(await refusal(sf.ensureReady())).toMatchObject({ code: "PC_SECRETS_TMPFS_UNAVAILABLE", detail: `${base} is not owned by the gateway's user` });
  });

  it("refuses a root that is not mode 0700, and leaves it as it is", async () => {
    const base = join(shmBase, `open${n++}`);
    mkdirSync(base, { mode: 0o700 });
    chmodSync(base, 0o1777);
    const sf = new SecretFiles({ tmpfsRoot: base, gatewayId: "gwopen", mountTmpfs: () => Promise.reject(new Error("no")) });
    expect(await refusal(sf.ensureReady())).toMatchObject({ code: "PC_SECRETS_TMPFS_UNAVAILABLE", detail: `${base} is not mode 0700` });
    expect(mode(base)).toBe(0o1777);
  });

  it("refuses a configured root that is relative, '/', or has '..'", () => {
    for (const tmpfsRoot of ["run/x", "/", "/run/../etc", "/run/x\0"]) {
      expect(() => new SecretFiles({ tmpfsRoot, gatewayId: "gw" })).toThrow(/tmpfsRoot/);
    }
    expect(() => new SecretFiles({ tmpfsRoot: "/run/x", gatewayId: "../gw" })).toThrow(/gateway id/);
  });
});

describe("SecretFiles: a container's files", () => {
  const sf = fresh();
  const NAME = "pc-gw0123456789-team-a-web-r1-0";

  beforeAll(() => sf.ensureReady());

  itRoot("writes each file 0400 and the directory 0700, nested directories 0500, all owned by the container's uid:gid", async () => {
    const fs = files(["db-password", "hunter2-value"], ["tls/certs/key.pem", "-----KEY-----"]);
    const dir = await sf.write(NAME, 10001, 10002, fs);
    expect(dir).toBe(join(sf.root, NAME));
    expect(sf.dirOf(NAME)).toBe(dir);
    expect(readFileSync(join(dir, "db-password"), "utf8")).toBe("hunter2-value");
    expect(readFileSync(join(dir, "tls/certs/key.pem"), "utf8")).toBe("-----KEY-----");
    const owner = (p: string) => [lstatSync(p).uid, lstatSync(p).gid];
    expect([mode(dir), ...owner(dir)]).toEqual([0o700, 10001, 10002]);
    for (const d of ["tls", "tls/certs"]) expect([mode(join(dir, d)), ...owner(join(dir, d))]).toEqual([0o500, 10001, 10002]);
    for (const f of ["db-password", "tls/certs/key.pem"]) expect([mode(join(dir, f)), ...owner(join(dir, f))]).toEqual([0o400, 10001, 10002]);
    // The values handed in are zeroed once written.
    for (const f of fs) expect(f.value.every((b) => b === 0)).toBe(true);
    expect(await sf.has(NAME)).toBe(true);
    expect(await sf.list()).toEqual([NAME]);
    await sf.remove(NAME);
    expect(existsSync(dir)).toBe(false);
    expect(await sf.has(NAME)).toBe(false);
  });

  // [case, relative path, reason]: deploy's rule, applied again.
  const badPaths: [string, string, string][] = [
    ["a parent segment", "../x", "must not contain '..'"],
    ["a parent segment inside", "a/../../x", "must not contain '..'"],
    ["an absolute path", "/etc/passwd", "must be relative"],
    ["a '.' segment", "./x", "must not contain '.' segments"],
    ["an empty segment", "a//b", "must not have empty segments or a trailing '/'"],
    ["a trailing '/'", "a/", "must not have empty segments or a trailing '/'"],
    ["NUL", "a\0b", "must not contain NUL"],
    ["a space", "a b", "segments may hold only letters, digits, '.', '_' and '-' (at most 128)"],
    ["five levels", "a/b/c/d/e", "must be at most 4 levels below /run/secrets"],
    ["nothing", "", "is empty"],
  ];
  it.each(badPaths)("refuses %s, writes nothing, zeroes the values", async (_case, rel, reason) => {
    expect(relativePathReason(rel)).toBe(reason);
    const fs = files(["ok", "first-value"], [rel, "second-value"]);
    const r = await refusal(sf.write(NAME, 10001, 10001, fs));
    expect(r.code).toBe("PC_SECRETS_INJECTION_FAILED");
    expect(r.detail).toContain(reason);
    expect(`${r.message} ${r.detail}`).not.toMatch(/first-value|second-value/);
    for (const f of fs) expect(f.value.every((b) => b === 0)).toBe(true);
    expect(existsSync(join(sf.root, NAME))).toBe(false);
  });

  it.each([
    ["the same path twice", [["a", "1"], ["a", "2"]], "the path a collides with a"],
    ["a file inside another", [["a", "1"], ["a/b", "2"]], "the path a/b collides with a"],
  ] as [string, [string, string][], string][])("refuses %s", async (_case, pairs, detail) => {
    expect((await refusal(sf.write(NAME, 10001, 10001, files(...pairs)))).detail).toContain(detail);
  });

  it.each([
    ["uid 0", 0, 10001, "the uid must be a positive integer (never root)"],
    ["gid 0", 10001, 0, "the gid must be a positive integer (never root)"],
    ["a fractional uid", 1.5, 10001, "the uid must be a positive integer (never root)"],
  ])("refuses %s", async (_case, uid, gid, detail) => {
    expect(await refusal(sf.write(NAME, uid, gid, files(["a", "1"])))).toMatchObject({ code: "PC_SECRETS_INJECTION_FAILED", detail });
  });

  it.each(["../escape", "a/b", "", ".hidden"])("refuses the container name %j", async (name) => {
    expect((await refusal(sf.write(name, 10001, 10001, files(["a", "1"])))).detail).toBe("the container name is not valid");
  });

  it("never writes through a symlink planted as a container's directory; removing it removes the link only", async () => {
    const outside = join(shmBase, `outside${n++}`);
    mkdirSync(outside);
    writeFileSync(join(outside, "keep"), "keep");
    symlinkSync(outside, join(sf.root, NAME));
    expect(await sf.has(NAME)).toBe(false);
    const r = await refusal(sf.write(NAME, 10001, 10001, files(["x", "planted-value"])));
    expect(r).toMatchObject({ code: "PC_SECRETS_INJECTION_FAILED", detail: `the secret directory of ${NAME} exists already` });
    expect(readdirSync(outside)).toEqual(["keep"]);
    await sf.remove(NAME);
    expect(existsSync(join(sf.root, NAME))).toBe(false);
    expect(readFileSync(join(outside, "keep"), "utf8")).toBe("keep");
  });

  it("refuses a directory that exists already (a write never merges into what someone left)", async () => {
    mkdirSync(join(sf.root, NAME), { mode: 0o700 });
    symlinkSync("/etc/passwd", join(sf.root, NAME, "db-password"));
    const r = await refusal(sf.write(NAME, 10001, 10001, files(["db-password", "v"])));
    expect(r.detail).toBe(`the secret directory of ${NAME} exists already`);
    expect(readFileSync("/etc/passwd", "utf8")).not.toContain("v\n\0");
    await sf.remove(NAME);
    expect(existsSync("/etc/passwd")).toBe(true);
  });

  itRoot("a write that fails part-way (the tmpfs is full) removes its directory and names no value", async () => {
    const base = mkdtempSync(join(tmpdir(), "portcullis-secrets-small-"));
    mounted.push(base);
    const small = new SecretFiles({
      tmpfsRoot: base,
      gatewayId: "gwsmall",
      mountTmpfs: async (p) => void execFileSync("mount", ["-t", "tmpfs", "-o", "mode=0700,size=64k", "tmpfs", p]),
    });
    const big = randomBytes(48 * 1024);
    const fs: SecretFile[] = [{ relativePath: "one", value: Buffer.from(big) }, { relativePath: "two", value: Buffer.from(big) }];
    const r = await refusal(small.write("pc-gwsmall-ns-a-r1-0", 10001, 10001, fs));
    expect(r).toMatchObject({ code: "PC_SECRETS_INJECTION_FAILED", detail: "the secret files of pc-gwsmall-ns-a-r1-0 could not be written" });
    expect(await small.list()).toEqual([]);
    for (const f of fs) expect(f.value.every((b) => b === 0)).toBe(true);
  });

  itRoot("sweep removes the directories of containers that are not live, and anything that is not a container's", async () => {
    await sf.write("pc-gw0123456789-a-x-r1-0", 10001, 10001, files(["a", "1"]));
    await sf.write("pc-gw0123456789-a-y-r1-0", 10001, 10001, files(["a", "2"]));
    writeFileSync(join(sf.root, " stray"), "x");
    const removed = await sf.sweep(async (name) => name.endsWith("-x-r1-0"));
    expect(removed.sort()).toEqual([" stray", "pc-gw0123456789-a-y-r1-0"]);
    expect(await sf.list()).toEqual(["pc-gw0123456789-a-x-r1-0"]);
    await sf.remove("pc-gw0123456789-a-x-r1-0");
    expect(await sf.list()).toEqual([]);
  });
});
