/**
 * The trivy adapter: the image exported to a tar in a private temporary directory (0700,
 * removed afterwards whatever happens), then
 *
 *   trivy image --input <tar> --format json --list-all-pkgs --scanners vuln
 *     --offline-scan --skip-db-update --quiet --timeout <limit + 10>s [--cache-dir DIR]
 *
 * (with `--server URL` instead of `--skip-db-update` when a Trivy server is configured),
 * run through execa with an argument array (never a shell), a time limit (the process is
 * killed after it: PC_SCAN_TIMEOUT), an output size limit (PC_SCAN_FAILED), an
 * environment of PATH, HOME and TMPDIR only (nothing of the gateway's, so no secret), and
 * `reject: false`: a non-zero exit, output over the limit or output that is not Trivy's
 * report is PC_SCAN_FAILED. The report is read strictly (trivy-report.ts).
 *
 * The database: `trivy --version --format json` (VulnerabilityDB.Version and UpdatedAt),
 * asked at most once per `versionTtlMs`; its UpdatedAt is the cache key, so a newer
 * Trivy database misses the cache. No VulnerabilityDB (never downloaded) ->
 * PC_SCAN_VULNDB_MISSING. Against a server the local database says nothing: results are
 * not cached and the database is reported as the server's.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { execa } from "execa";
import { pcError, systemClock, type Clock } from "../../core/index.js";
import { sbomOf } from "./sbom.js";
import { dedupeFindings, IMAGE_ID_RE, throwIfAborted, type ExportImage, type ScanDatabaseState, type Scanner, type ScanResult } from "./scanner.js";
import { parseTrivyReport, parseTrivyVersion, TrivyReportError, type TrivyDatabase } from "./trivy-report.js";

export interface TrivyScannerOptions {
  /** The trivy executable (an absolute path). */
  readonly path: string;
  readonly exportImage: ExportImage;
  /** A Trivy server (`http://host:4954`): client mode. */
  readonly serverUrl?: string;
  /** Trivy's cache directory (its database lives there); Trivy's default when absent. */
  readonly cacheDir?: string;
  /** The longest a scan may run (default 120 s); the process is killed after it. */
  readonly timeoutMs?: number;
  /** The most output read from trivy, in bytes (default 64 MiB). */
  readonly maxOutputBytes?: number;
  /** How long the database version is reused before asking trivy again (default 60 s). */
  readonly versionTtlMs?: number;
  /** Where the private temporary directories are made (default the OS's). */
  readonly tempDir?: string;
  readonly clock?: Clock;
}

