import { describe, expect, it } from "vitest";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";
import { compareParsed, compareVersions, ecosystemFamily, parseVersion } from "../../../src/admission/scanner/versions/index.js";

describe("compareVersions dispatches on the ecosystem", () => {
  it.each([
    ["Debian", "1.0~rc1", "1.0", -1],
    ["Debian:12", "1:1.0", "2.0", 1],
    ["Debian:sid", "1.0", "1.0-0", 0],
    ["Alpine", "1.0_rc1", "1.0", -1],
    ["Alpine:v3.18", "1.0-r1", "1.0-r0", 1],
    ["npm", "1.0.0-rc.1", "1.0.0", -1],
    ["PyPI", "1.0rc1", "1.0", -1],
    ["PyPI", "1.0", "1.0.0", 0],
  ] as const)("%s: %s vs %s = %d", (ecosystem, a, b, expected) => {
    expect(compareVersions(ecosystem, a, b)).toBe(expected);
  });

  it("orders the same strings differently per ecosystem", () => {
    expect(compareVersions("Debian", "1.0a", "1.0.1")).toBe(-1);
    expect(compareVersions("Alpine", "1.0a", "1.0.1")).toBe(-1);
    expect(compareVersions("Debian", "1.0~rc1", "1.0")).toBe(-1);
    expect(compareVersions("PyPI", "1.0.post1", "1.0")).toBe(1);
    expect(compareVersions("Debian", "1.0.post1", "1.0")).toBe(1);
    expect(compareVersions("PyPI", "1.0a1", "1.0")).toBe(-1);
    expect(compareVersions("Debian", "1.0a1", "1.0")).toBe(1);
  });

  it.each([
    ["Ubuntu:22.04", 'ecosystem: unsupported ecosystem "Ubuntu:22.04": expected one of Debian, Alpine, npm, PyPI (Debian and Alpine may carry a release suffix)'],
    ["debian", 'ecosystem: unsupported ecosystem "debian": expected one of Debian, Alpine, npm, PyPI (Debian and Alpine may carry a release suffix)'],
    ["Debian:", 'ecosystem: unsupported ecosystem "Debian:"'],
    ["npm:registry", 'ecosystem: unsupported ecosystem "npm:registry"'],
    ["", 'ecosystem: unsupported ecosystem ""'],
  ])("refuses the ecosystem %j", (ecosystem, message) => {
    expect(() => ecosystemFamily(ecosystem)).toThrow(ScanInputError);
    expect(() => compareVersions(ecosystem, "1.0", "1.0")).toThrow(message);
  });

  it("names the side that is invalid", () => {
    expect(() => compareVersions("npm", "1.0.0", "1.0")).toThrow('b: invalid semantic version "1.0"');
    expect(() => compareVersions("PyPI", "one", "1.0")).toThrow('a: invalid PEP 440 version "one"');
  });

  it("compares parsed versions of one ecosystem only", () => {
    const deb = parseVersion("Debian:12", "1.0-1");
    expect(compareParsed(deb, parseVersion("Debian", "1.0-2"))).toBe(-1);
    expect(() => compareParsed(deb, parseVersion("PyPI", "1.0"))).toThrow("b: cannot compare a Debian version with a PyPI one");
  });
});
