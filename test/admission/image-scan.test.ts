/**
 * The image-scan check, table-driven: its parameters (every problem with its field), the
 * scanner's absence (requireScan), the failures that deny (by error code, a throw, a late
 * or malformed answer), and the verdict on scan results (threshold, unknown severity,
 * unfixed findings, empty inventory, database age), each with the exact reason, detail and
 * field path. Through the chain: waivers exempt findings by id or by an alias (CVE).
 */
import { describe, expect, it } from "vitest";
import { evaluate, imageScanCheck, type AdmissionHooks, type CheckResult, type ScanHook } from "../../src/admission/index.js";
import { validateImageScanParams, type ImageScanParams } from "../../src/admission/checks/image-scan.js";
import type { ScanFinding, ScanResult } from "../../src/admission/scanner/index.js";
import { pcError } from "../../src/core/index.js";
import { attrs, D, E, NOW, policySet, policyYaml } from "./fixture.js";
import { finding, scanResult } from "./scanner/scanner-support.js";

const DEFAULTS = (validateImageScanParams(undefined) as { ok: true; params: ImageScanParams }).params;
const params = (raw: Record<string, unknown> = {}): ImageScanParams => {
  const v = validateImageScanParams(raw);
  if (!v.ok) throw new Error(JSON.stringify(v.issues));
  return v.params;
};

async function check(hooks: AdmissionHooks, p: ImageScanParams = DEFAULTS, a = attrs()): Promise<readonly CheckResult[]> {
  return imageScanCheck.run(a, p, { hooks, now: NOW });
}
const brief = (rs: readonly CheckResult[]) => rs.map((r) => [r.allowed, r.reason, r.field]);
const hookOf = (r: ScanResult | ((id: string) => ScanResult)): ScanHook => ({ scan: async (id) => (typeof r === "function" ? r(id) : r) });

const SUMMARY_CLEAN = `${D} scanned by builtin; 10 package(s) (Debian 7, npm 3) on debian 12; 0 finding(s): 0 critical, 0 high, 0 medium, 0 low, 0 none, 0 unknown; 0 at or above high; database 3 built 2026-05-30T00:00:00.000Z`;

describe("image-scan parameters", () => {
  it("defaults: maxSeverity high, unknown as critical, unfixed count, scan required, empty inventory refused, alert", () => {
    expect(DEFAULTS).toEqual({
      maxSeverity: "high",
      unknownSeverity: "critical",
      ignoreUnfixed: false,
      databaseAgeMode: "deny",
      requireScan: true,
      allowEmptyInventory: false,
      onNewFindings: "alert",
    });
    expect(params({ maxDatabaseAge: "7d", databaseAgeMode: "warn" })).toMatchObject({ maxDatabaseAgeMs: 7 * 86_400_000, databaseAgeMode: "warn" });
  });

  it.each([
    [{ maxSeverity: "severe" }, [{ field: "maxSeverity", reason: "must be one of critical, high, medium, low, none" }]],
    [{ unknownSeverity: "unknown" }, [{ field: "unknownSeverity", reason: "must be one of critical, high, medium, low, none" }]],
    [{ ignoreUnfixed: "yes" }, [{ field: "ignoreUnfixed", reason: "must be true or false" }]],
    [{ maxDatabaseAge: "1w" }, [{ field: "maxDatabaseAge", reason: "must be a duration such as 7d, 36h or 90m" }]],
    [{ maxDatabaseAge: 7 }, [{ field: "maxDatabaseAge", reason: "must be a duration such as 7d, 36h or 90m" }]],
    [{ databaseAgeMode: "warn" }, [{ field: "databaseAgeMode", reason: "only with maxDatabaseAge" }]],
    [{ maxDatabaseAge: "7d", databaseAgeMode: "ignore" }, [{ field: "databaseAgeMode", reason: "must be one of deny, warn" }]],
    [{ requireScan: 0 }, [{ field: "requireScan", reason: "must be true or false" }]],
    [{ allowEmptyInventory: null }, [{ field: "allowEmptyInventory", reason: "must be true or false" }]],
    [{ maxSeverity: "low", ignoreUnfixed: true, maxDatabaseAge: "36h", databaseAgeMode: "warn", requireScan: false, allowEmptyInventory: true, onNewFindings: "stop" }, []],
    [{ onNewFindings: "page" }, [{ field: "onNewFindings", reason: "must be one of alert, stop" }]],
    [{ severity: "high" }, [{ field: "severity", reason: expect.stringContaining("unknown parameter (allowed: maxSeverity, unknownSeverity") as string }]],
    ["high", [{ field: "", reason: expect.stringContaining("must be a map of maxSeverity") as string }]],
  ])("%j -> %j", (raw, issues) => {
    const v = validateImageScanParams(raw);
    if (issues.length === 0) expect(v.ok).toBe(true);
    else expect(v).toEqual({ ok: false, issues });
  });

  it("a policy file with bad parameters is refused with the parameter path", () => {
    expect(() => policySet(policyYaml("p", "image-scan: { mode: enforce, params: { maxSeverity: severe } }"))).toThrow(/maxSeverity/);
    expect(policySet(policyYaml("p", "image-scan: { mode: enforce, params: { maxSeverity: critical, ignoreUnfixed: true, maxDatabaseAge: 7d, databaseAgeMode: warn } }")).policies).toHaveLength(1);
  });
});

