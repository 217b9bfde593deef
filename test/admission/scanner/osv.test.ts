import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";
import { parseOsvRecordJson, validateOsvRecord, type OsvRecord } from "../../../src/admission/scanner/osv.js";

const fixture = (id: string): string => readFileSync(new URL(`./fixtures/${id}.json`, import.meta.url), "utf8");
const raw = (id: string): Record<string, unknown> => JSON.parse(fixture(id)) as Record<string, unknown>;

/** A deep copy of a fixture with one change made by `edit`. */
function edited(id: string, edit: (r: any) => void): unknown {
  const r = raw(id);
  edit(r);
  return r;
}

function refusal(value: unknown): { path: string; message: string } {
  try {
    validateOsvRecord(value);
  } catch (e) {
    expect(e).toBeInstanceOf(ScanInputError);
    expect((e as ScanInputError).reason).toBe("osv_invalid");
    return { path: (e as ScanInputError).path, message: (e as ScanInputError).message };
  }
  throw new Error("the record was accepted");
}

describe("OSV record validation", () => {
  it.each(["DSA-5532-1", "GHSA-35jh-r3h4-6jhm", "GHSA-j8r2-6x86-q33q", "ALPINE-CVE-2022-37434"])("accepts the osv.dev export %s", (id) => {
    const record: OsvRecord = parseOsvRecordJson(fixture(id));
    expect(record.id).toBe(id);
    expect(record.affected.length).toBeGreaterThan(0);
  });

  it("tolerates fields the schema does not define yet", () => {
    const r = edited("DSA-5532-1", (x) => {
      x.upstream = ["CVE-2023-5363"];
      x.some_future_field = { anything: [1, 2] };
      x.affected[0].some_future_field = true;
      x.affected[0].ranges[0].some_future_field = "x";
    });
    expect(validateOsvRecord(r).id).toBe("DSA-5532-1");
  });

  it.each([
    ["not an object", () => [], "$", "$: must be an object, not an array"],
    ["null", () => null, "$", "$: must be an object, not null"],
    ["id missing", () => edited("DSA-5532-1", (x) => delete x.id), "$.id", "$.id: is required (a string)"],
    ["id a number", () => edited("DSA-5532-1", (x) => (x.id = 5532)), "$.id", "$.id: must be a string, not a number"],
    ["id empty", () => edited("DSA-5532-1", (x) => (x.id = "")), "$.id", "$.id: must not be empty"],
    ["modified missing", () => edited("DSA-5532-1", (x) => delete x.modified), "$.modified", "$.modified: is required (a string)"],
    ["modified not a timestamp", () => edited("DSA-5532-1", (x) => (x.modified = "yesterday")), "$.modified", '$.modified: must be an RFC 3339 timestamp, not "yesterday"'],
    ["published without zone", () => edited("DSA-5532-1", (x) => (x.published = "2023-10-24T00:00:00")), "$.published", '$.published: must be an RFC 3339 timestamp, not "2023-10-24T00:00:00"'],
    ["withdrawn impossible date", () => edited("DSA-5532-1", (x) => (x.withdrawn = "2023-13-45T00:00:00Z")), "$.withdrawn", '$.withdrawn: must be an RFC 3339 timestamp, not "2023-13-45T00:00:00Z"'],
    ["aliases a string", () => edited("DSA-5532-1", (x) => (x.aliases = "CVE-2023-5363")), "$.aliases", "$.aliases: must be an array, not a string"],
    ["related item a number", () => edited("DSA-5532-1", (x) => (x.related = ["CVE-2023-5363", 7])), "$.related[1]", "$.related[1]: must be a string, not a number"],
    ["upstream an object", () => edited("ALPINE-CVE-2022-37434", (x) => (x.upstream = {})), "$.upstream", "$.upstream: must be an array, not an object"],
    ["summary a number", () => edited("DSA-5532-1", (x) => (x.summary = 1)), "$.summary", "$.summary: must be a string, not a number"],
    ["affected missing", () => edited("DSA-5532-1", (x) => delete x.affected), "$.affected", "$.affected: is required (an array)"],
    ["affected an object", () => edited("DSA-5532-1", (x) => (x.affected = {})), "$.affected", "$.affected: must be an array, not an object"],
    ["package missing", () => edited("DSA-5532-1", (x) => delete x.affected[0].package), "$.affected[0].package", "$.affected[0].package: is required (an object)"],
    ["package name missing", () => edited("DSA-5532-1", (x) => delete x.affected[0].package.name), "$.affected[0].package.name", "$.affected[0].package.name: is required (a string)"],
    ["ecosystem a number", () => edited("DSA-5532-1", (x) => (x.affected[0].package.ecosystem = 12)), "$.affected[0].package.ecosystem", "$.affected[0].package.ecosystem: must be a string, not a number"],
    ["purl null", () => edited("DSA-5532-1", (x) => (x.affected[0].package.purl = null)), "$.affected[0].package.purl", "$.affected[0].package.purl: must be a string, not null"],
    ["ranges an object", () => edited("DSA-5532-1", (x) => (x.affected[0].ranges = {})), "$.affected[0].ranges", "$.affected[0].ranges: must be an array, not an object"],
    ["range type unknown", () => edited("DSA-5532-1", (x) => (x.affected[0].ranges[0].type = "DEBIAN")), "$.affected[0].ranges[0].type", '$.affected[0].ranges[0].type: must be one of ECOSYSTEM, SEMVER, GIT, not "DEBIAN"'],
    ["GIT range without repo", () => edited("DSA-5532-1", (x) => (x.affected[0].ranges[0].type = "GIT")), "$.affected[0].ranges[0].repo", "$.affected[0].ranges[0].repo: is required (a string)"],
    ["events missing", () => edited("DSA-5532-1", (x) => delete x.affected[0].ranges[0].events), "$.affected[0].ranges[0].events", "$.affected[0].ranges[0].events: is required (an array)"],
    ["event with two kinds", () => edited("DSA-5532-1", (x) => (x.affected[0].ranges[0].events[1] = { introduced: "1.0", fixed: "1.1" })), "$.affected[0].ranges[0].events[1]", "$.affected[0].ranges[0].events[1]: must have exactly one of introduced, fixed, last_affected, limit, not introduced and fixed"],
    ["event with none", () => edited("DSA-5532-1", (x) => (x.affected[0].ranges[0].events[1] = { fix: "1.1" })), "$.affected[0].ranges[0].events[1]", "$.affected[0].ranges[0].events[1]: must have exactly one of introduced, fixed, last_affected, limit"],
    ["event version a number", () => edited("DSA-5532-1", (x) => (x.affected[0].ranges[0].events[1] = { fixed: 3 })), "$.affected[0].ranges[0].events[1].fixed", "$.affected[0].ranges[0].events[1].fixed: must be a string, not a number"],
    ["no introduced event", () => edited("DSA-5532-1", (x) => x.affected[0].ranges[0].events.shift()), "$.affected[0].ranges[0].events", "$.affected[0].ranges[0].events: must contain at least one introduced event"],
    ["versions item an object", () => edited("DSA-5532-1", (x) => x.affected[0].versions.push({})), "$.affected[0].versions[4]", "$.affected[0].versions[4]: must be a string, not an object"],
    ["database_specific an array", () => edited("DSA-5532-1", (x) => (x.affected[0].database_specific = [])), "$.affected[0].database_specific", "$.affected[0].database_specific: must be an object, not an array"],
    ["ecosystem_specific a string", () => edited("DSA-5532-1", (x) => (x.affected[0].ecosystem_specific = "urgency")), "$.affected[0].ecosystem_specific", "$.affected[0].ecosystem_specific: must be an object, not a string"],
    ["severity not an array", () => edited("GHSA-35jh-r3h4-6jhm", (x) => (x.severity = { type: "CVSS_V3" })), "$.severity", "$.severity: must be an array, not an object"],
    ["severity without score", () => edited("GHSA-35jh-r3h4-6jhm", (x) => delete x.severity[0].score), "$.severity[0].score", "$.severity[0].score: is required (a string)"],
    ["CVSS_V3 vector malformed", () => edited("GHSA-35jh-r3h4-6jhm", (x) => (x.severity[0].score = "CVSS:3.1/AV:N/AC:L")), "$.severity[0].score", '$.severity[0].score: invalid CVSS v3 vector "CVSS:3.1/AV:N/AC:L": missing base metrics PR, UI, S, C, I, A'],
    ["CVSS_V3 given a bare score", () => edited("GHSA-35jh-r3h4-6jhm", (x) => (x.severity[0].score = "7.2")), "$.severity[0].score", '$.severity[0].score: invalid CVSS v3 vector "7.2": expected the prefix "CVSS:3.0/" or "CVSS:3.1/"'],
    ["affected severity wrong", () => edited("GHSA-35jh-r3h4-6jhm", (x) => (x.affected[1].severity = [{ type: "CVSS_V3", score: 9 }])), "$.affected[1].severity[0].score", "$.affected[1].severity[0].score: must be a string, not a number"],
    ["reference without url", () => edited("GHSA-35jh-r3h4-6jhm", (x) => delete x.references[2].url), "$.references[2].url", "$.references[2].url: is required (a string)"],
    ["credits name missing", () => edited("GHSA-35jh-r3h4-6jhm", (x) => (x.credits = [{ contact: [] }])), "$.credits[0].name", "$.credits[0].name: is required (a string)"],
    ["credits contact a string", () => edited("GHSA-35jh-r3h4-6jhm", (x) => (x.credits = [{ name: "n", contact: "mailto:x" }])), "$.credits[0].contact", "$.credits[0].contact: must be an array, not a string"],
    ["top database_specific a string", () => edited("GHSA-35jh-r3h4-6jhm", (x) => (x.database_specific = "HIGH")), "$.database_specific", "$.database_specific: must be an object, not a string"],
  ])("refuses a record with %s", (_what, make, path, message) => {
    expect(refusal(make())).toEqual({ path, message });
  });

  it("accepts other severity types with any string score", () => {
    const r = edited("GHSA-35jh-r3h4-6jhm", (x) => {
      x.severity = [
        { type: "CVSS_V2", score: "AV:N/AC:L/Au:N/C:P/I:P/A:P" },
        { type: "CVSS_V4", score: "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N" },
        { type: "Ubuntu", score: "medium" },
      ];
    });
    expect(validateOsvRecord(r).severity).toHaveLength(3);
  });

  it("refuses duplicate keys, bad JSON and oversized text", () => {
    const dup = fixture("DSA-5532-1").replace('"id": "DSA-5532-1",', '"id": "DSA-5532-1", "id": "DSA-0000-1",');
    expect(() => parseOsvRecordJson(dup)).toThrow(/^\$: not valid JSON: request body has a duplicate key/);
    expect(() => parseOsvRecordJson("{")).toThrow(/^\$: not valid JSON/);
    expect(() => parseOsvRecordJson(" ".repeat(16 * 1024 * 1024 + 1))).toThrow("$: record is longer than 16777216 characters");
  });
});
