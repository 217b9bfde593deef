/**
 * containerSpecFor: an admitted deployment turned into the one container spec the engine
 * receives. Every hardening field, the reserved labels, published ports, the healthcheck
 * and the runtime mapping are checked on the result.
 */
import { describe, expect, it } from "vitest";
import type { DeploymentSpec } from "../../src/deploy/index.js";
import {
  LABELS,
  MANAGED_LABEL,
  RUNSC_OVERHEAD,
  buildHardenedContainerSpec,
  containerSpecFor,
  isUnspecifiedAddress,
  type ReplicaContext,
} from "../../src/runtime/index.js";
import { refusal } from "../support/refusal.js";

const MiB = 1024 * 1024;
const HEX = "ab".repeat(32);
const IMAGE_ID = `sha256:${HEX}`;
const DIGEST = `sha256:${"cd".repeat(32)}`;

const SPEC: DeploymentSpec = {
  name: "web",
  namespace: "team-a",
  labels: { tier: "front" },
  image: "registry.example/web:1.2",
  command: ["/bin/httpd"],
  args: ["-f", "-p", "8080"],
  workingDir: "/srv",
  env: { MODE: "prod" },
  replicas: 2,
  resources: { nanoCpus: 250_000_000, memoryBytes: 64 * MiB, pids: 32 },
  runtime: "sandboxed",
  network: { mode: "namespace", ports: [{ container: 8080, host: 18080, protocol: "tcp" }] },
  healthcheck: { command: ["/bin/wget", "-q", "-O-", "http://127.0.0.1:8080/"], intervalMs: 2_000, timeoutMs: 1_500, retries: 3, startPeriodMs: 500 },
  placement: { nodeLabels: {}, spread: true },
  update: { maxSurge: 1, maxUnavailable: 0 }, secrets: [],
};

const CTX: ReplicaContext = {
  containerName: "pc-gw1-team-a-web-r3-1",
  gatewayId: "gw1",
  revision: 3,
  ordinal: 1,
  jti: "01J9ZK6Q7W1V3N0AB",
  manifestDigest: DIGEST,
  imageId: IMAGE_ID,
  user: "10001:10001",
  publishHost: "127.0.0.1",
  allowPublicBind: false,
  networkName: "pc-ns-team-a",
};

const spec = (patch: Partial<DeploymentSpec> = {}) => ({ ...SPEC, ...patch });
const ctx = (patch: Partial<ReplicaContext> = {}) => ({ ...CTX, ...patch });

function refused(s: DeploymentSpec, c: ReplicaContext): { code: string; detail: string } {
  const e = refusal(() => containerSpecFor(s, c));
  return { code: e.code, detail: e.detail ?? "" };
}

