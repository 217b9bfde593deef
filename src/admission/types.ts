/**
 * The admission vocabulary. A check is a pure function of the admission attributes and
 * its parameters, returning results; the chain runs every check a policy selects, fails
 * closed on a throw, a timeout or a missing input, and aggregates every result.
 */
import type { DeployOperation, DeploymentSpec, Manifest } from "../deploy/index.js";
import type { ScanResult } from "./scanner/scanner.js";

export const CHECK_MODES = ["enforce", "warn", "audit"] as const;
/** enforce: a failing result denies; warn: allowed, returned as a warning; audit: allowed, recorded. */
export type CheckMode = (typeof CHECK_MODES)[number];

/** What admission knows of the image, resolved on the nodes that hold it. */
export interface ImageFacts {
  /** The reference as written in the manifest. */
  readonly reference: string;
  /** Image id (sha256:<hex>) per node that holds the image; empty when no node has it. */
  readonly idsByNode: Readonly<Record<string, string>>;
  /** The image's configured user (as in the image), when known. */
  readonly user?: string;
}

/** Everything a check may look at. Nothing else reaches a check. */
export interface AdmissionAttributes {
  readonly operation: DeployOperation;
  /** `user:alice`: the signer, which is the caller. */
  readonly requester: string;
  readonly namespace: { readonly name: string; readonly labels: Readonly<Record<string, string>> };
  /** The manifest exactly as signed. */
  readonly manifest: Manifest;
  /** The manifest parsed: what the runtime builds the containers from. */
  readonly spec: DeploymentSpec;
  readonly manifestDigest: string;
  /** The revision in force, for update, scale and delete. */
  readonly previous?: { readonly revision: number; readonly spec: DeploymentSpec; readonly manifestDigest: string };
  readonly image?: ImageFacts;
  /** The signature step's result and whether RBAC lets the signer deploy in the namespace. */
  readonly signer: { readonly identity: string; readonly verified: boolean; readonly mayDeploy: boolean };
  /**
   * The approvals of a request waiting for them: the count it was stored with, and the
   * approvers whose signed approvals verified (the requester never counts).
   */
  readonly approvals?: { readonly required: number; readonly valid: readonly string[] };
}

/** One finding of a check: `allowed: false` is a violation. */
export interface CheckResult {
  readonly check: string;
  readonly allowed: boolean;
  /** Short and stable, e.g. "privileged", "memory above the namespace maximum". */
  readonly reason: string;
  /** Precise and human, e.g. "spec.resources.memory is 2Gi; at most 1Gi in payments". */
  readonly detail: string;
  /** Field path of the manifest, e.g. "spec.resources.memory" ("" when none applies). */
  readonly field: string;
  /**
   * The ids of what a violation is about (a vulnerability's id and its aliases). A waiver
   * that names findings applies to a result only when one of them is among these ids,
   * compared whole: never by a search of the detail, which may quote the image's own text.
   */
  readonly findings?: readonly string[];
}

/** A result as judged by the chain: with its mode, the policy that asked for it, any waiver. */
export interface EvaluatedResult extends CheckResult {
  readonly mode: CheckMode;
  readonly policy: string;
  /** The id of the waiver that exempted this violation. */
  readonly waiver?: string;
}

export interface AdmissionDecision {
  readonly allowed: boolean;
  /** Every result of every check that ran, allowed or not. */
  readonly results: readonly EvaluatedResult[];
  /** Violations in `enforce` mode that no waiver covers: why the request is denied. */
  readonly denials: readonly EvaluatedResult[];
  /** Violations in `warn` mode (and waived ones): returned to the caller. */
  readonly warnings: readonly EvaluatedResult[];
  /** The admission policy version the decision used. */
  readonly policyVersion: number;
}

/** A waiver as the chain applies it (the waiver store decides which are in force). */
export interface ActiveWaiver {
  readonly id: string;
  readonly check: string;
  /** When set, only results whose detail names one of these (e.g. CVE ids) are exempted. */
  readonly findings?: readonly string[];
  readonly scope: { readonly namespace: string; readonly deployment?: string; readonly imageDigest?: string };
  readonly expiresAt: number;
}

