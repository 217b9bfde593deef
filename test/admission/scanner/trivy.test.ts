/**
 * The trivy adapter against stand-in executables (Trivy itself cannot be installed here):
 * small `#!/bin/sh` scripts written at test time, mode 0755, that record the argv, the
 * environment and the temporary directory they were given, and answer Trivy's documented
 * JSON (`trivy image --format json`, SchemaVersion 2; `trivy --version --format json`).
 * Others hang (with SIGTERM ignored), exit non-zero, write garbage or too much output.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuiltinScanner, locateTrivy, ScanCache, selectScanner, TrivyScanner, VulnDb, type TrivyScannerOptions } from "../../../src/admission/scanner/index.js";
import { isPortcullisError, ManualClock } from "../../../src/core/index.js";
import { Store } from "../../../src/store/index.js";

const root = mkdtempSync(join(tmpdir(), "portcullis-trivy-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const IMAGE = `sha256:${"d".repeat(64)}`;
const clock = new ManualClock(new Date("2026-06-01T00:00:00Z"));
let dir: string;
let temps: string;
let exports: string[];

beforeEach(() => {
  dir = mkdtempSync(join(root, "case-"));
  temps = join(dir, "tmp");
  mkdirSync(temps);
  exports = [];
});
afterEach(() => {
  // Every scan removes its private directory, whatever happened.
  expect(readdirSync(temps)).toEqual([]);
});

const VERSION_DOC = (updatedAt = "2026-05-31T06:00:00.000000000Z") =>
  JSON.stringify({
    Version: "0.57.1",
    VulnerabilityDB: { Version: 2, NextUpdate: "2026-06-01T06:00:00Z", UpdatedAt: updatedAt, DownloadedAt: "2026-05-31T07:00:00Z" },
  });

const REPORT = {
  SchemaVersion: 2,
  CreatedAt: "2026-06-01T00:00:01Z",
  ArtifactName: "/tmp/x/image.tar",
  ArtifactType: "container_image",
  Metadata: {
    OS: { Family: "debian", Name: "12.5" },
    ImageID: IMAGE,
    DiffIDs: [`sha256:${"e".repeat(64)}`],
    ImageConfig: { architecture: "amd64", os: "linux" },
  },
  Results: [
    {
      Target: "/tmp/x/image.tar (debian 12.5)",
      Class: "os-pkgs",
      Type: "debian",
      Packages: [
        { ID: "libssl3@3.0.11-1~deb12u1", Name: "libssl3", Version: "3.0.11-1~deb12u1", SrcName: "openssl", SrcVersion: "3.0.11-1~deb12u1" },
        { ID: "zlib1g@1:1.2.13.dfsg-1", Name: "zlib1g", Version: "1:1.2.13.dfsg-1", SrcName: "zlib", SrcVersion: "1:1.2.13.dfsg-1" },
      ],
      Vulnerabilities: [
        {
          VulnerabilityID: "CVE-2023-5363",
          VendorIDs: ["DSA-5532-1"],
          PkgID: "libssl3@3.0.11-1~deb12u1",
          PkgName: "libssl3",
          InstalledVersion: "3.0.11-1~deb12u1",
          FixedVersion: "3.0.11-1~deb12u2",
          Status: "fixed",
          Layer: { DiffID: `sha256:${"e".repeat(64)}` },
          SeveritySource: "nvd",
          PrimaryURL: "https://avd.aquasec.com/nvd/cve-2023-5363",
          Title: "openssl: Incorrect cipher key and IV length processing",
          Severity: "HIGH",
          CweIDs: ["CWE-684"],
          CVSS: { nvd: { V3Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", V3Score: 7.5 }, redhat: { V3Score: 7.5 } },
        },
        {
          VulnerabilityID: "CVE-2023-45853",
          PkgName: "zlib1g",
          InstalledVersion: "1:1.2.13.dfsg-1",
          Status: "will_not_fix",
          Severity: "CRITICAL",
          CVSS: { nvd: { V3Score: 9.8 } },
        },
      ],
    },
    {
      Target: "Node.js",
      Class: "lang-pkgs",
      Type: "node-pkg",
      Packages: [{ Name: "lodash", Version: "4.17.20", FilePath: "usr/src/app/node_modules/lodash/package.json" }],
      Vulnerabilities: [
        {
          VulnerabilityID: "CVE-2021-23337",
          VendorIDs: ["GHSA-35jh-r3h4-6jhm"],
          PkgName: "lodash",
          PkgPath: "usr/src/app/node_modules/lodash/package.json",
          InstalledVersion: "4.17.20",
          FixedVersion: "4.17.21",
          Severity: "HIGH",
          SeveritySource: "ghsa",
          CVSS: { ghsa: { V3Score: 7.2 }, nvd: { V3Score: 7.2 } },
        },
      ],
    },
    {
      Target: "usr/src/app/package-lock.json",
      Class: "lang-pkgs",
      Type: "npm",
      Packages: [{ Name: "minimist", Version: "1.2.5" }],
      Vulnerabilities: [
        { VulnerabilityID: "CVE-2021-44906", PkgName: "minimist", InstalledVersion: "1.2.5", FixedVersion: "1.2.6, 0.2.4", Severity: "UNKNOWN" },
      ],
    },
  ],
};

interface StandIn {
  readonly path: string;
  readonly argv: () => string[][];
  readonly file: (name: string) => string;
}

/**
 * A stand-in trivy: `--version` answers `version` (a JSON text); `image` records its argv,
 * environment, parent process and the mode of the tar's directory, then runs `body`.
 */
