import { loadavg } from "node:os";

/**
 * Timing and reporting helpers shared by the benchmarks. Every loop here is bounded
 * both in operations and in wall-clock time.
 */

export interface Sample {
  readonly ops: number;
  readonly ms: number;
  /** CPU time (user + system) this process spent meanwhile. */
  readonly cpuMs: number;
}

function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export const rate = (s: Sample): number => (s.ms > 0 ? (s.ops * 1000) / s.ms : 0);
/** Operations per second of this process's CPU time: insensitive to other load on the machine. */
export const cpuRate = (s: Sample): number => (s.cpuMs > 0 ? (s.ops * 1000) / s.cpuMs : 0);

/** Runs `fn` until `durationMs` has passed or `maxOps` calls were made. */
export function timedLoop(durationMs: number, maxOps: number, fn: (i: number) => void): Sample {
  const c0 = processCpuMs();
  const t0 = performance.now();
  const end = t0 + durationMs;
  let i = 0;
  while (i < maxOps) {
    fn(i);
    i++;
    if (performance.now() >= end) break;
  }
  return { ops: i, ms: performance.now() - t0, cpuMs: processCpuMs() - c0 };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function fmtRate(r: number): string {
  if (!Number.isFinite(r)) return "n/a";
  if (r >= 100) return Math.round(r).toLocaleString("en-US");
  return r.toFixed(1);
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return "n/a";
  return `${r >= 10 ? r.toFixed(1) : r >= 1 ? r.toFixed(2) : r.toFixed(3)}×`;
}

export interface Row {
  readonly name: string;
  readonly runs: readonly number[];
  /** The same runs per CPU-second of the process under test. */
  readonly perCpu: readonly number[];
  /** Optional extra column, e.g. server CPU use. */
  readonly note?: string;
}

/**
 * A fixed-width table: case, median/s (wall clock), the individual runs, the median per
 * CPU-second of the process under test, and a note.
 */
export function table(title: string, rows: readonly Row[], footer: readonly string[]): string {
  const nameW = Math.max(4, ...rows.map((r) => r.name.length));
  const runsW = Math.max(9, ...rows.map((r) => r.runs.map(fmtRate).join("  ").length));
  const notes = rows.some((r) => r.note !== undefined);
  const head = `  ${"case".padEnd(nameW)}  ${"median/s".padStart(9)}  ${"runs (/s)".padEnd(runsW)}  ${"per CPU-s".padStart(9)}${notes ? "  note" : ""}`;
  const lines = [title, head, `  ${"-".repeat(head.length - 2)}`];
  for (const r of rows) {
    const runs = r.runs.map(fmtRate).join("  ");
    lines.push(
      `  ${r.name.padEnd(nameW)}  ${fmtRate(median(r.runs)).padStart(9)}  ${runs.padEnd(runsW)}  ${fmtRate(median(r.perCpu)).padStart(9)}  ${r.note ?? ""}`.trimEnd(),
    );
  }
  for (const f of footer) lines.push(`  ${f}`);
  return lines.join("\n");
}

export function verdict(value: number, target: number): "PASS" | "FAIL" {
  return value >= target ? "PASS" : "FAIL";
}

/** What a benchmark hands back to bench/run.ts. */
export interface BenchResult {
  readonly id: string;
  readonly title: string;
  readonly table: string;
  readonly summary: string;
  readonly pass: boolean;
}

/**
 * A warning when the process under test got less than `min` of its CPU during some runs,
 * i.e. other work on the machine took it: the wall-clock rates are then low and noisy,
 * and the per-CPU-second figures are the steadier ones.
 */
function busyNote(cpuShares: readonly number[], min = 0.85): string[] {
  const low = cpuShares.filter((s) => s < min).length;
  if (low === 0) return [];
  const load = loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
  return [
    `note: in ${low} of ${cpuShares.length} runs the process under test had < ${Math.round(min * 100)}% of a CPU (load average now ${load}):`,
    `      the machine was busy: the wall-clock rates are noisy, so the target is judged on the per CPU-s figures`,
  ];
}

/**
 * What a target is judged on: the wall-clock figure when the process under test had its
 * CPU throughout, else the per-CPU-second figure (with the note saying why).
 */
export function judge(wall: number, perCpu: number, cpuShares: readonly number[]): { value: number; basis: string; notes: string[] } {
  const notes = busyNote(cpuShares);
  return notes.length === 0 ? { value: wall, basis: "wall clock", notes } : { value: perCpu, basis: "per CPU-s", notes };
}

/**
 * The report of a write-path benchmark judged against a plain insert of the same rows:
 * the medians, their ratio (wall clock and per CPU-s), a rate target and a ratio target,
 * judged on the wall clock unless the process under test was short of CPU (`judge`).
 */
export function rateVsPlainInsert(o: {
  readonly id: string;
  readonly title: string;
  /** "entries", "creates": what one unit of the rate is. */
  readonly unit: string;
  readonly rows: { readonly ours: Row; readonly plain: Row; readonly reference: Row };
  readonly shares: readonly number[];
  readonly targetRate: number;
  readonly targetRatio: number;
}): BenchResult {
  const ours = median(o.rows.ours.runs);
  const plain = median(o.rows.plain.runs);
  const ratio = ours / plain;
  const ratioCpu = median(o.rows.ours.perCpu) / median(o.rows.plain.perCpu);
  const j = judge(ours, median(o.rows.ours.perCpu), o.shares);
  const ratioJudged = j.basis === "wall clock" ? ratio : ratioCpu;
  const pass = j.value >= o.targetRate && ratioJudged >= o.targetRatio;
  const tbl = table(o.title, [o.rows.ours, o.rows.plain, o.rows.reference], [
    `ratio portcullis / plain insert: ${fmtRatio(ratio)}   (per CPU-s: ${fmtRatio(ratioCpu)})`,
    `target >= ${fmtRate(o.targetRate)} ${o.unit}/s: ${fmtRate(j.value)}/s (${j.basis})  ${verdict(j.value, o.targetRate)}`,
    `target >= ${o.targetRatio}x the plain insert: ${fmtRatio(ratioJudged)} (${j.basis})  ${verdict(ratioJudged, o.targetRatio)}`,
    ...j.notes,
  ]);
  return {
    id: o.id,
    title: o.title,
    table: tbl,
    summary: `${o.id}: ${fmtRate(ours)}/s vs plain insert ${fmtRate(plain)}/s = ${fmtRatio(ratio)}; targets >= ${fmtRate(o.targetRate)}/s and >= ${o.targetRatio}x ${pass ? "PASS" : "FAIL"} (${j.basis})`,
    pass,
  };
}
