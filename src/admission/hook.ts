/**
 * Running an outside hook for a check: bounded in time, aborted when late, and failing
 * closed. A hook that rejects, answers late or answers something other than a list of
 * findings yields one denial; each finding is one violation; no finding is "ok".
 */
import { deny, ok } from "./results.js";
import { DEFAULT_HOOK_TIMEOUT_MS, type CheckResult, type HookFinding } from "./types.js";

export interface HookRun {
  readonly check: string;
  /** What the hook is, for reasons: "scanner", "secret store". */
  readonly what: string;
  readonly field: string;
  readonly timeoutMs?: number;
  readonly okDetail: string;
  readonly call: (signal: AbortSignal) => Promise<readonly HookFinding[]>;
}

const TIMED_OUT = Symbol("timed out");

function isFinding(v: unknown): v is HookFinding {
  if (typeof v !== "object" || v === null) return false;
  const f = v as Record<string, unknown>;
  return (
    typeof f.reason === "string" && f.reason !== "" && typeof f.detail === "string" && (f.field === undefined || typeof f.field === "string") &&
    (f.findings === undefined || (Array.isArray(f.findings) && f.findings.every((x) => typeof x === "string")))
  );
}

/** The outcome of one bounded hook call. */
export type HookCall<T> =
  | { readonly kind: "answer"; readonly value: T }
  | { readonly kind: "failed"; readonly error: unknown }
  | { readonly kind: "timed out"; readonly timeoutMs: number };

/**
 * Calls a hook with an AbortSignal, at most `timeoutMs` (the default when absent or not
 * positive): a throw, synchronous or not, is "failed"; a late answer is "timed out" and
 * the signal is aborted.
 */
export async function callHook<T>(timeoutMs: number | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<HookCall<T>> {
  const limit = timeoutMs !== undefined && timeoutMs > 0 ? timeoutMs : DEFAULT_HOOK_TIMEOUT_MS;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), limit);
  });
  let answer: T | typeof TIMED_OUT;
  try {
    answer = await Promise.race([Promise.resolve().then(() => call(controller.signal)), late]);
  } catch (error) {
    return { kind: "failed", error };
  } finally {
    clearTimeout(timer);
  }
  if (answer === TIMED_OUT) {
    controller.abort();
    return { kind: "timed out", timeoutMs: limit };
  }
  return { kind: "answer", value: answer };
}

export async function runHook(run: HookRun): Promise<CheckResult[]> {
  const outcome = await callHook<unknown>(run.timeoutMs, run.call);
  if (outcome.kind === "failed") {
    return [deny(run.check, run.field, `${run.what} failed`, `the ${run.what} failed; the request is denied`)];
  }
  if (outcome.kind === "timed out") {
    return [deny(run.check, run.field, `${run.what} timed out`, `the ${run.what} did not answer within ${outcome.timeoutMs} ms; the request is denied`)];
  }
  const answer = outcome.value;
  if (!Array.isArray(answer) || !answer.every(isFinding)) {
    return [deny(run.check, run.field, `${run.what} failed`, `the ${run.what} gave an answer that is not a list of findings`)];
  }
  if (answer.length === 0) return [ok(run.check, run.okDetail, run.field)];
  return answer.map((f) => deny(run.check, f.field ?? run.field, f.reason, f.detail, f.findings === undefined ? undefined : [...f.findings]));
}
