/**
 * How the vulnerability database indexes a record: by ecosystem without its release
 * suffix (`Debian:12` → `Debian`, release `12`; `Alpine:v3.18` → `Alpine`, `v3.18`;
 * `npm`, `PyPI` have none), and by package name, PyPI names in their PEP 503 normal form
 * so that `Requests` and `requests` find the same records.
 */
import { normalizePypiName } from "./osv-match.js";
import type { OsvRecord } from "./osv-record.js";
import type { VulnAffectedKey } from "../../store/index.js";

export function splitEcosystemName(name: string): { ecosystem: string; release: string } {
  const colon = name.indexOf(":");
  return colon < 0 ? { ecosystem: name, release: "" } : { ecosystem: name.slice(0, colon), release: name.slice(colon + 1) };
}

export function packageKey(ecosystem: string, name: string): string {
  return ecosystem === "PyPI" ? normalizePypiName(name) : name;
}

/** The distinct (ecosystem, release, package) a validated record names. */
export function affectedKeys(record: OsvRecord): VulnAffectedKey[] {
  const seen = new Set<string>();
  const out: VulnAffectedKey[] = [];
  for (const a of record.affected) {
    const { ecosystem, release } = splitEcosystemName(a.package.ecosystem);
    const pkg = packageKey(ecosystem, a.package.name);
    const k = `${ecosystem}\0${release}\0${pkg}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ ecosystem, release, package: pkg });
  }
  return out;
}
