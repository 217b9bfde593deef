/**
 * Every hardening field of a deployment's container, on the real engine under runc and
 * under runsc (gVisor), read back by an outside client: the JSON of `docker inspect`
 * from the docker CLI. The container also serves HTTP on a port published on 127.0.0.1
 * only, which curl reaches from the host.
 */
import { execFile } from "node:child_process";
import { networkInterfaces } from "node:os";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentSpec } from "../../src/deploy/index.js";
import {
  LABELS,
  MANAGED_LABEL,
  RUNSC_OVERHEAD,
  containerSpecFor,
  effectiveUser,
  ensureNamespaceNetwork,
  resolveImage,
  type DockerEngine,
} from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, newTestRun, testEngine } from "../support/docker.js";
import { dockerCliResult, freePort, waitHealthy } from "../support/containers.js";

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const DIGEST = `sha256:${"ef".repeat(32)}`;
// busybox wget fails on loopback inside gVisor with host networking; nc works in both.
const HEALTH_COMMAND = [
  "/bin/sh",
  "-c",
  String.raw`printf 'GET / HTTP/1.0

' | nc -w 2 127.0.0.1 8080 | grep -q hello-portcullis`,
];

interface Inspected {
  Id: string;
  Image: string;
  Mounts: { Source?: string; Destination?: string }[];
  Config: { User: string; Image: string; Labels: Record<string, string>; Healthcheck: unknown; ExposedPorts: unknown };
  HostConfig: Record<string, unknown>;
  NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> };
}

function otherHostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

/** curl until it answers (a published port can lag its container's start by a moment), at most `tries` times. */
async function curlEventually(url: string, tries = 10): Promise<{ ok: boolean; body: string }> {
  let last = await curl(url);
  for (let i = 1; i < tries && !last.ok; i++) {
    await new Promise((r) => setTimeout(r, 300));
    last = await curl(url);
  }
  return last;
}

async function curl(url: string): Promise<{ ok: boolean; body: string }> {
  try {
    const { stdout } = await execFileAsync("curl", ["-sS", "--max-time", "3", url]);
    return { ok: true, body: stdout };
  } catch {
    return { ok: false, body: "" };
  }
}

