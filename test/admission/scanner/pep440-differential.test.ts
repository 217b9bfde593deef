/**
 * Differential test of the PEP 440 implementation against `packaging.version` (the
 * reference implementation the PyPA maintains, from this machine's python3): the same
 * strings are judged valid or invalid, normalized to the same text and ordered the
 * same way. One python3 process reads all the strings and pairs from a file. It needs a
 * `python3` on PATH with `packaging`, or with pip, which vendors it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { comparePep440, normalizePypiVersion } from "../../../src/admission/scanner/versions/index.js";
import { prng } from "../../support/prng.js";

const ORACLE = `
import json, sys
try:
    from packaging.version import Version, InvalidVersion
except ImportError:  # pip vendors the same module
    from pip._vendor.packaging.version import Version, InvalidVersion
data = json.load(open(sys.argv[1]))
def norm(v):
    try:
        return str(Version(v))
    except InvalidVersion:
        return None
out = {"normal": [norm(v) for v in data["versions"]], "order": []}
for a, b in data["pairs"]:
    x, y = Version(a), Version(b)
    out["order"].append(-1 if x < y else (1 if x > y else 0))
json.dump(out, sys.stdout)
`;

const PROBE = `
try:
    import packaging.version
except ImportError:
    import pip._vendor.packaging.version
`;

const rand = prng(440);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
const maybe = (p: number, s: () => string): string => (rand() < p ? s() : "");

const NUMS = ["0", "00", "1", "01", "2", "9", "10", "11", "99", "100", "2024"];
const SEP = ["", ".", "-", "_"];

/** Mostly valid spellings, including the PEP's alternative ones, and some invalid ones. */
function generated(): string {
  let v = maybe(0.05, () => pick(["v", "V"]));
  v += maybe(0.1, () => pick(NUMS) + "!");
  v += pick(NUMS);
  const parts = Math.floor(rand() * 4);
  for (let i = 0; i < parts; i++) v += "." + pick(NUMS);
  v += maybe(0.35, () => pick(SEP) + pick(["a", "b", "c", "rc", "alpha", "beta", "pre", "preview", "RC", "A"]) + maybe(0.7, () => pick(SEP) + pick(NUMS)));
  v += maybe(0.25, () => (rand() < 0.3 ? "-" + pick(NUMS) : pick(SEP) + pick(["post", "rev", "r", "POST"]) + maybe(0.7, () => pick(SEP) + pick(NUMS))));
  v += maybe(0.25, () => pick(SEP) + pick(["dev", "DEV"]) + maybe(0.7, () => pick(SEP) + pick(NUMS)));
  v += maybe(0.15, () => "+" + pick(["abc", "ubuntu", "1", "01", "cpu", "X"]) + maybe(0.5, () => pick([".", "-", "_"]) + pick(["5", "7", "abc", "gpu"])));
  if (rand() < 0.08) v += pick(["..", "+", "-", "_x", " 1", "#", "a1a"]); // invalid tails
  return v;
}

const dir = mkdtempSync(join(tmpdir(), "portcullis-pep440-diff-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ours(v: string): string | null {
  try {
    return normalizePypiVersion(v);
  } catch {
    return null;
  }
}

describe("PEP 440 against packaging.version", () => {
  it("agrees on validity, normal form and order", () => {
    const fixed = [
      "1.0", "1.0.0", "1.0RC1", "1.0-post1", "1.0-1", "1!2.0", "1.0+ubuntu-1", "1.0.dev0", "1.0a1.post2.dev3",
      "2.31.0", "2.32.3", "4.17.21", "0.0.1", "1.0c1", "1.0rc1", "v1.0", "1.0.post", "1.0+abc.5", "1.0+5",
    ];
    const versions = [...new Set([...fixed, ...Array.from({ length: 3000 }, generated)])];
    const valid = versions.filter((v) => ours(v) !== null);
    const pairs: [string, string][] = [];
    for (let i = 0; i < 6000; i++) {
      const a = pick(valid);
      const b = rand() < 0.3 ? (ours(a) as string) : pick(valid);
      pairs.push([a, b]);
    }
    const file = join(dir, "input.json");
    writeFileSync(file, JSON.stringify({ versions, pairs }));
    const probe = spawnSync("python3", ["-c", PROBE], { encoding: "utf8" });
    expect(probe.status, `python3 with packaging (or pip) is required: ${probe.stderr}`).toBe(0);
    const run = spawnSync("python3", ["-c", ORACLE, file], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const oracle = JSON.parse(run.stdout) as { normal: (string | null)[]; order: number[] };

    const disagreements: string[] = [];
    versions.forEach((v, i) => {
      if (ours(v) !== oracle.normal[i]) disagreements.push(`${JSON.stringify(v)}: ours ${ours(v)}, packaging ${oracle.normal[i]}`);
    });
    pairs.forEach(([a, b], i) => {
      const r = comparePep440(a, b);
      if (r !== oracle.order[i]) disagreements.push(`${a} vs ${b}: ours ${r}, packaging ${oracle.order[i]}`);
    });
    console.log(
      `pep440 differential: ${versions.length} strings (${valid.length} valid), ${pairs.length} pairs, ${disagreements.length} disagreements`,
    );
    expect(disagreements).toEqual([]);
  });
});
