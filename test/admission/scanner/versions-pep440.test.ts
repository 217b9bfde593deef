import { describe, expect, it } from "vitest";
import { ScanInputError } from "../../../src/admission/scanner/errors.js";
import {
  comparePep440,
  compareVersions,
  normalizePypiVersion,
  parsePep440,
} from "../../../src/admission/scanner/versions/index.js";

describe("PyPI versions (PEP 440)", () => {
  it("orders the PEP's summary example", () => {
    // PEP 440, "Summary of permitted suffixes and relative ordering", in order.
    const chain = [
      "1.dev0", "1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456",
      "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0",
      "1.0+abc.5", "1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1",
    ];
    for (let i = 0; i < chain.length; i++) {
      for (let j = 0; j < chain.length; j++) {
        const a = chain[i] as string;
        const b = chain[j] as string;
        expect(comparePep440(a, b), `${a} vs ${b}`).toBe(Math.sign(i - j));
      }
    }
  });

  it.each([
    // The PEP's normalization section, each spelling with its normal form.
    ["1.0RC1", "1.0rc1"],
    ["1.1RC1", "1.1rc1"],
    ["1.0c1", "1.0rc1"],
    ["1.0-a1", "1.0a1"],
    ["1.0a.1", "1.0a1"],
    ["1.0-alpha1", "1.0a1"],
    ["1.0beta2", "1.0b2"],
    ["1.0-preview3", "1.0rc3"],
    ["1.0pre3", "1.0rc3"],
    ["1.0a", "1.0a0"],
    ["1.0-post1", "1.0.post1"],
    ["1.0post1", "1.0.post1"],
    ["1.0.post", "1.0.post0"],
    ["1.0-r4", "1.0.post4"],
    ["1.0rev4", "1.0.post4"],
    ["1.0-1", "1.0.post1"],
    ["1.0-dev2", "1.0.dev2"],
    ["1.0dev", "1.0.dev0"],
    ["1.0+ubuntu-1", "1.0+ubuntu.1"],
    ["1.0+Ubuntu_1", "1.0+ubuntu.1"],
    ["v1.0", "1.0"],
    ["V1.0", "1.0"],
    ["  1.0\n", "1.0"],
    ["1.01", "1.1"],
    ["0!1.0", "1.0"],
    ["1!2.0", "1!2.0"],
    ["2.0.0", "2.0.0"],
  ])("%j normalizes to %s and compares equal to it", (raw, normal) => {
    expect(normalizePypiVersion(raw)).toBe(normal);
    expect(comparePep440(raw, normal)).toBe(0);
    expect(compareVersions("PyPI", raw, normal)).toBe(0);
  });

  it.each([
    ["1.0", "=", "1.0.0"], // release segments with implicit zeros
    ["1.0", "=", "1"],
    ["1.0.1", ">", "1.0"],
    ["1!1.0", ">", "2.0"], // epochs
    ["1.0.dev0", "<", "1.0a0"],
    ["1.0a1.dev1", "<", "1.0a1"],
    ["1.0.post1.dev1", "<", "1.0.post1"],
    ["1.0.post1.dev1", ">", "1.0"],
    ["1.0rc1", "<", "1.0"],
    ["1.0+local", ">", "1.0"],
    ["1.0+1", ">", "1.0+abc"], // numeric local segments after alphanumeric ones
    ["1.0+abc", "<", "1.0+abc.1"],
    ["1.0+ABC", "=", "1.0+abc"],
    ["1.0+001", "=", "1.0+1"],
    ["2.31.0", "<", "2.32.0"],
    ["3.1.4", ">", "3.1.3"],
    ["0.9.99999999999999999999", "<", "0.9.100000000000000000000"],
  ] as const)("%s %s %s", (a, op, b) => {
    const r = comparePep440(a, b);
    expect(r < 0 ? "<" : r > 0 ? ">" : "=").toBe(op);
    expect(comparePep440(b, a)).toBe(r === 0 ? 0 : -r);
  });

  it("parses into parts", () => {
    expect(parsePep440("1!2.0.3rc4.post5.dev6+ab.7")).toEqual({
      epoch: "1", release: ["2", "0", "3"], pre: { label: "rc", number: "4" }, post: "5", dev: "6", local: ["ab", "7"],
    });
  });

  it.each(["", "1.0.", ".1", "1..0", "1.0a1a2", "1.0+", "1.0+a..b", "1.0+a b", "1.0 1", "one", "1.0-x", "1.0.post1.dev1.dev2", "1.0#1", "1.0+-a", "vv1.0"])(
    "refuses %j",
    (v) => {
      expect(() => parsePep440(v, "$.version")).toThrow(ScanInputError);
      expect(() => parsePep440(v, "$.version")).toThrow(`$.version: invalid PEP 440 version ${JSON.stringify(v)}`);
    },
  );
});