describe("image-scan without a scanner, and failures", () => {
  it("no scanner: denied when a scan is required (the default), ok when not", async () => {
    const denied = await check({});
    expect(denied).toEqual([
      { check: "image-scan", allowed: false, reason: "no scanner configured", field: "spec.image", detail: `no image scanner is configured and the policy requires a scan (requireScan); ${attrs().spec.image} is not admitted` },
    ]);
    expect(await check({}, params({ requireScan: false }))).toEqual([
      { check: "image-scan", allowed: true, reason: "ok", field: "spec.image", detail: "scan not required: no scanner configured" },
    ]);
  });

  it("a scanner that fails still denies when no scan is required", async () => {
    const hook: ScanHook = { scan: async () => Promise.reject(pcError("PC_SCAN_FAILED", "trivy exited with code 2")) };
    expect(brief(await check({ scan: hook }, params({ requireScan: false })))).toEqual([[false, "scanner failed", "spec.image"]]);
  });

  it("no node holds the image: denied, nothing scanned", async () => {
    let called = 0;
    const hook: ScanHook = { scan: async () => (called++, scanResult([])) };
    const rs = await check({ scan: hook }, DEFAULTS, attrs({ image: null }));
    expect(rs).toEqual([{ check: "image-scan", allowed: false, reason: "image not found", field: "spec.image", detail: `no node holds ${attrs().spec.image}; it cannot be scanned` }]);
    expect(called).toBe(0);
  });

  it.each([
    ["PC_SCAN_VULNDB_MISSING", undefined, "no vulnerability database", `${D} could not be scanned: no vulnerability database is loaded (PC_SCAN_VULNDB_MISSING); the request is denied`],
    ["PC_SCAN_IMAGE_UNREADABLE", "the engine cannot export the image", "image unreadable", `${D} could not be scanned: image cannot be read for scanning: the engine cannot export the image (PC_SCAN_IMAGE_UNREADABLE); the request is denied`],
    ["PC_SCAN_ARCHIVE_UNSAFE", undefined, "image archive unsafe", `${D} could not be scanned: archive entry is not safe to read (PC_SCAN_ARCHIVE_UNSAFE); the request is denied`],
    ["PC_SCAN_FILE_TOO_LARGE", undefined, "image file too large", `${D} could not be scanned: file in the archive is too large (PC_SCAN_FILE_TOO_LARGE); the request is denied`],
    ["PC_SCAN_TIMEOUT", undefined, "scanner timed out", `${D} could not be scanned: image scan timed out (PC_SCAN_TIMEOUT); the request is denied`],
    ["PC_SCAN_FAILED", "trivy exited with code 1", "scanner failed", `${D} could not be scanned: image scan failed: trivy exited with code 1 (PC_SCAN_FAILED); the request is denied`],
    ["PC_INTERNAL", undefined, "scanner failed", `the scanner failed on ${D}; the request is denied`],
  ] as const)("%s -> %s", async (code, detail, reason, text) => {
    const hook: ScanHook = { scan: async () => Promise.reject(pcError(code, detail)) };
    expect(await check({ scan: hook })).toEqual([{ check: "image-scan", allowed: false, reason, field: "spec.image", detail: text }]);
  });

  it("a throw, synchronous or not, denies", async () => {
    const sync: ScanHook = { scan: () => { throw new Error("boom"); } };
    expect(brief(await check({ scan: sync }))).toEqual([[false, "scanner failed", "spec.image"]]);
    const async_: ScanHook = { scan: async () => Promise.reject(new Error("boom")) };
    expect(brief(await check({ scan: async_ }))).toEqual([[false, "scanner failed", "spec.image"]]);
  });

  it.each([
    ["a list of findings", []],
    ["another image's result", scanResult([], { imageId: E })],
    ["a finding without id", scanResult([finding({ id: "" })])],
    ["a finding with an unknown level", scanResult([finding({ id: "CVE-2024-1", severity: { level: "severe" as "high" } })])],
    ["no inventory", { ...scanResult([]), inventory: undefined }],
  ])("an answer that is not a scan result denies: %s", async (_name, answer) => {
    const hook = { scan: async () => answer } as unknown as ScanHook;
    expect(await check({ scan: hook })).toEqual([
      { check: "image-scan", allowed: false, reason: "scanner failed", field: "spec.image", detail: `the scanner gave an answer for ${D} that is not a scan result; the request is denied` },
    ]);
  });

  it("a scanner that takes longer than its timeout denies and is aborted", async () => {
    let aborted = false;
    const hook: ScanHook = {
      timeoutMs: 30,
      scan: (_id, signal) =>
        new Promise<ScanResult>((resolve) => {
          signal.addEventListener("abort", () => (aborted = true));
          setTimeout(() => resolve(scanResult([])), 1_000);
        }),
    };
    expect(await check({ scan: hook })).toEqual([
      { check: "image-scan", allowed: false, reason: "scanner timed out", field: "spec.image", detail: `the scanner did not answer within 30 ms for ${D}; the request is denied` },
    ]);
    expect(aborted).toBe(true);
  });
});

