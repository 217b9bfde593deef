/**
 * Offline admission tests: a YAML file lists deploy requests and the decision each must
 * get from a set of admission policies. No server, store or engine is involved.
 *
 *   policies: [../baseline.yaml]   # optional: policy files relative to this file;
 *                                  # absent: the shipped policies (a caller may give a set)
 *   scan:                          # optional: what the scanner reports for every case's
 *                                  # image (a case's own `scan` replaces it); absent:
 *                                  # no scanner is configured
 *     packages: 12                 # packages found (0: an empty inventory)
 *     databaseBuiltAt: "2026-01-01T00:00:00Z"   # optional: the database's newest record
 *     findings:                    # optional
 *       - { id: CVE-2023-0001, aliases: [DSA-1-1], package: openssl, installed: 3.0.1,
 *           fixed: 3.0.2, severity: critical, score: 9.8 }
 *   cases:                         # required, at least one
 *     - name: root image is refused            # required, unique in the file
 *       namespace: { name: payments, labels: { tier: prod } }   # optional; default: the
 *                                  # manifest's namespace without labels
 *       operation: create          # optional: create | update | scale | delete
 *       requester: user:dev1       # optional, default user:developer
 *       signer: { identity: user:dev1, verified: true, mayDeploy: true }   # optional;
 *                                  # default: the requester, verified, may deploy
 *       manifest: { ... }          # required: a Deployment manifest, inline
 *       image: { idsByNode: { node-1: "sha256:..." }, user: "1000:1000" }   # optional
 *       scan: { packages: 3, findings: [...] }   # optional, as the file's `scan`
 *       expect: deny               # required: allow | deny
 *       denials: [hardening]       # optional: exactly the checks that must deny
 *
 * The file is strict YAML; every problem (an unknown or missing field, a manifest that
 * does not validate, a repeated case name) is refused with PC_ADMISSION_TEST_INVALID and
 * its line. Failing cases are values in the report.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DEPLOY_OPERATIONS, manifestDigest, manifestIssues, validateManifest, type DeployOperation, type Manifest } from "../deploy/index.js";
import { evaluate } from "./chain.js";
import { parseAdmissionPolicies } from "./policy.js";
import { shippedAdmissionPolicySet } from "./shipped.js";
import { formatPath, isPlainMap, issueCollector, namedCases, parseFieldPath, pcError, readStrictYaml, type Bad, type FieldPath } from "../core/index.js";
import { SEVERITY_LEVELS, type FindingSeverityLevel, type ScanFinding, type ScanResult } from "./scanner/scanner.js";
import type { AdmissionAttributes, AdmissionHooks, AdmissionPolicySet, ImageFacts, PolicyFile } from "./types.js";

export const MAX_ADMISSION_TEST_BYTES = 1024 * 1024;
export type Verdict = "allow" | "deny";

export interface AdmissionTestCase {
  readonly name: string;
  readonly line: number;
  readonly attrs: AdmissionAttributes;
  readonly expect: Verdict;
  readonly denials?: readonly string[];
  /** What the scanner reports for this case's image (else the file's `scan`). */
  readonly scan?: AdmissionTestScan;
}

/** A scanner's report as a test case states it. */
export interface AdmissionTestScan {
  readonly packages: number;
  readonly databaseBuiltAt?: string;
  readonly findings: readonly ScanFinding[];
}

export interface AdmissionTestFile {
  /** The policy paths as written (relative to the test file). */
  readonly policies?: readonly string[];
  readonly scan?: AdmissionTestScan;
  readonly cases: readonly AdmissionTestCase[];
}

export interface AdmissionTestIssue {
  readonly line: number;
  readonly field: string;
  readonly reason: string;
}

export interface AdmissionTestCaseResult {
  readonly name: string;
  readonly line: number;
  readonly ok: boolean;
  readonly got: Verdict;
  readonly expected: Verdict;
  /** `check: reason` of every denial. */
  readonly denials: readonly string[];
  readonly reason?: string;
}

export interface AdmissionTestReport {
  readonly cases: readonly AdmissionTestCaseResult[];
  readonly passed: number;
  readonly failed: number;
}

