import { describe, expect, it } from "vitest";
import {
  approvalsCheck,
  hardeningCheck,
  imageIdentityCheck,
  imageReferenceCheck,
  resourcesCheck,
  runtimeClassCheck,
  signerCheck,
  type AdmissionAttributes,
  type CheckDefinition,
  type CheckResult,
} from "../../src/admission/index.js";
import { attrs, D, E, type AttrsOptions } from "./fixture.js";

function run(def: CheckDefinition<unknown>, params: unknown, a: AdmissionAttributes): readonly CheckResult[] {
  const v = def.validateParams(params);
  if (!v.ok) throw new Error(`params refused: ${JSON.stringify(v.issues)}`);
  const out = def.run(a, v.params, { hooks: {} });
  if (!Array.isArray(out)) throw new Error("expected a synchronous result");
  return out as readonly CheckResult[];
}

interface Row {
  readonly name: string;
  readonly def: CheckDefinition<unknown>;
  readonly params?: unknown;
  readonly attrs: AttrsOptions;
  /** The violations as [reason, field]; empty: the check must answer ok. */
  readonly violations: readonly (readonly [string, string])[];
  /** A fragment each violation's detail must contain. */
  readonly detail?: string;
}

const c = <P>(d: CheckDefinition<P>) => d as unknown as CheckDefinition<unknown>;
const TAG = "registry.corp.example/team/web:1.2";

