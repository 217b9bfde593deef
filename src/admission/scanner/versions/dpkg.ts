/**
 * Debian package versions: `[epoch:]upstream_version[-debian_revision]`, compared as
 * Debian policy §5.6.12 describes and `dpkg --compare-versions` implements.
 *
 * - The epoch is a number (absent = 0) and is compared first.
 * - The upstream version and the revision are each compared by alternating runs: a run
 *   of non-digits compared character by character, where `~` sorts before everything,
 *   even the end of the string, then the end, then letters (ASCII order), then any other
 *   character (ASCII order); then a run of digits compared numerically (absent = 0).
 * - A missing revision compares like an empty one, so `1.0` and `1.0-0` are equal.
 *
 * Validation is dpkg's own (the parse errors and the syntax warnings of
 * `parseversion()`), made strict: whitespace is refused rather than trimmed, the epoch
 * must be plain digits (dpkg's strtol would also take a sign), and each warning
 * ("does not start with digit", "invalid character") is an error here.
 */
import { ScanInputError, quote } from "../errors.js";
import { sign } from "./digits.js";

export interface DpkgVersion {
  readonly epoch: number;
  readonly upstream: string;
  /** "" when the version has no revision. */
  readonly revision: string;
}

const INT_MAX = 2147483647;
const UPSTREAM_CHARS = /^[0-9A-Za-z.+~:-]*$/;
const REVISION_CHARS = /^[0-9A-Za-z.+~]*$/;

function invalid(value: string, why: string, path: string): ScanInputError {
  return new ScanInputError("version_invalid", path, `invalid Debian version ${quote(value)}: ${why}`);
}

export function parseDpkgVersion(value: string, path = "version"): DpkgVersion {
  if (value.length === 0) throw invalid(value, "version string is empty", path);
  if (/\s/.test(value)) throw invalid(value, "version string contains whitespace", path);
  let rest = value;
  let epoch = 0;
  const colon = rest.indexOf(":");
  if (colon >= 0) {
    const e = rest.slice(0, colon);
    if (e.length === 0) throw invalid(value, "epoch is empty", path);
    if (!/^[0-9]+$/.test(e)) throw invalid(value, "epoch is not a number", path);
    const n = Number(e);
    if (n > INT_MAX) throw invalid(value, "epoch is too big", path);
    epoch = n;
    rest = rest.slice(colon + 1);
    if (rest.length === 0) throw invalid(value, "nothing after the epoch's colon", path);
  }
  let upstream = rest;
  let revision = "";
  const hyphen = rest.lastIndexOf("-");
  if (hyphen >= 0) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (revision.length === 0) throw invalid(value, "revision is empty", path);
  }
  if (upstream.length === 0) throw invalid(value, "upstream version is empty", path);
  if (!isDigit(upstream.charCodeAt(0))) throw invalid(value, "upstream version does not start with a digit", path);
  if (!UPSTREAM_CHARS.test(upstream)) throw invalid(value, "invalid character in upstream version", path);
  if (!REVISION_CHARS.test(revision)) throw invalid(value, "invalid character in revision", path);
  return { epoch, upstream, revision };
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** The weight of one character in a non-digit run; NaN (past the end) weighs 0. */
function order(c: number): number {
  if (Number.isNaN(c) || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 126) return -1; // "~"
  return c + 256;
}

/** dpkg's verrevcmp: compares one upstream version or one revision. */
export function compareDpkgPart(a: string, b: string): -1 | 0 | 1 {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(a.charCodeAt(i));
      const bc = order(b.charCodeAt(j));
      if (ac !== bc) return sign(ac - bc);
      i++;
      j++;
    }
    while (a.charCodeAt(i) === 48) i++;
    while (b.charCodeAt(j) === 48) j++;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a.charCodeAt(i))) return 1;
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return sign(firstDiff);
  }
  return 0;
}

export function compareDpkgParsed(a: DpkgVersion, b: DpkgVersion): -1 | 0 | 1 {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  const u = compareDpkgPart(a.upstream, b.upstream);
  if (u !== 0) return u;
  return compareDpkgPart(a.revision, b.revision);
}

/** Compares two Debian versions; throws ScanInputError if either is invalid. */
export function compareDpkg(a: string, b: string): -1 | 0 | 1 {
  return compareDpkgParsed(parseDpkgVersion(a, "a"), parseDpkgVersion(b, "b"));
}