export interface AdmissionTestOptions {
  readonly now?: Date;
  readonly hooks?: AdmissionHooks;
}

const TOP = ["policies", "scan", "cases"];
const CASE = ["name", "namespace", "operation", "requester", "signer", "manifest", "image", "scan", "expect", "denials"];
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Parses and checks a test file; throws PC_ADMISSION_TEST_INVALID listing every problem. */
export function parseAdmissionTestFile(yamlText: string): AdmissionTestFile {
  if (typeof yamlText !== "string") throw pcError("PC_ADMISSION_TEST_INVALID", "the test file is not text");
  if (Buffer.byteLength(yamlText, "utf8") > MAX_ADMISSION_TEST_BYTES) {
    throw pcError("PC_ADMISSION_TEST_INVALID", `the test file is larger than ${MAX_ADMISSION_TEST_BYTES} bytes`);
  }
  const read = readStrictYaml(yamlText);
  if (!read.ok) throw invalid(read.issues.map((i) => ({ line: i.line, field: formatPath(i.path), reason: i.reason })));
  const { doc } = read;
  const { issues, bad, keys } = issueCollector(doc);
  const root = doc.value;
  if (!isPlainMap(root)) throw invalid([{ line: doc.lineOf([]), field: "", reason: "the file must be a map with a `cases` list" }]);
  keys(root, [], TOP);
  let policies: string[] | undefined;
  if (root.policies !== undefined) {
    if (!Array.isArray(root.policies) || root.policies.length === 0 || !root.policies.every((p) => typeof p === "string" && p !== "")) {
      bad(["policies"], "must be a non-empty list of paths");
    } else policies = root.policies as string[];
  }
  const scan = root.scan === undefined ? undefined : parseScan(root.scan, ["scan"], bad, keys);
  const cases = namedCases(root.cases, bad, (c, path) => parseCase(c, path, bad, keys, doc.lineOf));
  if (issues.length > 0) throw invalid(issues);
  return { ...(policies !== undefined ? { policies } : {}), ...(scan !== undefined ? { scan } : {}), cases };
}


