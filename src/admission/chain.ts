/**
 * The admission chain. It selects the policies whose selector matches the namespace,
 * runs every check each one names (with that policy's mode and parameters), applies the
 * waivers in force and aggregates every result into one decision.
 *
 * Fail closed:
 * - no policy selects the namespace: one denial of check "policy";
 * - a check that is unknown, throws, rejects, returns something other than a non-empty
 *   list of results, or takes longer than the check timeout: one denial of that check
 *   ("check failed" / "check timed out"); the exception never leaves the chain.
 * These denials come from the chain itself and no waiver exempts them.
 *
 * Built in: a request that references a secret (spec.secrets) always passes
 * `secret-references` in enforce mode. When no selected policy runs that check in
 * enforce mode, the chain runs it itself, recorded with policy BUILT_IN_POLICY; its
 * violations deny and no waiver exempts them, so a missing or weakened policy never lets
 * a secret through unchecked.
 *
 * Waivers of named findings match a result's `findings` ids, whole (see findingsMatch).
 *
 * Aggregation: denials are enforce-mode violations no waiver covers; warnings are
 * warn-mode violations and waived ones; audit-mode violations stay in `results` only.
 */
import { admittedImageDigest } from "./image.js";
import { CHECKS, SECRET_REFERENCES_CHECK } from "./checks/index.js";
import {
  DEFAULT_CHECK_TIMEOUT_MS,
  type ActiveWaiver,
  type AdmissionAttributes,
  type AdmissionDecision,
  type AdmissionHooks,
  type AdmissionPolicy,
  type AdmissionPolicySet,
  type CheckDefinition,
  type CheckResult,
  type EvaluatedResult,
  type PolicyCheck,
} from "./types.js";

export interface EvaluateOptions {
  readonly waivers?: readonly ActiveWaiver[];
  readonly now: Date;
  readonly hooks?: AdmissionHooks;
  /** How long one check may take (default DEFAULT_CHECK_TIMEOUT_MS). */
  readonly checkTimeoutMs?: number;
  /** Per check, a longer (or shorter) budget than `checkTimeoutMs` (image-scan: a cold scan). */
  readonly checkTimeouts?: Readonly<Record<string, number>>;
  /** The checks by name; CHECKS unless given. */
  readonly checks?: ReadonlyMap<string, CheckDefinition<unknown>>;
}

export const NO_POLICY_REASON = "no admission policy selects the namespace";
/** The policy name of the checks the chain runs whatever the policies say. */
export const BUILT_IN_POLICY = "(built-in)";

/** True when the policy's selector matches the namespace (every part that is set). */
export function policySelects(policy: Pick<AdmissionPolicy, "selector">, namespace: AdmissionAttributes["namespace"]): boolean {
  const { namespaces, labels } = policy.selector;
  if (namespaces !== undefined && !namespaces.includes(namespace.name)) return false;
  if (labels !== undefined) {
    for (const [key, value] of Object.entries(labels)) {
      if (!Object.prototype.hasOwnProperty.call(namespace.labels, key) || namespace.labels[key] !== value) return false;
    }
  }
  return true;
}

export async function evaluate(attrs: AdmissionAttributes, policySet: AdmissionPolicySet, opts: EvaluateOptions): Promise<AdmissionDecision> {
  const selected = policySet.policies.filter((p) => policySelects(p, attrs.namespace));
  const chainMade = new Set<EvaluatedResult>();
  let results: EvaluatedResult[];
  if (selected.length === 0) {
    const denial: EvaluatedResult = {
      check: "policy",
      allowed: false,
      reason: NO_POLICY_REASON,
      detail: `no admission policy selects namespace ${attrs.namespace.name}`,
      field: "",
      mode: "enforce",
      policy: "",
    };
    chainMade.add(denial);
    results = [denial];
  } else {
    const runs = selected.flatMap((policy) => policy.checks.map((pc) => runOne(attrs, policy.name, pc, opts, chainMade)));
    results = (await Promise.all(runs)).flat();
  }
  if (needsBuiltInSecretCheck(attrs, selected)) {
    const builtIn = await runOne(attrs, BUILT_IN_POLICY, { check: SECRET_REFERENCES_CHECK, mode: "enforce", params: {} }, opts, chainMade);
    for (const r of builtIn) chainMade.add(r);
    results = [...results, ...builtIn];
  }
  results = applyWaivers(results, attrs, opts, chainMade);
  const denials = results.filter((r) => !r.allowed && r.mode === "enforce" && r.waiver === undefined);
  const warnings = results.filter((r) => !r.allowed && (r.mode === "warn" || (r.mode === "enforce" && r.waiver !== undefined)));
  return { allowed: denials.length === 0, results, denials, warnings, policyVersion: policySet.version };
}