const CRIT = finding({ id: "CVE-2024-0001", package: "zlib", installed: "1.2.13", fixed: "1.3", severity: { level: "critical", score: 9.8 } });
const HIGH = finding({ id: "DSA-5532-1", aliases: ["CVE-2023-5363"], installedPackage: "libssl3" });
const MED = finding({ id: "GHSA-j8r2-6x86-q33q", aliases: ["CVE-2023-32681"], package: "requests", ecosystem: "PyPI", installed: "2.30.0", fixed: "2.31.0", severity: { level: "medium", score: 6.1 }, sourceFile: "/usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA" });
const UNK = finding({ id: "DEBIAN-CVE-2024-9", package: "tar", installed: "1.34", severity: { level: "unknown" } });
const UNFIXED = (() => {
  const { fixed: _f, ...rest } = finding({ id: "CVE-2024-7777", package: "curl", installed: "7.88.1", severity: { level: "critical", score: 9.1 } });
  return rest;
})();

const HIGH_DETAIL = "DSA-5532-1 (CVE-2023-5363) in Debian:12 package openssl 3.0.11-1~deb12u1 installed as libssl3, from /var/lib/dpkg/status: severity high 7.5, at or above high; fixed in 3.0.11-1~deb12u2";

describe("image-scan verdicts", () => {
  it("a clean image: one ok result whose detail is the scan summary", async () => {
    expect(await check({ scan: hookOf(scanResult([])) })).toEqual([{ check: "image-scan", allowed: true, reason: "ok", field: "spec.image", detail: SUMMARY_CLEAN }]);
  });

  it("each blocking finding is one violation naming id, aliases, package, versions, severity and file; the summary rides beside", async () => {
    const rs = await check({ scan: hookOf(scanResult([HIGH, MED])) });
    expect(rs).toEqual([
      { check: "image-scan", allowed: false, reason: "vulnerability", field: "spec.image", detail: HIGH_DETAIL, findings: ["DSA-5532-1", "CVE-2023-5363"] },
      {
        check: "image-scan",
        allowed: true,
        reason: "scan summary",
        field: "spec.image",
        detail: `${D} scanned by builtin; 10 package(s) (Debian 7, npm 3) on debian 12; 2 finding(s): 0 critical, 1 high, 1 medium, 0 low, 0 none, 0 unknown; 1 at or above high; database 3 built 2026-05-30T00:00:00.000Z`,
      },
    ]);
  });

  const FINDINGS = [CRIT, HIGH, MED, UNK, UNFIXED];
  it.each([
    ["default (high, unknown as critical)", {}, ["CVE-2024-0001", "DSA-5532-1", "DEBIAN-CVE-2024-9", "CVE-2024-7777"]],
    ["critical", { maxSeverity: "critical" }, ["CVE-2024-0001", "DEBIAN-CVE-2024-9", "CVE-2024-7777"]],
    ["medium", { maxSeverity: "medium" }, ["CVE-2024-0001", "DSA-5532-1", "GHSA-j8r2-6x86-q33q", "DEBIAN-CVE-2024-9", "CVE-2024-7777"]],
    ["unknown judged low", { unknownSeverity: "low" }, ["CVE-2024-0001", "DSA-5532-1", "CVE-2024-7777"]],
    ["ignoreUnfixed", { ignoreUnfixed: true }, ["CVE-2024-0001", "DSA-5532-1", "DEBIAN-CVE-2024-9"]],
    ["critical, ignoreUnfixed, unknown low", { maxSeverity: "critical", ignoreUnfixed: true, unknownSeverity: "low" }, ["CVE-2024-0001"]],
  ])("%s", async (_name, raw, ids) => {
    const rs = await check({ scan: hookOf(scanResult(FINDINGS)) }, params(raw));
    const violations = rs.filter((r) => !r.allowed);
    expect(violations.map((r) => [r.reason, r.field, r.detail.split(" ")[0]])).toEqual(ids.map((id) => ["vulnerability", "spec.image", id]));
    expect(rs.filter((r) => r.allowed).map((r) => r.reason)).toEqual(["scan summary"]);
  });

  it("details of unknown severity and of unfixed findings", async () => {
    const rs = await check({ scan: hookOf(scanResult([UNK, UNFIXED])) });
    expect(rs.filter((r) => !r.allowed).map((r) => r.detail)).toEqual([
      "DEBIAN-CVE-2024-9 in Debian:12 package tar 1.34, from /var/lib/dpkg/status: severity unknown (judged critical), at or above high; fixed in 3.0.11-1~deb12u2",
      "CVE-2024-7777 in Debian:12 package curl 7.88.1, from /var/lib/dpkg/status: severity critical 9.1, at or above high; no fixed version",
    ]);
    const ignored = await check({ scan: hookOf(scanResult([UNFIXED])) }, params({ ignoreUnfixed: true }));
    expect(brief(ignored)).toEqual([[true, "ok", "spec.image"]]);
    expect(ignored[0]?.detail).toContain("0 at or above high, 1 unfixed ignored");
  });

  it("an empty inventory is denied unless allowed", async () => {
    const empty = scanResult([], { inventory: { packages: {}, total: 0 } });
    expect(await check({ scan: hookOf(empty) })).toEqual([
      { check: "image-scan", allowed: false, reason: "no packages found", field: "spec.image", detail: `the scanner found no package in ${D} (no dpkg, apk, npm or Python package metadata); allowEmptyInventory is false` },
      expect.objectContaining({ allowed: true, reason: "scan summary" }),
    ]);
    expect(brief(await check({ scan: hookOf(empty) }, params({ allowEmptyInventory: true })))).toEqual([[true, "ok", "spec.image"]]);
  });

  it.each([
    ["fresh enough", "2026-05-30T00:00:00.000Z", "deny", [[true, "ok", "spec.image"]]],
    ["too old, deny", "2026-05-20T00:00:00.000Z", "deny", [[false, "vulnerability database too old", "spec.image"], [true, "scan summary", "spec.image"]]],
    ["too old, warn", "2026-05-20T00:00:00.000Z", "warn", [[true, "ok", "spec.image"], [true, "vulnerability database old", "spec.image"]]],
    ["age unknown, deny", undefined, "deny", [[false, "vulnerability database too old", "spec.image"], [true, "scan summary", "spec.image"]]],
  ] as const)("maxDatabaseAge 7d: %s", async (_name, builtAt, mode, expected) => {
    const db = builtAt === undefined ? { source: "osv.zip", version: "3" } : { source: "osv.zip", version: "3", builtAt };
    const rs = await check({ scan: hookOf(scanResult([], { database: db })) }, params({ maxDatabaseAge: "7d", databaseAgeMode: mode }));
    expect(brief(rs)).toEqual(expected);
    if (builtAt === "2026-05-20T00:00:00.000Z") {
      expect(rs.find((r) => r.reason.startsWith("vulnerability database"))?.detail).toBe("the vulnerability database (version 3) is 288 h old; at most 7d (maxDatabaseAge)");
    }
    if (builtAt === undefined) expect(rs[0]?.detail).toBe("the vulnerability database (version 3) is of unknown age; at most 7d (maxDatabaseAge)");
  });

  it("a frozen answer (as the scan cache keeps them) is judged once per parameters; an unfrozen one every time", async () => {
    const deepFrozen = (r: ScanResult): ScanResult => {
      for (const f of r.findings) Object.freeze(f.severity), Object.freeze(f.aliases), Object.freeze(f);
      Object.freeze(r.findings), Object.freeze(r.inventory), Object.freeze(r.database);
      return Object.freeze(r);
    };
    const frozen = deepFrozen(scanResult([HIGH, MED]));
    const first = await check({ scan: hookOf(frozen) });
    const again = await check({ scan: hookOf(frozen) });
    expect(again).toEqual(first);
    expect(again[0]).toBe(first[0]);
    const critical = await check({ scan: hookOf(frozen) }, params({ maxSeverity: "medium" }));
    expect(brief(critical).filter(([allowed]) => allowed === false)).toHaveLength(2);

    const mutable = scanResult([HIGH]);
    expect(brief(await check({ scan: hookOf(mutable) }))).toEqual([[false, "vulnerability", "spec.image"], [true, "scan summary", "spec.image"]]);
    (mutable.findings as ScanFinding[]).push({ ...HIGH, id: "" });
    expect(brief(await check({ scan: hookOf(mutable) }))).toEqual([[false, "scanner failed", "spec.image"]]);
  });

  it("every image id the nodes hold is scanned and judged", async () => {
    const seen: string[] = [];
    const hook = hookOf((id) => (seen.push(id), scanResult(id === E ? [HIGH] : [], { imageId: id })));
    const rs = await check({ scan: hook }, DEFAULTS, attrs({ image: { reference: attrs().spec.image, idsByNode: { n1: D, n2: E, n3: D } } }));
    expect(seen).toEqual([D, E]);
    expect(brief(rs)).toEqual([[true, "ok", "spec.image"], [false, "vulnerability", "spec.image"], [true, "scan summary", "spec.image"]]);
  });
});

