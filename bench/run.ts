/**
 * Runs the benchmarks: `npm run bench [-- issuance handshakes whoami rbac audit-append audit-verify deploy admission secrets-create secrets-inject vulndb-import scan monitor-latency monitor-cpu] [-- --cpu-prof[=dir]]`.
 *
 * Each benchmark runs in its own process, pinned to CPU 0 when `taskset` works; the
 * benchmarks that need a client start it on CPU 1. Each measures its baseline in the
 * same run and prints its ratio and PASS/FAIL against its target. A missed target is
 * reported, not an error: the exit code is non-zero only when a benchmark fails to run.
 * With --cpu-prof, the processes under test write V8 CPU profiles to the given
 * directory (default: a new temporary directory).
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { canPin, profileFlags, spawnBench, waitExit } from "./lib/proc.js";
import type { BenchResult } from "./lib/stats.js";

const BENCHMARKS: Record<string, string> = {
  issuance: "issuance.ts",
  handshakes: "handshakes.ts",
  whoami: "whoami.ts",
  rbac: "rbac.ts",
  "audit-append": "audit-append.ts",
  "audit-verify": "audit-verify.ts",
  deploy: "deploy.ts",
  admission: "admission.ts",
  "secrets-create": "secrets-create.ts",
  "secrets-inject": "secrets-inject.ts",
  "vulndb-import": "vulndb-import.ts",
  scan: "scan.ts",
  "monitor-latency": "monitor-latency.ts",
  "monitor-cpu": "monitor-cpu.ts",
};
const BENCH_TIMEOUT_MS = 110_000;
/**
 * Benchmarks that need longer than BENCH_TIMEOUT_MS: deploy starts and removes some 360
 * containers; admission runs 30 s of dry runs besides its baseline and in-process runs;
 * secrets-inject starts and removes some 190 containers; scan generates and imports 50,000
 * records before it scans; monitor-latency allows each side of its burst two minutes to
 * drain; monitor-cpu starts and removes 100 containers and measures two windows of 60 s.
 */
const TIMEOUT_MS: Readonly<Record<string, number>> = {
  deploy: 600_000,
  admission: 240_000,
  "secrets-inject": 400_000,
  scan: 300_000,
  "monitor-latency": 300_000,
  "monitor-cpu": 420_000,
};

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

async function runOne(name: string, file: string): Promise<BenchResult | undefined> {
  const child = spawnBench(file, canPin() ? 0 : undefined, profileFlags());
  let result: BenchResult | undefined;
  child.on("message", (m: unknown) => {
    result = m as BenchResult;
  });
  const code = await waitExit(child, TIMEOUT_MS[name] ?? BENCH_TIMEOUT_MS);
  if (code !== 0 || !result) {
    process.stdout.write(`${name}: did not complete (exit ${code ?? "killed"})\n\n`);
    return undefined;
  }
  return result;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const prof = args.find((a) => a === "--cpu-prof" || a.startsWith("--cpu-prof="));
  if (prof) {
    process.env.BENCH_CPU_PROF_DIR = prof.includes("=") ? prof.slice(prof.indexOf("=") + 1) : mkdtempSync(join(tmpdir(), "portcullis-prof-"));
  }
  const wanted = args.filter((a) => !a.startsWith("--"));
  for (const w of wanted) if (!(w in BENCHMARKS)) throw new Error(`unknown benchmark ${w}; known: ${Object.keys(BENCHMARKS).join(", ")}`);
  const names = wanted.length > 0 ? wanted : Object.keys(BENCHMARKS);

  const t0 = performance.now();
  process.stdout.write(
    [
      `portcullis benchmarks, ${new Date().toISOString().slice(0, 10)}`,
      `machine: ${availableParallelism()} CPUs, ${cpuModel()}; Node ${process.version}; OpenSSL ${process.versions.openssl}`,
      `pinning: ${canPin() ? "taskset (code under test on CPU 0, clients on CPU 1)" : "taskset unavailable, not pinned"}; load average at start: ${load()}`,
      ...(process.env.BENCH_CPU_PROF_DIR ? [`CPU profiles: ${process.env.BENCH_CPU_PROF_DIR}`] : []),
      "",
      "",
    ].join("\n"),
  );
  const results: BenchResult[] = [];
  let failedToRun = 0;
  for (const n of names) {
    const r = await runOne(n, BENCHMARKS[n] as string);
    if (r) results.push(r);
    else failedToRun++;
  }
  process.stdout.write(
    [
      "Summary",
      ...results.map((r) => `  ${r.summary}`),
      ...(failedToRun > 0 ? [`  ${failedToRun} benchmark(s) did not complete`] : []),
      `  total ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at end: ${load()}`,
      "",
    ].join("\n"),
  );
  return failedToRun > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