function standIn(body: string, version = VERSION_DOC()): StandIn {
  const d = mkdtempSync(join(dir, "bin-"));
  const out = (name: string) => join(d, name);
  writeFileSync(out("report.json"), JSON.stringify(REPORT));
  writeFileSync(out("version.json"), version);
  const script = `#!/bin/sh
{ for a in "$@"; do printf '%s\\t' "$a"; done; printf '\\n'; } >> '${out("argv")}'
if [ "$1" = "--version" ]; then cat '${out("version.json")}'; exit 0; fi
env > '${out("env")}'
ps -o comm= -p $PPID > '${out("parent")}'
input=""; prev=""
for a in "$@"; do [ "$prev" = "--input" ] && input="$a"; prev="$a"; done
stat -c '%a' "$(dirname "$input")" > '${out("tmpmode")}'
stat -c '%a %s' "$input" > '${out("tarstat")}'
${body}
`;
  const path = join(d, "trivy");
  writeFileSync(path, script);
  chmodSync(path, 0o755);
  return {
    path,
    file: (name) => readFileSync(out(name), "utf8"),
    argv: () =>
      readFileSync(out("argv"), "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split("\t").slice(0, -1)),
  };
}

function scanner(s: StandIn, o: Partial<TrivyScannerOptions> = {}): TrivyScanner {
  return new TrivyScanner({
    path: s.path,
    exportImage: async (id) => {
      exports.push(id);
      return Readable.from([Buffer.from("a docker save archive".repeat(100))]);
    },
    tempDir: temps,
    clock,
    ...o,
  });
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; detail: string | undefined }> {
  try {
    await p;
  } catch (e) {
    if (isPortcullisError(e)) return { code: e.code, detail: e.detail };
    throw e;
  }
  throw new Error("expected a refusal");
}

const never = () => new AbortController().signal;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("trivy: a report", () => {
  it("is read into the normalized findings, summary and database", async () => {
    const s = standIn(`cat "$(dirname "$0")/report.json"`);
    const r = await scanner(s).scan(IMAGE, never());
    expect(r.scanner).toBe("trivy");
    expect(r.imageId).toBe(IMAGE);
    expect(r.findings).toEqual([
      {
        id: "CVE-2021-23337",
        aliases: ["GHSA-35jh-r3h4-6jhm"],
        package: "lodash",
        ecosystem: "npm",
        installed: "4.17.20",
        fixed: "4.17.21",
        severity: { level: "high", score: 7.2 },
        sourceFile: "/usr/src/app/node_modules/lodash/package.json",
      },
      { id: "CVE-2021-44906", aliases: [], package: "minimist", ecosystem: "npm", installed: "1.2.5", fixed: "1.2.6", severity: { level: "unknown" }, sourceFile: "/usr/src/app/package-lock.json" },
      {
        id: "CVE-2023-45853",
        aliases: [],
        package: "zlib1g",
        ecosystem: "Debian:12",
        installed: "1:1.2.13.dfsg-1",
        severity: { level: "critical", score: 9.8 },
        sourceFile: "/var/lib/dpkg/status",
      },
      {
        id: "CVE-2023-5363",
        aliases: ["DSA-5532-1"],
        package: "libssl3",
        ecosystem: "Debian:12",
        installed: "3.0.11-1~deb12u1",
        fixed: "3.0.11-1~deb12u2",
        severity: { level: "high", score: 7.5 },
        sourceFile: "/var/lib/dpkg/status",
      },
    ]);
    expect(r.inventory).toEqual({ packages: { Debian: 2, npm: 2 }, total: 4, os: "debian 12.5" });
    expect(r.database).toEqual({ source: "trivy 0.57.1", version: "2@2026-05-31T06:00:00.000000000Z", builtAt: "2026-05-31T06:00:00.000000000Z" });
    expect(r.sbom.components.map((c) => c.name).sort()).toEqual(["debian", "libssl3", "lodash", "minimist", "zlib1g"]);
    expect(exports).toEqual([IMAGE]);
  });

  it("runs trivy with an argument array, no shell, the expected flags, a private temp dir and no inherited environment", async () => {
    process.env.PORTCULLIS_TEST_SECRET = "hunter2-not-for-trivy";
    try {
      const s = standIn(`cat "$(dirname "$0")/report.json"`);
      await scanner(s, { cacheDir: "/var/cache/trivy dir", timeoutMs: 90_000 }).scan(IMAGE, never());
      const [version, scan] = s.argv();
      expect(version).toEqual(["--version", "--format", "json", "--cache-dir", "/var/cache/trivy dir"]);
      const tar = scan?.[2] as string;
      expect(tar).toMatch(new RegExp(`^${temps}/portcullis-trivy-[^/]+/image\\.tar$`));
      expect(scan).toEqual([
        "image", "--input", tar, "--format", "json", "--list-all-pkgs", "--scanners", "vuln",
        "--offline-scan", "--skip-db-update", "--quiet", "--timeout", "100s", "--cache-dir", "/var/cache/trivy dir",
      ]);
      // The parent of the stand-in is node itself: no shell in between.
      expect(s.file("parent").trim()).toMatch(/^node/);
      expect(s.file("tmpmode").trim()).toBe("700");
      expect(s.file("tarstat").trim()).toBe(`600 ${"a docker save archive".length * 100}`);
      const env = s.file("env");
      expect(env).not.toContain("hunter2");
      const names = env.split("\n").filter((l) => l !== "").map((l) => l.slice(0, l.indexOf("="))).sort();
      expect(names.filter((n) => !["PWD", "SHLVL", "_", "OLDPWD"].includes(n))).toEqual(["HOME", "PATH", "TMPDIR"].filter((n) => n !== "HOME" || process.env.HOME !== undefined));
      expect(env).toContain(`TMPDIR=${tar.slice(0, -"/image.tar".length)}\n`);
    } finally {
      delete process.env.PORTCULLIS_TEST_SECRET;
    }
  });

  it("against a server: --server instead of --skip-db-update, and results are not cached", async () => {
    const s = standIn(`cat "$(dirname "$0")/report.json"`);
    const t = scanner(s, { serverUrl: "http://127.0.0.1:4954" });
    expect(await t.database(never())).toEqual({ source: "trivy server http://127.0.0.1:4954", version: "server" });
    await t.scan(IMAGE, never());
    const scan = s.argv()[0] as string[];
    expect(scan).toContain("--server");
    expect(scan[scan.indexOf("--server") + 1]).toBe("http://127.0.0.1:4954");
    expect(scan).not.toContain("--skip-db-update");
  });

  it("asks trivy for its database version once per TTL; a newer database misses the cache", async () => {
    const store = Store.open(mkdtempSync(join(dir, "data-")));
    try {
      const s = standIn(`cat "$(dirname "$0")/report.json"`);
      const t = scanner(s, { versionTtlMs: 60_000 });
      const cache = new ScanCache(store, { clock });
      expect((await cache.scan(t, IMAGE, never())).cached).toBe(false);
      expect((await cache.scan(t, IMAGE, never())).cached).toBe(true);
      expect(exports).toHaveLength(1);
      expect(s.argv().filter((a) => a[0] === "--version")).toHaveLength(1);
      // A new Trivy database: a new cache key.
      writeFileSync(join(s.path, "..", "version.json"), VERSION_DOC("2026-06-01T06:00:00Z"));
      clock.advance(61_000);
      const third = await cache.scan(t, IMAGE, never());
      expect(third.cached).toBe(false);
      expect(third.result.database.version).toBe("2@2026-06-01T06:00:00Z");
      expect(exports).toHaveLength(2);
    } finally {
      store.close();
    }
  });
});

describe("trivy: failures", () => {
  it("a stand-in that hangs, ignoring SIGTERM, is killed: PC_SCAN_TIMEOUT", async () => {
    const s = standIn(`trap '' TERM; echo $$ > "$(dirname "$0")/pid"; while :; do sleep 0.05; done`);
    const t0 = Date.now();
    const r = await refusal(scanner(s, { timeoutMs: 400 }).scan(IMAGE, never()));
    expect(r).toEqual({ code: "PC_SCAN_TIMEOUT", detail: "trivy did not finish within 400 ms and was stopped" });
    expect(Date.now() - t0).toBeLessThan(6_000);
    expect(alive(Number(s.file("pid")))).toBe(false);
  }, 10_000);

  it("an abort stops the scan and kills trivy", async () => {
    const s = standIn(`echo $$ > "$(dirname "$0")/pid"; exec sleep 30`);
    const ac = new AbortController();
    const scanning = scanner(s, { timeoutMs: 20_000 }).scan(IMAGE, ac.signal);
    for (let i = 0; i < 100 && !existsSync(join(s.path, "..", "pid")); i++) await new Promise((r) => setTimeout(r, 20));
    ac.abort(new Error("admission gave up"));
    await expect(scanning).rejects.toThrow("admission gave up");
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(Number(s.file("pid")))).toBe(false);
  });

  it.each([
    ["a non-zero exit", `echo "FATAL scan error" >&2; exit 3`, { code: "PC_SCAN_FAILED", detail: "trivy exited with code 3" }],
    ["garbage", `echo "this is not json"`, { code: "PC_SCAN_FAILED", detail: "trivy's output is not JSON" }],
    ["nothing", `true`, { code: "PC_SCAN_FAILED", detail: "trivy's output is not JSON" }],
    ["JSON that is not the report", `echo '{"SchemaVersion": 1, "ArtifactName": "x"}'`, { code: "PC_SCAN_FAILED", detail: "trivy's output is not its report: $.SchemaVersion: must be 2" }],
    [
      "a bad severity",
      `echo '{"SchemaVersion":2,"ArtifactName":"x","Results":[{"Target":"t","Class":"lang-pkgs","Type":"npm","Vulnerabilities":[{"VulnerabilityID":"CVE-2024-1","PkgName":"a","InstalledVersion":"1","Severity":"SEVERE"}]}]}'`,
      { code: "PC_SCAN_FAILED", detail: "trivy's output is not its report: $.Results[0].Vulnerabilities[0].Severity: must be one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN" },
    ],
    [
      "a report of another image",
      `echo '{"SchemaVersion":2,"ArtifactName":"x","Metadata":{"ImageID":"sha256:${"f".repeat(64)}"}}'`,
      { code: "PC_SCAN_FAILED", detail: "the trivy report is for another image" },
    ],
    ["too much output", `head -c 300000 /dev/zero | tr '\\0' 'a'`, { code: "PC_SCAN_FAILED", detail: "trivy wrote more than the output limit" }],
  ])("%s -> PC_SCAN_FAILED", async (_name, body, expected) => {
    const s = standIn(body);
    expect(await refusal(scanner(s, { maxOutputBytes: 100_000 }).scan(IMAGE, never()))).toEqual(expected);
  });

  it("no vulnerability database: PC_SCAN_VULNDB_MISSING, the image is not exported", async () => {
    const s = standIn(`cat "$(dirname "$0")/report.json"`, JSON.stringify({ Version: "0.57.1" }));
    expect(await refusal(scanner(s).scan(IMAGE, never()))).toEqual({ code: "PC_SCAN_VULNDB_MISSING", detail: "trivy has no vulnerability database" });
    expect(exports).toEqual([]);
  });

  it("a version answer that is not trivy's: PC_SCAN_FAILED", async () => {
    const s = standIn("true", "trivy version 0.57.1");
    expect((await refusal(scanner(s).scan(IMAGE, never()))).code).toBe("PC_SCAN_FAILED");
  });

  it("an image the engine cannot export: PC_SCAN_IMAGE_UNREADABLE, trivy not run for it", async () => {
    const s = standIn(`cat "$(dirname "$0")/report.json"`);
    const t = scanner(s, { exportImage: async () => Promise.reject(new Error("no such image")) });
    expect(await refusal(t.scan(IMAGE, never()))).toEqual({ code: "PC_SCAN_IMAGE_UNREADABLE", detail: "the engine cannot export the image" });
    expect(s.argv().map((a) => a[0])).toEqual(["--version"]);
  });
});

