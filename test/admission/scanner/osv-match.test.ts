import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";
import { affectedVersions, parseOsvRecordJson, severityOf, validateOsvRecord, type OsvRecord } from "../../../src/admission/scanner/osv.js";

const load = (id: string): OsvRecord =>
  parseOsvRecordJson(readFileSync(new URL(`./fixtures/${id}.json`, import.meta.url), "utf8"));

/** A minimal record in osv.dev's shape around the given affected entries. */
function record(affected: unknown[], extra: Record<string, unknown> = {}): OsvRecord {
  return validateOsvRecord({ id: "TEST-0001", modified: "2024-01-01T00:00:00Z", affected, ...extra });
}
const eco = (ecosystem: string, name: string, events: unknown[], more: Record<string, unknown> = {}) => ({
  package: { ecosystem, name },
  ranges: [{ type: "ECOSYSTEM", events }],
  ...more,
});

describe("affectedVersions on real records", () => {
  const dsa = load("DSA-5532-1");
  it.each([
    ["3.0.8-1", { affected: true, fixed: "3.0.11-1~deb12u2" }],
    ["3.0.11-1~deb12u1", { affected: true, fixed: "3.0.11-1~deb12u2" }],
    ["3.0.11-1~deb12u2", { affected: false }], // fixed is exclusive
    ["3.0.11-1~deb12u3", { affected: false }],
    ["3.0.11-1", { affected: false }],
    ["3.0.13-1~deb12u1", { affected: false }],
    ["0.9.8zh-1", { affected: true, fixed: "3.0.11-1~deb12u2" }], // introduced "0"
    ["1:0.1-1", { affected: false }], // an epoch outranks the fix
  ])("DSA-5532-1: openssl %s in Debian:12", (version, expected) => {
    expect(affectedVersions(dsa, "Debian:12", "openssl", version)).toEqual(expected);
  });

  it("DSA-5532-1 concerns Debian 12's openssl only", () => {
    expect(affectedVersions(dsa, "Debian:11", "openssl", "1.1.1w-0+deb11u1")).toEqual({ affected: false });
    expect(affectedVersions(dsa, "Debian:12", "libssl3", "3.0.9-1")).toEqual({ affected: false });
    expect(affectedVersions(dsa, "Debian", "openssl", "3.0.9-1")).toEqual({ affected: true, fixed: "3.0.11-1~deb12u2" });
  });

  const lodash = load("GHSA-35jh-r3h4-6jhm");
  it.each([
    ["lodash", "4.17.20", { affected: true, fixed: "4.17.21" }],
    ["lodash", "4.17.21", { affected: false }],
    ["lodash", "4.17.21-rc.1", { affected: true, fixed: "4.17.21" }], // a pre-release of the fix is older
    ["lodash", "4.18.0", { affected: false }],
    ["lodash", "3.10.1", { affected: true, fixed: "4.17.21" }],
    ["lodash", "0.0.1", { affected: true, fixed: "4.17.21" }],
    ["lodash-es", "4.17.15", { affected: true, fixed: "4.17.21" }],
    ["lodash.template", "4.5.0", { affected: true }], // last_affected is inclusive, and there is no fix
    ["lodash.template", "4.5.1", { affected: false }],
    ["underscore", "1.0.0", { affected: false }],
  ])("GHSA-35jh-r3h4-6jhm: %s %s", (name, version, expected) => {
    expect(affectedVersions(lodash, "npm", name, version)).toEqual(expected);
  });

  const requests = load("GHSA-j8r2-6x86-q33q");
  it.each([
    ["requests", "2.2.1", { affected: false }],
    ["requests", "2.3.0", { affected: true, fixed: "2.31.0" }], // introduced is inclusive
    ["requests", "2.3", { affected: true, fixed: "2.31.0" }], // PEP 440: 2.3 == 2.3.0
    ["requests", "2.30.0", { affected: true, fixed: "2.31.0" }],
    ["requests", "2.31.0rc1", { affected: true, fixed: "2.31.0" }],
    ["requests", "2.31.0", { affected: false }],
    ["requests", "2.31", { affected: false }],
    ["requests", "2.31.0.post1", { affected: false }],
    ["requests", "2.32.3", { affected: false }],
    ["Requests", "2.28.2", { affected: true, fixed: "2.31.0" }], // PEP 503 names
    ["requests", "2.28.2+local.1", { affected: true, fixed: "2.31.0" }],
  ])("GHSA-j8r2-6x86-q33q: %s %s", (name, version, expected) => {
    expect(affectedVersions(requests, "PyPI", name, version)).toEqual(expected);
  });

  const zlib = load("ALPINE-CVE-2022-37434");
  it.each([
    ["1.2.11-r3", { affected: true, fixed: "1.2.12-r2" }],
    ["1.2.12-r1", { affected: true, fixed: "1.2.12-r2" }],
    ["1.2.12-r2", { affected: false }],
    ["1.2.12-r3", { affected: false }],
    ["1.2.13-r0", { affected: false }],
    ["1.2.12_rc1-r5", { affected: true, fixed: "1.2.12-r2" }],
  ])("ALPINE-CVE-2022-37434: zlib %s in Alpine:v3.16", (version, expected) => {
    expect(affectedVersions(zlib, "Alpine:v3.16", "zlib", version)).toEqual(expected);
  });

  it("ALPINE-CVE-2022-37434 does not reach another Alpine branch", () => {
    expect(affectedVersions(zlib, "Alpine:v3.15", "zlib", "1.2.12-r0")).toEqual({ affected: false });
  });
});