describe("image-scan in the chain, with waivers", () => {
  const set = policySet(policyYaml("p", "image-scan: { mode: enforce }"));
  const waiver = (findings: string[]) => ({ id: "wv-1", check: "image-scan", findings, scope: { namespace: "payments" }, expiresAt: NOW.getTime() + 86_400_000 });

  it("a finding is waivable by its id and by an alias (a CVE of an advisory); others stay denied", async () => {
    const hooks = { scan: hookOf(scanResult([HIGH, CRIT])) };
    const none = await evaluate(attrs(), set, { now: NOW, hooks });
    expect(none.allowed).toBe(false);
    expect(none.denials.map((d) => d.detail.split(" ")[0])).toEqual(["DSA-5532-1", "CVE-2024-0001"]);
    const byAlias = await evaluate(attrs(), set, { now: NOW, hooks, waivers: [waiver(["CVE-2023-5363"])] });
    expect(byAlias.denials.map((d) => d.detail.split(" ")[0])).toEqual(["CVE-2024-0001"]);
    expect(byAlias.warnings.map((d) => [d.detail.split(" ")[0], d.waiver])).toEqual([["DSA-5532-1", "wv-1"]]);
    const both = await evaluate(attrs(), set, { now: NOW, hooks, waivers: [waiver(["CVE-2023-5363", "CVE-2024-0001"])] });
    expect(both.allowed).toBe(true);
    expect(both.results.find((r) => r.reason === "scan summary")?.detail).toContain("2 finding(s): 1 critical, 1 high");
  });

  it("the chain passes its instant to the check: the database age is judged at the decision's time", async () => {
    const aged = policySet(policyYaml("p", "image-scan: { mode: enforce, params: { maxDatabaseAge: 7d } }"));
    const hooks = { scan: hookOf(scanResult([])) };
    expect((await evaluate(attrs(), aged, { now: NOW, hooks })).allowed).toBe(true);
    expect((await evaluate(attrs(), aged, { now: new Date(NOW.getTime() + 10 * 86_400_000), hooks })).allowed).toBe(false);
  });

  it("a waiver matches only the finding ids, not ids an image writes into a package name, a version or a file path", async () => {
    const forged = finding({ id: "GHSA-aaaa-bbbb-cccc", aliases: [], package: "left-pad-CVE-2023-5363", ecosystem: "npm", installed: "1.0.0-CVE-2024-0001", fixed: "1.0.1", severity: { level: "critical", score: 9.8 }, sourceFile: "/app/CVE-2023-5363/package.json" });
    const hooks = { scan: hookOf(scanResult([forged])) };
    const d = await evaluate(attrs(), set, { now: NOW, hooks, waivers: [waiver(["CVE-2023-5363", "CVE-2024-0001"])] });
    expect(d.allowed).toBe(false);
    expect(d.denials.map((r) => [r.reason, r.waiver, r.findings])).toEqual([["vulnerability", undefined, ["GHSA-aaaa-bbbb-cccc"]]]);
    const own = await evaluate(attrs(), set, { now: NOW, hooks, waivers: [waiver(["GHSA-aaaa-bbbb-cccc"])] });
    expect(own.allowed).toBe(true);
  });

  it("a waiver of findings does not exempt a scanner failure", async () => {
    const hooks = { scan: { scan: async () => Promise.reject(pcError("PC_SCAN_VULNDB_MISSING")) } };
    const d = await evaluate(attrs(), set, { now: NOW, hooks, waivers: [waiver(["CVE-2023-5363"])] });
    expect(d.allowed).toBe(false);
    expect(d.denials.map((r) => [r.reason, r.waiver])).toEqual([["no vulnerability database", undefined]]);
  });
});