describe("choosing the scanner", () => {
  it("trivy on PATH or configured is used; otherwise the built-in scanner", () => {
    const s = standIn("true");
    const binDir = join(s.path, "..");
    const store = Store.open(mkdtempSync(join(dir, "data-")));
    try {
      const base = { vulndb: new VulnDb(store), exportImage: async () => Readable.from([]) };
      expect(locateTrivy(`relative/bin:${binDir}:/usr/bin`)).toBe(s.path);
      expect(locateTrivy("/nonexistent")).toBeUndefined();
      expect(selectScanner({ ...base, pathEnv: `/nonexistent:${binDir}` })).toBeInstanceOf(TrivyScanner);
      expect(selectScanner({ ...base, pathEnv: "" })).toBeInstanceOf(BuiltinScanner);
      expect(selectScanner({ ...base, pathEnv: "", trivyPath: s.path }).kind).toBe("trivy");
      const plain = join(dir, "not-executable");
      writeFileSync(plain, "#!/bin/sh\n");
      expect(() => selectScanner({ ...base, pathEnv: "", trivyPath: plain })).toThrowError(expect.objectContaining({ code: "PC_CONFIG_INVALID" }) as Error);
      expect(() => selectScanner({ ...base, pathEnv: "", trivyPath: "trivy" })).toThrowError(expect.objectContaining({ code: "PC_CONFIG_INVALID" }) as Error);
    } finally {
      store.close();
    }
  });
});