function parseCase(
  c: unknown,
  path: FieldPath,
  bad: Bad,
  keys: (v: Record<string, unknown>, path: FieldPath, allowed: readonly string[]) => void,
  lineOf: (path: FieldPath) => number,
): AdmissionTestCase | undefined {
  if (!isPlainMap(c)) return bad(path, "must be a map with name, manifest and expect");
  keys(c, path, CASE);
  const at = (k: string): FieldPath => [...path, k];
  const name = typeof c.name === "string" && c.name.trim() !== "" ? c.name : bad(at("name"), "is required: a non-empty string");
  const expect = c.expect === "allow" || c.expect === "deny" ? c.expect : bad(at("expect"), 'is required: "allow" or "deny"');
  let operation: DeployOperation = "create";
  if (c.operation !== undefined) {
    if ((DEPLOY_OPERATIONS as readonly unknown[]).includes(c.operation)) operation = c.operation as DeployOperation;
    else bad(at("operation"), `must be one of ${DEPLOY_OPERATIONS.join(", ")}`);
  }
  let requester = "user:developer";
  if (c.requester !== undefined) {
    if (typeof c.requester === "string" && /^(user|service|node):[a-z0-9][a-z0-9._-]*$/.test(c.requester)) requester = c.requester;
    else bad(at("requester"), "must be an identity like user:alice");
  }
  let signer = { identity: requester, verified: true, mayDeploy: true };
  if (c.signer !== undefined) {
    const s = c.signer;
    if (!isPlainMap(s)) bad(at("signer"), "must be a map (identity, verified, mayDeploy)");
    else {
      keys(s, at("signer"), ["identity", "verified", "mayDeploy"]);
      if (s.identity !== undefined && typeof s.identity !== "string") bad([...at("signer"), "identity"], "must be a string");
      if (s.verified !== undefined && typeof s.verified !== "boolean") bad([...at("signer"), "verified"], "must be true or false");
      if (s.mayDeploy !== undefined && typeof s.mayDeploy !== "boolean") bad([...at("signer"), "mayDeploy"], "must be true or false");
      signer = { ...signer, ...(s as Partial<typeof signer>) };
    }
  }
  let manifest: Manifest | undefined;
  let spec: AdmissionAttributes["spec"] | undefined;
  if (c.manifest === undefined) bad(at("manifest"), "is required");
  else {
    const found = manifestIssues(c.manifest);
    if (found.length > 0) for (const i of found) bad([...at("manifest"), ...parseFieldPath(i.field)], `the manifest is not valid: ${i.reason}`);
    else ({ manifest, spec } = validateManifest(c.manifest));
  }
  let namespace = spec === undefined ? undefined : { name: spec.namespace, labels: {} as Record<string, string> };
  if (c.namespace !== undefined) {
    const n = c.namespace;
    if (!isPlainMap(n)) bad(at("namespace"), "must be a map (name, labels)");
    else {
      keys(n, at("namespace"), ["name", "labels"]);
      const labels = n.labels ?? {};
      if (!isPlainMap(labels) || !Object.values(labels).every((v) => typeof v === "string")) bad([...at("namespace"), "labels"], "must be a map of strings");
      if (n.name !== undefined && typeof n.name !== "string") bad([...at("namespace"), "name"], "must be a string");
      else if (spec !== undefined && n.name !== undefined && n.name !== spec.namespace) {
        bad([...at("namespace"), "name"], `must be the manifest's namespace (${spec.namespace})`);
      }
      if (namespace !== undefined && isPlainMap(labels)) namespace = { name: namespace.name, labels: labels as Record<string, string> };
    }
  }
  const image = c.image === undefined ? undefined : parseImage(c.image, at("image"), bad, keys, spec?.image ?? "");
  const scan = c.scan === undefined ? undefined : parseScan(c.scan, at("scan"), bad, keys);
  let denials: string[] | undefined;
  if (c.denials !== undefined) {
    if (!Array.isArray(c.denials) || !c.denials.every((d) => typeof d === "string" && d !== "")) bad(at("denials"), "must be a list of check names");
    else denials = [...new Set(c.denials as string[])].sort();
  }
  if (name === undefined || expect === undefined || manifest === undefined || spec === undefined || namespace === undefined) return undefined;
  const attrs: AdmissionAttributes = {
    operation,
    requester,
    namespace,
    manifest,
    spec,
    manifestDigest: manifestDigest(manifest),
    ...(image === undefined ? {} : { image }),
    signer,
  };
  const tc: AdmissionTestCase = { name, line: lineOf(path), attrs, expect, ...(scan !== undefined ? { scan } : {}) };
  return denials === undefined ? tc : { ...tc, denials };
}

function parseImage(
  v: unknown,
  path: FieldPath,
  bad: Bad,
  keys: (v: Record<string, unknown>, path: FieldPath, allowed: readonly string[]) => void,
  reference: string,
): ImageFacts | undefined {
  if (!isPlainMap(v)) return bad(path, "must be a map (idsByNode, user)");
  keys(v, path, ["idsByNode", "user"]);
  const ids: Record<string, string> = {};
  if (v.idsByNode !== undefined) {
    if (!isPlainMap(v.idsByNode)) return bad([...path, "idsByNode"], "must be a map of node names to image ids");
    for (const [node, id] of Object.entries(v.idsByNode)) {
      if (typeof id === "string" && DIGEST.test(id)) ids[node] = id;
      else bad([...path, "idsByNode", node], "must be an image id sha256:<64 hex>");
    }
  }
  if (v.user !== undefined && typeof v.user !== "string") return bad([...path, "user"], "must be a string");
  return typeof v.user === "string" ? { reference, idsByNode: ids, user: v.user } : { reference, idsByNode: ids };
}

const FINDING_KEYS = ["id", "aliases", "package", "installed", "fixed", "severity", "score"];
const TEXT = (v: unknown): v is string => typeof v === "string" && v !== "" && v.length <= 200;