const rows: Row[] = [
  { name: "hardening: spec.user non-root", def: c(hardeningCheck), attrs: {}, violations: [] },
  { name: "hardening: image user numeric non-root", def: c(hardeningCheck), attrs: { drop: ["user"], image: { reference: "x", idsByNode: {}, user: "10:10" } }, violations: [] },
  { name: "hardening: image user root", def: c(hardeningCheck), attrs: { drop: ["user"], image: { reference: "x", idsByNode: {}, user: "0:0" } }, violations: [["runs as root", "spec.user"]], detail: "is root" },
  { name: "hardening: image gid root", def: c(hardeningCheck), attrs: { drop: ["user"], image: { reference: "x", idsByNode: {}, user: "1000:0" } }, violations: [["runs as root", "spec.user"]], detail: "uid or gid 0" },
  { name: "hardening: image user empty", def: c(hardeningCheck), attrs: { drop: ["user"], image: { reference: "x", idsByNode: {}, user: "" } }, violations: [["runs as root", "spec.user"]], detail: "which is root" },
  { name: "hardening: image user a name", def: c(hardeningCheck), attrs: { drop: ["user"], image: { reference: "x", idsByNode: {}, user: "app" } }, violations: [["runs as root", "spec.user"]], detail: "not a numeric" },
  { name: "hardening: image uid without gid", def: c(hardeningCheck), attrs: { drop: ["user"], image: { reference: "x", idsByNode: {}, user: "1000" } }, violations: [["runs as root", "spec.user"]] },
  { name: "hardening: image user unknown", def: c(hardeningCheck), attrs: { drop: ["user"], image: null }, violations: [["missing input", "spec.user"]] },
  { name: "hardening: network mode outside the list", def: c(hardeningCheck), params: { allowedNetworkModes: ["none"] }, attrs: { spec: { network: { mode: "namespace" } } }, violations: [["network mode not allowed", "spec.network.mode"]], detail: "namespace" },
  {
    name: "hardening: host ports refused",
    def: c(hardeningCheck),
    params: { allowHostPorts: false },
    attrs: { spec: { network: { mode: "namespace", ports: [{ container: 80, host: 8080 }, { container: 81, host: 8081 }] } } },
    violations: [["host port not allowed", "spec.network.ports[0].host"], ["host port not allowed", "spec.network.ports[1].host"]],
  },
  {
    name: "hardening: host port out of range",
    def: c(hardeningCheck),
    params: { minHostPort: 30000, maxHostPort: 32767 },
    attrs: { spec: { network: { mode: "namespace", ports: [{ container: 80, host: 8080 }, { container: 81, host: 30001 }] } } },
    violations: [["host port out of range", "spec.network.ports[0].host"]],
    detail: "30000-32767",
  },
  { name: "resources: within bounds", def: c(resourcesCheck), params: { maxCpus: 2, maxMemory: "1Gi", maxPids: 512, maxReplicas: 3 }, attrs: {}, violations: [] },
  { name: "resources: memory", def: c(resourcesCheck), params: { maxMemory: "1Gi" }, attrs: { spec: { resources: { cpus: 1, memory: "2Gi", pids: 10 } } }, violations: [["memory above the maximum", "spec.resources.memory"]], detail: "is 2Gi; at most 1Gi" },
  { name: "resources: cpus", def: c(resourcesCheck), params: { maxCpus: 0.5 }, attrs: {}, violations: [["cpus above the maximum", "spec.resources.cpus"]], detail: "is 1; at most 0.5" },
  { name: "resources: pids", def: c(resourcesCheck), params: { maxPids: 100 }, attrs: {}, violations: [["pids above the maximum", "spec.resources.pids"]], detail: "is 256; at most 100" },
  { name: "resources: replicas", def: c(resourcesCheck), params: { maxReplicas: 2 }, attrs: { spec: { replicas: 3 } }, violations: [["replicas above the maximum", "spec.replicas"]], detail: "is 3; at most 2" },
  { name: "runtime-class: any allows standard", def: c(runtimeClassCheck), attrs: { spec: { runtime: "standard" } }, violations: [] },
  { name: "runtime-class: required sandboxed", def: c(runtimeClassCheck), params: { required: "sandboxed" }, attrs: { spec: { runtime: "standard" } }, violations: [["sandboxed runtime required", "spec.runtime"]], detail: "policy requires" },
  { name: "runtime-class: label forces sandboxed", def: c(runtimeClassCheck), params: { required: "any" }, attrs: { spec: { runtime: "standard" }, labels: { "portcullis.io/runtime": "sandboxed" } }, violations: [["sandboxed runtime required", "spec.runtime"]], detail: "portcullis.io/runtime=sandboxed" },
  { name: "runtime-class: sandboxed under the label", def: c(runtimeClassCheck), attrs: { labels: { "portcullis.io/runtime": "sandboxed" } }, violations: [] },
  { name: "image-reference: digest", def: c(imageReferenceCheck), attrs: {}, violations: [] },
  { name: "image-reference: image id", def: c(imageReferenceCheck), attrs: { spec: { image: D } }, violations: [] },
  { name: "image-reference: tag refused by default", def: c(imageReferenceCheck), attrs: { spec: { image: TAG } }, violations: [["digest required", "spec.image"]] },
  { name: "image-reference: tag allowed without requireDigest", def: c(imageReferenceCheck), params: { requireDigest: false }, attrs: { spec: { image: TAG } }, violations: [] },
  { name: "image-reference: latest always", def: c(imageReferenceCheck), params: { requireDigest: false }, attrs: { spec: { image: "registry.corp.example/web:latest" } }, violations: [["latest tag", "spec.image"]] },
  { name: "image-reference: bare repository always", def: c(imageReferenceCheck), params: { requireDigest: false }, attrs: { spec: { image: "busybox" } }, violations: [["no tag or digest", "spec.image"]] },
  { name: "image-reference: registry allowed", def: c(imageReferenceCheck), params: { allowedRegistries: ["registry.corp.example"] }, attrs: {}, violations: [] },
  { name: "image-reference: registry refused", def: c(imageReferenceCheck), params: { allowedRegistries: ["registry.corp"] }, attrs: {}, violations: [["registry not allowed", "spec.image"]], detail: "from registry.corp.example" },
  { name: "image-reference: Docker Hub is docker.io", def: c(imageReferenceCheck), params: { allowedRegistries: ["registry.corp.example"] }, attrs: { spec: { image: `busybox@${D}` } }, violations: [["registry not allowed", "spec.image"]], detail: "docker.io" },
  { name: "image-reference: repository prefix by whole parts", def: c(imageReferenceCheck), params: { allowedRepositories: ["registry.corp.example/team"] }, attrs: {}, violations: [] },
  { name: "image-reference: repository prefix not a substring", def: c(imageReferenceCheck), params: { allowedRepositories: ["registry.corp.example/te"] }, attrs: {}, violations: [["repository not allowed", "spec.image"]] },
  { name: "image-reference: image id under an allow-list", def: c(imageReferenceCheck), params: { allowedRegistries: ["registry.corp.example"] }, attrs: { spec: { image: D } }, violations: [["registry not allowed", "spec.image"]] },
  { name: "image-identity: every node has the digest", def: c(imageIdentityCheck), attrs: { image: { reference: "x", idsByNode: { a: D, b: D } } }, violations: [] },
  { name: "image-identity: a node differs from the digest", def: c(imageIdentityCheck), attrs: { image: { reference: "x", idsByNode: { a: D, b: E } } }, violations: [["image id mismatch", "spec.image"]], detail: `node b holds ${E}` },
  { name: "image-identity: no node holds it", def: c(imageIdentityCheck), attrs: { image: { reference: "x", idsByNode: {} } }, violations: [["image not found", "spec.image"]] },
  { name: "image-identity: no image facts", def: c(imageIdentityCheck), attrs: { image: null }, violations: [["image not found", "spec.image"]] },
  { name: "image-identity: a tag, nodes agree", def: c(imageIdentityCheck), attrs: { spec: { image: TAG }, image: { reference: TAG, idsByNode: { a: E, b: E } } }, violations: [] },
  { name: "image-identity: a tag, nodes disagree", def: c(imageIdentityCheck), attrs: { spec: { image: TAG }, image: { reference: TAG, idsByNode: { a: D, b: E } } }, violations: [["image ids disagree", "spec.image"]], detail: `a=${D}, b=${E}` },
  { name: "signer: verified, may deploy, is the requester", def: c(signerCheck), attrs: {}, violations: [] },
  { name: "signer: not verified", def: c(signerCheck), attrs: { signer: { verified: false } }, violations: [["signature not verified", "signer.verified"]] },
  { name: "signer: may not deploy", def: c(signerCheck), attrs: { signer: { mayDeploy: false } }, violations: [["signer may not deploy", "signer.mayDeploy"]], detail: "payments" },
  { name: "signer: someone else", def: c(signerCheck), attrs: { signer: { identity: "user:mallory" } }, violations: [["signer is not the requester", "signer.identity"]], detail: "user:mallory" },
  { name: "approvals: no label", def: c(approvalsCheck), attrs: {}, violations: [] },
  { name: "approvals: zero", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "0" } }, violations: [] },
  { name: "approvals: required", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "2" } }, violations: [["approvals required", "namespace.labels.portcullis.io/approvals"]], detail: "2 approvals required; 0 valid" },
  { name: "approvals: one of two", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "2" }, approvals: { required: 2, valid: ["user:ann"] } }, violations: [["approvals required", "namespace.labels.portcullis.io/approvals"]], detail: "2 approvals required; 1 valid" },
  { name: "approvals: two of two", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "2" }, approvals: { required: 2, valid: ["user:ann", "user:bob"] } }, violations: [] },
  { name: "approvals: the requester's own does not count", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "2" }, approvals: { required: 2, valid: ["user:ann", "user:dev1"] } }, violations: [["approvals required", "namespace.labels.portcullis.io/approvals"]], detail: "1 valid" },
  { name: "approvals: one approver twice counts once", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "2" }, approvals: { required: 2, valid: ["user:ann", "user:ann"] } }, violations: [["approvals required", "namespace.labels.portcullis.io/approvals"]], detail: "1 valid" },
  { name: "approvals: an empty set", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "1" }, approvals: { required: 1, valid: [] } }, violations: [["approvals required", "namespace.labels.portcullis.io/approvals"]], detail: "1 approvals required; 0 valid" },
  { name: "approvals: above ten", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "11" } }, violations: [["approvals label invalid", "namespace.labels.portcullis.io/approvals"]] },
  { name: "approvals: not a number", def: c(approvalsCheck), attrs: { labels: { "portcullis.io/approvals": "two" } }, violations: [["approvals label invalid", "namespace.labels.portcullis.io/approvals"]] },
];

