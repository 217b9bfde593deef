import { describe, expect, it } from "vitest";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";
import { compareDpkg, compareVersions, parseDpkgVersion } from "../../../src/admission/scanner/versions/index.js";

const symbol = (r: number) => (r < 0 ? "<" : r > 0 ? ">" : "=");
const flip = { "<": ">", ">": "<", "=": "=" } as const;

describe("Debian versions (dpkg order)", () => {
  it.each([
    ["1:2.30-1", ">", "2.30-1"], // any epoch beats none
    ["1:0.1-1", ">", "9.9-9"],
    ["0:1.0", "=", "1.0"],
    ["2.30~rc1-1", "<", "2.30-1"], // ~ sorts before the end
    ["2.30~rc1-1", ">", "2.30~beta1-1"],
    ["2.30~~", "<", "2.30~"],
    ["2.30~", "<", "2.30"],
    ["2.30", "<", "2.30+b1"],
    ["2.30", "<", "2.30a"],
    ["2.30a", "<", "2.30+"], // letters before non-letters
    ["2.30+", "<", "2.30."], // then ASCII
    ["1.0+dfsg-1~bpo11+1", "<", "1.0+dfsg-1"],
    ["1.0+dfsg-1", "<", "1.0+dfsg-1+deb12u1"],
    ["1.0+dfsg-1~deb12u1", "<", "1.0+dfsg-1"],
    ["0.9.8zh-1", ">", "0.9.8zg-1"],
    ["0.9.8zh-1", ">", "0.9.8z-1"],
    ["0.9.8z-1", ">", "0.9.8-1"],
    ["3.0.11-1~deb12u2", ">", "3.0.11-1~deb12u1"],
    ["3.0.11-1~deb12u2", "<", "3.0.11-1"],
    ["2.36-9+deb12u10", ">", "2.36-9+deb12u9"], // digit runs are numbers
    ["1.0", "=", "1.0-0"], // no revision == revision 0
    ["1.00", "=", "1.0"],
    ["1.0", "<", "1.0.0"],
    ["1.0A", "<", "1.0a"],
    ["1.0-1-1", "<", "1.0-1-2"], // hyphens in the upstream version
    ["1:2:0-1", ">", "1:2.0-1"], // colons in the upstream version
    ["18446744073709551616", ">", "18446744073709551615"], // no precision limit
    ["0.0~git20230123.b2528b0-1", ">", "0.0~20221219.0-2+b3"],
  ] as const)("%s %s %s", (a, op, b) => {
    expect(symbol(compareDpkg(a, b))).toBe(op);
    expect(symbol(compareDpkg(b, a))).toBe(flip[op]);
    expect(symbol(compareVersions("Debian:12", a, b))).toBe(op);
  });

  it("parses epoch, upstream and revision", () => {
    expect(parseDpkgVersion("1:2.30-1")).toEqual({ epoch: 1, upstream: "2.30", revision: "1" });
    expect(parseDpkgVersion("1.0-1-2")).toEqual({ epoch: 0, upstream: "1.0-1", revision: "2" });
    expect(parseDpkgVersion("2:1:0")).toEqual({ epoch: 2, upstream: "1:0", revision: "" });
    expect(parseDpkgVersion("9.2p1")).toEqual({ epoch: 0, upstream: "9.2p1", revision: "" });
  });

  it.each([
    ["", "version string is empty"],
    [" 1.0", "version string contains whitespace"],
    [":1.0", "epoch is empty"],
    ["x:1.0", "epoch is not a number"],
    ["+1:1.0", "epoch is not a number"],
    ["2147483648:1.0", "epoch is too big"],
    ["1:", "nothing after the epoch's colon"],
    ["1.0-", "revision is empty"],
    ["-1", "upstream version is empty"],
    ["a1.0", "upstream version does not start with a digit"],
    ["1.0_1", "invalid character in upstream version"],
    ["1.0-1_2", "invalid character in revision"],
    ["1:1.0-1:2", "invalid character in revision"],
  ])("refuses %j: %s", (v, why) => {
    try {
      parseDpkgVersion(v, "$.affected[0].versions[3]");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ScanInputError);
      const err = e as ScanInputError;
      expect(err.reason).toBe("version_invalid");
      expect(err.path).toBe("$.affected[0].versions[3]");
      expect(err.message).toBe(`$.affected[0].versions[3]: invalid Debian version ${JSON.stringify(v)}: ${why}`);
    }
  });
});