function parseScan(
  v: unknown,
  path: FieldPath,
  bad: Bad,
  keys: (v: Record<string, unknown>, path: FieldPath, allowed: readonly string[]) => void,
): AdmissionTestScan | undefined {
  if (!isPlainMap(v)) return bad(path, "must be a map (packages, databaseBuiltAt, findings)");
  keys(v, path, ["packages", "databaseBuiltAt", "findings"]);
  const packages = v.packages;
  if (typeof packages !== "number" || !Number.isSafeInteger(packages) || packages < 0) return bad([...path, "packages"], "is required: a number of packages, 0 or more");
  if (v.databaseBuiltAt !== undefined && (typeof v.databaseBuiltAt !== "string" || !Number.isFinite(Date.parse(v.databaseBuiltAt)))) {
    return bad([...path, "databaseBuiltAt"], "must be an ISO 8601 time");
  }
  const findings: ScanFinding[] = [];
  if (v.findings !== undefined) {
    if (!Array.isArray(v.findings)) return bad([...path, "findings"], "must be a list of findings");
    v.findings.forEach((f: unknown, i: number) => {
      const at = [...path, "findings", i];
      if (!isPlainMap(f)) return bad(at, "must be a map (id, aliases, package, installed, fixed, severity, score)");
      keys(f, at, FINDING_KEYS);
      for (const k of ["id", "package", "installed"]) if (!TEXT(f[k])) bad([...at, k], "is required: a non-empty string");
      if (f.fixed !== undefined && !TEXT(f.fixed)) bad([...at, "fixed"], "must be a non-empty string");
      if (f.aliases !== undefined && (!Array.isArray(f.aliases) || !f.aliases.every(TEXT))) bad([...at, "aliases"], "must be a list of ids");
      if (!(SEVERITY_LEVELS as readonly unknown[]).includes(f.severity)) bad([...at, "severity"], `is required: one of ${SEVERITY_LEVELS.join(", ")}`);
      if (f.score !== undefined && (typeof f.score !== "number" || f.score < 0 || f.score > 10)) bad([...at, "score"], "must be a number from 0 to 10");
      if (!TEXT(f.id) || !TEXT(f.package) || !TEXT(f.installed) || !(SEVERITY_LEVELS as readonly unknown[]).includes(f.severity)) return;
      findings.push({
        id: f.id,
        aliases: Array.isArray(f.aliases) ? (f.aliases as string[]) : [],
        package: f.package,
        ecosystem: "Debian",
        installed: f.installed,
        ...(TEXT(f.fixed) ? { fixed: f.fixed } : {}),
        severity: { level: f.severity as FindingSeverityLevel, ...(typeof f.score === "number" ? { score: f.score } : {}) },
        sourceFile: "/var/lib/dpkg/status",
      });
      return;
    });
  }
  return { packages, findings, ...(typeof v.databaseBuiltAt === "string" ? { databaseBuiltAt: v.databaseBuiltAt } : {}) };
}

/** A scan hook that answers what a test states, for any image. */
function statedScanHook(scan: AdmissionTestScan, now: Date): NonNullable<AdmissionHooks["scan"]> {
  return {
    scan: async (imageId): Promise<ScanResult> => ({
      imageId,
      scanner: "builtin",
      sbom: {
        bomFormat: "CycloneDX",
        specVersion: "1.5",
        serialNumber: "urn:uuid:00000000-0000-4000-8000-000000000000",
        version: 1,
        metadata: { timestamp: now.toISOString(), tools: { components: [] }, component: { type: "container", name: imageId } },
        components: [],
      },
      inventory: { packages: scan.packages > 0 ? { Debian: scan.packages } : {}, total: scan.packages },
      findings: scan.findings,
      database: { source: "admission test", version: "test", ...(scan.databaseBuiltAt !== undefined ? { builtAt: scan.databaseBuiltAt } : {}) },
      scannedAt: now.toISOString(),
    }),
  };
}

function invalid(issues: readonly AdmissionTestIssue[]) {
  const sorted = [...issues].sort((a, b) => a.line - b.line);
  const detail = sorted.map((i) => `line ${i.line}${i.field ? ` (${i.field})` : ""}: ${i.reason}`).join("; ");
  return pcError("PC_ADMISSION_TEST_INVALID", detail, sorted);
}

