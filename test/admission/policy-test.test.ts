import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  formatAdmissionTestReport,
  parseAdmissionTestFile,
  runAdmissionTestFile,
  runAdmissionTests,
  shippedAdmissionPolicyFiles,
  type AdmissionTestIssue,
} from "../../src/admission/index.js";
import { isPortcullisError } from "../../src/core/index.js";
import { D, IMAGE, NOW, policyYaml } from "./fixture.js";

const SHIPPED_TESTS = fileURLToPath(new URL("../../policies/admission/tests/baseline.yaml", import.meta.url));
const M = `{ apiVersion: portcullis/v1, kind: Deployment, metadata: { name: web, namespace: payments }, spec: { image: "${IMAGE}", user: "1000:1000", resources: { cpus: 1, memory: 256Mi, pids: 64 } } }`;
const IMG = `{ idsByNode: { node-1: "${D}" } }`;

/** A test file whose images scan clean (a dozen packages, no finding). */
function testFile(...cases: string[]): string {
  return `cases:\n${cases.join("")}scan: { packages: 12 }\n`;
}
function tcase(name: string, expect: string, extra = "", manifest = M): string {
  return `  - name: ${name}\n    manifest: ${manifest}\n    image: ${IMG}\n${extra}    expect: ${expect}\n`;
}

function refusal(text: string): AdmissionTestIssue[] {
  try {
    parseAdmissionTestFile(text);
  } catch (e) {
    if (!isPortcullisError(e)) throw e;
    expect(e.code).toBe("PC_ADMISSION_TEST_INVALID");
    return e.internal as AdmissionTestIssue[];
  }
  throw new Error("the test file was accepted");
}

describe("the shipped admission tests", () => {
  it("pass against the shipped baseline", async () => {
    const report = await runAdmissionTestFile(SHIPPED_TESTS, { now: NOW });
    expect(report.cases.length).toBeGreaterThanOrEqual(10);
    expect(report.cases.filter((c) => c.expected === "deny").length).toBeGreaterThanOrEqual(8);
    expect(report.cases.filter((c) => c.expected === "allow").length).toBeGreaterThanOrEqual(2);
    expect(formatAdmissionTestReport(report)).toMatch(new RegExp(`${report.cases.length} passed, 0 failed\\n$`));
    expect(report.failed).toBe(0);
  });
});

