/**
 * Admission policy files. Each file is one strict YAML document:
 *
 *   apiVersion: portcullis/v1
 *   kind: AdmissionPolicy
 *   metadata: { name: baseline, description: ... }   # name: a DNS label, unique in the set
 *   spec:
 *     selector:                  # optional; absent or {} selects every namespace
 *       namespaces: [payments]   # optional, non-empty: the namespace is one of these
 *       labels: { tier: prod }   # optional, non-empty: the namespace carries each label
 *     checks:                    # required, at least one; keys are check names
 *       resources: { mode: enforce, params: { maxMemory: 1Gi } }   # mode required
 *
 * The set is validated whole and refused whole: any problem in any file throws
 * PC_ADMISSION_POLICY_INVALID whose detail lists every problem as
 * `file:line: field: reason`.
 */
import { dnsLabelReason, labelKeyReason, labelValueReason } from "../deploy/index.js";
import { CHECKS } from "./checks/index.js";
import { formatPath, isPlainMap, parseFieldPath, pcError, readStrictYaml, type FieldPath } from "../core/index.js";
import { CHECK_MODES, type AdmissionPolicy, type AdmissionPolicySet, type CheckMode, type PolicyCheck, type PolicyFile } from "./types.js";

export const POLICY_API_VERSION = "portcullis/v1";
export const POLICY_KIND = "AdmissionPolicy";
export const MAX_POLICY_BYTES = 256 * 1024;
export const MAX_POLICY_FILES = 64;
const MAX_LISTED = 50;

export interface AdmissionPolicyIssue {
  readonly file: string;
  readonly line: number;
  readonly field: string;
  readonly reason: string;
}

export function describePolicyIssues(issues: readonly AdmissionPolicyIssue[]): string {
  const listed = issues.slice(0, MAX_LISTED).map((i) => `${i.file}:${i.line}: ${i.field || "(file)"}: ${i.reason}`);
  if (issues.length > MAX_LISTED) listed.push(`and ${issues.length - MAX_LISTED} more`);
  return listed.join("; ");
}

/** Validates a set of policy files; throws PC_ADMISSION_POLICY_INVALID listing every problem. */
export function parseAdmissionPolicies(files: readonly PolicyFile[], opts: { readonly version?: number } = {}): AdmissionPolicySet {
  const issues: AdmissionPolicyIssue[] = [];
  const policies: AdmissionPolicy[] = [];
  if (!Array.isArray(files) || files.length === 0) {
    throw pcError("PC_ADMISSION_POLICY_INVALID", "the set must hold at least one policy file");
  }
  if (files.length > MAX_POLICY_FILES) throw pcError("PC_ADMISSION_POLICY_INVALID", `the set holds more than ${MAX_POLICY_FILES} files`);
  const fileNames = new Set<string>();
  const names = new Map<string, string>();
  for (const f of files) {
    const file = typeof f?.name === "string" && f.name !== "" ? f.name : "(unnamed)";
    if (fileNames.has(file)) issues.push({ file, line: 0, field: "", reason: "the file name is used twice in the set" });
    fileNames.add(file);
    const policy = parseOne(file, f?.text, issues);
    if (policy === undefined) continue;
    const first = names.get(policy.name);
    if (first !== undefined) {
      issues.push({ file, line: policy.nameLine, field: "metadata.name", reason: `repeats the name of the policy in ${first}` });
      continue;
    }
    names.set(policy.name, `${file}:${policy.nameLine}`);
    policies.push(policy.policy);
  }
  if (issues.length > 0) throw pcError("PC_ADMISSION_POLICY_INVALID", describePolicyIssues(issues), issues);
  const version = opts.version ?? 0;
  return { version, policies, files: files.map((f) => ({ name: f.name, text: f.text })) };
}