describe("checks", () => {
  it.each(rows.map((r) => [r.name, r] as const))("%s", (_name, row) => {
    const results = run(row.def, row.params, attrs(row.attrs));
    for (const r of results) expect(r.check).toBe(row.def.name);
    const violations = results.filter((r) => !r.allowed);
    expect(violations.map((v) => [v.reason, v.field])).toEqual(row.violations.map((v) => [...v]));
    if (row.violations.length === 0) expect(results.some((r) => r.allowed && r.reason === "ok")).toBe(true);
    for (const v of violations) if (row.detail !== undefined) expect(v.detail).toContain(row.detail);
  });
});

describe("hardening restates the runtime's invariants", () => {
  it("reports them as ok results on runtime fields, next to violations too", () => {
    const results = run(c(hardeningCheck), undefined, attrs({ drop: ["user"], image: null }));
    const runtime = results.filter((r) => r.field.startsWith("runtime."));
    expect(runtime.map((r) => r.field)).toEqual(["runtime.readOnlyRootFilesystem", "runtime.capabilities", "runtime.noNewPrivileges", "runtime.seccomp"]);
    expect(runtime.every((r) => r.allowed && r.reason === "ok")).toBe(true);
    expect(runtime[1]?.detail).toContain("NET_BIND_SERVICE");
    expect(results.filter((r) => !r.allowed)).toHaveLength(1);
  });
});

