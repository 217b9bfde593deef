import { describe, expect, it } from "vitest";
import {
  compareApk,
  compareApkRaw,
  compareVersions,
  isValidApkVersion,
  parseApkVersion,
} from "../../../src/admission/scanner/versions/index.js";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";

/** `a op b` lines from apk-tools' own test vectors (test/version.data), a selection. */
const APK_TOOLS_VECTORS = `
2.34 > 0.1.0_alpha
23_foo > 4_beta
1.0 < 1.0bc
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha < 0.1.3_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
1.0.4-r3 < 1.0.4-r4
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.3_alpha < 1.3_alpha2
0.7.0 < 0.8_beta1
0.8_beta4 < 4.8-r1
3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
0.13_beta5 > 0.9.12
0.0.16 < 0.6
1.2.11 < 1.2.12.1
0.2.0-r1 = 0.2.0-r1
0.2.0-r1 < 3.1_p16
3.1_p16 < 3.1_p17
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
9.3.4-r2 > 9.3.4
2.59 < 20050718-r1
3.9.8-r5 > 2.01.01_alpha10
1.0 > 0.99.3.20040818
1.39 > 1.00_beta2
2.8.9-r1 > 2.8.9
4.2.52_p2-r1 < 4.2.52_p4-r2
2.18.3-r10 > 1.05-r18
1.05-r18 < 1.05-r19
20060720 > 3.0.20060720
2.1.9.200602141850 > 1.6
2.5.1-r8 < 2.5.1a-r1
1.3.5-r10 > 1.3.5-r8
20040401 > 2.0.0_rc3-r1
3.0.0-r2 < 021109-r3
021109-r3 < 20060512
0.9.16-r1 < 3.9_pre20060124
3.9_pre20060124 > 0.01
1.1.7 < 6b-r7
0.10.0-r1 > 0.10.0
0.10.0 < 0.10.1_rc1
1.1a < 1.3a
1.0-r1 > 0.15.1b
0.15.1b-r2 > 0.15.1b
22.7-r1 < 22.7.3-r1
22.7.3-r1 > 22.7
2.1_pre20 < 2.1_pre26
2.10.1 > 02.08.01b
3.81 > 1.6d
1.6d > 1.2.07.8
1.2.07.8 < 1.2.12.04
1.2.12.04 < 1.2.12.05
0.1_pre20060810 < 0.1_pre20060817
0.59s-r11 < 0.65
4.20 > 0.20070118
0.20070118 < 0.20070207_rc1
3.7_p1 > 1.3
4.5_p1-r1 > 4.5_p1
0.9.8c-r1 < 0.9.8d
1.7 < 1.7b
1.8.5 < 1.8.5_p2
0.98 < 1.00
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
1.6.8_p12-r1 > 1.6.8_p9-r2
0.9.28-r2 < 0.9.28.1
0.9.28.1 < 087-r1
104-r11 > 104-r9
1.2.5_rc2 > 0.1
20040406-r1 > 2.12r-r4
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
0.3.4_pre20061029 < 0.4.0
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
`;

const symbol = (r: number) => (r < 0 ? "<" : r > 0 ? ">" : "=");
const flip = { "<": ">", ">": "<", "=": "=" } as const;

