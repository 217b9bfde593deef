/**
 * Differential test of the Debian version order against the real `dpkg
 * --compare-versions`: real versions (this machine's /var/lib/dpkg/status plus a list of
 * known tricky ones), their near neighbours, and generated edge cases from a seeded PRNG.
 * The pairs go to dpkg through two `sh` loops reading them from files, so dpkg starts
 * once or twice per pair but no Node process is spawned per pair.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compareDpkg, parseDpkgVersion } from "../../../src/admission/scanner/versions/index.js";
import { prng } from "../../support/prng.js";

const TRICKY = [
  "1:2.30-1", "2.30-1", "2.30~rc1-1", "2.30~rc1", "2.30~~", "2.30~", "2.30", "2.30+b1", "2.30-1+b1",
  "1.0+dfsg-1~bpo11+1", "1.0+dfsg-1", "1.0+dfsg-1+deb12u1", "1.0+dfsg-1~deb12u1", "1.0-1~bpo11+1",
  "0.9.8zh-1", "0.9.8zg-1", "0.9.8z-1", "0.9.8-1", "0.9.8a-1", "0.9.8za-1",
  "1:1.2.13.dfsg-1", "1.2.13.dfsg-1", "1:1.2.11.dfsg-2+deb11u2", "3.0.11-1~deb12u2", "3.0.11-1~deb12u1",
  "3.0.11-1", "3.0.9-1", "3.0.13-1~deb12u1", "2.36-9+deb12u3", "2.36-9+deb12u10", "2.36-9",
  "1.0", "1.0-0", "1.0-0.1", "1.00", "01.0", "0:1.0", "00:1.0", "1.0.0", "1.0a", "1.0A", "1.0+", "1.0.",
  "1.0~", "1.0~a", "1.0~~a", "1.0-~", "1.0-~~", "1.0-0~", "1.0-a", "1.0-A", "1.0-+", "1.0-.",
  "7.88.1-10+deb12u5", "7.88.1-10+deb12u12", "252.30-1~deb12u2", "252.31-1~deb12u1",
  "2:9.0.1378-2", "2:8.2.2434-3+deb11u1", "1:9.18.28-1~deb12u2", "5.2.15-2+b7", "5.2.15-2+b2",
  "2022.2.0+dfsg-1", "2.2.0+dfsg-1", "0.0~git20230123.b2528b0-1", "0.0~20221219.0-2+b3",
  "0.1~+svn49-11", "1.2.3-4ubuntu0.1", "1.2.3-4ubuntu0.10", "1.2.3-4build1", "4:22.12.3-1",
  "1:2.38.1-5+deb12u3", "10.2.1-6", "12.2.0-14", "12.2.0-14+deb12u1", "1.21.22", "1.21.22+really1.20",
  "3.2.1-2~exp1", "3.2.1-2~exp2", "3.2.1-2~~exp1", "9.2p1-2+deb12u3", "9.2p1-2", "9.2p10-1",
  "0.99", "0.99.1", "0.099", "1:0", "1:0-0", "1:2.0-1-1", "1:2:0-1", "1.0-1-1", "1.0-1-2",
  "4294967295", "4294967296", "18446744073709551616", "018446744073709551616",
];

function statusVersions(): string[] {
  const path = "/var/lib/dpkg/status";
  if (!existsSync(path)) return [];
  const found = new Set<string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.startsWith("Version: ")) found.add(line.slice("Version: ".length).trim());
  }
  return [...found];
}

const rand = prng(0x5ca77e2);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;

const DIGIT_RUNS = ["0", "00", "1", "01", "001", "2", "9", "10", "010", "99", "100", "123", "4294967296"];
const LETTERS = ["a", "b", "z", "A", "Z", "dfsg", "rc", "bpo", "deb", "git", "p", "ubuntu"];
const UPSTREAM_SEPS = [".", "+", "~", "~~", "-", ":", ""];
const REVISION_SEPS = [".", "+", "~", "~~", ""];

function segments(count: number, seps: readonly string[]): string {
  let s = "";
  for (let i = 0; i < count; i++) {
    const r = rand();
    s += pick(seps);
    s += r < 0.5 ? pick(DIGIT_RUNS) : r < 0.8 ? pick(LETTERS) : pick(LETTERS) + pick(DIGIT_RUNS);
  }
  return s;
}

/** A random valid Debian version from small pieces, so that near-ties are frequent. */
function generated(): string {
  const hasEpoch = rand() < 0.25;
  const hasRevision = rand() < 0.6;
  let upstream = pick(DIGIT_RUNS) + segments(Math.floor(rand() * 4), UPSTREAM_SEPS);
  if (!hasRevision) upstream = upstream.replaceAll("-", ".");
  if (!hasEpoch) upstream = upstream.replaceAll(":", ".");
  let v = upstream;
  if (hasRevision) v += "-" + segments(1 + Math.floor(rand() * 2), REVISION_SEPS).replace(/^[.+~]*/, (m) => (rand() < 0.5 ? m : ""));
  if (hasEpoch) v = pick(["0", "1", "2", "00", "10"]) + ":" + v;
  return v;
}