/** A request that mounts secrets, where no selected policy enforces secret-references. */
function needsBuiltInSecretCheck(attrs: AdmissionAttributes, selected: readonly AdmissionPolicy[]): boolean {
  if ((attrs.spec.secrets ?? []).length === 0) return false;
  return !selected.some((p) => p.checks.some((c) => c.check === SECRET_REFERENCES_CHECK && c.mode === "enforce"));
}

async function runOne(
  attrs: AdmissionAttributes,
  policy: string,
  pc: PolicyCheck,
  opts: EvaluateOptions,
  chainMade: Set<EvaluatedResult>,
): Promise<EvaluatedResult[]> {
  const failed = (reason: string, detail: string): EvaluatedResult[] => {
    const r: EvaluatedResult = { check: pc.check, allowed: false, reason, detail, field: "", mode: "enforce", policy };
    chainMade.add(r);
    return [r];
  };
  const def = (opts.checks ?? CHECKS).get(pc.check);
  if (def === undefined) return failed("check failed", `check ${pc.check} is not known`);
  const own = opts.checkTimeouts !== undefined && Object.prototype.hasOwnProperty.call(opts.checkTimeouts, pc.check) ? opts.checkTimeouts[pc.check] : undefined;
  const timeoutMs =
    own !== undefined && own > 0 ? own : opts.checkTimeoutMs !== undefined && opts.checkTimeoutMs > 0 ? opts.checkTimeoutMs : DEFAULT_CHECK_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"timed out">((resolve) => {
    timer = setTimeout(() => resolve("timed out"), timeoutMs);
  });
  let answer: unknown;
  try {
    const running = Promise.resolve().then(() => def.run(attrs, pc.params, { hooks: opts.hooks ?? {}, now: opts.now }));
    answer = await Promise.race([running, late]);
  } catch {
    return failed("check failed", `check ${pc.check} failed; the request is denied`);
  } finally {
    clearTimeout(timer);
  }
  if (answer === "timed out") return failed("check timed out", `check ${pc.check} did not finish within ${timeoutMs} ms; the request is denied`);
  if (!Array.isArray(answer) || answer.length === 0 || !answer.every(isResult)) {
    return failed("check failed", `check ${pc.check} returned no valid results; the request is denied`);
  }
  return (answer as CheckResult[]).map((r) => ({
    check: pc.check,
    allowed: r.allowed,
    reason: r.reason,
    detail: r.detail,
    field: r.field,
    ...(r.findings !== undefined ? { findings: [...r.findings] } : {}),
    mode: pc.mode,
    policy,
  }));
}

function isResult(v: unknown): v is CheckResult {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.allowed === "boolean" && typeof r.reason === "string" && r.reason !== "" && typeof r.detail === "string" && typeof r.field === "string" &&
    (r.findings === undefined || (Array.isArray(r.findings) && r.findings.every((f) => typeof f === "string")))
  );
}

/** True when the waiver is in force at `now` for this result of this request. */
export function waiverApplies(w: ActiveWaiver, r: CheckResult, attrs: AdmissionAttributes, now: Date): boolean {
  if (typeof w.expiresAt !== "number" || !Number.isFinite(w.expiresAt) || w.expiresAt <= now.getTime()) return false;
  if (w.check !== r.check || w.scope.namespace !== attrs.namespace.name) return false;
  if (w.scope.deployment !== undefined && w.scope.deployment !== attrs.spec.name) return false;
  if (w.scope.imageDigest !== undefined && w.scope.imageDigest !== admittedImageDigest(attrs)) return false;
  if (w.findings !== undefined && !findingsMatch(w.findings, r.findings)) return false;
  return true;
}

/**
 * A waiver's findings against a result's: one id in common, compared whole (ASCII case
 * folded: CVE ids are written either way). A result that names no ids matches no waiver
 * of findings; the detail is never searched, since an image can write any text into it
 * (a package name, a version, a file path).
 */
function findingsMatch(waived: readonly string[], found: readonly string[] | undefined): boolean {
  if (found === undefined || found.length === 0) return false;
  const ids = new Set(found.map((f) => f.toUpperCase()));
  return waived.some((f) => f !== "" && ids.has(f.toUpperCase()));
}

function applyWaivers(results: EvaluatedResult[], attrs: AdmissionAttributes, opts: EvaluateOptions, chainMade: Set<EvaluatedResult>): EvaluatedResult[] {
  const waivers = opts.waivers ?? [];
  if (waivers.length === 0) return results;
  return results.map((r) => {
    if (r.allowed || r.mode === "audit" || chainMade.has(r)) return r;
    const w = waivers.find((x) => waiverApplies(x, r, attrs, opts.now));
    return w === undefined ? r : { ...r, waiver: w.id };
  });
}
