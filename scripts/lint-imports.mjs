#!/usr/bin/env node
// Enforces the module rules (scripts/module-rules.mjs) on src/**/*.ts.
// Usage: node scripts/lint-imports.mjs [repository-root]
// Prints one `file:line: rule: message` line per violation and exits 1 if there is any.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { checkImports, formatViolation } from "./module-rules.mjs";

const SOURCE_FILE = /\.(ts|mts|cts)$/;

/**
 * Reads every TypeScript source under `<root>/src` into { "src/...": text }.
 * @param {string} root
 * @returns {Record<string, string>}
 */
export function readSourceTree(root) {
  const srcDir = join(root, "src");
  const files = {};
  for (const rel of readdirSync(srcDir, { recursive: true })) {
    const relPath = String(rel);
    if (!SOURCE_FILE.test(relPath)) continue;
    const abs = join(srcDir, relPath);
    if (!statSync(abs).isFile()) continue;
    files[`src/${relPath.split(sep).join("/")}`] = readFileSync(abs, "utf8");
  }
  return files;
}

/**
 * @param {string} root
 * @returns {number} the exit code
 */
export function main(root) {
  const files = readSourceTree(root);
  const violations = checkImports(files);
  for (const v of violations) process.stderr.write(formatViolation(v) + "\n");
  const count = Object.keys(files).length;
  if (violations.length > 0) {
    process.stderr.write(`lint-imports: ${violations.length} violation(s) in ${count} file(s)\n`);
    return 1;
  }
  process.stdout.write(`lint-imports: ${count} file(s) follow the module rules\n`);
  return 0;
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  const defaultRoot = resolve(fileURLToPath(new URL("..", import.meta.url)));
  process.exitCode = main(resolve(process.argv[2] ?? defaultRoot));
}
