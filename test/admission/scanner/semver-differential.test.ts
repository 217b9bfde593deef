/**
 * Differential test of the npm version order against npm's own `semver` package (the
 * reference implementation npm uses, a dev dependency used only here): validity in
 * strict mode and the order of generated versions, with many near-ties.
 */
import semver from "semver";
import { describe, expect, it } from "vitest";
import { compareSemver, parseSemver } from "../../../src/admission/scanner/versions/index.js";
import { prng } from "../../support/prng.js";

const rand = prng(2_0_0);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;

const NUMS = ["0", "1", "2", "9", "10", "11", "01", "99", "100"];
const IDS = ["alpha", "beta", "rc", "0", "1", "2", "10", "01", "x-y", "-", "A", "a1", "1a", "", "beta2"];

function generated(): string {
  let v = (rand() < 0.05 ? pick(["v", "=", " "]) : "") + [pick(NUMS), pick(NUMS), pick(NUMS)].join(".");
  if (rand() < 0.05) v = v.split(".").slice(0, 2).join(".");
  if (rand() < 0.5) v += "-" + Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(IDS)).join(".");
  if (rand() < 0.2) v += "+" + Array.from({ length: 1 + Math.floor(rand() * 2) }, () => pick(["build", "1", "sha.5114f85", "001", ""])).join(".");
  return v;
}

function valid(v: string): boolean {
  try {
    parseSemver(v);
    return true;
  } catch {
    return false;
  }
}

describe("SemVer against npm's semver package", () => {
  it("agrees on validity and order", () => {
    const versions = [...new Set(Array.from({ length: 4000 }, generated))];
    const disagreements: string[] = [];
    // node-semver trims surrounding spaces; a version with them is refused here on purpose.
    for (const v of versions) {
      const theirs = semver.valid(v) !== null && v.trim() === v;
      if (valid(v) !== theirs) disagreements.push(`${JSON.stringify(v)}: ours ${valid(v)}, semver ${theirs}`);
    }
    const good = versions.filter(valid);
    let pairs = 0;
    for (let i = 0; i < 8000; i++) {
      const a = pick(good);
      const b = rand() < 0.2 ? a.replace(/\+.*$/, "") : pick(good);
      pairs++;
      const ours = compareSemver(a, b);
      const theirs = semver.compare(a, b);
      if (ours !== theirs) disagreements.push(`${a} vs ${b}: ours ${ours}, semver ${theirs}`);
    }
    console.log(`semver differential: ${versions.length} strings (${good.length} valid), ${pairs} pairs, ${disagreements.length} disagreements`);
    expect(disagreements).toEqual([]);
  });
});
