/**
 * The vulnerability database over a real SQLite store: import of osv.dev-shaped zips and
 * directories of real OSV records, status, candidates and matches at the boundary
 * versions, atomic replacement, refused imports that change nothing.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeEach, afterEach, describe, expect, it } from "vitest";
import { importVulnDb, cleanupVulnDb } from "../../../src/admission/scanner/vulndb-import.js";
import { VulnDb, type VulnFinding } from "../../../src/admission/scanner/vulndb.js";
import { isPortcullisError, ManualClock, pcError, type AuditEvent, type AuditSink } from "../../../src/core/index.js";
import { Store } from "../../../src/store/index.js";
import { entriesOf, fixtureRecords, syntheticRecords, writeZip } from "./vulndb-support.js";

const root = mkdtempSync(join(tmpdir(), "portcullis-vulndb-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ACTOR = { id: "user:secadmin" };
const AT = new Date("2026-03-01T10:00:00Z");
const NEWEST = "2025-01-14T05:13:10.613491Z"; // DEBIAN-CVE-2022-37434
const ALL = fixtureRecords();
let n = 0;

function zipFile(name: string, records: ReadonlyMap<string, string> | readonly [string, string][]): string {
  const path = join(root, `${++n}-${name}`);
  writeFileSync(path, writeZip(entriesOf(records)));
  return path;
}
const sha256Of = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const without = (...ids: string[]) => [...ALL].filter(([id]) => !ids.includes(id));

async function refusal(p: Promise<unknown>): Promise<{ code: string; detail: string | undefined }> {
  try {
    await p;
  } catch (e) {
    if (isPortcullisError(e)) return { code: e.code, detail: e.detail };
    throw e;
  }
  throw new Error("expected a refusal");
}

function rowsOf(store: Store, importId: number): { records: number; affected: number } {
  const one = (sql: string) => (store.db.prepare(sql).get(importId) as { n: number }).n;
  return {
    records: one("SELECT count(*) AS n FROM vuln_records WHERE import_id = ?"),
    affected: one("SELECT count(*) AS n FROM vuln_affected WHERE import_id = ?"),
  };
}

let store: Store;
let db: VulnDb;
let clock: ManualClock;
beforeEach(() => {
  store = Store.open(mkdtempSync(join(root, "data-")));
  db = new VulnDb(store);
  clock = new ManualClock(AT);
});
afterEach(() => store.close());

const DSA = (installed: string): VulnFinding => ({
  id: "DSA-5532-1",
  aliases: [],
  related: ["CVE-2023-5363"],
  package: "openssl",
  ecosystem: "Debian:12",
  installed,
  fixed: "3.0.11-1~deb12u2",
  severity: { level: "unknown", source: "none" },
  summary: "openssl - security update",
});
const DEBIAN_ZLIB = (ecosystem: string, installed: string, fixed: string): VulnFinding => ({
  id: "DEBIAN-CVE-2022-37434",
  aliases: ["CVE-2022-37434"],
  package: "zlib",
  ecosystem,
  installed,
  fixed,
  severity: { level: "unknown", source: "none" },
});
const ALPINE_ZLIB = (installed: string): VulnFinding => ({
  id: "ALPINE-CVE-2022-37434",
  aliases: ["CVE-2022-37434"],
  package: "zlib",
  ecosystem: "Alpine:v3.16",
  installed,
  fixed: "1.2.12-r2",
  severity: { level: "unknown", source: "none" },
});
const LODASH_TEMPLATE = (pkg: string, installed: string): VulnFinding => ({
  id: "GHSA-35jh-r3h4-6jhm",
  aliases: ["CVE-2021-23337"],
  package: pkg,
  ecosystem: "npm",
  installed,
  fixed: "4.17.21",
  severity: { level: "high", score: 7.2, source: "cvss_v3" },
  summary: "Command Injection in lodash",
});
const LODASH_ZIP = (installed: string): VulnFinding => ({
  id: "GHSA-p6mc-m468-83gw",
  aliases: ["CVE-2020-8203"],
  package: "lodash",
  ecosystem: "npm",
  installed,
  fixed: "4.17.19",
  severity: { level: "high", score: 7.4, source: "cvss_v3" },
  summary: "Prototype Pollution in lodash",
});
const REQUESTS = (pkg: string, installed: string): VulnFinding => ({
  id: "GHSA-j8r2-6x86-q33q",
  aliases: ["CVE-2023-32681", "PYSEC-2023-74"],
  package: pkg,
  ecosystem: "PyPI",
  installed,
  fixed: "2.31.0",
  severity: { level: "medium", score: 6.1, source: "cvss_v3" },
  summary: "Unintended leak of Proxy-Authorization header in requests",
});

describe("no database", () => {
  it("has no status, and every question fails with PC_SCAN_VULNDB_MISSING", () => {
    expect(db.status()).toBeUndefined();
    for (const ask of [() => db.version(), () => db.candidates("npm", "lodash"), () => db.match("npm", "lodash", "4.17.20")]) {
      expect(ask).toThrowError(expect.objectContaining({ code: "PC_SCAN_VULNDB_MISSING", status: 503 }) as Error);
    }
  });
});

describe("import of an osv.dev zip", () => {
  it("reads every record, and the status says what is in force", async () => {
    const zip = zipFile("all.zip", ALL);
    const r = await importVulnDb(store, zip, ACTOR, { clock });
    expect(r).toEqual({
      version: 1,
      records: 6,
      newestModified: NEWEST,
      source: zip,
      sources: [zip],
      sha256: sha256Of(zip),
      ecosystems: { Alpine: 1, Debian: 2, PyPI: 1, npm: 2 },
      duplicates: 0,
    });
    expect(db.status()).toEqual({
      version: 1,
      source: zip,
      sources: [zip],
      records: 6,
      newestModified: NEWEST,
      importedAt: AT,
      importedBy: "user:secadmin",
      sha256: sha256Of(zip),
      ecosystems: { Alpine: 1, Debian: 2, PyPI: 1, npm: 2 },
    });
    expect(db.version()).toBe(1);
  });

  it.each([
    // [ecosystem, package, installed, expected finding ids]
    ["Debian:12", "openssl", "3.0.11-1~deb12u1", [DSA("3.0.11-1~deb12u1")]],
    ["Debian:12", "openssl", "3.0.11-1~deb12u2", []], // installed = fixed
    ["Debian:12", "openssl", "3.0.8-1", [DSA("3.0.8-1")]],
    ["Debian:11", "openssl", "3.0.11-1~deb12u1", []], // the advisory is for bookworm only
    ["Debian:12", "zlib", "1:1.2.11.dfsg-4", [DEBIAN_ZLIB("Debian:12", "1:1.2.11.dfsg-4", "1:1.2.11.dfsg-4.1")]],
    ["Debian:12", "zlib", "1:1.2.11.dfsg-4.1", []],
    ["Debian:12", "zlib", "1:1.2.13.dfsg-1", []],
    ["Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u1", [DEBIAN_ZLIB("Debian:11", "1:1.2.11.dfsg-2+deb11u1", "1:1.2.11.dfsg-2+deb11u2")]],
    ["Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u2", []],
    ["Alpine:v3.16", "zlib", "1.2.12-r1", [ALPINE_ZLIB("1.2.12-r1")]],
    ["Alpine:v3.16", "zlib", "1.2.12-r2", []],
    ["Alpine:v3.18", "zlib", "1.2.12-r1", []], // the record is for v3.16 only
    ["npm", "lodash", "3.6.0", [LODASH_TEMPLATE("lodash", "3.6.0")]], // before GHSA-p6mc's introduced
    ["npm", "lodash", "3.7.0", [LODASH_TEMPLATE("lodash", "3.7.0"), LODASH_ZIP("3.7.0")]],
    ["npm", "lodash", "4.17.18", [LODASH_TEMPLATE("lodash", "4.17.18"), LODASH_ZIP("4.17.18")]],
    ["npm", "lodash", "4.17.19", [LODASH_TEMPLATE("lodash", "4.17.19")]],
    ["npm", "lodash", "4.17.20", [LODASH_TEMPLATE("lodash", "4.17.20")]],
    ["npm", "lodash", "4.17.21", []],
    ["npm", "lodash-es", "4.17.20", [LODASH_TEMPLATE("lodash-es", "4.17.20")]],
    ["npm", "left-pad", "1.3.0", []],
    ["PyPI", "requests", "2.30.0", [REQUESTS("requests", "2.30.0")]],
    ["PyPI", "Requests", "2.30.0", [REQUESTS("Requests", "2.30.0")]], // PEP 503 names
    ["PyPI", "requests", "2.31.0", []],
    ["PyPI", "requests", "2.2.1", []], // before introduced 2.3.0
  ] as const)("%s %s %s", async (ecosystem, pkg, installed, expected) => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    expect(db.match(ecosystem, pkg, installed)).toEqual(expected);
  });

  it("candidates: by ecosystem and package, a release finds its own and release-less entries", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    const ids = (eco: string, pkg: string) => db.candidates(eco, pkg).map((r) => r.id);
    expect(ids("npm", "lodash")).toEqual(["GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"]);
    expect(ids("npm", "lodash.template")).toEqual(["GHSA-35jh-r3h4-6jhm"]);
    expect(ids("Debian", "zlib")).toEqual(["DEBIAN-CVE-2022-37434"]);
    expect(ids("Debian:12", "openssl")).toEqual(["DSA-5532-1"]);
    expect(ids("Debian:11", "openssl")).toEqual([]);
    expect(ids("Alpine", "zlib")).toEqual(["ALPINE-CVE-2022-37434"]);
    expect(ids("PyPI", "REQUESTS")).toEqual(["GHSA-j8r2-6x86-q33q"]);
    expect(ids("npm", "requests")).toEqual([]);
    // Parsed once per version: the same objects come back.
    expect(db.candidates("npm", "lodash")[0]).toBe(db.candidates("npm", "lodash")[0]);
  });

  it("answers the same with a cache of one record", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    const small = new VulnDb(store, { cacheSize: 1 });
    for (let i = 0; i < 3; i++) {
      expect(small.match("npm", "lodash", "4.17.18")).toEqual([LODASH_TEMPLATE("lodash", "4.17.18"), LODASH_ZIP("4.17.18")]);
      expect(small.match("Debian:12", "openssl", "3.0.8-1")).toEqual([DSA("3.0.8-1")]);
    }
  });

  it("refuses a version or ecosystem it cannot order (ScanInputError), not 'not affected'", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    expect(() => db.match("npm", "lodash", "not-a-version")).toThrowError(expect.objectContaining({ reason: "version_invalid" }) as Error);
    expect(() => db.match("Go", "golang.org/x/net", "0.1.0")).toThrowError(expect.objectContaining({ reason: "ecosystem_unsupported" }) as Error);
  });
});

describe("import of a directory", () => {
  it("reads the *.json files under it recursively", async () => {
    const dir = join(root, `tree-${++n}`);
    for (const [id, text] of ALL) {
      const sub = join(dir, id.startsWith("GHSA") ? "github/reviewed" : id.split("-")[0] as string);
      mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `${id}.json`), text);
    }
    const r = await importVulnDb(store, dir, ACTOR, { clock });
    expect(r).toMatchObject({ version: 1, records: 6, newestModified: NEWEST, source: dir, ecosystems: { Alpine: 1, Debian: 2, PyPI: 1, npm: 2 } });
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(db.match("npm", "lodash", "4.17.18").map((f) => f.id)).toEqual(["GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"]);
    // The same files give the same digest; a changed file another.
    expect((await importVulnDb(store, dir, ACTOR, { clock })).sha256).toBe(r.sha256);
    writeFileSync(join(dir, "DSA", "DSA-5532-1.json"), `${ALL.get("DSA-5532-1") as string}\n`);
    expect((await importVulnDb(store, dir, ACTOR, { clock })).sha256).not.toBe(r.sha256);
  });
});

describe("several zips in one import (osv.dev exports one per ecosystem)", () => {
  it("imports them as one version; a record found in two zips is kept once, the newest copy", async () => {
    const npm = zipFile("npm.zip", [...ALL].filter(([id]) => id.startsWith("GHSA-35") || id.startsWith("GHSA-p6")));
    const newer = JSON.parse(ALL.get("GHSA-35jh-r3h4-6jhm") as string) as { modified: string; affected: unknown[] };
    newer.modified = "2025-06-01T00:00:00Z";
    newer.affected = newer.affected.slice(0, 2); // this copy no longer names lodash.template
    const other = zipFile("other.zip", [...without("GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"), ["GHSA-35jh-r3h4-6jhm", JSON.stringify(newer)]]);
    const r = await importVulnDb(store, [npm, other], ACTOR, { clock });
    expect(r).toMatchObject({ version: 1, records: 6, newestModified: "2025-06-01T00:00:00Z", sources: [npm, other], source: `${npm}, ${other}`, duplicates: 1 });
    expect(r.sha256).toBe(createHash("sha256").update(`${sha256Of(npm)}\n${sha256Of(other)}`).digest("hex"));
    expect(db.candidates("npm", "lodash.template")).toEqual([]);
    expect(db.candidates("npm", "lodash-es").map((x) => x.modified)).toEqual(["2025-06-01T00:00:00Z"]);
    expect(rowsOf(store, 1).records).toBe(6);

    // An older copy after a newer one changes nothing.
    const older = zipFile("older.zip", [["GHSA-35jh-r3h4-6jhm", ALL.get("GHSA-35jh-r3h4-6jhm") as string]]);
    const r2 = await importVulnDb(store, [other, older], ACTOR, { clock });
    expect(r2).toMatchObject({ records: 5, duplicates: 1 });
    expect(db.candidates("npm", "lodash.template")).toEqual([]);
  });
});

describe("re-import", () => {
  it("replaces the database: a record left out no longer matches, the old rows are deleted", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    clock.advance(60_000);
    const zip2 = zipFile("all.zip", without("GHSA-p6mc-m468-83gw"));
    const r = await importVulnDb(store, zip2, { id: "user:other" }, { clock });
    expect(r).toMatchObject({ version: 2, records: 5, ecosystems: { Alpine: 1, Debian: 2, PyPI: 1, npm: 1 } });
    expect(db.match("npm", "lodash", "4.17.18")).toEqual([LODASH_TEMPLATE("lodash", "4.17.18")]);
    expect(db.status()).toMatchObject({ version: 2, records: 5, importedBy: "user:other", importedAt: new Date(AT.getTime() + 60_000) });
    expect(db.imports().map((i) => [i.id, i.state, i.purgedAt !== null])).toEqual([
      [1, "replaced", true],
      [2, "active", false],
    ]);
    expect(rowsOf(store, 1)).toEqual({ records: 0, affected: 0 });
    expect(rowsOf(store, 2)).toEqual({ records: 5, affected: 9 }); // DEBIAN-CVE-2022-37434 names three releases, GHSA-35jh three packages
  });

  it("drops the scan results cached for the replaced version", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    store.db.prepare("INSERT INTO scan_results (image_id, db_version, result, created_at) VALUES (?, ?, ?, ?)").run("sha256:aa", 1, "{}", 0);
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    store.db.prepare("INSERT INTO scan_results (image_id, db_version, result, created_at) VALUES (?, ?, ?, ?)").run("sha256:aa", 2, "{}", 0);
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    expect(store.db.prepare("SELECT db_version FROM scan_results").all()).toEqual([]);
  });
});

describe("a refused import changes nothing", () => {
  const BAD = JSON.stringify({
    schema_version: "1.6.0",
    id: "GHSA-bad0-bad0-bad0",
    modified: "2024-01-01T00:00:00Z",
    affected: [{ package: { ecosystem: "npm", name: "lodash" }, ranges: [{ type: "ECOSYSTEM", events: [{ fixed: "4.17.21" }] }] }],
  });

  async function expectUnchanged(run: () => Promise<unknown>, code: string, detail: string | RegExp | undefined): Promise<void> {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    const before = db.status();
    const r = await refusal(run());
    expect(r.code).toBe(code);
    if (detail instanceof RegExp) expect(r.detail).toMatch(detail);
    else expect(r.detail).toBe(detail);
    expect(db.status()).toEqual(before);
    expect(db.match("npm", "lodash", "4.17.18").map((f) => f.id)).toEqual(["GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"]);
    const imports = db.imports();
    expect(imports.map((i) => i.state)).toEqual(["active", "failed"]);
    expect(imports[1]?.purgedAt).not.toBeNull();
    expect(rowsOf(store, 2)).toEqual({ records: 0, affected: 0 });
  }

  it("a malformed record in the middle: PC_SCAN_VULNDB_INVALID naming the file and the JSON path", async () => {
    const entries = [...ALL];
    const zip = zipFile("bad.zip", [...entries.slice(0, 3), ["GHSA-bad0-bad0-bad0", BAD], ...entries.slice(3)]);
    await expectUnchanged(
      () => importVulnDb(store, zip, ACTOR, { clock, batchSize: 2 }),
      "PC_SCAN_VULNDB_INVALID",
      `"GHSA-bad0-bad0-bad0.json" (in ${zip}): $.affected[0].ranges[0].events: must contain at least one introduced event`,
    );
  });

  it("a file that is not JSON", async () => {
    const zip = zipFile("notjson.zip", [["A-1", ALL.get("DSA-5532-1") as string], ["notes", "hello"]]);
    await expectUnchanged(() => importVulnDb(store, zip, ACTOR, { clock }), "PC_SCAN_VULNDB_INVALID", new RegExp(`^"notes.json" \\(in ${zip}\\): \\$: not valid JSON`));
  });

  it("a malformed record in a directory", async () => {
    const dir = join(root, `dir-${++n}`);
    mkdirSync(join(dir, "npm"), { recursive: true });
    writeFileSync(join(dir, "DSA-5532-1.json"), ALL.get("DSA-5532-1") as string);
    writeFileSync(join(dir, "npm", "GHSA-bad0-bad0-bad0.json"), BAD);
    await expectUnchanged(
      () => importVulnDb(store, dir, ACTOR, { clock }),
      "PC_SCAN_VULNDB_INVALID",
      `"npm/GHSA-bad0-bad0-bad0.json" (in ${dir}): $.affected[0].ranges[0].events: must contain at least one introduced event`,
    );
  });

  it("an input with no record", async () => {
    const empty = join(root, `${++n}-empty.zip`);
    writeFileSync(empty, writeZip([]));
    await expectUnchanged(() => importVulnDb(store, empty, ACTOR, { clock }), "PC_SCAN_VULNDB_INVALID", `${empty}: no OSV records`);
  });

  it("a path that does not exist", async () => {
    const missing = join(root, "missing.zip");
    await expectUnchanged(() => importVulnDb(store, missing, ACTOR, { clock }), "PC_SCAN_VULNDB_INVALID", `${missing}: cannot be read`);
  });

  it("a failing audit write rolls the switch back", async () => {
    const failing: AuditSink = {
      record: () => {
        throw pcError("PC_AUDIT_WRITE_FAILED");
      },
      recordAfter: () => undefined,
      append: () => Promise.resolve(undefined),
    } as unknown as AuditSink;
    await expectUnchanged(() => importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock, audit: failing }), "PC_AUDIT_WRITE_FAILED", undefined);
  });
});

describe("audit", () => {
  it("records vulndb.imported in the switch, and vulndb.import_failed after a refusal", async () => {
    const events: AuditEvent[] = [];
    const sink = {
      record: (e: AuditEvent) => void events.push(e),
      recordAfter: (e: AuditEvent) => void events.push(e),
      append: (e: AuditEvent) => Promise.resolve(void events.push(e)),
    } as unknown as AuditSink;
    const zip = zipFile("all.zip", ALL);
    await importVulnDb(store, zip, { id: "user:secadmin", requestId: "req-1" }, { clock, audit: sink });
    await refusal(importVulnDb(store, join(root, "missing.zip"), { id: "user:secadmin" }, { clock, audit: sink }));
    expect(events).toEqual([
      {
        type: "vulndb.imported",
        outcome: "allowed",
        actor: "user:secadmin",
        actorSerial: undefined,
        requestId: "req-1",
        sourceAddress: undefined,
        resource: "vulndb",
        target: "version:1",
        bodySha256: sha256Of(zip),
      },
      {
        type: "vulndb.import_failed",
        outcome: "error",
        actor: "user:secadmin",
        actorSerial: undefined,
        requestId: undefined,
        sourceAddress: undefined,
        resource: "vulndb",
        target: "import:2",
        reason: "PC_SCAN_VULNDB_INVALID",
      },
    ]);
  });
});

describe("withdrawn records", () => {
  it("are kept and listed as candidates, but never match", async () => {
    const w = JSON.parse(ALL.get("GHSA-p6mc-m468-83gw") as string) as Record<string, unknown>;
    w.withdrawn = "2025-02-01T00:00:00Z";
    await importVulnDb(store, zipFile("w.zip", [...without("GHSA-p6mc-m468-83gw"), ["GHSA-p6mc-m468-83gw", JSON.stringify(w)]]), ACTOR, { clock });
    expect(db.candidates("npm", "lodash").map((r) => [r.id, r.withdrawn])).toEqual([
      ["GHSA-35jh-r3h4-6jhm", undefined],
      ["GHSA-p6mc-m468-83gw", "2025-02-01T00:00:00Z"],
    ]);
    expect(db.match("npm", "lodash", "4.17.18")).toEqual([LODASH_TEMPLATE("lodash", "4.17.18")]);
  });
});

describe("cleanupVulnDb", () => {
  it("leaves the database in force alone and has nothing to do after a clean import", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    expect(await cleanupVulnDb(store, { clock })).toEqual({ failed: [], purged: [] });
    expect(db.status()?.version).toBe(1);
  });

  it("fails only loading imports whose process is gone, or that are older than staleAfterMs", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid as number;
    const at = clock.now().getTime();
    const begin = (pid: number, host: string, importedAt = at) => store.vulndb.begin({ sources: ["x.zip"], importedAt, importedBy: "user:x", pid, host });
    const alive = begin(process.ppid, hostname()); // another live process here
    const gone = begin(dead, hostname());
    const elsewhere = begin(dead, "another-host"); // cannot be checked: left until stale
    const old = begin(dead, "another-host", at - 7 * 3600_000);
    const ours = begin(process.pid, hostname()); // this process, not running: a leftover
    expect(await cleanupVulnDb(store, { clock })).toEqual({ failed: [gone, old, ours], purged: [gone, old, ours] });
    expect([alive, elsewhere].map((id) => store.vulndb.get(id)?.state)).toEqual(["loading", "loading"]);
    clock.advance(6 * 3600_000 + 1);
    expect(await cleanupVulnDb(store, { clock })).toEqual({ failed: [alive, elsewhere], purged: [alive, elsewhere] });
    expect(db.status()?.version).toBe(1);
  });

  it("leaves an import running in this process alone", async () => {
    await importVulnDb(store, zipFile("all.zip", ALL), ACTOR, { clock });
    const big = zipFile("big.zip", syntheticRecords(2000, 3).map((r) => [r.id, r.text] as [string, string]));
    const running = importVulnDb(store, big, ACTOR, { clock, batchSize: 10 });
    const loading = () => store.vulndb.withState("loading")[0];
    while (loading() === undefined || rowsOf(store, loading()?.id as number).records === 0) await new Promise((r) => setImmediate(r));
    expect(await cleanupVulnDb(store, { clock })).toEqual({ failed: [], purged: [] });
    expect(db.status()?.version).toBe(1); // still the old one while the new one loads
    expect(await running).toMatchObject({ version: 2, records: 2000 });
    expect(db.status()?.version).toBe(2);
  });
});