const DEFAULTS = { timeoutMs: 120_000, maxOutputBytes: 64 * 1024 * 1024, versionTtlMs: 60_000 } as const;
const VERSION_TIMEOUT_MS = 10_000;
const VERSION_MAX_BYTES = 1024 * 1024;
/** Time given to trivy after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2_000;
const STDERR_KEPT = 2_000;
const TRIVY_TIMEOUT_MARGIN_S = 10;

export class TrivyScanner implements Scanner {
  readonly kind = "trivy" as const;
  private readonly clock: Clock;
  private versionCache: { at: number; db: TrivyDatabase } | undefined;

  constructor(private readonly opts: TrivyScannerOptions) {
    if (!opts.path.startsWith("/")) throw new TypeError("the trivy path must be absolute");
    if (opts.serverUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(opts.serverUrl)) throw new TypeError("the trivy server must be an http(s) URL");
    this.clock = opts.clock ?? systemClock;
  }

  /** The environment trivy runs with: no variable of the gateway's beyond these. */
  private env(tmp: string): Record<string, string> {
    return {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      ...(process.env.HOME !== undefined ? { HOME: process.env.HOME } : {}),
      TMPDIR: tmp,
    };
  }

  private cacheArgs(): string[] {
    return this.opts.cacheDir !== undefined ? ["--cache-dir", this.opts.cacheDir] : [];
  }

  async database(signal: AbortSignal): Promise<ScanDatabaseState> {
    if (this.opts.serverUrl !== undefined) return { source: `trivy server ${this.opts.serverUrl}`, version: "server" };
    const db = await this.localDatabase(signal);
    return {
      source: `trivy ${db.trivyVersion}`,
      version: `${db.schema}@${db.updatedAt}`,
      builtAt: db.updatedAt,
      cacheKey: Math.floor(Date.parse(db.updatedAt) / 1000),
    };
  }

  private async localDatabase(signal: AbortSignal): Promise<TrivyDatabase> {
    const now = this.clock.now().getTime();
    const ttl = this.opts.versionTtlMs ?? DEFAULTS.versionTtlMs;
    if (this.versionCache !== undefined && now - this.versionCache.at < ttl) return this.versionCache.db;
    const r = await execa(this.opts.path, ["--version", "--format", "json", ...this.cacheArgs()], {
      env: this.env(tmpdir()),
      extendEnv: false,
      reject: false,
      stdin: "ignore",
      timeout: VERSION_TIMEOUT_MS,
      maxBuffer: VERSION_MAX_BYTES,
      forceKillAfterDelay: KILL_GRACE_MS,
      cancelSignal: signal,
      shell: false,
    });
    if (r.isCanceled) throwIfAborted(signal);
    if (r.timedOut) throw pcError("PC_SCAN_TIMEOUT", "trivy --version did not finish", { stderr: tail(r.stderr) });
    if (r.isMaxBuffer) throw pcError("PC_SCAN_FAILED", "trivy --version wrote more than the output limit");
    if (r.exitCode !== 0) throw pcError("PC_SCAN_FAILED", `trivy --version exited with ${exitOf(r)}`, { stderr: tail(r.stderr) });
    let db: TrivyDatabase | undefined;
    try {
      db = parseTrivyVersion(JSON.parse(r.stdout));
    } catch (e) {
      throw pcError("PC_SCAN_FAILED", `trivy --version did not answer its JSON version document${e instanceof TrivyReportError ? ` (${e.message})` : ""}`, e);
    }
    if (db === undefined) throw pcError("PC_SCAN_VULNDB_MISSING", "trivy has no vulnerability database");
    this.versionCache = { at: now, db };
    return db;
  }

  async scan(imageId: string, signal: AbortSignal): Promise<ScanResult> {
    if (!IMAGE_ID_RE.test(imageId)) throw pcError("PC_SCAN_IMAGE_UNREADABLE", "not an image id (sha256:<hex>)");
    throwIfAborted(signal);
    const { cacheKey: _key, ...database } = await this.database(signal);
    // mkdtemp makes the directory 0700: only this user reads the exported image.
    const dir = await mkdtemp(join(this.opts.tempDir ?? tmpdir(), "portcullis-trivy-"));
    try {
      const tar = join(dir, "image.tar");
      await this.exportTo(imageId, tar, signal);
      const report = await this.run(tar, dir, signal);
      if (report.imageId !== undefined && report.imageId !== imageId) {
        throw pcError("PC_SCAN_FAILED", "the trivy report is for another image");
      }
      return {
        imageId,
        scanner: "trivy",
        sbom: sbomOf(imageId, report.inventory, { clock: this.clock }),
        inventory: report.summary,
        findings: dedupeFindings(report.findings),
        database,
        scannedAt: this.clock.now().toISOString(),
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async exportTo(imageId: string, file: string, signal: AbortSignal): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.opts.exportImage(imageId);
    } catch (e) {
      throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the engine cannot export the image", e);
    }
    try {
      await pipeline(stream, createWriteStream(file, { mode: 0o600, flags: "wx" }), { signal });
    } catch (e) {
      throwIfAborted(signal);
      throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the image export did not complete", e);
    }
  }

  /** The argument list of a scan (never passed through a shell). */
  argsFor(tar: string): string[] {
    // Trivy's own limit is a backstop a little beyond ours, so that ours decides (and kills).
    const timeoutS = Math.ceil((this.opts.timeoutMs ?? DEFAULTS.timeoutMs) / 1000) + TRIVY_TIMEOUT_MARGIN_S;
    return [
      "image",
      "--input",
      tar,
      "--format",
      "json",
      "--list-all-pkgs",
      "--scanners",
      "vuln",
      "--offline-scan",
      ...(this.opts.serverUrl !== undefined ? ["--server", this.opts.serverUrl] : ["--skip-db-update"]),
      "--quiet",
      "--timeout",
      `${timeoutS}s`,
      ...this.cacheArgs(),
    ];
  }

  private async run(tar: string, dir: string, signal: AbortSignal): Promise<ReturnType<typeof parseTrivyReport>> {
    const r = await execa(this.opts.path, this.argsFor(tar), {
      cwd: dir,
      env: this.env(dir),
      extendEnv: false,
      reject: false,
      stdin: "ignore",
      timeout: this.opts.timeoutMs ?? DEFAULTS.timeoutMs,
      maxBuffer: this.opts.maxOutputBytes ?? DEFAULTS.maxOutputBytes,
      forceKillAfterDelay: KILL_GRACE_MS,
      cancelSignal: signal,
      shell: false,
    });
    if (r.isCanceled) throwIfAborted(signal);
    if (r.timedOut) throw pcError("PC_SCAN_TIMEOUT", `trivy did not finish within ${this.opts.timeoutMs ?? DEFAULTS.timeoutMs} ms and was stopped`, { stderr: tail(r.stderr) });
    if (r.isMaxBuffer) throw pcError("PC_SCAN_FAILED", "trivy wrote more than the output limit");
    if (r.exitCode !== 0) throw pcError("PC_SCAN_FAILED", `trivy exited with ${exitOf(r)}`, { stderr: tail(r.stderr) });
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.stdout);
    } catch (e) {
      throw pcError("PC_SCAN_FAILED", "trivy's output is not JSON", e);
    }
    try {
      return parseTrivyReport(parsed);
    } catch (e) {
      if (e instanceof TrivyReportError) throw pcError("PC_SCAN_FAILED", `trivy's output is not its report: ${e.message}`, e);
      throw e;
    }
  }
}

function exitOf(r: { exitCode?: number | undefined; signal?: string | undefined }): string {
  return r.exitCode !== undefined ? `code ${r.exitCode}` : `signal ${r.signal ?? "unknown"}`;
}

function tail(s: unknown): string {
  return typeof s === "string" ? s.slice(-STDERR_KEPT) : "";
}