function parseOne(file: string, text: unknown, issues: AdmissionPolicyIssue[]): { policy: AdmissionPolicy; name: string; nameLine: number } | undefined {
  if (typeof text !== "string") {
    issues.push({ file, line: 0, field: "", reason: "is not text" });
    return undefined;
  }
  if (Buffer.byteLength(text, "utf8") > MAX_POLICY_BYTES) {
    issues.push({ file, line: 0, field: "", reason: `is larger than ${MAX_POLICY_BYTES} bytes` });
    return undefined;
  }
  const read = readStrictYaml(text);
  if (!read.ok) {
    for (const i of read.issues) issues.push({ file, line: i.line, field: formatPath(i.path), reason: i.reason });
    return undefined;
  }
  const { doc } = read;
  const before = issues.length;
  const bad = (path: FieldPath, reason: string): undefined => {
    issues.push({ file, line: doc.lineOf(path), field: formatPath(path), reason });
    return undefined;
  };
  const fields = (v: unknown, path: FieldPath, allowed: readonly string[], required: readonly string[]): Record<string, unknown> | undefined => {
    if (!isPlainMap(v)) return bad(path, `must be a map (${allowed.join(", ")})`);
    for (const k of Object.keys(v)) if (!allowed.includes(k)) bad([...path, k], `unknown field (allowed: ${allowed.join(", ")})`);
    for (const k of required) if (v[k] === undefined || v[k] === null) bad([...path, k], "is required");
    return v;
  };

  const root = fields(doc.value, [], ["apiVersion", "kind", "metadata", "spec"], ["apiVersion", "kind", "metadata", "spec"]);
  if (root === undefined) return undefined;
  if (root.apiVersion !== undefined && root.apiVersion !== POLICY_API_VERSION) bad(["apiVersion"], `must be ${POLICY_API_VERSION}`);
  if (root.kind !== undefined && root.kind !== POLICY_KIND) bad(["kind"], `must be ${POLICY_KIND}`);
  let name: string | undefined;
  const meta = root.metadata === undefined ? undefined : fields(root.metadata, ["metadata"], ["name", "description"], ["name"]);
  if (meta !== undefined) {
    if (typeof meta.name === "string") {
      const why = dnsLabelReason(meta.name);
      if (why === undefined) name = meta.name;
      else bad(["metadata", "name"], why);
    } else if (meta.name !== undefined && meta.name !== null) bad(["metadata", "name"], "must be a string");
    if (meta.description !== undefined && typeof meta.description !== "string") bad(["metadata", "description"], "must be a string");
  }
  const spec = root.spec === undefined ? undefined : fields(root.spec, ["spec"], ["selector", "checks"], ["checks"]);
  const selector = spec === undefined ? undefined : parseSelector(spec.selector, bad);
  const checks = spec === undefined ? [] : parseChecks(spec.checks, bad);
  if (issues.length > before || name === undefined || selector === undefined) return undefined;
  const line = doc.lineOf([]);
  return { policy: { name, file, line, selector, checks }, name, nameLine: doc.lineOf(["metadata", "name"]) };
}

type Bad = (path: FieldPath, reason: string) => undefined;

function parseSelector(v: unknown, bad: Bad): AdmissionPolicy["selector"] | undefined {
  const path = ["spec", "selector"];
  if (v === undefined || v === null) return {};
  if (!isPlainMap(v)) return bad(path, "must be a map (namespaces, labels)");
  const out: { namespaces?: string[]; labels?: Record<string, string> } = {};
  for (const k of Object.keys(v)) if (k !== "namespaces" && k !== "labels") bad([...path, k], "unknown field (allowed: namespaces, labels)");
  if (v.namespaces !== undefined) {
    if (!Array.isArray(v.namespaces) || v.namespaces.length === 0) bad([...path, "namespaces"], "must be a non-empty list of namespace names");
    else {
      const seen: string[] = [];
      v.namespaces.forEach((n, i) => {
        const why = typeof n === "string" ? dnsLabelReason(n) : "must be a string";
        if (why !== undefined) bad([...path, "namespaces", i], why);
        else if (seen.includes(n as string)) bad([...path, "namespaces", i], `repeats ${JSON.stringify(n)}`);
        else seen.push(n as string);
      });
      out.namespaces = seen;
    }
  }
  if (v.labels !== undefined) {
    if (!isPlainMap(v.labels) || Object.keys(v.labels).length === 0) bad([...path, "labels"], "must be a non-empty map of label keys to values");
    else {
      out.labels = {};
      for (const [key, value] of Object.entries(v.labels)) {
        const why = labelKeyReason(key) ?? (typeof value === "string" ? labelValueReason(value) : "must be a string");
        if (why !== undefined) bad([...path, "labels", key], why);
        else out.labels[key] = value as string;
      }
    }
  }
  return out;
}

function parseChecks(v: unknown, bad: Bad): PolicyCheck[] {
  const path = ["spec", "checks"];
  if (v === undefined || v === null) return [];
  if (!isPlainMap(v) || Object.keys(v).length === 0) {
    bad(path, "must be a non-empty map of check names to { mode, params }");
    return [];
  }
  const out: PolicyCheck[] = [];
  for (const [check, cfg] of Object.entries(v)) {
    const at = [...path, check];
    const def = CHECKS.get(check);
    if (def === undefined) {
      bad(at, `unknown check (known: ${[...CHECKS.keys()].join(", ")})`);
      continue;
    }
    if (!isPlainMap(cfg)) {
      bad(at, "must be a map (mode, params)");
      continue;
    }
    for (const k of Object.keys(cfg)) if (k !== "mode" && k !== "params") bad([...at, k], "unknown field (allowed: mode, params)");
    const mode = cfg.mode;
    if (mode === undefined || mode === null) bad([...at, "mode"], "is required");
    else if (typeof mode !== "string" || !(CHECK_MODES as readonly string[]).includes(mode)) bad([...at, "mode"], `unknown mode (allowed: ${CHECK_MODES.join(", ")})`);
    const params = def.validateParams(cfg.params ?? undefined);
    if (!params.ok) {
      for (const i of params.issues) bad([...at, "params", ...parseFieldPath(i.field)], i.reason);
      continue;
    }
    if (typeof mode === "string" && (CHECK_MODES as readonly string[]).includes(mode)) out.push({ check, mode: mode as CheckMode, params: params.params });
  }
  return out;
}
