import { describe, expect, it } from "vitest";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";
import { compareSemver, compareVersions, parseSemver } from "../../../src/admission/scanner/versions/index.js";

const symbol = (r: number) => (r < 0 ? "<" : r > 0 ? ">" : "=");

describe("npm versions (SemVer 2.0.0 precedence)", () => {
  it("orders the specification's example chain", () => {
    // semver.org §11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta
    //   < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0
    const chain = [
      "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
      "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0", "10.0.0",
    ];
    for (let i = 0; i < chain.length; i++) {
      for (let j = 0; j < chain.length; j++) {
        expect(compareSemver(chain[i] as string, chain[j] as string), `${chain[i]} vs ${chain[j]}`).toBe(Math.sign(i - j));
      }
    }
  });

  it.each([
    ["1.0.0+build.1", "=", "1.0.0+build.2"], // build metadata is ignored
    ["1.0.0-rc.1+build.1", "=", "1.0.0-rc.1"],
    ["v1.2.3", "=", "1.2.3"],
    ["4.17.20", "<", "4.17.21"],
    ["4.17.21", ">", "4.17.4"],
    ["1.0.0-1", "<", "1.0.0-a"], // numeric identifiers before alphanumeric ones
    ["1.0.0-a", "<", "1.0.0-a.0"],
    ["1.0.0-A", "<", "1.0.0-a"], // ASCII order
    ["1.0.0-x-y", ">", "1.0.0-x"],
    ["1.0.0-9", "<", "1.0.0-10"],
    ["1.0.0-0a", ">", "1.0.0-999"], // "0a" is alphanumeric
    ["9007199254740991.0.0", ">", "9007199254740990.0.0"], // Number.MAX_SAFE_INTEGER is the largest allowed
    ["1.0.0-99999999999999999999", ">", "1.0.0-99999999999999999998"], // exact; node-semver rounds both to 1e20
  ] as const)("%s %s %s", (a, op, b) => {
    expect(symbol(compareSemver(a, b))).toBe(op);
    expect(symbol(compareVersions("npm", a, b))).toBe(op);
  });

  it("refuses what node-semver refuses: numbers beyond MAX_SAFE_INTEGER, more than 256 characters", () => {
    expect(() => parseSemver("9007199254740992.0.0")).toThrow(
      'version: invalid semantic version "9007199254740992.0.0": 9007199254740992 is larger than 9007199254740991',
    );
    expect(() => parseSemver(`1.0.0-${"a".repeat(251)}`)).toThrow("longer than 256 characters");
    expect(parseSemver(`1.0.0-${"a".repeat(250)}`).prerelease).toEqual(["a".repeat(250)]);
  });

  it("parses the parts", () => {
    expect(parseSemver("1.2.3-rc.1+sha.5114f85")).toEqual({
      major: "1", minor: "2", patch: "3", prerelease: ["rc", "1"], build: ["sha", "5114f85"],
    });
  });

  it.each(["", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-01", "1.2.3-", "1.2.3-a..b", "1.2.3+", "1.2.3+a..b",
    "1.2.3-a_b", "=1.2.3", "v=1.2.3", " 1.2.3", "1.2.3 ", "vv1.2.3", "latest", "^1.2.3", "1.2.x"])("refuses %j", (v) => {
    expect(() => parseSemver(v, "$.version")).toThrow(ScanInputError);
    expect(() => parseSemver(v, "$.version")).toThrow(
      `$.version: invalid semantic version ${JSON.stringify(v)}: expected MAJOR.MINOR.PATCH[-prerelease][+build]`,
    );
  });
});