describe("running admission tests", () => {
  const files = shippedAdmissionPolicyFiles();

  it("without a stated scan, the image-scan check denies: no scanner runs offline", async () => {
    const report = await runAdmissionTests(`cases:\n${tcase("unscanned", "deny", "", M)}    denials: [image-scan]\n`, files, { now: NOW });
    expect(report.cases[0]).toMatchObject({ ok: true, denials: ["image-scan: no scanner configured"] });
  });

  it("a case's own scan replaces the file's", async () => {
    const text = testFile(tcase("critical", "deny", '    scan: { packages: 3, findings: [{ id: CVE-2024-1, package: zlib, installed: "1.0", fixed: "1.1", severity: critical }] }\n'));
    const report = await runAdmissionTests(text, files, { now: NOW });
    expect(report.cases[0]).toMatchObject({ ok: true, denials: ["image-scan: vulnerability"] });
  });

  it("reports a case whose decision differs, with the denials", async () => {
    const text = testFile(tcase("good", "allow"), tcase("wrongly expects allow", "allow", "", M.replace("256Mi", "8Gi")));
    const report = await runAdmissionTests(text, files, { now: NOW });
    expect([report.passed, report.failed]).toEqual([1, 1]);
    const bad = report.cases[1];
    expect(bad?.ok).toBe(false);
    expect(bad?.got).toBe("deny");
    expect(bad?.reason).toBe("expected allow, got deny (resources: memory above the maximum)");
    expect(formatAdmissionTestReport(report)).toBe(
      `ok   good\nFAIL wrongly expects allow (line 6): expected allow, got deny (resources: memory above the maximum)\n1 passed, 1 failed\n`,
    );
  });

  it("fails a case when other checks deny than it names", async () => {
    const text = testFile(tcase("names the wrong check", "deny", "    denials: [hardening]\n", M.replace("256Mi", "8Gi")));
    const report = await runAdmissionTests(text, files, { now: NOW });
    expect(report.cases[0]?.reason).toBe("expected denials from hardening, got resources (resources: memory above the maximum)");
  });

  it("uses the policies a test file names, relative to it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pc-admission-"));
    try {
      writeFileSync(join(dir, "strict.yaml"), policyYaml("strict", "resources: { mode: enforce, params: { maxPids: 10 } }"));
      writeFileSync(join(dir, "t.yaml"), `policies: [strict.yaml]\n${testFile(tcase("pids above 10", "deny", "    denials: [resources]\n"))}`);
      const report = await runAdmissionTestFile(join(dir, "t.yaml"), { now: NOW });
      expect(report.cases.map((c) => [c.ok, c.denials])).toEqual([[true, ["resources: pids above the maximum"]]]);
      writeFileSync(join(dir, "u.yaml"), `policies: [missing.yaml]\n${testFile(tcase("x", "deny"))}`);
      await expect(runAdmissionTestFile(join(dir, "u.yaml"), { now: NOW })).rejects.toMatchObject({ code: "PC_ADMISSION_TEST_INVALID" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("parseAdmissionTestFile refuses", () => {
  const table: [string, string, [number, string, string][]][] = [
    ["an unknown case field", testFile(tcase("a", "allow", "    namespce: x\n")), [[5, "cases[0].namespce", expect.stringContaining("unknown field") as unknown as string]]],
    ["a missing expect", `cases:\n  - name: a\n    manifest: ${M}\n`, [[2, "cases[0].expect", 'is required: "allow" or "deny"']]],
    ["a manifest that does not validate", `cases:\n  - name: a\n    manifest:\n      apiVersion: portcullis/v1\n      kind: Deployment\n      metadata: { name: web, namespace: payments }\n      spec:\n        image: busybox@${D}\n        resources: { cpus: 1, memory: 1Ti, pids: 1 }\n    expect: deny\n`, [[9, "cases[0].manifest.spec.resources.memory", expect.stringContaining("the manifest is not valid") as unknown as string]]],
    ["a repeated case name", testFile(tcase("same", "allow"), tcase("same", "deny")), [[6, "cases[1].name", "repeats the name of the case on line 2"]]],
    ["a namespace that is not the manifest's", testFile(tcase("a", "allow", "    namespace: { name: billing }\n")), [[5, "cases[0].namespace.name", "must be the manifest's namespace (payments)"]]],
    ["a bad image id", testFile(tcase("a", "allow").replace(IMG, '{ idsByNode: { n1: "latest" } }')), [[4, "cases[0].image.idsByNode.n1", expect.stringContaining("sha256") as unknown as string]]],
    ["a scan without packages", testFile(tcase("a", "allow", "    scan: { findings: [] }\n")), [[5, "cases[0].scan.packages", "is required: a number of packages, 0 or more"]]],
    [
      "a finding with an unknown severity",
      testFile(tcase("a", "allow", '    scan: { packages: 1, findings: [{ id: CVE-2024-1, package: zlib, installed: "1.0", severity: severe }] }\n')),
      [[5, "cases[0].scan.findings[0].severity", "is required: one of critical, high, medium, low, none, unknown"]],
    ],
    ["no cases", "cases: []\n", [[1, "cases", "must be a non-empty list"]]],
    ["a duplicate key", "cases: []\ncases: []\n", [[2, "", "duplicate key"]]],
  ];
  it.each(table)("%s, with its line and field", (_n, text, expected) => {
    expect(refusal(text).map((i) => [i.line, i.field, i.reason])).toEqual(expected);
  });
});
