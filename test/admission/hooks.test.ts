import { describe, expect, it } from "vitest";
import { imageScanCheck, type AdmissionHooks, type CheckResult } from "../../src/admission/index.js";
import { attrs } from "./fixture.js";

async function scan(hooks: AdmissionHooks): Promise<readonly CheckResult[]> {
  return imageScanCheck.run(attrs(), {}, { hooks });
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

// secret-references (its hook included) is tested in secret-references.test.ts.
