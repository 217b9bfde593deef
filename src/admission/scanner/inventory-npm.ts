/**
 * npm packages: installed ones from the package.json at the root of each package folder
 * under node_modules (`…/node_modules/<name>/package.json`, `…/node_modules/@scope/<name>/`),
 * and locked ones from package-lock.json files outside node_modules (the lockfile of an
 * application: v1 `dependencies`, v2/v3 `packages`).
 *
 * A package.json counts only with both a name and a version (packages carry nested
 * package.json files, test fixtures and the like, that describe no installed package).
 * A lockfile entry counts unless it is a link (a workspace) or dev-only (`dev: true`,
 * not installed by a production install), and unless the package it describes is
 * installed where the lockfile says: then the installed package.json is the record.
 */
import { type Findings, type InventoryFiles, usableField } from "./inventory-types.js";

export const NPM_PACKAGE_GLOB = "/**/node_modules/**/package.json";
export const NPM_LOCK_GLOB = "/**/package-lock.json";

/** Paths of package roots' package.json: the folder is a package under node_modules. */
export const NPM_PACKAGE_ROOT_RE = /\/node_modules\/(?:@[^/]+\/)?[^/.@][^/]*\/package\.json$/;

const MAX_LOCK_DEPTH = 256;

export function npmPackages(files: InventoryFiles, findings: Findings): void {
  const installed = new Set<string>();
  for (const file of files.list(NPM_PACKAGE_GLOB)) {
    if (!NPM_PACKAGE_ROOT_RE.test(file)) continue;
    const doc = readJson(files, file, findings);
    if (doc === undefined) continue;
    const { name, version } = doc as { name?: unknown; version?: unknown };
    if (!usableField(name) || !usableField(version)) continue;
    installed.add(file);
    findings.package({ ecosystem: "npm", name, version, sourceFile: file });
  }
  for (const file of files.list(NPM_LOCK_GLOB)) {
    if (file.includes("/node_modules/")) continue;
    const doc = readJson(files, file, findings);
    if (doc === undefined) continue;
    const base = file.slice(0, file.lastIndexOf("/"));
    const lock = doc as { packages?: unknown; dependencies?: unknown };
    if (isObject(lock.packages)) lockV2(file, base, lock.packages, installed, findings);
    else if (isObject(lock.dependencies)) lockV1(file, base, lock.dependencies, installed, findings);
    else findings.unread(file, "neither packages nor dependencies");
  }
}

function lockV2(file: string, base: string, packages: Record<string, unknown>, installed: Set<string>, findings: Findings): void {
  for (const [key, value] of Object.entries(packages)) {
    const at = key.lastIndexOf("node_modules/");
    if (at < 0 || !isObject(value)) continue; // the root project, or a workspace folder
    const entry = value as { name?: unknown; version?: unknown; link?: unknown; dev?: unknown };
    if (entry.link === true || entry.dev === true) continue;
    if (installed.has(`${base}/${key}/package.json`)) continue;
    const name = entry.name ?? key.slice(at + "node_modules/".length);
    if (!usableField(name) || !usableField(entry.version)) continue;
    findings.package({ ecosystem: "npm", name, version: entry.version, sourceFile: file });
  }
}

function lockV1(file: string, base: string, top: Record<string, unknown>, installed: Set<string>, findings: Findings): void {
  const stack: { deps: Record<string, unknown>; dir: string; depth: number }[] = [{ deps: top, dir: base, depth: 0 }];
  while (stack.length > 0) {
    const { deps, dir, depth } = stack.pop() as { deps: Record<string, unknown>; dir: string; depth: number };
    if (depth > MAX_LOCK_DEPTH) {
      findings.unread(file, `dependencies nest deeper than ${MAX_LOCK_DEPTH}`);
      return;
    }
    for (const [name, value] of Object.entries(deps)) {
      if (!isObject(value)) continue;
      const entry = value as { version?: unknown; dev?: unknown; dependencies?: unknown };
      const where = `${dir}/node_modules/${name}`;
      if (isObject(entry.dependencies)) stack.push({ deps: entry.dependencies, dir: where, depth: depth + 1 });
      if (entry.dev === true || installed.has(`${where}/package.json`)) continue;
      if (!usableField(name) || !usableField(entry.version)) continue;
      findings.package({ ecosystem: "npm", name, version: entry.version, sourceFile: file });
    }
  }
}

function readJson(files: InventoryFiles, file: string, findings: Findings): Record<string, unknown> | undefined {
  const bytes = files.read(file);
  if (bytes === undefined) return undefined;
  try {
    const doc: unknown = JSON.parse(bytes.toString("utf8"));
    if (isObject(doc)) return doc;
    findings.unread(file, "not a JSON object");
  } catch {
    findings.unread(file, "not valid JSON");
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
