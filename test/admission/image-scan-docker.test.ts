/**
 * The image scan gate end to end on the real engine: a root filesystem with a crafted dpkg
 * status (openssl and libssl3 3.0.11-1~deb12u1 on Debian 12) brought in with
 * `docker import`, exported by DockerEngine.exportImage, scanned by the built-in scanner
 * against the real OSV fixture records in a real SQLite store, through the scan cache
 * and the admission chain: the exact finding, the denial, then a waiver created with the
 * waiver service for the advisory's CVE lets the request through. Everything is labelled
 * with the run and removed afterwards.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, expect } from "vitest";
import { evaluate, WaiverService } from "../../src/admission/index.js";
import { BuiltinScanner, cachedScanHook, importVulnDb, ScanCache, VulnDb } from "../../src/admission/scanner/index.js";
import { AuditLog } from "../../src/audit/index.js";
import { ManualClock } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import { describeDocker, dockerCli, itDocker, newTestRun, testEngine } from "../support/docker.js";
import { attrs, policySet, policyYaml } from "./fixture.js";
import { tarOf } from "./scanner/fixtures/images/build.js";
import { debianBase } from "./scanner/fixtures/images/rootfs.js";
import { entriesOf, fixtureRecords, writeZip } from "./scanner/vulndb-support.js";

const DPKG_STATUS = `Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u1
Description: Secure Sockets Layer toolkit - cryptographic utility

Package: libssl3
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u1
Description: Secure Sockets Layer toolkit - shared libraries

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime
`;

const ROOTFS = debianBase(DPKG_STATUS);

const engine = testEngine();
const run = newTestRun();
const root = mkdtempSync(join(tmpdir(), "portcullis-image-scan-"));
const START = Date.parse("2026-06-01T00:00:00.000Z");
const clock = new ManualClock(START);
let store: Store;
let imageId = "";
const tag = `portcullis-test/scan-gate:${run.id}`;

afterAll(async () => {
  store?.close();
  rmSync(root, { recursive: true, force: true });
  if (imageId !== "") await engine.removeImage(tag).catch(() => undefined);
  const left = (await dockerCli(["images", "-q", "--filter", `label=${run.selector}`])).split("\n").filter((s) => s !== "");
  for (const id of new Set(left)) await engine.removeImage(id);
});

describeDocker("the image-scan gate on a real image", () => {
  beforeAll(async () => {
    imageId = await engine.importImage(Readable.from([await tarOf(ROOTFS)]), tag, run.labels);
    store = Store.open(mkdtempSync(join(root, "data-")));
    const zip = join(root, "osv.zip");
    writeFileSync(zip, writeZip(entriesOf(fixtureRecords())));
    await importVulnDb(store, zip, { id: "user:secadmin" }, { clock });
    for (const name of ["payments"]) store.namespaces.insert({ name, labels: {}, createdAt: START, createdBy: "user:admin" });
  });

  itDocker(
    "finds DSA-5532-1 in openssl, denies the request, and a waiver for CVE-2023-5363 lets it pass",
    async () => {
      const exported: string[] = [];
      const scanner = new BuiltinScanner({
        vulndb: new VulnDb(store),
        exportImage: async (id) => {
          exported.push(id);
          return engine.exportImage(id);
        },
        clock,
      });
      const hooks = { scan: cachedScanHook(scanner, new ScanCache(store, { clock }), 20_000) };
      const set = policySet(policyYaml("p", "image-scan: { mode: enforce }"));
      const a = attrs({ image: { reference: attrs().spec.image, idsByNode: { local: imageId } } });

      const denied = await evaluate(a, set, { now: clock.now(), hooks, checkTimeoutMs: 30_000 });
      expect(denied.allowed).toBe(false);
      expect(denied.denials.map((d) => [d.check, d.reason, d.field, d.detail])).toEqual([
        [
          "image-scan",
          "vulnerability",
          "spec.image",
          "DSA-5532-1 (CVE-2023-5363) in Debian:12 package openssl 3.0.11-1~deb12u1 installed as libssl3, from /var/lib/dpkg/status: severity unknown (judged critical), at or above high; fixed in 3.0.11-1~deb12u2",
        ],
      ]);
      const summary = denied.results.find((r) => r.reason === "scan summary");
      expect(summary?.detail).toMatch(
        new RegExp(`^${imageId} scanned by builtin; 3 package\\(s\\) \\(Debian 3\\) on debian 12; 1 finding\\(s\\): 0 critical, 0 high, 0 medium, 0 low, 0 none, 1 unknown; 1 at or above high; database \\d+ built 2025-01-14T05:13:10.613491Z$`),
      );
      expect(exported).toEqual([imageId]);

      const log = new AuditLog(store, clock, { trustDomain: "example.test", hmacKey: randomBytes(32) });
      log.genesis("example.test", "SHA256:00");
      const waivers = new WaiverService(store, log, clock);
      const w = waivers.create(
        {
          namespace: "payments",
          check: "image-scan",
          findings: ["CVE-2023-5363"],
          owner: "user:sec",
          justification: "the cipher path is not used by this service",
          ticket: "SEC-481",
          expires: "14d",
        },
        { identity: "user:sec" },
      );
      const admitted = await evaluate(a, set, { now: clock.now(), hooks, waivers: waivers.active("payments", clock.now()), checkTimeoutMs: 30_000 });
      expect(admitted.allowed).toBe(true);
      expect(admitted.warnings.map((r) => [r.reason, r.waiver])).toEqual([["vulnerability", w.id]]);
      // The second decision came from the cache: the image was exported once.
      expect(exported).toEqual([imageId]);
    },
    {},
    60_000,
  );
});