describe("affectedVersions semantics", () => {
  it("walks several introduced/fixed pairs in one range, whatever their order in the record", () => {
    const r = record([eco("npm", "p", [{ fixed: "3.2.5" }, { introduced: "3.0.0" }, { fixed: "1.0.2" }, { introduced: "1.0.0" }])]);
    const at = (v: string) => affectedVersions(r, "npm", "p", v);
    expect(at("0.9.9")).toEqual({ affected: false });
    expect(at("1.0.0")).toEqual({ affected: true, fixed: "1.0.2" });
    expect(at("1.0.1")).toEqual({ affected: true, fixed: "1.0.2" });
    expect(at("1.0.2")).toEqual({ affected: false });
    expect(at("2.9.9")).toEqual({ affected: false });
    expect(at("3.0.0")).toEqual({ affected: true, fixed: "3.2.5" });
    expect(at("3.2.5")).toEqual({ affected: false });
  });

  it("combines ranges and entries: any of them affects; the fix is the first version none affects", () => {
    const r = record([
      eco("Debian:12", "curl", [{ introduced: "0" }, { fixed: "7.88.1-10+deb12u1" }]),
      eco("Debian:12", "curl", [{ introduced: "7.88.1-10" }, { fixed: "7.88.1-10+deb12u5" }]),
    ]);
    // 7.88.1-10+deb12u1 fixes the first range but is inside the second: it is no fix.
    expect(affectedVersions(r, "Debian:12", "curl", "7.88.1-9")).toEqual({ affected: true, fixed: "7.88.1-10+deb12u5" });
    expect(affectedVersions(r, "Debian:12", "curl", "7.88.1-10")).toEqual({ affected: true, fixed: "7.88.1-10+deb12u5" });
    expect(affectedVersions(r, "Debian:12", "curl", "7.88.1-10+deb12u4")).toEqual({ affected: true, fixed: "7.88.1-10+deb12u5" });
    expect(affectedVersions(r, "Debian:12", "curl", "7.88.1-10+deb12u5")).toEqual({ affected: false });
  });

  it("gives no fix when a version stays affected above every fixed event", () => {
    const r = record([
      eco("PyPI", "pkg", [{ introduced: "0" }, { fixed: "1.5" }]),
      eco("PyPI", "pkg", [{ introduced: "1.0" }]),
    ]);
    expect(affectedVersions(r, "PyPI", "pkg", "1.2")).toEqual({ affected: true });
    expect(affectedVersions(r, "PyPI", "pkg", "0.9")).toEqual({ affected: true }); // 1.5 is inside the second range
    expect(affectedVersions(r, "PyPI", "pkg", "0.9.dev1")).toEqual({ affected: true });
  });

  it("honours limit events, with * as infinity", () => {
    const limited = record([eco("npm", "p", [{ introduced: "1.0.0" }, { limit: "2.0.0" }])]);
    expect(affectedVersions(limited, "npm", "p", "1.9.9")).toEqual({ affected: true });
    expect(affectedVersions(limited, "npm", "p", "2.0.0")).toEqual({ affected: false });
    expect(affectedVersions(limited, "npm", "p", "0.9.0")).toEqual({ affected: false });
    const open = record([eco("npm", "p", [{ introduced: "1.0.0" }, { limit: "*" }])]);
    expect(affectedVersions(open, "npm", "p", "99.0.0")).toEqual({ affected: true });
  });

  it("matches the versions list by the ecosystem's equality and ignores GIT ranges", () => {
    const r = record([
      {
        package: { ecosystem: "PyPI", name: "django" },
        ranges: [{ type: "GIT", repo: "https://github.com/django/django", events: [{ introduced: "0" }, { fixed: "abc123" }] }],
        versions: ["3.2.0", "3.2.1", "not a version"],
      },
    ]);
    expect(affectedVersions(r, "PyPI", "Django", "3.2")).toEqual({ affected: true });
    expect(affectedVersions(r, "PyPI", "django", "3.2.1")).toEqual({ affected: true });
    expect(affectedVersions(r, "PyPI", "django", "3.2.2")).toEqual({ affected: false });
  });

  it("orders SEMVER ranges as SemVer", () => {
    const r = record([{ package: { ecosystem: "npm", name: "p" }, ranges: [{ type: "SEMVER", events: [{ introduced: "0" }, { fixed: "1.10.0" }] }] }]);
    expect(affectedVersions(r, "npm", "p", "1.9.0")).toEqual({ affected: true, fixed: "1.10.0" });
    expect(affectedVersions(r, "npm", "p", "1.10.0")).toEqual({ affected: false });
  });

  it("applies a release-less entry to every release, and ignores withdrawn records", () => {
    const r = record([eco("Debian", "bash", [{ introduced: "0" }, { fixed: "5.2.15-2+deb12u1" }])]);
    expect(affectedVersions(r, "Debian:12", "bash", "5.2.15-2+b2")).toEqual({ affected: true, fixed: "5.2.15-2+deb12u1" });
    const withdrawn = record([eco("Debian", "bash", [{ introduced: "0" }])], { withdrawn: "2024-02-01T00:00:00Z" });
    expect(affectedVersions(withdrawn, "Debian:12", "bash", "5.2.15-2")).toEqual({ affected: false });
  });

  it("refuses to guess when a version cannot be read in its order", () => {
    const r = record([eco("Debian:12", "openssl", [{ introduced: "0" }, { fixed: "3.0.11~~ bad" }])]);
    const thrown = (f: () => unknown): ScanInputError => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ScanInputError);
        return e as ScanInputError;
      }
      throw new Error("no error");
    };
    const e1 = thrown(() => affectedVersions(r, "Debian:12", "openssl", "3.0.9-1"));
    expect([e1.reason, e1.path]).toEqual(["version_invalid", "$.affected[0].ranges[0].events[1].fixed"]);
    const e2 = thrown(() => affectedVersions(load("DSA-5532-1"), "Debian:12", "openssl", "v3.0"));
    expect([e2.reason, e2.path, e2.message]).toEqual([
      "version_invalid",
      "version",
      'version: invalid Debian version "v3.0": upstream version does not start with a digit',
    ]);
    const e3 = thrown(() => affectedVersions(r, "Ubuntu:22.04", "openssl", "3.0.2-0ubuntu1"));
    expect([e3.reason, e3.path]).toEqual(["ecosystem_unsupported", "ecosystem"]);
    // An entry for another package is never parsed, so its errors do not matter here.
    expect(affectedVersions(r, "Debian:12", "curl", "7.88.1-10")).toEqual({ affected: false });
  });
});

