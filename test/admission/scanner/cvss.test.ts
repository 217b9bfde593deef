import { describe, expect, it } from "vitest";
import { cvssMajorVersion, cvssSeverity, parseCvssV3, roundup30, roundup31 } from "../../../src/admission/scanner/cvss.js";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";

describe("CVSS v3.x base score", () => {
  it.each([
    // Vectors and base scores as published (CVSS v3.1 specification examples, NVD).
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "critical"],
    ["CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5, "medium"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "high"], // CVE-2014-0160 (Heartbleed)
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "medium"], // CVE-2013-1937 (reflected XSS)
    ["CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2, "high"], // CVE-2021-23337 (lodash template)
    ["CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1, "high"],
    ["CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8, "high"],
    ["CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "high"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8, "high"], // CVE-2016-1645
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 5.3, "medium"],
    ["CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N", 3.7, "low"],
    ["CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "low"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "none"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:N", 0.0, "none"],
    ["CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4, "medium"], // stored XSS (PR:L changed)
    ["CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1, "critical"],
    ["CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.8, "high"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "high"],
    ["CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"],
    ["CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5, "medium"],
    ["CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "medium"],
    // Order of metrics is free; temporal and environmental metrics leave the base score alone.
    ["CVSS:3.1/C:H/I:H/A:H/AV:N/AC:L/PR:N/UI:N/S:U", 9.8, "critical"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:R", 9.8, "critical"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/CR:H/MAV:L/MS:C/MC:N", 9.8, "critical"],
  ] as const)("%s = %d (%s)", (vector, score, severity) => {
    const parsed = parseCvssV3(vector);
    expect(parsed.baseScore).toBe(score);
    expect(parsed.severity).toBe(severity);
    expect(parsed.version).toBe(vector.slice(5, 8));
  });

  it("rounds up as each version's specification says", () => {
    expect(roundup31(4.000000000000001)).toBe(4.0); // v3.1 Appendix A: no floating-point artefact
    expect(roundup30(4.000000000000001)).toBe(4.1);
    expect(roundup31(4.02)).toBe(4.1);
    expect(roundup31(4.0)).toBe(4.0);
    expect(roundup31(4.00001)).toBe(4.1);
    expect(roundup31(9.99)).toBe(10.0);
  });

  it.each([
    [0, "none"], [0.1, "low"], [3.9, "low"], [4.0, "medium"], [6.9, "medium"], [7.0, "high"], [8.9, "high"], [9.0, "critical"], [10, "critical"],
  ] as const)("severity of %d is %s", (score, level) => {
    expect(cvssSeverity(score)).toBe(level);
  });

  it.each([
    ["", 'expected the prefix "CVSS:3.0/" or "CVSS:3.1/"'],
    ["AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 'expected the prefix "CVSS:3.0/" or "CVSS:3.1/"'],
    ["CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 'expected the prefix "CVSS:3.0/" or "CVSS:3.1/"'],
    ["CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 'expected the prefix "CVSS:3.0/" or "CVSS:3.1/"'],
    ["cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 'expected the prefix "CVSS:3.0/" or "CVSS:3.1/"'],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "missing base metric A"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/C:H/I:H", "missing base metrics S, A"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/AV:N", "metric AV appears twice"],
    ["CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "AV:X is not one of AV:N, AV:A, AV:L, AV:P"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:M", "A:M is not one of A:H, A:L, A:N"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/Au:N", 'malformed metric "Au:N"'],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:N", "unknown metric XX"],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", 'malformed metric ""'],
    ["CVSS:3.1/AV:N//AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 'malformed metric ""'],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H ", 'malformed metric "A:H "'],
    ["CVSS:3.1/AV=N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 'malformed metric "AV=N"'],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:Z", "E:Z is not one of E:X, E:U, E:P, E:F, E:H"],
  ])("refuses %j: %s", (vector, why) => {
    try {
      parseCvssV3(vector, "$.severity[0].score");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ScanInputError);
      expect((e as ScanInputError).reason).toBe("cvss_invalid");
      expect((e as ScanInputError).message).toBe(`$.severity[0].score: invalid CVSS v3 vector ${JSON.stringify(vector)}: ${why}`);
    }
  });

  it("refuses a huge vector without quoting all of it", () => {
    const vector = "CVSS:3.1/" + "AV:N/".repeat(100);
    expect(() => parseCvssV3(vector)).toThrow(/longer than 256 characters/);
    expect(() => parseCvssV3(vector)).toThrow(/…"/);
  });

  it("tells the CVSS major version of a vector", () => {
    expect(cvssMajorVersion("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")).toBe(3);
    expect(cvssMajorVersion("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")).toBe(4);
    expect(cvssMajorVersion("AV:N/AC:L/Au:N/C:P/I:P/A:P")).toBe(2);
    expect(cvssMajorVersion("HIGH")).toBeUndefined();
  });
});
