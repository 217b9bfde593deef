/**
 * The built-in scanner over a real SQLite store holding the real OSV fixture records, with
 * image archives built in memory (the `docker save` form the engine streams): exact
 * findings (Debian matched by source package, one finding per advisory and package, the
 * package's source file), the failures (no database, an export that fails, an archive that
 * is not an image) and the abort signal. Then the cache: a hit exports nothing, a new
 * database version misses, a stored result is served across processes' instances.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuiltinScanner, ScanCache, cachedScanHook, importVulnDb, queryOf, VulnDb, type ScanFinding } from "../../../src/admission/scanner/index.js";
import { isPortcullisError, ManualClock } from "../../../src/core/index.js";
import { Store } from "../../../src/store/index.js";
import { dir, file, saveArchiveOf } from "./fixtures/images/build.js";
import { ROOTFS_ENTRIES } from "./fixtures/images/rootfs.js";
import { entriesOf, fixtureRecords, writeZip } from "./vulndb-support.js";

const root = mkdtempSync(join(tmpdir(), "portcullis-scanner-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const IMAGE = `sha256:${"c".repeat(64)}`;
const ACTOR = { id: "user:secadmin" };
const clock = new ManualClock(new Date("2026-06-01T00:00:00Z"));
let n = 0;
let store: Store;
let dataDir: string;

function zipOf(records: ReadonlyMap<string, string> | readonly [string, string][]): string {
  const path = join(root, `${++n}.zip`);
  writeFileSync(path, writeZip(entriesOf(records)));
  return path;
}

beforeEach(() => {
  dataDir = mkdtempSync(join(root, "data-"));
  store = Store.open(dataDir);
});
afterEach(() => store.close());

let rootfsArchive: Buffer | undefined;
async function rootfs(): Promise<Buffer> {
  rootfsArchive ??= (await saveArchiveOf([{ entries: ROOTFS_ENTRIES }])).archive;
  return rootfsArchive;
}

/** An export function that counts its calls and streams `archive`. */
function exporter(archive: () => Promise<Buffer>): { exportImage: (id: string) => Promise<NodeJS.ReadableStream>; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    exportImage: async (id) => {
      calls.push(id);
      return Readable.from([await archive()]);
    },
  };
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

const EXPECTED_FINDINGS: ScanFinding[] = [
  {
    id: "DSA-5532-1",
    aliases: ["CVE-2023-5363"],
    package: "openssl",
    installedPackage: "libssl3",
    ecosystem: "Debian:12",
    installed: "3.0.11-1~deb12u1",
    fixed: "3.0.11-1~deb12u2",
    severity: { level: "unknown" },
    sourceFile: "/var/lib/dpkg/status",
  },
  {
    id: "GHSA-35jh-r3h4-6jhm",
    aliases: ["CVE-2021-23337"],
    package: "lodash",
    ecosystem: "npm",
    installed: "4.17.20",
    fixed: "4.17.21",
    severity: { level: "high", score: 7.2 },
    sourceFile: "/usr/src/app/node_modules/lodash/package.json",
  },
  {
    id: "GHSA-j8r2-6x86-q33q",
    aliases: ["CVE-2023-32681", "PYSEC-2023-74"],
    package: "requests",
    ecosystem: "PyPI",
    installed: "2.30.0",
    fixed: "2.31.0",
    severity: { level: "medium", score: 6.1 },
    sourceFile: "/usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA",
  },
];