describe("Alpine versions (apk-tools order)", () => {
  const vectors = APK_TOOLS_VECTORS.trim()
    .split("\n")
    .map((l) => l.split(" ") as [string, "<" | ">" | "=", string]);

  it.each(vectors)("%s %s %s", (a, op, b) => {
    expect(symbol(compareApkRaw(a, b))).toBe(op);
    expect(symbol(compareApkRaw(b, a))).toBe(flip[op]);
  });

  it.each([
    // suffix order: alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p
    ["1.0_alpha", "<", "1.0_beta"],
    ["1.0_beta", "<", "1.0_pre"],
    ["1.0_pre", "<", "1.0_rc"],
    ["1.0_rc", "<", "1.0"],
    ["1.0", "<", "1.0_cvs"],
    ["1.0_cvs", "<", "1.0_svn"],
    ["1.0_svn", "<", "1.0_git"],
    ["1.0_git", "<", "1.0_hg"],
    ["1.0_hg", "<", "1.0_p"],
    ["1.0_p", "<", "1.0_p0"], // a suffix number, even 0, is more than none
    ["1.0_rc9", "<", "1.0_rc10"],
    ["1.0_rc1", "<", "1.0-r0"],
    ["1.0-r0", ">", "1.0"], // as in apk: an explicit revision, even r0, is more than none
    ["1.0", "<", "1.0-r1"],
    ["1.0", "<", "1.0a"],
    ["1.0a", "<", "1.0.1"],
    ["1.0z", "<", "1.0.0"],
    ["1.0_p1", "<", "1.0.1"],
    ["1.0-r9", "<", "1.0-r10"],
    ["1.01", "<", "1.1"], // leading zero: compared as strings, "01" < "1"
    ["1.010", "<", "1.02"], // as strings
    ["01", "=", "1"], // the initial number is always numeric
    ["1.2.3~abc123-r0", ">", "1.2.3-r0"], // a version with a commit hash is newer than one without
    ["1.2.3~abc-r1", "<", "1.2.3~abd-r0"],
    ["99999999999999999999999", ">", "99999999999999999999998"],
    ["3.1.4-r5", ">", "3.1.4-r4"],
    ["1.2.13-r0", "<", "1.2.13-r1"],
    ["1.3-r0", "<", "1.3.1-r0"],
  ] as const)("%s %s %s", (a, op, b) => {
    expect(symbol(compareApkRaw(a, b))).toBe(op);
    expect(symbol(compareApkRaw(b, a))).toBe(flip[op]);
  });

  it.each(["1", "1.2.3", "1.2.3a", "1.2.3_rc1", "1.2.3_alpha_pre2", "1.2.3_p1-r10", "1.2.3~0f1e-r2", "0.0.0", "20230101", "1.36.1-r29"])(
    "accepts %s",
    (v) => {
      expect(isValidApkVersion(v)).toBe(true);
      expect(parseApkVersion(v)).toBe(v);
    },
  );

  it.each([
    ["", "empty"],
    ["a1", "no leading digit"],
    ["1.0bc", "two letters"],
    ["1.0a1", "a number after the letter"],
    ["1.0_foo", "unknown suffix"],
    ["1.0_pa", "unknown suffix"],
    ["1.0-1", "revision without r"],
    ["1.0-r", "revision without number"],
    ["1.0-r1-r2", "two revisions"],
    ["1.0-r1_p1", "suffix after revision"],
    ["1.0.", "dot without number"],
    ["1..0", "empty part"],
    ["1.0~", "empty hash"],
    ["1.0~xyz", "hash that is not hex"],
    ["1.0 ", "trailing space"],
    ["1.0A", "upper-case letter"],
    ["v1.0", "leading v"],
  ])("refuses %j (%s)", (v) => {
    expect(isValidApkVersion(v)).toBe(false);
    expect(() => parseApkVersion(v, "$.version")).toThrow(ScanInputError);
    expect(() => parseApkVersion(v, "$.version")).toThrow(`$.version: invalid Alpine version ${JSON.stringify(v)}`);
  });

  it("compareApk and compareVersions validate both sides", () => {
    expect(compareApk("1.2.13-r0", "1.2.13-r1")).toBe(-1);
    expect(compareVersions("Alpine:v3.18", "1.3.1-r0", "1.2.13-r1")).toBe(1);
    expect(() => compareApk("1.0", "1.0bc")).toThrow("b: invalid Alpine version");
    try {
      compareVersions("Alpine", "x", "1.0");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ScanInputError);
      expect((e as ScanInputError).reason).toBe("version_invalid");
      expect((e as ScanInputError).path).toBe("a");
    }
  });
});