describe("parameters", () => {
  const cases: [string, CheckDefinition<unknown>, unknown, string, string][] = [
    ["unknown parameter", c(resourcesCheck), { maxMemroy: "1Gi" }, "maxMemroy", "unknown parameter"],
    ["memory quantity", c(resourcesCheck), { maxMemory: "lots" }, "maxMemory", "quantity"],
    ["memory as a number", c(resourcesCheck), { maxMemory: 1024 }, "maxMemory", "quantity like 1Gi"],
    ["cpus out of range", c(resourcesCheck), { maxCpus: 100 }, "maxCpus", "at most 64"],
    ["pids type", c(resourcesCheck), { maxPids: "10" }, "maxPids", "integer"],
    ["replicas range", c(resourcesCheck), { maxReplicas: 65 }, "maxReplicas", "between 0 and 64"],
    ["network mode", c(hardeningCheck), { allowedNetworkModes: ["host"] }, "allowedNetworkModes[0]", "must be one of none, namespace"],
    ["port range order", c(hardeningCheck), { minHostPort: 5000, maxHostPort: 4000 }, "minHostPort", "above maxHostPort"],
    ["capabilities", c(hardeningCheck), { allowedCapabilities: ["SYS_ADMIN"] }, "allowedCapabilities[0]", "NET_BIND_SERVICE"],
    ["runtime", c(runtimeClassCheck), { required: "gvisor" }, "required", "sandboxed, any"],
    ["requireDigest type", c(imageReferenceCheck), { requireDigest: "yes" }, "requireDigest", "true or false"],
    ["registry wildcard", c(imageReferenceCheck), { allowedRegistries: ["*.corp"] }, "allowedRegistries[0]", "without wildcards"],
    ["no params taken", c(signerCheck), { strict: true }, "strict", "takes no parameters"],
    ["params not a map", c(approvalsCheck), [1], "", "must be a map"],
  ];
  it.each(cases)("%s is refused with its field", (_n, def, raw, field, reason) => {
    const v = def.validateParams(raw);
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.issues.map((i) => i.field)).toContain(field);
    expect(v.issues.find((i) => i.field === field)?.reason).toContain(reason);
  });

  it("applies defaults when none are given", () => {
    const h = hardeningCheck.validateParams(undefined);
    expect(h).toEqual({ ok: true, params: { allowedNetworkModes: ["none", "namespace"], allowHostPorts: true, minHostPort: 1024, maxHostPort: 65535, allowedCapabilities: ["NET_BIND_SERVICE"] } });
    expect(imageReferenceCheck.validateParams({})).toEqual({ ok: true, params: { requireDigest: true, allowedRegistries: [], allowedRepositories: [] } });
    expect(resourcesCheck.validateParams({ maxMemory: "1Gi", maxCpus: 2 })).toEqual({ ok: true, params: { maxMemoryBytes: 1024 ** 3, maxNanoCpus: 2e9 } });
  });
});