describe("the built-in scanner", () => {
  it("finds exactly the fixture's vulnerabilities, Debian by source package, one finding per advisory and package", async () => {
    const imp = await importVulnDb(store, zipOf(fixtureRecords()), ACTOR, { clock });
    const ex = exporter(rootfs);
    const scanner = new BuiltinScanner({ vulndb: new VulnDb(store), exportImage: ex.exportImage, clock });
    const r = await scanner.scan(IMAGE, never());
    expect(ex.calls).toEqual([IMAGE]);
    expect(r.findings).toEqual(EXPECTED_FINDINGS);
    expect(r.scanner).toBe("builtin");
    expect(r.imageId).toBe(IMAGE);
    expect(r.inventory).toEqual({ packages: { Debian: 7, Alpine: 2, npm: 6, PyPI: 2 }, total: 17, os: "debian 12" });
    expect(r.database).toEqual({ source: imp.sources.join(", "), version: String(imp.version), builtAt: "2025-01-14T05:13:10.613491Z" });
    expect(r.scannedAt).toBe("2026-06-01T00:00:00.000Z");
    expect(r.sbom.bomFormat).toBe("CycloneDX");
    expect(r.sbom.components.map((c) => c.name)).toContain("libssl3");
  });

  it("asks the database about the source package at the source version, in the image's release", () => {
    const os = { id: "debian", versionId: "12", name: "Debian GNU/Linux" };
    expect(
      queryOf({ ecosystem: "Debian", name: "libgcc-s1", version: "12.2.0-14", sourceFile: "/s", sourcePackage: { name: "gcc-12", version: "12.2.0-14" } }, { os }),
    ).toEqual({ ecosystem: "Debian:12", name: "gcc-12", version: "12.2.0-14" });
    expect(queryOf({ ecosystem: "Debian", name: "x", version: "1", sourceFile: "/s" }, {})).toEqual({ ecosystem: "Debian", name: "x", version: "1" });
    expect(queryOf({ ecosystem: "Debian", name: "x", version: "1", sourceFile: "/s" }, { os: { id: "ubuntu", versionId: "22.04", name: "Ubuntu" } })).toBeUndefined();
    expect(
      queryOf({ ecosystem: "Alpine", name: "libcrypto3", version: "3.0.8-r0", sourceFile: "/a", sourcePackage: { name: "openssl", version: "3.0.8-r0" } }, { os: { id: "alpine", versionId: "3.18.4", name: "Alpine" } }),
    ).toEqual({ ecosystem: "Alpine:v3.18", name: "openssl", version: "3.0.8-r0" });
  });

  it("refuses with PC_SCAN_VULNDB_MISSING before reading the image when no database is loaded", async () => {
    const ex = exporter(rootfs);
    const scanner = new BuiltinScanner({ vulndb: new VulnDb(store), exportImage: ex.exportImage, clock });
    expect((await refusal(scanner.scan(IMAGE, never()))).code).toBe("PC_SCAN_VULNDB_MISSING");
    expect(ex.calls).toEqual([]);
  });

  it("refuses an image the engine cannot export, and an archive that is not an image, with PC_SCAN_IMAGE_UNREADABLE", async () => {
    await importVulnDb(store, zipOf(fixtureRecords()), ACTOR, { clock });
    const vulndb = new VulnDb(store);
    const failing = new BuiltinScanner({ vulndb, exportImage: async () => Promise.reject(new Error("no such image")), clock });
    expect(await refusal(failing.scan(IMAGE, never()))).toEqual({ code: "PC_SCAN_IMAGE_UNREADABLE", detail: "the engine cannot export the image" });
    const garbage = new BuiltinScanner({ vulndb, exportImage: async () => Readable.from([Buffer.from("this is not a tar archive at all".repeat(40))]), clock });
    expect((await refusal(garbage.scan(IMAGE, never()))).code).toBe("PC_SCAN_IMAGE_UNREADABLE");
    const notAnId = new BuiltinScanner({ vulndb, exportImage: exporter(rootfs).exportImage, clock });
    expect((await refusal(notAnId.scan("busybox:latest", never()))).code).toBe("PC_SCAN_IMAGE_UNREADABLE");
  });

  it("an image with no package database scans to an empty inventory and no finding", async () => {
    await importVulnDb(store, zipOf(fixtureRecords()), ACTOR, { clock });
    const empty = (await saveArchiveOf([{ entries: [dir("./"), dir("bin/"), file("bin/sh", "#!")] }])).archive;
    const scanner = new BuiltinScanner({ vulndb: new VulnDb(store), exportImage: async () => Readable.from([empty]), clock });
    const r = await scanner.scan(IMAGE, never());
    expect(r.inventory).toEqual({ packages: {}, total: 0 });
    expect(r.findings).toEqual([]);
  });

  it("stops when aborted: the export stream is destroyed and the scan rejects", async () => {
    await importVulnDb(store, zipOf(fixtureRecords()), ACTOR, { clock });
    const stream = new PassThrough();
    const half = (await rootfs()).subarray(0, 10_240);
    stream.write(half);
    const scanner = new BuiltinScanner({ vulndb: new VulnDb(store), exportImage: async () => stream, clock });
    const ac = new AbortController();
    const scanning = scanner.scan(IMAGE, ac.signal);
    setTimeout(() => ac.abort(new Error("admission gave up")), 30);
    await expect(scanning).rejects.toThrow("admission gave up");
    expect(stream.destroyed).toBe(true);
  });
});

