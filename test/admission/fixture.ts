import type { AdmissionAttributes, AdmissionPolicySet, ImageFacts } from "../../src/admission/index.js";
import { parseAdmissionPolicies } from "../../src/admission/index.js";
import { manifestDigest, validateManifest, type Manifest } from "../../src/deploy/index.js";

export const D = `sha256:${"a".repeat(64)}`;
export const E = `sha256:${"b".repeat(64)}`;
export const IMAGE = `registry.corp.example/team/web@${D}`;
export const NOW = new Date("2026-06-01T00:00:00Z");

export function manifest(spec: Record<string, unknown> = {}, name = "web", namespace = "payments"): Manifest {
  return {
    apiVersion: "portcullis/v1",
    kind: "Deployment",
    metadata: { name, namespace },
    spec: { image: IMAGE, user: "1000:1000", resources: { cpus: 1, memory: "256Mi", pids: 256 }, ...spec },
  };
}

export interface AttrsOptions {
  readonly spec?: Record<string, unknown>;
  /** Spec fields to drop from the manifest (e.g. "user"). */
  readonly drop?: readonly string[];
  readonly labels?: Record<string, string>;
  readonly image?: ImageFacts | null;
  readonly signer?: Partial<AdmissionAttributes["signer"]>;
  readonly requester?: string;
  readonly name?: string;
  readonly approvals?: AdmissionAttributes["approvals"];
}

/** Attributes of a good request in `payments`, changed by `o`. */
export function attrs(o: AttrsOptions = {}): AdmissionAttributes {
  const m = manifest(o.spec, o.name);
  const spec: Record<string, unknown> = { ...m.spec };
  for (const k of o.drop ?? []) delete spec[k];
  const parsed = validateManifest({ ...m, spec });
  const requester = o.requester ?? "user:dev1";
  const image = o.image === null ? undefined : (o.image ?? { reference: parsed.spec.image, idsByNode: { "node-1": D } });
  return {
    operation: "create",
    requester,
    namespace: { name: "payments", labels: o.labels ?? {} },
    manifest: parsed.manifest,
    spec: parsed.spec,
    manifestDigest: manifestDigest(parsed.manifest),
    ...(image === undefined ? {} : { image }),
    signer: { identity: requester, verified: true, mayDeploy: true, ...o.signer },
    ...(o.approvals === undefined ? {} : { approvals: o.approvals }),
  };
}

export function policyYaml(name: string, checks: string, selector = ""): string {
  return [
    "apiVersion: portcullis/v1",
    "kind: AdmissionPolicy",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    ...(selector ? [`  selector: ${selector}`] : []),
    "  checks:",
    ...checks.split("\n").map((l) => `    ${l}`),
    "",
  ].join("\n");
}

export function policySet(...texts: string[]): AdmissionPolicySet {
  return parseAdmissionPolicies(texts.map((text, i) => ({ name: `p${i}.yaml`, text })), { version: 7 });
}
