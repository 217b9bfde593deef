/**
 * The operating system, from os-release(5): /etc/os-release, else /usr/lib/os-release.
 * Lines are KEY=value; values may be quoted ("…" or '…') with backslash escapes.
 */
import type { Findings, InventoryFiles, OsRelease } from "./inventory-types.js";

export const OS_RELEASE_FILES = ["/etc/os-release", "/usr/lib/os-release"] as const;

export function osReleaseOf(files: InventoryFiles, findings: Findings): OsRelease | undefined {
  for (const file of OS_RELEASE_FILES) {
    const bytes = files.read(file);
    if (bytes === undefined) continue;
    const fields = parseOsRelease(bytes.toString("utf8"));
    const id = fields.get("ID") ?? "linux";
    if (!/^[a-z0-9._-]{1,64}$/.test(id)) {
      findings.unread(file, "ID is not a valid os-release identifier");
      return undefined;
    }
    const versionId = fields.get("VERSION_ID");
    const prettyName = fields.get("PRETTY_NAME");
    return {
      id,
      ...(versionId !== undefined && versionId !== "" ? { versionId } : {}),
      name: fields.get("NAME") ?? "Linux",
      ...(prettyName !== undefined ? { prettyName } : {}),
    };
  }
  return undefined;
}

export function parseOsRelease(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    if (!/^[A-Z0-9_]+$/.test(key) || out.has(key)) continue;
    out.set(key, unquote(line.slice(eq + 1)));
  }
  return out;
}

function unquote(v: string): string {
  const q = v[0];
  if ((q === '"' || q === "'") && v.length >= 2 && v.endsWith(q)) {
    const inner = v.slice(1, -1);
    return q === '"' ? inner.replace(/\\(["\\`$])/g, "$1") : inner;
  }
  return v;
}
