/**
 * npm versions: Semantic Versioning 2.0.0 precedence (semver.org §11), as npm's
 * `semver` package applies it in strict mode.
 *
 * - `MAJOR.MINOR.PATCH`, each a number without leading zeros, compared numerically.
 * - A pre-release (`-alpha.1`) sorts before the release; pre-release identifiers are
 *   compared left to right: numeric ones numerically, alphanumeric ones in ASCII order,
 *   numeric before alphanumeric, and a shorter list first when all else is equal.
 * - Build metadata (`+build.5`) is validated and ignored.
 * - As in node-semver (strict), a leading `v` is accepted and dropped; surrounding
 *   whitespace, which node-semver trims, is refused.
 * - Like node-semver, a version longer than 256 characters, or whose major, minor or
 *   patch number exceeds Number.MAX_SAFE_INTEGER, is refused.
 */
import { ScanInputError, quote } from "../errors.js";
import { compareDigits } from "./digits.js";

export interface SemVer {
  readonly major: string;
  readonly minor: string;
  readonly patch: string;
  readonly prerelease: readonly string[];
  readonly build: readonly string[];
}

const NUM = "0|[1-9][0-9]*";
const PRE_ID = `(?:${NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)`;
const BUILD_ID = "[0-9A-Za-z-]+";
const SEMVER = new RegExp(
  `^v?(${NUM})\\.(${NUM})\\.(${NUM})` +
    `(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?` +
    `(?:\\+(${BUILD_ID}(?:\\.${BUILD_ID})*))?$`,
);
const NUMERIC = /^[0-9]+$/;

const MAX_LENGTH = 256;

export function parseSemver(value: string, path = "version"): SemVer {
  const invalid = (why: string) => new ScanInputError("version_invalid", path, `invalid semantic version ${quote(value)}: ${why}`);
  if (value.length > MAX_LENGTH) throw invalid(`longer than ${MAX_LENGTH} characters`);
  const m = SEMVER.exec(value);
  if (m === null) throw invalid("expected MAJOR.MINOR.PATCH[-prerelease][+build]");
  for (const n of [m[1], m[2], m[3]] as string[]) {
    if (Number(n) > Number.MAX_SAFE_INTEGER) throw invalid(`${n} is larger than ${Number.MAX_SAFE_INTEGER}`);
  }
  return {
    major: m[1] as string,
    minor: m[2] as string,
    patch: m[3] as string,
    prerelease: m[4] === undefined ? [] : m[4].split("."),
    build: m[5] === undefined ? [] : m[5].split("."),
  };
}

function compareIdentifier(a: string, b: string): -1 | 0 | 1 {
  const an = NUMERIC.test(a);
  const bn = NUMERIC.test(b);
  if (an && bn) return compareDigits(a, b);
  if (an) return -1;
  if (bn) return 1;
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

export function compareSemverParsed(a: SemVer, b: SemVer): -1 | 0 | 1 {
  const core = compareDigits(a.major, b.major) || compareDigits(a.minor, b.minor) || compareDigits(a.patch, b.patch);
  if (core !== 0) return core;
  const ap = a.prerelease;
  const bp = b.prerelease;
  if (ap.length === 0 || bp.length === 0) {
    if (ap.length === bp.length) return 0;
    return ap.length === 0 ? 1 : -1;
  }
  const n = Math.min(ap.length, bp.length);
  for (let i = 0; i < n; i++) {
    const r = compareIdentifier(ap[i] as string, bp[i] as string);
    if (r !== 0) return r;
  }
  if (ap.length === bp.length) return 0;
  return ap.length < bp.length ? -1 : 1;
}

/** Compares two semantic versions; throws ScanInputError if either is invalid. */
export function compareSemver(a: string, b: string): -1 | 0 | 1 {
  return compareSemverParsed(parseSemver(a, "a"), parseSemver(b, "b"));
}
