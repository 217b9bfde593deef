import { describe, expect, it } from "vitest";
import { imageScanCheck, secretReferencesCheck, type AdmissionHooks, type CheckResult } from "../../src/admission/index.js";
import { attrs } from "./fixture.js";

async function scan(hooks: AdmissionHooks): Promise<readonly CheckResult[]> {
  return imageScanCheck.run(attrs(), {}, { hooks });
}
async function secrets(hooks: AdmissionHooks): Promise<readonly CheckResult[]> {
  return secretReferencesCheck.run(attrs(), {}, { hooks });
}
const brief = (rs: readonly CheckResult[]) => rs.map((r) => [r.check, r.allowed, r.reason, r.field]);

describe("image-scan", () => {
  it("answers ok without a scanner", async () => {
    const rs = await scan({});
    expect(brief(rs)).toEqual([["image-scan", true, "ok", "spec.image"]]);
    expect(rs[0]?.detail).toBe("no scanner configured");
  });

  it("turns each finding into a violation", async () => {
    const rs = await scan({ scan: { scan: async () => [{ reason: "vulnerability", detail: "CVE-2024-1 in openssl" }, { reason: "vulnerability", detail: "CVE-2024-2 in zlib" }] } });
    expect(brief(rs)).toEqual([["image-scan", false, "vulnerability", "spec.image"], ["image-scan", false, "vulnerability", "spec.image"]]);
    expect(rs.map((r) => r.detail)).toEqual(["CVE-2024-1 in openssl", "CVE-2024-2 in zlib"]);
  });

  it("answers ok when the scanner finds nothing", async () => {
    expect(brief(await scan({ scan: { scan: async () => [] } }))).toEqual([["image-scan", true, "ok", "spec.image"]]);
  });

  it("denies when the scanner throws, synchronously or not", async () => {
    expect(brief(await scan({ scan: { scan: async () => Promise.reject(new Error("boom")) } }))).toEqual([["image-scan", false, "scanner failed", "spec.image"]]);
    expect(brief(await scan({ scan: { scan: () => { throw new Error("boom"); } } }))).toEqual([["image-scan", false, "scanner failed", "spec.image"]]);
  });

  it("denies an answer that is not a list of findings", async () => {
    const bad = { scan: async () => [{ reason: 1 }] as unknown as [] };
    expect(brief(await scan({ scan: bad }))).toEqual([["image-scan", false, "scanner failed", "spec.image"]]);
  });

  it("denies and aborts a scanner that takes longer than its timeout", async () => {
    let aborted = false;
    const hook = {
      timeoutMs: 30,
      scan: (_a: unknown, signal: AbortSignal) =>
        new Promise<[]>((resolve) => {
          signal.addEventListener("abort", () => (aborted = true));
          setTimeout(() => resolve([]), 1_000);
        }),
    };
    const rs = await scan({ scan: hook });
    expect(brief(rs)).toEqual([["image-scan", false, "scanner timed out", "spec.image"]]);
    expect(rs[0]?.detail).toContain("30 ms");
    expect(aborted).toBe(true);
  });
});

describe("secret-references", () => {
  it("answers ok without a hook: the manifest has no references", async () => {
    const rs = await secrets({});
    expect(brief(rs)).toEqual([["secret-references", true, "ok", ""]]);
    expect(rs[0]?.detail).toBe("no secret references");
  });

  it("reports the hook's findings with their fields", async () => {
    const rs = await secrets({ secrets: { check: async () => [{ reason: "secret not found", detail: "db-password", field: "spec.secrets[0]" }] } });
    expect(brief(rs)).toEqual([["secret-references", false, "secret not found", "spec.secrets[0]"]]);
  });

  it("denies when the hook fails or is late", async () => {
    expect(brief(await secrets({ secrets: { check: async () => Promise.reject(new Error("x")) } }))).toEqual([["secret-references", false, "secret store failed", ""]]);
    const late = { timeoutMs: 20, check: () => new Promise<[]>((r) => setTimeout(() => r([]), 500)) };
    expect(brief(await secrets({ secrets: late }))).toEqual([["secret-references", false, "secret store timed out", ""]]);
  });
});
