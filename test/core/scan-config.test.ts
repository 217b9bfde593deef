/** The `scan` object of config.json: optional, defaults when absent, strictly checked. */
import { describe, expect, it } from "vitest";
import { DEFAULT_SCAN_CONFIG, defaultConfig, parseConfig, scanConfigOf } from "../../src/core/index.js";
import { expectRefusal } from "../support/refusal.js";

const base = () => JSON.parse(JSON.stringify(defaultConfig())) as Record<string, unknown>;

describe("config scan", () => {
  it("a config.json without it stays valid and gets the defaults (a 60 s scan budget)", () => {
    const cfg = parseConfig(base());
    expect(cfg.scan).toBeUndefined();
    expect(scanConfigOf(cfg)).toEqual({ timeoutMs: 60_000 });
    expect(DEFAULT_SCAN_CONFIG).toEqual({ timeoutMs: 60_000 });
  });

  it.each([
    [{}, { timeoutMs: 60_000 }],
    [{ timeoutMs: 5_000 }, { timeoutMs: 5_000 }],
    [{ trivyPath: "/usr/local/bin/trivy" }, { timeoutMs: 60_000, trivyPath: "/usr/local/bin/trivy" }],
    [{ trivyServer: "https://trivy.internal:4954" }, { timeoutMs: 60_000, trivyServer: "https://trivy.internal:4954" }],
  ])("%j → %j", (scan, expected) => {
    const cfg = parseConfig({ ...base(), scan });
    expect(cfg.scan).toEqual(expected);
    expect(parseConfig(JSON.parse(JSON.stringify(cfg)))).toEqual(cfg);
  });

  it.each([
    ["not an object", "fast", /scan must be an object/],
    ["an unknown key", { timeoutMs: 5_000, cacheDir: "/x" }, /unknown key scan\.cacheDir/],
    ["a timeout under a second", { timeoutMs: 999 }, /scan\.timeoutMs/],
    ["a timeout over ten minutes", { timeoutMs: 600_001 }, /scan\.timeoutMs/],
    ["a fractional timeout", { timeoutMs: 1500.5 }, /scan\.timeoutMs/],
    ["a relative trivy path", { trivyPath: "bin/trivy" }, /scan\.trivyPath/],
    ["a trivy server that is not http(s)", { trivyServer: "file:///etc/passwd" }, /scan\.trivyServer/],
    ["a trivy server with credentials", { trivyServer: "https://u:p@trivy.internal" }, /scan\.trivyServer/],
    ["a trivy server that is not a URL", { trivyServer: "trivy" }, /scan\.trivyServer/],
  ])("refuses %s: PC_CONFIG_INVALID", (_, scan, detail) => {
    expectRefusal(() => parseConfig({ ...base(), scan }), "PC_CONFIG_INVALID", detail);
  });
});
