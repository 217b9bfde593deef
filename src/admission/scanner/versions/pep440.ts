/**
 * PyPI versions: PEP 440 ("Version Identification and Dependency Specification").
 *
 *   [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]
 *
 * with the normalizations the PEP requires: case-insensitive; leading `v`; leading and
 * trailing whitespace ignored; `alpha`/`beta`/`c`/`pre`/`preview` spell `a`/`b`/`rc`;
 * `rev`/`r` spell `post`; `-`, `_` or `.` (or nothing) may separate a pre, post or dev
 * part; a missing pre/post/dev number is 0; `1.0-1` is an implicit post-release; local
 * segments may be separated by `-`, `_` or `.`.
 *
 * Ordering (PEP 440 "Summary of permitted suffixes and relative ordering"): epoch, then
 * the release with trailing zeros ignored (`1.0` == `1.0.0`), then `.devN` of a final
 * release < pre-releases (`a` < `b` < `rc`) < the final release < post-releases, each
 * with its own dev-releases first; then the local version, where a version without one
 * sorts first, and segments compare numerically when numeric, numeric after alphanumeric,
 * alphanumeric ones case-insensitively, and a shorter list first.
 */
import { ScanInputError, quote } from "../errors.js";
import { compareDigits, stripZeros } from "./digits.js";

export interface Pep440Version {
  readonly epoch: string;
  /** Release numbers without leading zeros; trailing zero parts kept as written. */
  readonly release: readonly string[];
  readonly pre?: { readonly label: "a" | "b" | "rc"; readonly number: string };
  readonly post?: string;
  readonly dev?: string;
  readonly local?: readonly string[];
}

// The PEP's own VERSION_PATTERN (appendix B), anchored, case-insensitive.
const PATTERN = new RegExp(
  "^v?" +
    "(?:([0-9]+)!)?" + // epoch
    "([0-9]+(?:\\.[0-9]+)*)" + // release
    "(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?([0-9]+)?)?" + // pre
    "(?:-([0-9]+)|[-_.]?(post|rev|r)[-_.]?([0-9]+)?)?" + // post
    "(?:[-_.]?(dev)[-_.]?([0-9]+)?)?" + // dev
    "(?:\\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$", // local
  "i",
);

const PRE_LABELS: Readonly<Record<string, "a" | "b" | "rc">> = {
  a: "a",
  alpha: "a",
  b: "b",
  beta: "b",
  c: "rc",
  rc: "rc",
  pre: "rc",
  preview: "rc",
};

export function parsePep440(value: string, path = "version"): Pep440Version {
  const m = PATTERN.exec(value.trim());
  if (m === null) {
    throw new ScanInputError(
      "version_invalid",
      path,
      `invalid PEP 440 version ${quote(value)}: expected [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`,
    );
  }
  const [, epoch, release, preL, preN, postImplicit, postL, postN, devL, devN, local] = m;
  const version: {
    epoch: string;
    release: string[];
    pre?: { label: "a" | "b" | "rc"; number: string };
    post?: string;
    dev?: string;
    local?: string[];
  } = {
    epoch: stripZeros(epoch ?? "0"),
    release: (release as string).split(".").map(stripZeros),
  };
  if (preL !== undefined) {
    version.pre = { label: PRE_LABELS[preL.toLowerCase()] as "a" | "b" | "rc", number: stripZeros(preN ?? "0") };
  }
  if (postImplicit !== undefined) version.post = stripZeros(postImplicit);
  else if (postL !== undefined) version.post = stripZeros(postN ?? "0");
  if (devL !== undefined) version.dev = stripZeros(devN ?? "0");
  if (local !== undefined) {
    version.local = local
      .toLowerCase()
      .split(/[-_.]/)
      .map((s) => (/^[0-9]+$/.test(s) ? stripZeros(s) : s));
  }
  return version;
}

/** The normalized form the PEP defines, e.g. `1.0RC1` → `1.0rc1`, `1.0-1` → `1.0.post1`. */
export function normalizePep440(v: Pep440Version): string {
  let s = v.epoch === "0" ? "" : `${v.epoch}!`;
  s += v.release.join(".");
  if (v.pre) s += `${v.pre.label}${v.pre.number}`;
  if (v.post !== undefined) s += `.post${v.post}`;
  if (v.dev !== undefined) s += `.dev${v.dev}`;
  if (v.local) s += `+${v.local.join(".")}`;
  return s;
}

function compareRelease(a: readonly string[], b: readonly string[]): -1 | 0 | 1 {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const r = compareDigits(a[i] ?? "0", b[i] ?? "0");
    if (r !== 0) return r;
  }
  return 0;
}

const LABEL_RANK = { a: 0, b: 1, rc: 2 } as const;

/**
 * The pre-release key: a final release's dev-release (no pre, no post, a dev) sorts
 * before every pre-release (-1), a version without a pre-release after them all (+1).
 */
function comparePre(a: Pep440Version, b: Pep440Version): -1 | 0 | 1 {
  const rank = (v: Pep440Version): number =>
    v.pre ? 0 : v.post === undefined && v.dev !== undefined ? -1 : 1;
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  if (!a.pre || !b.pre) return 0;
  if (a.pre.label !== b.pre.label) return LABEL_RANK[a.pre.label] < LABEL_RANK[b.pre.label] ? -1 : 1;
  return compareDigits(a.pre.number, b.pre.number);
}

/** Absent post sorts first; absent dev sorts last. */
function compareOptional(a: string | undefined, b: string | undefined, absentFirst: boolean): -1 | 0 | 1 {
  if (a === undefined || b === undefined) {
    if (a === b) return 0;
    const aFirst = a === undefined ? absentFirst : !absentFirst;
    return aFirst ? -1 : 1;
  }
  return compareDigits(a, b);
}

function compareLocal(a: readonly string[] | undefined, b: readonly string[] | undefined): -1 | 0 | 1 {
  if (a === undefined || b === undefined) {
    if (a === b) return 0;
    return a === undefined ? -1 : 1;
  }
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    const xn = /^[0-9]+$/.test(x);
    const yn = /^[0-9]+$/.test(y);
    let r: -1 | 0 | 1;
    if (xn && yn) r = compareDigits(x, y);
    else if (xn !== yn) r = xn ? 1 : -1;
    else r = x === y ? 0 : x < y ? -1 : 1;
    if (r !== 0) return r;
  }
  if (a.length === b.length) return 0;
  return a.length < b.length ? -1 : 1;
}

export function comparePep440Parsed(a: Pep440Version, b: Pep440Version): -1 | 0 | 1 {
  return (
    compareDigits(a.epoch, b.epoch) ||
    compareRelease(a.release, b.release) ||
    comparePre(a, b) ||
    compareOptional(a.post, b.post, true) ||
    compareOptional(a.dev, b.dev, false) ||
    compareLocal(a.local, b.local)
  );
}

/** Compares two PEP 440 versions; throws ScanInputError if either is invalid. */
export function comparePep440(a: string, b: string): -1 | 0 | 1 {
  return comparePep440Parsed(parsePep440(a, "a"), parsePep440(b, "b"));
}
