/**
 * Version comparison per package ecosystem. An ecosystem is named as OSV names it, with
 * or without a release suffix: `Debian`, `Debian:12`, `Alpine`, `Alpine:v3.18`, `npm`,
 * `PyPI`. Every comparison validates both versions first and throws ScanInputError
 * (reason `version_invalid`) for one its ecosystem does not accept: a version the
 * scanner cannot order is never guessed at.
 */
import { ScanInputError, quote } from "../errors.js";
import { compareApkRaw, parseApkVersion } from "./apk.js";
import { compareDpkgParsed, parseDpkgVersion, type DpkgVersion } from "./dpkg.js";
import { comparePep440Parsed, normalizePep440, parsePep440, type Pep440Version } from "./pep440.js";
import { compareSemverParsed, parseSemver, type SemVer } from "./semver.js";

export type Ecosystem = "Debian" | "Alpine" | "npm" | "PyPI";
export const ECOSYSTEMS: readonly Ecosystem[] = Object.freeze(["Debian", "Alpine", "npm", "PyPI"]);

/** `Debian:12` → `Debian`, `Alpine:v3.18` → `Alpine`; throws for an ecosystem we do not order. */
export function ecosystemFamily(name: string, path = "ecosystem"): Ecosystem {
  const colon = name.indexOf(":");
  const base = colon < 0 ? name : name.slice(0, colon);
  const suffix = colon < 0 ? undefined : name.slice(colon + 1);
  if ((ECOSYSTEMS as readonly string[]).includes(base)) {
    if (suffix !== undefined && (suffix.length === 0 || base === "npm" || base === "PyPI")) {
      throw new ScanInputError("ecosystem_unsupported", path, `unsupported ecosystem ${quote(name)}`);
    }
    return base as Ecosystem;
  }
  throw new ScanInputError(
    "ecosystem_unsupported",
    path,
    `unsupported ecosystem ${quote(name)}: expected one of ${ECOSYSTEMS.join(", ")} (Debian and Alpine may carry a release suffix)`,
  );
}

/** A validated version of one ecosystem, ready to be compared without parsing again. */
export type ParsedVersion =
  | { readonly ecosystem: "Debian"; readonly text: string; readonly parsed: DpkgVersion }
  | { readonly ecosystem: "Alpine"; readonly text: string; readonly parsed: string }
  | { readonly ecosystem: "npm"; readonly text: string; readonly parsed: SemVer }
  | { readonly ecosystem: "PyPI"; readonly text: string; readonly parsed: Pep440Version };

export function parseVersion(ecosystem: string, version: string, path = "version"): ParsedVersion {
  if (typeof version !== "string") {
    throw new ScanInputError("version_invalid", path, "a version must be a string");
  }
  const family = ecosystemFamily(ecosystem);
  switch (family) {
    case "Debian":
      return { ecosystem: family, text: version, parsed: parseDpkgVersion(version, path) };
    case "Alpine":
      return { ecosystem: family, text: version, parsed: parseApkVersion(version, path) };
    case "npm":
      return { ecosystem: family, text: version, parsed: parseSemver(version, path) };
    case "PyPI":
      return { ecosystem: family, text: version, parsed: parsePep440(version, path) };
  }
}

export function compareParsed(a: ParsedVersion, b: ParsedVersion): -1 | 0 | 1 {
  if (a.ecosystem === "Debian" && b.ecosystem === "Debian") return compareDpkgParsed(a.parsed, b.parsed);
  if (a.ecosystem === "Alpine" && b.ecosystem === "Alpine") return compareApkRaw(a.parsed, b.parsed);
  if (a.ecosystem === "npm" && b.ecosystem === "npm") return compareSemverParsed(a.parsed, b.parsed);
  if (a.ecosystem === "PyPI" && b.ecosystem === "PyPI") return comparePep440Parsed(a.parsed, b.parsed);
  throw new ScanInputError("ecosystem_unsupported", "b", `cannot compare a ${a.ecosystem} version with a ${b.ecosystem} one`);
}

/** -1, 0 or 1 as `a` is older than, the same as, or newer than `b` in the ecosystem's order. */
export function compareVersions(ecosystem: string, a: string, b: string): -1 | 0 | 1 {
  return compareParsed(parseVersion(ecosystem, a, "a"), parseVersion(ecosystem, b, "b"));
}

/** The PEP 440 normalized form of a PyPI version (for display and keys). */
export function normalizePypiVersion(version: string): string {
  return normalizePep440(parsePep440(version));
}

export { compareApk, compareApkRaw, isValidApkVersion, parseApkVersion } from "./apk.js";
export { compareDpkg, compareDpkgPart, parseDpkgVersion } from "./dpkg.js";
export { comparePep440, normalizePep440, parsePep440 } from "./pep440.js";
export { compareSemver, parseSemver } from "./semver.js";
export type { DpkgVersion, Pep440Version, SemVer };
