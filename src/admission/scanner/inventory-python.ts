/**
 * Python packages, from the core metadata of installed distributions
 * (`…/<name>-<version>.dist-info/METADATA`): the `Name:` and `Version:` headers, read up to
 * the first blank line. Names are normalized per PEP 503 (lower case, runs of `-`, `_`
 * and `.` become one `-`), the form advisories use.
 */
import { type Findings, type InventoryFiles, usableField } from "./inventory-types.js";

export const PYTHON_METADATA_GLOB = "/**/*.dist-info/METADATA";

export function normalizePypiName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

export function pythonPackages(files: InventoryFiles, findings: Findings): void {
  for (const file of files.list(PYTHON_METADATA_GLOB)) {
    const bytes = files.read(file);
    if (bytes === undefined) continue;
    const headers = metadataHeaders(bytes.toString("utf8"));
    const name = headers.get("name");
    const version = headers.get("version");
    if (!usableField(name) || !usableField(version)) {
      findings.unread(file, "no usable Name or Version");
      continue;
    }
    findings.package({ ecosystem: "PyPI", name: normalizePypiName(name.trim()), version: version.trim(), sourceFile: file });
  }
}

/** The header fields of an email-style metadata file (first occurrence, names lower-cased). */
function metadataHeaders(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const end = text.search(/\r?\n\r?\n/);
  for (const raw of (end < 0 ? text : text.slice(0, end)).split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line === "") break;
    if (line.startsWith(" ") || line.startsWith("\t")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = line.slice(0, colon).toLowerCase();
    if (!out.has(key)) out.set(key, line.slice(colon + 1).trim());
  }
  return out;
}