describe("the scan cache", () => {
  it("a hit costs no export and no scan; a new database version misses; the store serves a new cache instance", async () => {
    await importVulnDb(store, zipOf(fixtureRecords()), ACTOR, { clock });
    const ex = exporter(rootfs);
    const scanner = new BuiltinScanner({ vulndb: new VulnDb(store), exportImage: ex.exportImage, clock });
    const cache = new ScanCache(store, { clock });
    const first = await cache.scan(scanner, IMAGE, never());
    expect(first.cached).toBe(false);
    expect(ex.calls).toHaveLength(1);
    const second = await cache.scan(scanner, IMAGE, never());
    expect(second).toEqual({ result: first.result, cached: true });
    expect(ex.calls).toHaveLength(1);

    // Another instance (another process of the same data directory) reads the table.
    const other = new ScanCache(store, { clock });
    const fromStore = await other.scan(scanner, IMAGE, never());
    expect(fromStore.cached).toBe(true);
    expect(fromStore.result).toEqual(first.result);
    expect(ex.calls).toHaveLength(1);

    // A new import is a new database version: the cached result is not served.
    const [firstId] = [...fixtureRecords().keys()];
    await importVulnDb(store, zipOf([...fixtureRecords()].filter(([id]) => id !== firstId)), ACTOR, { clock });
    const third = await cache.scan(scanner, IMAGE, never());
    expect(third.cached).toBe(false);
    expect(third.result.database.version).not.toBe(first.result.database.version);
    expect(ex.calls).toHaveLength(2);
    expect((await cache.scan(scanner, IMAGE, never())).cached).toBe(true);
    expect(ex.calls).toHaveLength(2);
  });

  it("a stored result that does not parse, or names another scanner, is a miss", async () => {
    await importVulnDb(store, zipOf(fixtureRecords()), ACTOR, { clock });
    const version = new VulnDb(store).version();
    const cache = new ScanCache(store, { clock });
    store.vulndb.putScanResult(IMAGE, version, "{not json", 1);
    expect(cache.get("builtin", IMAGE, version, String(version))).toBeUndefined();
    const ex = exporter(rootfs);
    const scanner = new BuiltinScanner({ vulndb: new VulnDb(store), exportImage: ex.exportImage, clock });
    const r = (await cache.scan(scanner, IMAGE, never())).result;
    expect(new ScanCache(store).get("trivy", IMAGE, version, String(version))).toBeUndefined();
    expect(new ScanCache(store).get("builtin", IMAGE, version, String(version))).toEqual(r);
  });

  it("the scan hook answers the result through the cache", async () => {
    await importVulnDb(store, zipOf(fixtureRecords()), ACTOR, { clock });
    const ex = exporter(rootfs);
    const hook = cachedScanHook(new BuiltinScanner({ vulndb: new VulnDb(store), exportImage: ex.exportImage, clock }), new ScanCache(store, { clock }), 4000);
    expect(hook.timeoutMs).toBe(4000);
    const a = await hook.scan(IMAGE, never());
    const b = await hook.scan(IMAGE, never());
    expect(b).toEqual(a);
    expect(ex.calls).toHaveLength(1);
  });
});
