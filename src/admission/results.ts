/** Building check results. */
import type { CheckResult } from "./types.js";

export function deny(check: string, field: string, reason: string, detail: string, findings?: readonly string[]): CheckResult {
  return findings === undefined ? { check, allowed: false, reason, detail, field } : { check, allowed: false, reason, detail, field, findings };
}

export function ok(check: string, detail: string, field = ""): CheckResult {
  return { check, allowed: true, reason: "ok", detail, field };
}

/** The violations, or one "ok" result when there is none. */
export function violationsOrOk(check: string, violations: readonly CheckResult[], okDetail: string): CheckResult[] {
  return violations.length > 0 ? [...violations] : [ok(check, okDetail)];
}

const KI = 1024;

/** Bytes as the largest whole unit of Gi, Mi, Ki, else bytes. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [["Gi", KI ** 3], ["Mi", KI ** 2], ["Ki", KI]] as const) {
    if (bytes % size === 0 && bytes >= size) return `${bytes / size}${unit}`;
  }
  return `${bytes}`;
}

export function formatCpus(nanoCpus: number): string {
  return `${nanoCpus / 1e9}`;
}