/** A problem with a check's parameters: `field` is the parameter path (e.g. `maxMemory`). */
export interface ParamIssue {
  readonly field: string;
  readonly reason: string;
}

/** A check's parameters, validated: the typed value, or every problem. */
export type ParamsValidation<P> =
  | { readonly ok: true; readonly params: P }
  | { readonly ok: false; readonly issues: readonly ParamIssue[] };

/** A finding of an outside hook (a scanner, the secret store); each one is a violation. */
export interface HookFinding {
  /** Short and stable, e.g. "vulnerability". */
  readonly reason: string;
  readonly detail: string;
  readonly field?: string;
  /** The ids it is about (e.g. a CVE id); waivers with `findings` match these, whole. */
  readonly findings?: readonly string[];
}

/**
 * Scans an image the request admits (an image id a node holds), answering the scanner's
 * normalized result; the image-scan check judges it with its policy's parameters.
 * Rejecting (PC_SCAN_* errors name why) or exceeding its time denies.
 */
export interface ScanHook {
  /** At most this long (default DEFAULT_HOOK_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  scan(imageId: string, signal: AbortSignal): Promise<ScanResult>;
}

/** Resolves the secrets a request references. Rejecting or exceeding its time denies. */
export interface SecretHook {
  readonly timeoutMs?: number;
  check(attrs: AdmissionAttributes, signal: AbortSignal): Promise<readonly HookFinding[]>;
}

export interface AdmissionHooks {
  readonly scan?: ScanHook;
  readonly secrets?: SecretHook;
}

/** What the chain hands each check besides the attributes and the parameters. */
export interface CheckContext {
  readonly hooks: AdmissionHooks;
  /** The instant the chain judges by (e.g. for a database's age); the current time when absent. */
  readonly now?: Date;
}

/**
 * One check: its name (as policies spell it), a validator for its parameters (`raw` is
 * undefined when the policy gives none) and `run`. Most checks are pure and synchronous;
 * the hook checks return a promise. A check never throws on a violation: it returns one
 * `allowed: false` result per violation, or one `allowed: true` result ("ok").
 */
export interface CheckDefinition<P> {
  readonly name: string;
  validateParams(raw: unknown): ParamsValidation<P>;
  run(attrs: AdmissionAttributes, params: P, context: CheckContext): readonly CheckResult[] | Promise<readonly CheckResult[]>;
}

/** A check as a policy configures it. */
export interface PolicyCheck {
  readonly check: string;
  readonly mode: CheckMode;
  /** The validated parameters (the check's own type). */
  readonly params: unknown;
}

/** Which namespaces a policy applies to: both parts must match; an empty selector selects all. */
export interface PolicySelector {
  readonly namespaces?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
}

export interface AdmissionPolicy {
  readonly name: string;
  /** The file it was read from, and the line of its document. */
  readonly file: string;
  readonly line: number;
  readonly selector: PolicySelector;
  readonly checks: readonly PolicyCheck[];
}

export interface PolicyFile {
  readonly name: string;
  readonly text: string;
}

/** A validated set of policies, with the texts it was read from (what is versioned). */
export interface AdmissionPolicySet {
  readonly version: number;
  readonly policies: readonly AdmissionPolicy[];
  readonly files: readonly PolicyFile[];
}

/** A namespace label that makes the sandboxed runtime mandatory (`=sandboxed`). */
export const RUNTIME_LABEL = "portcullis.io/runtime";
/** A namespace label asking for M approvals per deploy (`=<M>`). */
export const APPROVALS_LABEL = "portcullis.io/approvals";
/** How long a hook may take by default. */
export const DEFAULT_HOOK_TIMEOUT_MS = 2_000;
/** How long the chain waits for one check by default. */
export const DEFAULT_CHECK_TIMEOUT_MS = 5_000;