/** A neighbour of a version: the kinds of differences that decide real upgrades. */
function mutate(v: string): string {
  const ops = [
    (s: string) => s + "~",
    (s: string) => s + "~rc1",
    (s: string) => s + "+b1",
    (s: string) => s + ".0",
    (s: string) => s + "a",
    (s: string) => (s.includes(":") ? s : "0:" + s),
    (s: string) => (s.includes(":") ? s : "1:" + s),
    (s: string) => (s.includes("-") ? s + "+deb12u1" : s + "-1"),
    (s: string) => (s.includes("-") ? s.replace(/-([^-]*)$/, "-$1~bpo11+1") : s + "-0"),
    (s: string) => s.replace(/[0-9]+/, (d) => "0" + d),
    (s: string) => s.replace(/[0-9]+(?!.*[0-9])/, (d) => String(Number(d.slice(-6)) + 1)),
    (s: string) => s.replace(/\.[0-9]+/, ""),
    (s: string) => s.replace(/~/, ""),
    (s: string) => s.replace(/[a-z]/, (c) => c.toUpperCase()),
  ];
  return pick(ops)(v);
}

function isValid(v: string): boolean {
  try {
    parseDpkgVersion(v);
    return true;
  } catch {
    return false;
  }
}

function runDpkgBatch(file: string): Promise<{ out: string; err: string }> {
  const script =
    'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo "<"; ' +
    'elif dpkg --compare-versions "$a" eq "$b"; then echo "="; else echo ">"; fi; done < "$1"';
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", script, "sh", file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve({ out, err }) : reject(new Error(`sh exited ${code}: ${err}`))));
  });
}

const dir = mkdtempSync(join(tmpdir(), "portcullis-dpkg-diff-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("Debian version order against dpkg --compare-versions", () => {
  it("agrees on every pair of real, neighbouring and generated versions", async () => {
    const real = [...new Set([...statusVersions(), ...TRICKY])];
    expect(real.length).toBeGreaterThan(300);
    for (const v of real) expect(isValid(v), v).toBe(true);

    const pairs: [string, string][] = [];
    const sorted = [...real].sort();
    for (let i = 1; i < sorted.length; i++) pairs.push([sorted[i - 1] as string, sorted[i] as string]);
    for (const t of TRICKY) for (const u of TRICKY) if (rand() < 0.15) pairs.push([t, u]);
    for (let i = 0; i < 1500; i++) pairs.push([pick(real), pick(real)]);
    for (let i = 0; i < 1500; i++) {
      const v = pick(real);
      const w = mutate(rand() < 0.3 ? mutate(v) : v);
      if (isValid(w)) pairs.push(rand() < 0.5 ? [v, w] : [w, v]);
    }
    const gen = Array.from({ length: 600 }, generated);
    for (const g of gen) expect(isValid(g), g).toBe(true);
    for (let i = 0; i < 1800; i++) {
      const g = pick(gen);
      const r = rand();
      const other = r < 0.4 ? pick(gen) : r < 0.8 ? mutate(g) : pick(real);
      if (isValid(other)) pairs.push([g, other]);
    }
    expect(pairs.length).toBeGreaterThanOrEqual(5000);

    const half = Math.ceil(pairs.length / 2);
    const files = [pairs.slice(0, half), pairs.slice(half)].map((batch, i) => {
      const file = join(dir, `pairs-${i}.txt`);
      writeFileSync(file, batch.map(([a, b]) => `${a} ${b}\n`).join(""));
      return file;
    });
    const results = await Promise.all(files.map(runDpkgBatch));
    for (const r of results) expect(r.err).toBe("");
    const verdicts = results.flatMap((r) => r.out.split("\n").filter((l) => l.length > 0));
    expect(verdicts.length).toBe(pairs.length);

    const symbol = { [-1]: "<", 0: "=", 1: ">" } as const;
    const disagreements: string[] = [];
    let equal = 0;
    pairs.forEach(([a, b], i) => {
      const ours = symbol[compareDpkg(a, b)];
      if (ours === "=") equal++;
      if (ours !== verdicts[i]) disagreements.push(`${a} ${ours} ${b}, dpkg says ${verdicts[i]}`);
    });
    console.log(
      `dpkg differential: ${pairs.length} pairs compared (${real.length} real versions, ${gen.length} generated, ` +
        `${equal} equal pairs), ${disagreements.length} disagreements`,
    );
    expect(disagreements).toEqual([]);
  });

  it("refuses what dpkg finds bad, and a few spellings dpkg lets through", async () => {
    const bad = [
      "a1.0", "1.0-", ":1.0", "1:", "x:1.0", "1.0 1", "2.0-1:1", "1:2.0-1:1", "1.0_1", "1.0-1_2",
      "1.0-a:b", "1.0/1", "1.0-1/2", "1.0!", "99999999999:1.0", "~1.0", ".1.0", "1.0-1-", "é1.0", "1,0",
    ];
    // Deliberately stricter than dpkg: its strtol takes a signed epoch, and it trims spaces.
    const stricter = ["+1:1.0", " 1.0", "1.0 "];
    for (const v of [...bad, ...stricter]) expect(isValid(v), v).toBe(false);
    const file = join(dir, "bad.txt");
    writeFileSync(file, [...bad, ...stricter].map((v) => `${v}\n`).join(""));
    const script =
      'while IFS= read -r v; do if dpkg --compare-versions "$v" eq 1.0 2>&1 | grep -q "bad syntax"; ' +
      'then echo bad; else echo ok; fi; done < "$1"';
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn("sh", ["-c", script, "sh", file], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (text += d));
      child.on("error", reject);
      child.on("close", () => resolve(text));
    });
    expect(out.trim().split("\n")).toEqual([...bad.map(() => "bad"), ...stricter.map(() => "ok")]);
  });
});
