/**
 * No field reaches Docker without having passed admission. For generated manifests:
 *
 * 1. the spec the controller builds containers from (rebuilt from the revision's stored
 *    canonical manifest) is exactly the spec admission judged (parsed from the signed
 *    manifest);
 * 2. every field of the create options that varies with the manifest comes from that
 *    spec, mapped as stated below; every other field is the same for every manifest (the
 *    hardening's constants and the replica's context). A manifest with secrets gets one
 *    mount, its replica's secret directory at /run/secrets, read-only.
 */
import { describe, expect, it } from "vitest";
import { canonicalize } from "../../src/core/index.js";
import { validateManifest, type DeploymentSpec } from "../../src/deploy/index.js";
import { containerSpecFor, RUNSC_OVERHEAD, type ReplicaContext } from "../../src/runtime/index.js";
import { prng } from "../support/prng.js";

const CTX: ReplicaContext = {
  containerName: "pc-abcdef012345-payments-web-r1-0",
  gatewayId: "abcdef012345",
  revision: 1,
  ordinal: 0,
  jti: "j".repeat(22),
  manifestDigest: `sha256:${"b".repeat(64)}`,
  imageId: `sha256:${"a".repeat(64)}`,
  user: "10001:10001",
  publishHost: "127.0.0.1",
  allowPublicBind: false,
  networkName: "pc-ns-payments",
};

const SECRETS_DIR = "/run/portcullis/secrets/abcdef012345/pc-abcdef012345-payments-web-r1-0";

function generate(rand: () => number, i: number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const word = () => pick(["a", "b", "web", "x1", "cache", "db"]) + String(Math.floor(rand() * 100));
  const spec: Record<string, unknown> = {
    image: `registry.example/team/${word()}@sha256:${"c".repeat(64)}`,
    resources: { cpus: pick([0.1, 0.25, 1, 2]), memory: pick(["64Mi", "128Mi", "1Gi"]), pids: pick([16, 64, 512]) },
    runtime: pick(["sandboxed", "standard"]),
    replicas: Math.floor(rand() * 5),
  };
  if (rand() < 0.7) spec.user = `${1000 + Math.floor(rand() * 9000)}:${1000 + Math.floor(rand() * 9000)}`;
  if (rand() < 0.5) spec.command = ["/bin/sh", "-c", `echo ${word()}`];
  if (rand() < 0.5) spec.args = [word(), word()];
  if (rand() < 0.5) spec.workingDir = `/srv/${word()}`;
  if (rand() < 0.6) spec.env = Object.fromEntries([...Array(1 + Math.floor(rand() * 4)).keys()].map((k) => [`K${k}_${word().toUpperCase()}`, word()]));
  if (rand() < 0.5) {
    spec.network = { mode: "namespace", ports: rand() < 0.5 ? [{ container: 8000 + Math.floor(rand() * 100), host: 18000 + i }] : [] };
  }
  if (rand() < 0.5) spec.healthcheck = { command: ["/bin/true"], interval: pick(["2s", "5s"]), retries: 1 + Math.floor(rand() * 5) };
  if (rand() < 0.3) spec.update = { maxSurge: 0, maxUnavailable: 1 };
  if (rand() < 0.3) spec.placement = { nodeLabels: { zone: pick(["a", "b"]) }, spread: rand() < 0.5 };
  if (rand() < 0.3) spec.secrets = [{ name: word(), path: `/run/secrets/${word()}` }, { name: word(), path: `/run/secrets/nested/${word()}`, version: 1 }];
  const metadata: Record<string, unknown> = { name: `app${i}`, namespace: "payments" };
  if (rand() < 0.5) metadata.labels = { team: word(), tier: pick(["web", "batch"]) };
  return { apiVersion: "portcullis/v1", kind: "Deployment", metadata, spec };
}

/** The create options with every manifest-derived field blanked: what must not vary. */
function invariantPart(o: ReturnType<typeof containerSpecFor>): unknown {
  const h = { ...(o.HostConfig ?? {}) } as Record<string, unknown>;
  for (const k of ["Memory", "MemorySwap", "NanoCpus", "PidsLimit", "Runtime", "NetworkMode", "PortBindings", "Tmpfs", "Mounts"]) delete h[k];
  const rest = { ...o } as Record<string, unknown>;
  for (const k of ["Env", "Cmd", "Entrypoint", "WorkingDir", "Labels", "Healthcheck", "ExposedPorts", "HostConfig", "User"]) delete rest[k];
  return { ...rest, HostConfig: h };
}

describe("the container spec comes from the admitted manifest and nothing else", () => {
  const rand = prng(20261127);
  const manifests = [...Array(300).keys()].map((i) => generate(rand, i));
  const baseline = containerSpecFor(validateManifest(manifests[0]).spec, CTX);

  it.each(manifests.map((m, i) => [i, m] as const))("manifest %i", (_i, m) => {
    const admitted: DeploymentSpec = validateManifest(m).spec;
    // What the controller builds from: the revision's stored canonical manifest.
    const stored = validateManifest(JSON.parse(canonicalize(m)) as unknown).spec;
    expect(stored).toEqual(admitted);

    // A replica of a deployment with secrets gets its secret directory (SecretFiles).
    const ctx = admitted.secrets.length > 0 ? { ...CTX, secretsDir: SECRETS_DIR } : CTX;
    const o = containerSpecFor(stored, ctx);
    const h = o.HostConfig ?? {};
    const runsc = admitted.runtime === "sandboxed";
    expect(o.Image).toBe(CTX.imageId);
    expect(o.User).toBe(CTX.user);
    expect(o.Env).toEqual(Object.entries(admitted.env).map(([k, v]) => `${k}=${v}`));
    expect(o.Cmd).toEqual(admitted.args);
    expect(o.Entrypoint).toEqual(admitted.command);
    expect(o.WorkingDir).toEqual(admitted.workingDir);
    expect(h.Runtime).toBe(runsc ? "runsc" : "runc");
    expect(h.Memory).toBe(admitted.resources.memoryBytes);
    expect(h.MemorySwap).toBe(admitted.resources.memoryBytes);
    expect(h.NanoCpus).toBe(admitted.resources.nanoCpus);
    expect(h.PidsLimit).toBe(admitted.resources.pids + (runsc ? RUNSC_OVERHEAD.pids : 0));
    expect(h.NetworkMode).toBe(admitted.network.mode === "namespace" ? CTX.networkName : "none");
    expect(Object.keys(h.PortBindings ?? {}).sort()).toEqual(admitted.network.ports.map((p) => `${p.container}/${p.protocol}`).sort());
    expect(o.Labels).toMatchObject(admitted.labels);
    // The secrets mount exactly when the manifest references secrets; never their values.
    expect(h.Mounts).toEqual(admitted.secrets.length > 0 ? [{ Type: "bind", Source: SECRETS_DIR, Target: "/run/secrets", ReadOnly: true, BindOptions: { Propagation: "rprivate" } }] : []);
    if (admitted.healthcheck) expect(o.Healthcheck?.Test).toEqual(["CMD", ...admitted.healthcheck.command]);
    else expect(o.Healthcheck).toBeUndefined();
    // Everything else is the same for every manifest.
    expect(invariantPart(o)).toEqual(invariantPart(baseline));
  });
});