describe("severityOf", () => {
  it("scores the CVSS v3 vector of a record", () => {
    expect(severityOf(load("GHSA-35jh-r3h4-6jhm"))).toEqual({
      level: "high",
      score: 7.2,
      vector: "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H",
      source: "cvss_v3",
    });
    expect(severityOf(load("GHSA-j8r2-6x86-q33q"))).toEqual({
      level: "medium",
      score: 6.1,
      vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N",
      source: "cvss_v3",
    });
  });

  it("has no severity for records that carry none (Debian advisories, Alpine)", () => {
    expect(severityOf(load("DSA-5532-1"))).toEqual({ level: "unknown", source: "none" });
    expect(severityOf(load("ALPINE-CVE-2022-37434"))).toEqual({ level: "unknown", source: "none" });
  });

  it("takes the highest CVSS v3 score, including those of affected entries", () => {
    const r = record(
      [{ ...eco("npm", "p", [{ introduced: "0" }]), severity: [{ type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }] }],
      { severity: [{ type: "CVSS_V3", score: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N" }] },
    );
    expect(severityOf(r)).toMatchObject({ level: "critical", score: 9.8, source: "cvss_v3" });
  });

  it("falls back to database_specific.severity when there is no CVSS v3 vector", () => {
    const v4 = { type: "CVSS_V4", score: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N" };
    const v2 = { type: "CVSS_V2", score: "AV:N/AC:L/Au:N/C:P/I:P/A:P" };
    const at = (severity: unknown[], word?: string) =>
      severityOf(record([eco("npm", "p", [{ introduced: "0" }])], { severity, ...(word ? { database_specific: { severity: word } } : {}) }));
    expect(at([v4], "MODERATE")).toEqual({ level: "medium", source: "database_specific" });
    expect(at([v2], "CRITICAL")).toEqual({ level: "critical", source: "database_specific" });
    expect(at([], "low")).toEqual({ level: "low", source: "database_specific" });
    expect(at([v4, v2])).toEqual({ level: "unknown", source: "none" });
    expect(at([], "SEVERE")).toEqual({ level: "unknown", source: "none" });
    expect(at([{ type: "Ubuntu", score: "high" }])).toEqual({ level: "unknown", source: "none" });
  });

  it("does not read a Debian urgency as a severity", () => {
    const r = record([
      eco("Debian:12", "php-league-commonmark", [{ introduced: "0" }], { ecosystem_specific: { urgency: "high" } }),
    ]);
    expect(severityOf(r)).toEqual({ level: "unknown", source: "none" });
  });
});