describeDocker(
  "a deployment's container, inspected on a real engine",
  () => {
    const run = newTestRun();
    const namespace = `t-${run.id}`;
    let engine: DockerEngine;
    let image: string;
    let network: string;

    beforeAll(async () => {
      engine = testEngine();
      image = await buildBusyboxImage(engine, run, { variant: "web", user: "10001:10001" });
      network = await ensureNamespaceNetwork(engine, namespace, { labels: run.labels });
    });

    afterAll(async () => {
      if (engine !== undefined) await cleanupTestRun(engine, run, image);
    });

    describe.each([
      ["standard", "runc"],
      ["sandboxed", "runsc"],
    ] as const)("runtime class %s (%s)", (runtimeClass, oci) => {
      let port: number;
      let id: string;
      let info: Inspected;
      let spec: DeploymentSpec;

      beforeAll(async () => {
        port = await freePort();
        spec = {
          name: "web",
          namespace,
          labels: run.labels,
          image,
          args: ["/bin/sh", "-c", "echo hello-portcullis > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
          env: { MODE: "test" },
          replicas: 1,
          resources: { nanoCpus: 500_000_000, memoryBytes: 64 * MiB, pids: 32 },
          runtime: runtimeClass,
          network: { mode: "namespace", ports: [{ container: 8080, host: port, protocol: "tcp" }] },
          healthcheck: { command: HEALTH_COMMAND, intervalMs: 1_000, timeoutMs: 2_000, retries: 3, startPeriodMs: 0 },
          placement: { nodeLabels: {}, spread: false },
          update: { maxSurge: 1, maxUnavailable: 0 }, secrets: [],
        };
        const resolved = await resolveImage(engine, image);
        if (resolved === undefined) throw new Error("the test image is missing");
        const create = containerSpecFor(spec, {
          containerName: `pc-test-${run.id}-${oci}`,
          gatewayId: `test-${run.id}`,
          revision: 1,
          ordinal: 0,
          jti: `jti-${run.id}`,
          manifestDigest: DIGEST,
          imageId: resolved.id,
          user: effectiveUser(spec.user, resolved.user),
          publishHost: "127.0.0.1",
          allowPublicBind: false,
          networkName: network,
        });
        id = await engine.create(create);
        await engine.start(id);
        await waitHealthy(engine, id);
        [info] = JSON.parse(await dockerCli(["inspect", id])) as [Inspected];
      });

      it("runs under the requested OCI runtime, from the image id", async () => {
        expect(info.HostConfig.Runtime).toBe(oci);
        const resolved = await resolveImage(engine, image);
        expect(info.Config.Image).toBe(resolved?.id);
        expect(info.Image).toBe(resolved?.id);
      });

      it("drops every capability and adds none back", () => {
        expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
        expect(info.HostConfig.CapAdd ?? []).toEqual([]);
        expect(info.HostConfig.Privileged).toBe(false);
      });

      it("sets no-new-privileges and keeps the default seccomp profile", () => {
        expect(info.HostConfig.SecurityOpt).toEqual(["no-new-privileges:true"]);
        expect(JSON.stringify(info)).not.toContain("unconfined");
      });

      it("has a read-only root filesystem and a bounded noexec,nosuid,nodev /tmp", () => {
        expect(info.HostConfig.ReadonlyRootfs).toBe(true);
        expect(info.HostConfig.Tmpfs).toEqual({ "/tmp": `rw,noexec,nosuid,nodev,size=${64 * MiB},mode=1777` });
      });

      it("runs as the image's numeric non-root user", async () => {
        expect(info.Config.User).toBe("10001:10001");
        const ids = await dockerCli(["exec", id, "/bin/id"]);
        expect(ids).toMatch(/^uid=10001 gid=10001/);
      });

      it("bounds pids, memory (without swap) and CPU", () => {
        expect(info.HostConfig.PidsLimit).toBe(32 + (oci === "runsc" ? RUNSC_OVERHEAD.pids : 0));
        expect(info.HostConfig.Memory).toBe(64 * MiB);
        expect(info.HostConfig.MemorySwap).toBe(info.HostConfig.Memory);
        expect(info.HostConfig.NanoCpus).toBe(500_000_000);
      });

      it("shares no host namespace and has no device, bind, mount or engine socket", () => {
        const h = info.HostConfig;
        expect(h.NetworkMode).toBe(network);
        expect(h.IpcMode).toBe("private");
        expect(h.PidMode).toBe("");
        expect(h.UTSMode).toBe("");
        expect(h.UsernsMode).toBe("");
        expect((h as { CgroupnsMode?: string }).CgroupnsMode).toBe("private");
        expect(h.Devices ?? []).toEqual([]);
        expect(h.Binds ?? []).toEqual([]);
        expect(h.Mounts ?? []).toEqual([]);
        expect(info.Mounts).toEqual([]);
        expect(JSON.stringify(info)).not.toContain("docker.sock");
      });

      it("restarts on failure at most 5 times and rotates its json-file log", () => {
        expect(info.HostConfig.RestartPolicy).toEqual({ Name: "on-failure", MaximumRetryCount: 5 });
        expect(info.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } });
      });

      it("carries the manifest's labels and the reserved ones", () => {
        expect(info.Config.Labels).toMatchObject({
          ...run.labels,
          [MANAGED_LABEL]: "true",
          [LABELS.namespace]: namespace,
          [LABELS.deployment]: "web",
          [LABELS.revision]: "1",
          [LABELS.ordinal]: "0",
          [LABELS.jti]: `jti-${run.id}`,
          [LABELS.digest]: DIGEST,
          [LABELS.runtime]: oci,
          [LABELS.gateway]: `test-${run.id}`,
        });
      });

      it("has the healthcheck in exec form with durations in nanoseconds, and it passes", async () => {
        expect(info.Config.Healthcheck).toEqual({
          Test: ["CMD", ...HEALTH_COMMAND],
          Interval: 1_000_000_000,
          Timeout: 2_000_000_000,
          Retries: 3,
        });
        expect((await engine.inspectContainer(id))?.health).toBe("healthy");
      });

      it("publishes its port on 127.0.0.1 only, where curl from the host reaches it", async () => {
        const binding = [{ HostIp: "127.0.0.1", HostPort: String(port) }];
        expect(info.Config.ExposedPorts).toEqual({ "8080/tcp": {} });
        expect(info.HostConfig.PortBindings).toEqual({ "8080/tcp": binding });
        expect(info.NetworkSettings.Ports).toEqual({ "8080/tcp": binding });
        expect(await curlEventually(`http://127.0.0.1:${port}/`)).toEqual({ ok: true, body: "hello-portcullis\n" });
        const other = otherHostAddress();
        if (other !== undefined) expect((await curl(`http://${other}:${port}/`)).ok).toBe(false);
      });

      if (oci === "runc") {
        it("runs under the engine's seccomp filter (Seccomp: 2) with no_new_privs", async () => {
          const status = await dockerCli(["exec", id, "/bin/cat", "/proc/self/status"]);
          expect(status).toMatch(/^Seccomp:\s+2$/m);
          expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
          expect(status).toMatch(/^CapEff:\s+0000000000000000$/m);
        });
      } else {
        it("runs inside gVisor", async () => {
          const dmesg = await dockerCliResult(["exec", id, "/bin/dmesg"]);
          expect(dmesg.stdout).toMatch(/gVisor/);
        });
      }

      it("cannot write to its root filesystem, even where the mode allows it", async () => {
        const write = await dockerCliResult(["exec", id, "/bin/touch", "/scratch/x"]);
        expect(write.code).not.toBe(0);
        expect(write.stderr).toMatch(/Read-only file system/);
      });
    });

    it("refuses to publish on every interface unless the node allows it, before the engine is asked", () => {
      expect(() =>
        containerSpecFor(
          {
            name: "web", namespace, labels: run.labels, image, env: {}, replicas: 1,
            resources: { nanoCpus: 1e8, memoryBytes: 64 * MiB, pids: 8 }, runtime: "standard",
            network: { mode: "namespace", ports: [{ container: 80, host: 8080, protocol: "tcp" }] },
            placement: { nodeLabels: {}, spread: false }, update: { maxSurge: 1, maxUnavailable: 0 }, secrets: [],
          },
          {
            containerName: "x", gatewayId: "g", revision: 1, ordinal: 0, jti: "j", manifestDigest: DIGEST,
            imageId: DIGEST, user: "1000:1000", publishHost: "0.0.0.0", allowPublicBind: false, networkName: network,
          },
        ),
      ).toThrow(/binding every interface/);
    });
  },
  { runtimes: ["runc", "runsc"] },
);