/** Runs parsed cases against a policy set. */
export async function runParsedAdmissionTests(file: AdmissionTestFile, set: AdmissionPolicySet, opts: AdmissionTestOptions = {}): Promise<AdmissionTestReport> {
  const now = opts.now ?? new Date();
  const cases: AdmissionTestCaseResult[] = [];
  for (const c of file.cases) {
    const stated = c.scan ?? file.scan;
    const hooks: AdmissionHooks | undefined = stated === undefined ? opts.hooks : { ...(opts.hooks ?? {}), scan: statedScanHook(stated, now) };
    const decision = await evaluate(c.attrs, set, { now, ...(hooks ? { hooks } : {}) });
    const got: Verdict = decision.allowed ? "allow" : "deny";
    const denials = decision.denials.map((d) => `${d.check}: ${d.reason}`);
    let reason: string | undefined;
    if (got !== c.expect) reason = `expected ${c.expect}, got ${got}${denials.length > 0 ? ` (${denials.join("; ")})` : ""}`;
    else if (c.denials !== undefined) {
      const checks = [...new Set(decision.denials.map((d) => d.check))].sort();
      if (checks.join(",") !== c.denials.join(",")) {
        reason = `expected denials from ${c.denials.join(", ") || "no check"}, got ${checks.join(", ") || "none"}${denials.length > 0 ? ` (${denials.join("; ")})` : ""}`;
      }
    }
    const base = { name: c.name, line: c.line, ok: reason === undefined, got, expected: c.expect, denials };
    cases.push(reason === undefined ? base : { ...base, reason });
  }
  const passed = cases.filter((r) => r.ok).length;
  return { cases, passed, failed: cases.length - passed };
}

function asSet(policies: AdmissionPolicySet | readonly PolicyFile[]): AdmissionPolicySet {
  return Array.isArray(policies) ? parseAdmissionPolicies(policies as readonly PolicyFile[]) : (policies as AdmissionPolicySet);
}

/** Runs the cases of a test file's text against the given policies (a set or files). */
export async function runAdmissionTests(
  yamlText: string,
  policies: AdmissionPolicySet | readonly PolicyFile[],
  opts: AdmissionTestOptions = {},
): Promise<AdmissionTestReport> {
  return runParsedAdmissionTests(parseAdmissionTestFile(yamlText), asSet(policies), opts);
}

/**
 * Reads a test file and runs it against the policies given, else the files its
 * `policies` names (relative to it), else the shipped policies.
 */
export async function runAdmissionTestFile(
  path: string,
  opts: AdmissionTestOptions & { readonly policies?: AdmissionPolicySet | readonly PolicyFile[] } = {},
): Promise<AdmissionTestReport> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw pcError("PC_ADMISSION_TEST_INVALID", `cannot read ${path}`);
  }
  const file = parseAdmissionTestFile(text);
  let set: AdmissionPolicySet;
  if (opts.policies !== undefined) set = asSet(opts.policies);
  else if (file.policies === undefined) set = shippedAdmissionPolicySet();
  else {
    const files = file.policies.map((p) => {
      const abs = resolve(dirname(path), p);
      try {
        return { name: p, text: readFileSync(abs, "utf8") };
      } catch {
        throw pcError("PC_ADMISSION_TEST_INVALID", `cannot read the policy file ${p}`);
      }
    });
    set = parseAdmissionPolicies(files);
  }
  return runParsedAdmissionTests(file, set, opts);
}

/** One line per case (`ok   name` / `FAIL name (line N): reason`) and a summary line. */
export function formatAdmissionTestReport(report: AdmissionTestReport): string {
  const lines = report.cases.map((c) => (c.ok ? `ok   ${c.name}` : `FAIL ${c.name} (line ${c.line}): ${c.reason ?? "failed"}`));
  lines.push(`${report.passed} passed, ${report.failed} failed`);
  return `${lines.join("\n")}\n`;
}
