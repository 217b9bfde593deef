/**
 * Debian and Ubuntu packages, from dpkg's database: /var/lib/dpkg/status, and the
 * one-file-per-package /var/lib/dpkg/status.d/ of distroless images.
 *
 * A status entry counts when its state (the third word of `Status:`) says the package's
 * files are on disk: installed, or part-way through an install or an upgrade (unpacked,
 * half-installed, half-configured, triggers-awaited, triggers-pending). Removed packages
 * (`config-files`, `not-installed`) do not count, whatever was wanted of them; a package
 * marked for removal or on hold but still installed does. status.d entries have no
 * `Status:` and count; if one has it, the same rule applies.
 *
 * `Source:` names the source package, optionally with its version in parentheses when it
 * differs from the binary's ("zlib (1:1.2.13.dfsg-1)"); without `Source:` the source is the
 * package itself. Debian advisories are keyed by source package, so both are kept.
 */
import { type Findings, type InventoryFiles, usableField } from "./inventory-types.js";

export const DPKG_STATUS = "/var/lib/dpkg/status";
export const DPKG_STATUS_DIR = "/var/lib/dpkg/status.d/";

const PRESENT_STATES = new Set([
  "installed", "unpacked", "half-installed", "half-configured", "triggers-awaited", "triggers-pending",
]);
const SOURCE_RE = /^(\S+)(?:\s+\(([^()\s]+)\))?$/;

export function dpkgPackages(files: InventoryFiles, findings: Findings): void {
  const status = files.read(DPKG_STATUS);
  if (status !== undefined) readDatabase(DPKG_STATUS, status.toString("utf8"), true, findings);
  for (const file of files.list(DPKG_STATUS_DIR)) {
    const base = file.slice(file.lastIndexOf("/") + 1);
    if (base.startsWith(".") || base.endsWith(".md5sums")) continue;
    const bytes = files.read(file);
    if (bytes !== undefined) readDatabase(file, bytes.toString("utf8"), false, findings);
  }
}

function readDatabase(file: string, text: string, statusRequired: boolean, findings: Findings): void {
  let n = 0;
  for (const entry of deb822Paragraphs(text)) {
    n++;
    const status = entry.get("status");
    if (status === undefined) {
      if (statusRequired) {
        findings.unread(file, `entry ${n} has no Status`);
        continue;
      }
    } else {
      const state = status.split(/\s+/)[2];
      if (state === undefined || !PRESENT_STATES.has(state)) continue;
    }
    const name = entry.get("package");
    const version = entry.get("version");
    if (!usableField(name) || !usableField(version)) {
      findings.unread(file, `entry ${n} lacks a usable Package or Version`);
      continue;
    }
    let sourcePackage = { name, version };
    const source = entry.get("source");
    if (source !== undefined) {
      const m = SOURCE_RE.exec(source);
      if (m === null || !usableField(m[1])) {
        findings.unread(file, `entry ${n} (${name}) has an unreadable Source`);
        continue;
      }
      sourcePackage = { name: m[1], version: m[2] ?? version };
    }
    findings.package({ ecosystem: "Debian", name, version, sourceFile: file, sourcePackage });
  }
}

/**
 * The paragraphs of a deb822 file (dpkg's status format): fields `Name: value`, names
 * case-insensitive (kept lower-cased), continuation lines start with a space or a tab
 * and are ignored here (no field read here spans lines), paragraphs end at a blank line.
 * The first occurrence of a field wins.
 */
export function* deb822Paragraphs(text: string): Generator<Map<string, string>> {
  let fields = new Map<string, string>();
  let start = 0;
  const n = text.length;
  while (start <= n) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = n;
    const line = text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end);
    start = end + 1;
    const first = line.charCodeAt(0);
    if (line.trim() === "") {
      if (fields.size > 0) yield fields;
      fields = new Map();
    } else if (first === 32 || first === 9 || first === 35) {
      continue; // continuation line, or a comment
    } else {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const key = line.slice(0, colon).toLowerCase();
      if (!fields.has(key)) fields.set(key, line.slice(colon + 1).trim());
    }
  }
  if (fields.size > 0) yield fields;
}