describe("containerSpecFor", () => {
  const out = containerSpecFor(SPEC, CTX);
  const host = out.HostConfig!;

  // [field, actual, expected]: the hardening every container carries.
  const hardening: [string, () => unknown, unknown][] = [
    ["name", () => out.name, CTX.containerName],
    ["Image is the resolved id, never the tag", () => out.Image, IMAGE_ID],
    ["User", () => out.User, "10001:10001"],
    ["Entrypoint is spec.command", () => out.Entrypoint, ["/bin/httpd"]],
    ["Cmd is spec.args", () => out.Cmd, ["-f", "-p", "8080"]],
    ["WorkingDir", () => out.WorkingDir, "/srv"],
    ["Env", () => out.Env, ["MODE=prod"]],
    ["Runtime (sandboxed)", () => host.Runtime, "runsc"],
    ["Privileged", () => host.Privileged, false],
    ["ReadonlyRootfs", () => host.ReadonlyRootfs, true],
    ["CapDrop", () => host.CapDrop, ["ALL"]],
    ["CapAdd", () => host.CapAdd, []],
    ["SecurityOpt (default seccomp, no-new-privileges)", () => host.SecurityOpt, ["no-new-privileges:true"]],
    ["NetworkMode", () => host.NetworkMode, "pc-ns-team-a"],
    ["IpcMode", () => host.IpcMode, "private"],
    ["PidMode", () => host.PidMode, ""],
    ["UTSMode", () => host.UTSMode, ""],
    ["UsernsMode", () => host.UsernsMode, ""],
    ["Memory", () => host.Memory, 64 * MiB],
    ["MemorySwap equals Memory", () => host.MemorySwap, 64 * MiB],
    ["NanoCpus", () => host.NanoCpus, 250_000_000],
    ["PidsLimit (with the sandbox's own)", () => host.PidsLimit, 32 + RUNSC_OVERHEAD.pids],
    ["Tmpfs", () => host.Tmpfs, { "/tmp": `rw,noexec,nosuid,nodev,size=${64 * MiB},mode=1777` }],
    ["Binds", () => host.Binds, []],
    ["Mounts", () => host.Mounts, []],
    ["Devices", () => host.Devices, []],
    ["PublishAllPorts", () => host.PublishAllPorts, false],
    ["RestartPolicy", () => host.RestartPolicy, { Name: "on-failure", MaximumRetryCount: 5 }],
    ["LogConfig", () => host.LogConfig, { Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } }],
    ["ExposedPorts", () => out.ExposedPorts, { "8080/tcp": {} }],
    ["PortBindings on the publish host", () => host.PortBindings, { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "18080" }] }],
    [
      "Healthcheck (exec form, durations in ns)",
      () => out.Healthcheck,
      {
        Test: ["CMD", "/bin/wget", "-q", "-O-", "http://127.0.0.1:8080/"],
        Interval: 2_000_000_000,
        Timeout: 1_500_000_000,
        StartPeriod: 500_000_000,
        Retries: 3,
      },
    ],
  ];
  it.each(hardening)("sets %s", (_field, actual, expected) => {
    expect(actual()).toEqual(expected);
  });

  it("never mentions a socket, a host namespace or an unconfined profile", () => {
    const text = JSON.stringify(out);
    expect(text).not.toMatch(/unconfined|docker\.sock|"host"/);
  });

  it("labels the container with the manifest's labels and the reserved ones", () => {
    expect(out.Labels).toEqual({
      tier: "front",
      [MANAGED_LABEL]: "true",
      "io.portcullis.gateway": "gw1",
      "io.portcullis.namespace": "team-a",
      "io.portcullis.deployment": "web",
      "io.portcullis.revision": "3",
      "io.portcullis.ordinal": "1",
      "io.portcullis.jti": CTX.jti,
      "io.portcullis.digest": DIGEST,
      "io.portcullis.runtime": "runsc",
    });
    expect(LABELS).toMatchObject({
      managed: "io.portcullis.managed",
      namespace: "io.portcullis.namespace",
      deployment: "io.portcullis.deployment",
      revision: "io.portcullis.revision",
      ordinal: "io.portcullis.ordinal",
      jti: "io.portcullis.jti",
      digest: "io.portcullis.digest",
      runtime: "io.portcullis.runtime",
    });
  });

  it.each([
    ["sandboxed", "runsc"],
    ["standard", "runc"],
  ] as const)("runs runtime class %s under %s and says so in a label", (runtime, oci) => {
    const s = containerSpecFor(spec({ runtime }), CTX);
    expect(s.HostConfig?.Runtime).toBe(oci);
    expect(s.Labels?.[LABELS.runtime]).toBe(oci);
    expect(s.HostConfig?.PidsLimit).toBe(oci === "runsc" ? 32 + RUNSC_OVERHEAD.pids : 32);
  });

  it("keeps the image's own entrypoint and command when the manifest sets none", () => {
    const s = containerSpecFor(spec({ command: undefined, args: undefined }), CTX);
    expect(s.Entrypoint).toBeUndefined();
    expect(s.Cmd).toBeUndefined();
  });

  it("puts a container without a network on none, with nothing published", () => {
    const s = containerSpecFor(spec({ network: { mode: "none", ports: [] } }), ctx({ networkName: undefined }));
    expect(s.HostConfig?.NetworkMode).toBe("none");
    expect(s.HostConfig?.PortBindings).toEqual({});
    expect(s.ExposedPorts).toBeUndefined();
  });

  it("publishes on the node's interface, and on every interface only where the node allows it", () => {
    const onNode = containerSpecFor(SPEC, ctx({ publishHost: "10.1.2.3" }));
    expect(onNode.HostConfig?.PortBindings).toEqual({ "8080/tcp": [{ HostIp: "10.1.2.3", HostPort: "18080" }] });
    for (const any of ["0.0.0.0", "::", "0:0::0"]) {
      expect(refused(SPEC, ctx({ publishHost: any })).detail).toBe(
        `container spec publishHost: binding every interface (${any}) is not allowed on this node`,
      );
      const allowed = containerSpecFor(SPEC, ctx({ publishHost: any, allowPublicBind: true }));
      expect(allowed.HostConfig?.PortBindings).toEqual({ "8080/tcp": [{ HostIp: any, HostPort: "18080" }] });
    }
    expect(isUnspecifiedAddress("127.0.0.1")).toBe(false);
    expect(isUnspecifiedAddress("::1")).toBe(false);
  });

  it("publishes udp ports under their protocol", () => {
    const ports = [
      { container: 53, host: 5353, protocol: "udp" as const },
      { container: 53, host: 5353, protocol: "tcp" as const },
    ];
    const s = containerSpecFor(spec({ network: { mode: "namespace", ports } }), CTX);
    expect(s.ExposedPorts).toEqual({ "53/udp": {}, "53/tcp": {} });
    expect(s.HostConfig?.PortBindings).toEqual({
      "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }],
      "53/tcp": [{ HostIp: "127.0.0.1", HostPort: "5353" }],
    });
  });

  const port = (p: Record<string, unknown>) => spec({ network: { mode: "namespace", ports: [p as never] } });
  // [case, spec, context, detail]; every refusal is PC_RUNTIME_SPEC_INVALID.
  const refusals: [string, DeploymentSpec, ReplicaContext, string][] = [
    ["an image tag instead of an id", SPEC, ctx({ imageId: "registry.example/web:1.2" }), "context.imageId: must be an image id (sha256:<hex>), never a tag"],
    ["a manifest digest that is not sha256", SPEC, ctx({ manifestDigest: "md5:00" }), "context.manifestDigest: must be sha256:<hex>"],
    ["revision 0", SPEC, ctx({ revision: 0 }), "context.revision: must be a positive integer"],
    ["a negative ordinal", SPEC, ctx({ ordinal: -1 }), "context.ordinal: must be an integer between 0 and 10000"],
    ["a jti with spaces", SPEC, ctx({ jti: "a b" }), "context.jti: is not a valid request id"],
    ["a root user", SPEC, ctx({ user: "0:0" }), "user: must not be root"],
    ["a user name", SPEC, ctx({ user: "app" }), "user: must be a numeric uid:gid"],
    ["a namespace network without its name", SPEC, ctx({ networkName: undefined }), "context.networkName: is required for a namespace network"],
    ["a manifest label that is reserved", spec({ labels: { "io.portcullis.namespace": "team-b" } }), CTX, "labels.io.portcullis.namespace: is reserved"],
    ["the managed label", spec({ labels: { [MANAGED_LABEL]: "false" } }), CTX, `labels.${MANAGED_LABEL}: is reserved`],
    ["ports without a network", spec({ network: { mode: "none", ports: SPEC.network.ports } }), CTX, 'ports: need a user-defined network, not "none"'],
    ["port 0", port({ container: 0, host: 8080, protocol: "tcp" }), CTX, "ports[0].container: must be between 1 and 65535"],
    ["a host port above 65535", port({ container: 80, host: 70000, protocol: "tcp" }), CTX, "ports[0].host: must be between 1 and 65535"],
    ["sctp", port({ container: 80, host: 8080, protocol: "sctp" }), CTX, "ports[0].protocol: must be one of tcp, udp"],
    ["a host IP inside a port", port({ container: 80, host: 8080, protocol: "tcp", hostIp: "0.0.0.0" }), CTX, "ports[0].hostIp: unknown field"],
    [
      "one host port twice",
      spec({ network: { mode: "namespace", ports: [{ container: 80, host: 8080, protocol: "tcp" }, { container: 81, host: 8080, protocol: "tcp" }] } }),
      CTX,
      "ports[1].host: host port 8080/tcp is published twice",
    ],
    ["a publish host that is a name", SPEC, ctx({ publishHost: "localhost" }), "publishHost: must be an IP address"],
    ["a healthcheck without a command", spec({ healthcheck: { ...SPEC.healthcheck!, command: [] } }), CTX, "healthcheck.command: must not be empty"],
    ["a healthcheck every 10 ms", spec({ healthcheck: { ...SPEC.healthcheck!, intervalMs: 10 } }), CTX, "healthcheck.intervalMs: must be between 1000 and 86400000"],
    ["a healthcheck without retries", spec({ healthcheck: { ...SPEC.healthcheck!, retries: 0 } }), CTX, "healthcheck.retries: must be between 1 and 100"],
    ["a fractional timeout", spec({ healthcheck: { ...SPEC.healthcheck!, timeoutMs: 1500.5 } }), CTX, "healthcheck.timeoutMs: must be an integer"],
    ["memory too small for the sandbox", spec({ resources: { ...SPEC.resources, memoryBytes: 16 * MiB } }), CTX, "limits.memoryBytes: must be at least 33554432 under runsc"],
    ["an unknown runtime class", spec({ runtime: "kata" as never }), CTX, "runtime: must be sandboxed or standard"],
  ];
  it.each(refusals)("refuses %s", (_case, s, c, detail) => {
    expect(refused(s, c)).toEqual({ code: "PC_RUNTIME_SPEC_INVALID", detail: `container spec ${detail}` });
  });

  describe("the secret directory", () => {
    const SECRET_SPEC = spec({ secrets: [{ name: "db-password", path: "/run/secrets/db/password" }] });
    const DIR = "/run/portcullis/secrets/gw1/pc-gw1-team-a-web-r3-1";

    it("is the one mount: a read-only bind at /run/secrets, private propagation; Binds stay empty", () => {
      const s = containerSpecFor(SECRET_SPEC, ctx({ secretsDir: DIR }));
      expect(s.HostConfig?.Mounts).toEqual([{ Type: "bind", Source: DIR, Target: "/run/secrets", ReadOnly: true, BindOptions: { Propagation: "rprivate" } }]);
      expect(s.HostConfig?.Binds).toEqual([]);
      expect(s.HostConfig?.ReadonlyRootfs).toBe(true);
      // Nothing of the secret (its name aside from the mount source) reaches the environment.
      expect(s.Env).toEqual(["MODE=prod"]);
    });

    it.each([
      ["a spec with secrets but no directory", SECRET_SPEC, CTX, "context.secretsDir: is required when spec.secrets is not empty"],
      ["a directory for a spec without secrets", SPEC, ctx({ secretsDir: DIR }), "context.secretsDir: is given but spec.secrets is empty"],
      ["a relative directory", SECRET_SPEC, ctx({ secretsDir: "run/x" }), "secretsDir: must be an absolute path"],
      ["a directory with '..'", SECRET_SPEC, ctx({ secretsDir: "/run/portcullis/../../etc" }), 'secretsDir: must not contain ".."'],
      ["a directory with NUL", SECRET_SPEC, ctx({ secretsDir: "/run/x\0y" }), "secretsDir: must not contain NUL"],
      ["the host's root", SECRET_SPEC, ctx({ secretsDir: "/" }), "secretsDir: must not be /"],
      ["a path that is not normalised", SECRET_SPEC, ctx({ secretsDir: "/run//x/" }), "secretsDir: must be a normalised path"],
      ["the docker socket", SECRET_SPEC, ctx({ secretsDir: "/var/run/docker.sock" }), "secretsDir: must not be a socket path"],
      ["another socket", SECRET_SPEC, ctx({ secretsDir: "/run/containerd/containerd.sock" }), "secretsDir: must not be a socket path"],
      ["the engine's directory", SECRET_SPEC, ctx({ secretsDir: "/var/lib/docker/volumes" }), "secretsDir: must not be an engine or kernel path"],
      ["/proc", SECRET_SPEC, ctx({ secretsDir: "/proc/1/root" }), "secretsDir: must not be an engine or kernel path"],
      ["a device path", SECRET_SPEC, ctx({ secretsDir: "/dev/sda" }), "secretsDir: must not be an engine or kernel path"],
    ])("refuses %s", (_case, s, c, detail) => {
      expect(refused(s, c)).toEqual({ code: "PC_RUNTIME_SPEC_INVALID", detail: `container spec ${detail}` });
    });

    it("still refuses binds and any other mount as input", () => {
      const base = { image: IMAGE_ID, user: "1000:1000", runtime: "runc" as const, limits: { memoryBytes: 64 * MiB, nanoCpus: 1e8, pids: 8 } };
      for (const field of ["binds", "mounts", "Binds", "Mounts", "volumes"]) {
        expect(refusal(() => buildHardenedContainerSpec({ ...base, [field]: ["/:/host"] } as never)).detail).toBe(`container spec ${field}: unknown field`);
      }
      const one = buildHardenedContainerSpec({ ...base, secretsDir: "/dev/shm/pc/x" });
      expect(one.HostConfig?.Mounts).toHaveLength(1);
    });
  });

  it("does not let a shell-form healthcheck through the hardened spec", () => {
    const e = refusal(() =>
      buildHardenedContainerSpec({
        image: IMAGE_ID,
        user: "1000:1000",
        runtime: "runc",
        limits: { memoryBytes: 64 * MiB, nanoCpus: 1e8, pids: 8 },
        healthcheck: { command: "wget -q http://x/" as never, intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0 },
      }),
    );
    expect(e.detail).toBe("container spec healthcheck.command: must be an array of strings");
  });
});
