import { pcError } from "./errors.js";

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses durations such as `90s`, `15m`, `24h`, `7d` (one unit, whole numbers) into ms. */
export function parseDuration(text: string, what = "duration"): number {
  const m = /^([1-9][0-9]{0,6})(s|m|h|d)$/.exec(text.trim());
  if (!m) throw pcError("PC_CONFIG_INVALID", `${what} must look like 90s, 15m, 24h or 7d`);
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

export function formatDuration(ms: number): string {
  for (const [u, f] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000]] as const) {
    if (ms % f === 0 && ms >= f) return `${ms / f}${u}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
