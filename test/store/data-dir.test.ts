import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { initGateway } from "../../src/app.js";
import { type Clock } from "../../src/core/index.js";
import { pkiPaths } from "../../src/pki/index.js";
import {
  createDataDir,
  DATA_DIR_FORMAT,
  DB_FILE,
  openDataDir,
  readKeyFile,
  writeFileAtomic,
  writeKeyFile,
} from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { refusal } from "../support/refusal.js";


const mode = (p: string) => statSync(p).mode & 0o777;
const MARKER = "portcullis-data.json";

/** Every file and directory under `dir`: relative path → mode, size, mtime and SHA-256. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      const rel = relative(dir, p);
      if (st.isDirectory()) {
        out[`${rel}/`] = `dir ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`;
        walk(p);
      } else {
        out[rel] = `file ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
      }
    }
  };
  walk(dir);
  out["."] = `dir ${(statSync(dir).mode & 0o7777).toString(8)} ${statSync(dir).mtimeMs}`;
  return out;
}

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
});
afterEach(() => {
  t.cleanup();
});

describe("createDataDir / openDataDir", () => {
  it("creates the directory 0700 with a 0600 marker naming the format", () => {
    const dir = join(t.dir, "nested", "data");
    createDataDir(dir, { createdAt: "2026-01-01T00:00:00.000Z", trustDomain: "portcullis.local" });
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, MARKER))).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, MARKER), "utf8"))).toEqual({
      format: DATA_DIR_FORMAT,
      createdAt: "2026-01-01T00:00:00.000Z",
      trustDomain: "portcullis.local",
    });
    expect(openDataDir(dir)).toEqual({ format: DATA_DIR_FORMAT, createdAt: "2026-01-01T00:00:00.000Z", trustDomain: "portcullis.local" });
    // Nothing else is left beside the marker (no temp files).
    expect(readdirSync(dir)).toEqual([MARKER]);
  });

  it.each([
    ["an empty directory", (p: string) => mkdirSync(p)],
    ["a directory with files", (p: string) => {
      mkdirSync(p);
      writeFileSync(join(p, "notes.txt"), "mine");
    }],
    ["a file", (p: string) => writeFileSync(p, "not a directory")],
  ])("refuses %s that exists with PC_STORE_DATA_DIR_EXISTS and leaves it", (_name, make) => {
    const dir = join(t.dir, "data");
    make(dir);
    const before = tree(t.dir);
    const e = refusal(() => createDataDir(dir, { createdAt: "x", trustDomain: "portcullis.local" }));
    expect(e.code).toBe("PC_STORE_DATA_DIR_EXISTS");
    expect(e.status).toBe(409);
    expect(tree(t.dir)).toEqual(before);
  });

  it("refuses a directory without a marker with PC_STORE_DATA_DIR_MISSING", () => {
    expect(refusal(() => openDataDir(join(t.dir, "none"))).code).toBe("PC_STORE_DATA_DIR_MISSING");
    expect(refusal(() => openDataDir(t.dir)).code).toBe("PC_STORE_DATA_DIR_MISSING");
  });

  it.each([0o755, 0o750, 0o705, 0o701, 0o710, 0o777])("refuses a data directory chmod %s with PC_STORE_DATA_DIR_PERMISSIONS", (m) => {
    const dir = join(t.dir, "data");
    createDataDir(dir, { createdAt: "x", trustDomain: "portcullis.local" });
    chmodSync(dir, m);
    const e = refusal(() => openDataDir(dir));
    expect(e.code).toBe("PC_STORE_DATA_DIR_PERMISSIONS");
    expect(e.detail).toBe(`${dir} must be 0700`);
    chmodSync(dir, 0o700);
    expect(openDataDir(dir).format).toBe(DATA_DIR_FORMAT);
  });

  it.each([
    ["format 99", { format: 99 }, "PC_STORE_DATA_DIR_TOO_NEW", "format 99, this binary reads up to 1"],
    ["the next format", { format: DATA_DIR_FORMAT + 1 }, "PC_STORE_DATA_DIR_TOO_NEW", `format ${DATA_DIR_FORMAT + 1}, this binary reads up to 1`],
    ["no format", {}, "PC_STORE_CORRUPT", `${MARKER} has no format`],
    ["a format as text", { format: "1" }, "PC_STORE_CORRUPT", `${MARKER} has no format`],
    ["a fractional format", { format: 1.5 }, "PC_STORE_CORRUPT", `${MARKER} has no format`],
  ])("a marker with %s is refused (%s) and left as it was", (_name, fields, code, detail) => {
    const dir = join(t.dir, "data");
    createDataDir(dir, { createdAt: "x", trustDomain: "portcullis.local" });
    writeFileSync(join(dir, MARKER), JSON.stringify({ createdAt: "x", trustDomain: "portcullis.local", ...fields }));
    const before = tree(dir);
    const e = refusal(() => openDataDir(dir));
    expect(e.code).toBe(code);
    expect(e.detail).toBe(detail);
    expect(tree(dir)).toEqual(before);
  });

  it.each([
    ["not JSON", "{format: 1", `${MARKER} is unreadable`],
    ["JSON null", "null", `${MARKER} has no format`],
    ["a JSON number", "1", `${MARKER} has no format`],
    ["a JSON list", "[1]", `${MARKER} has no format`],
  ])("a marker that is %s is refused with PC_STORE_CORRUPT", (_name, text, detail) => {
    const dir = join(t.dir, "data");
    createDataDir(dir, { createdAt: "x", trustDomain: "portcullis.local" });
    writeFileSync(join(dir, MARKER), text);
    const e = refusal(() => openDataDir(dir));
    expect(e.code).toBe("PC_STORE_CORRUPT");
    expect(e.detail).toBe(detail);
  });
});

describe("key files", () => {
  it("are written 0600 in a 0700 directory and read back", () => {
    const p = join(t.dir, "keys", "k.key");
    writeKeyFile(p, "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");
    expect(mode(p)).toBe(0o600);
    expect(mode(join(t.dir, "keys"))).toBe(0o700);
    expect(readKeyFile(p)).toContain("BEGIN PRIVATE KEY");
    expect(readdirSync(join(t.dir, "keys"))).toEqual(["k.key"]);
  });

  it.each([0o644, 0o640, 0o604, 0o660, 0o606, 0o610])("are refused at %s with PC_STORE_DATA_DIR_PERMISSIONS", (m) => {
    const p = join(t.dir, "k.key");
    writeKeyFile(p, "secret");
    chmodSync(p, m);
    const e = refusal(() => readKeyFile(p));
    expect(e.code).toBe("PC_STORE_DATA_DIR_PERMISSIONS");
    expect(e.detail).toBe(`${p} must be 0600`);
    expect(e.publicMessage).not.toContain("secret");
  });

  it("are accepted at 0400 (owner read only)", () => {
    const p = join(t.dir, "k.key");
    writeKeyFile(p, "secret");
    chmodSync(p, 0o400);
    expect(readKeyFile(p)).toBe("secret");
  });

  it("replace an existing file atomically with the given mode", () => {
    const p = join(t.dir, "f.json");
    writeFileAtomic(p, "one", 0o600);
    writeFileAtomic(p, Buffer.from("two"), 0o600);
    expect(readFileSync(p, "utf8")).toBe("two");
    expect(mode(p)).toBe(0o600);
    expect(readdirSync(t.dir)).toEqual(["f.json"]);
  });
});

describe("initGateway: the data directory it makes", () => {
  const init = (dataDir: string, clock?: Clock) =>
    initGateway({ dataDir, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0", ...(clock ? { clock } : {}) });

  it("is 0700, with private files 0600 and the database 0600", () => {
    const dataDir = join(t.dir, "data");
    init(dataDir);
    const p = pkiPaths(dataDir);
    expect(mode(dataDir)).toBe(0o700);
    for (const d of [join(dataDir, "ca"), join(dataDir, "server")]) expect(mode(d), d).toBe(0o700);
    for (const f of [p.rootKey, p.intermediateKey, p.serverKey, p.adminProfile, p.config, join(dataDir, MARKER), join(dataDir, DB_FILE)]) {
      expect(mode(f), f).toBe(0o600);
    }
    for (const f of [p.rootCert, p.intermediateCert, p.serverCert]) expect(mode(f) & 0o022, f).toBe(0);
    // No file anywhere is writable by others, and nothing but certificates is readable by them.
    for (const [rel, desc] of Object.entries(tree(dataDir))) {
      const m = parseInt(desc.split(" ")[1] as string, 8);
      expect(m & 0o002, rel).toBe(0);
      if (!rel.endsWith(".crt") && !rel.endsWith("/") && rel !== ".") expect(m & 0o077, rel).toBe(0);
    }
    expect(openDataDir(dataDir).format).toBe(DATA_DIR_FORMAT);
  });

  it("refuses an existing data directory with PC_STORE_DATA_DIR_EXISTS and leaves it untouched", () => {
    const dataDir = join(t.dir, "data");
    init(dataDir);
    const before = tree(dataDir);
    const e = refusal(() => init(dataDir));
    expect(e.code).toBe("PC_STORE_DATA_DIR_EXISTS");
    expect(tree(dataDir)).toEqual(before);
  });

  it("refuses an existing empty directory and does not remove it", () => {
    const dataDir = join(t.dir, "data");
    mkdirSync(dataDir, { mode: 0o700 });
    expect(refusal(() => init(dataDir)).code).toBe("PC_STORE_DATA_DIR_EXISTS");
    expect(existsSync(dataDir)).toBe(true);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it.each([
    ["an invalid trust domain", { trustDomain: "Not_Valid" }],
    ["an invalid listen address", { listen: "nowhere" }],
    ["an invalid bootstrap address", { bootstrapListen: "127.0.0.1:99999" }],
    ["a lifetime under a minute", { lifetimes: { userDefault: 1_000 } }],
  ])("with %s fails with PC_CONFIG_INVALID and creates nothing", (_name, opts) => {
    const dataDir = join(t.dir, "parent", "data");
    const e = refusal(() => initGateway({ dataDir, ...opts }));
    expect(e.code).toBe("PC_CONFIG_INVALID");
    expect(existsSync(join(t.dir, "parent"))).toBe(false);
    expect(readdirSync(t.dir)).toEqual([]);
  });

  it("removes everything it made when a step fails midway", () => {
    // The clock is the one collaborator init consults at every step (marker, CA, store,
    // certificates, audit); making its n-th reading fail stops init at that step.
    let calls = 0;
    const counting: Clock = { now: () => (calls++, new Date()) };
    init(join(t.dir, "probe"), counting);
    const total = calls;
    expect(total).toBeGreaterThan(4);

    const failures: number[] = [];
    for (let n = 1; n <= total; n++) {
      let seen = 0;
      const failing: Clock = {
        now: () => {
          if (++seen === n) throw new Error(`clock failure at reading ${n}`);
          return new Date();
        },
      };
      const dataDir = join(t.dir, `fail-${n}`);
      // The failure surfaces as it is, or wrapped (the audit sink reports PC_AUDIT_WRITE_FAILED).
      expect(() => init(dataDir, failing)).toThrow();
      expect(seen).toBeGreaterThanOrEqual(n);
      if (existsSync(dataDir)) failures.push(n);
    }
    expect(failures).toEqual([]);
  });
});
