/**
 * Alpine packages, from apk's database /lib/apk/db/installed (or /usr/lib/apk/db/installed
 * where /lib is a link into /usr). Entries are blocks of `X:value` lines separated by a
 * blank line: `P:` name, `V:` version, `o:` origin (the source package, which Alpine's
 * advisories name; the package itself when absent).
 */
import { type Findings, type InventoryFiles, usableField } from "./inventory-types.js";

export const APK_INSTALLED_FILES = ["/lib/apk/db/installed", "/usr/lib/apk/db/installed"] as const;

export function apkPackages(files: InventoryFiles, findings: Findings): void {
  for (const file of APK_INSTALLED_FILES) {
    const bytes = files.read(file);
    if (bytes === undefined) continue;
    readInstalled(file, bytes.toString("utf8"), findings);
    return;
  }
}

function readInstalled(file: string, text: string, findings: Findings): void {
  let entry = new Map<string, string>();
  let n = 0;
  const flush = () => {
    if (entry.size === 0) return;
    n++;
    const name = entry.get("P");
    const version = entry.get("V");
    if (!usableField(name) || !usableField(version)) {
      findings.unread(file, `entry ${n} lacks a usable P: or V:`);
    } else {
      const origin = entry.get("o");
      const sourceName = usableField(origin) ? origin : name;
      findings.package({ ecosystem: "Alpine", name, version, sourceFile: file, sourcePackage: { name: sourceName, version } });
    }
    entry = new Map();
  };
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") {
      flush();
      continue;
    }
    if (line.length < 2 || line[1] !== ":") continue;
    const key = line[0] as string;
    if (!entry.has(key)) entry.set(key, line.slice(2).trim());
  }
  flush();
}
