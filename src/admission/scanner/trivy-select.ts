/**
 * Which scanner a gateway uses: trivy when a path is configured or `trivy` is an
 * executable file on PATH, else the built-in scanner. A configured path that is not an
 * executable file is refused (PC_CONFIG_INVALID) rather than silently replaced.
 */
import { accessSync, constants, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { pcError } from "../../core/index.js";
import { BuiltinScanner, type BuiltinScannerOptions } from "./builtin-scanner.js";
import type { Scanner } from "./scanner.js";
import { TrivyScanner, type TrivyScannerOptions } from "./trivy.js";

function executable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first `trivy` on PATH (absolute directories only), or undefined. */
export function locateTrivy(pathEnv: string | undefined = process.env.PATH): string | undefined {
  for (const dir of (pathEnv ?? "").split(":")) {
    if (dir === "" || !isAbsolute(dir)) continue;
    const candidate = join(dir, "trivy");
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

export interface ScannerChoice extends BuiltinScannerOptions, Omit<TrivyScannerOptions, "path" | "exportImage" | "clock"> {
  /** A configured trivy executable. */
  readonly trivyPath?: string;
  /** PATH to look for trivy in (default the process's); "" looks nowhere. */
  readonly pathEnv?: string;
}

export function selectScanner(choice: ScannerChoice): Scanner {
  let path = choice.trivyPath;
  if (path !== undefined) {
    if (!isAbsolute(path) || !executable(path)) throw pcError("PC_CONFIG_INVALID", "the trivy path must be an executable file (absolute path)");
  } else {
    path = locateTrivy(choice.pathEnv ?? process.env.PATH);
  }
  if (path === undefined) return new BuiltinScanner(choice);
  return new TrivyScanner({
    path,
    exportImage: choice.exportImage,
    ...(choice.serverUrl !== undefined ? { serverUrl: choice.serverUrl } : {}),
    ...(choice.cacheDir !== undefined ? { cacheDir: choice.cacheDir } : {}),
    ...(choice.timeoutMs !== undefined ? { timeoutMs: choice.timeoutMs } : {}),
    ...(choice.maxOutputBytes !== undefined ? { maxOutputBytes: choice.maxOutputBytes } : {}),
    ...(choice.versionTtlMs !== undefined ? { versionTtlMs: choice.versionTtlMs } : {}),
    ...(choice.tempDir !== undefined ? { tempDir: choice.tempDir } : {}),
    ...(choice.clock !== undefined ? { clock: choice.clock } : {}),
  });
}
