/**
 * The hardened spec, run on the real engine under runc and under runsc (gVisor), with
 * every claim checked from inside the container, and the spec checked once more from
 * outside with the docker CLI.
 */
import { release } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContainerCreateOptions } from "dockerode";
import { isPortcullisError } from "../../src/core/index.js";
import {
  MANAGED_LABEL,
  RUNSC_OVERHEAD,
  buildHardenedContainerSpec,
  type DockerEngine,
  type HardenedContainerInput,
  type RunResult,
  type RuntimeName,
} from "../../src/runtime/index.js";
import {
  buildBusyboxImage,
  cleanupTestRun,
  describeDocker,
  dockerCli,
  newTestRun,
  testEngine,
} from "../support/docker.js";

const MiB = 1024 * 1024;
const LIMITS = { memoryBytes: 64 * MiB, nanoCpus: 500_000_000, pids: 64 };
const RUN_TIMEOUT_MS = 30_000;

// Prints one `key=value` line per fact. /scratch is mode 1777 in the image, so only a
// read-only root filesystem can stop the write there.
const PROBE = String.raw`
echo "uid=$(id -u)"
echo "gid=$(id -g)"
out=$( (echo x > /scratch/probe) 2>&1 ) && echo "rootfs_write=ok" || echo "rootfs_write=denied $out"
out=$( (echo hello > /tmp/probe && cat /tmp/probe) 2>&1 ) && echo "tmp_write=$out" || echo "tmp_write=denied $out"
cp /bin/busybox /tmp/bb 2>/dev/null; ( /tmp/bb true ) 2>/dev/null; echo "tmp_exec_status=$?"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | while IFS=: read -r k v; do echo "status.$k=$(echo $v)"; done
echo "no_new_privs=$(setpriv --dump 2>/dev/null | grep no_new_privs | cut -d: -f2 | tr -d ' ')"
echo "kernel_log=$(dmesg 2>&1 | head -n 1)"
echo "proc_version=$(cat /proc/version)"
echo "net=$(ls /sys/class/net 2>&1 | tr '\n' ' ')"
echo "pids_max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null)"
echo "memory_limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null)"
`;

function facts(result: RunResult): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of result.stdout.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) map.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  return map;
}

function fact(map: Map<string, string>, key: string): string {
  const v = map.get(key);
  if (v === undefined) throw new Error(`the probe did not report ${key}`);
  return v;
}

/** The same container with the hardening taken off: a control for the probes. */
function unhardened(spec: ContainerCreateOptions): ContainerCreateOptions {
  return {
    ...spec,
    HostConfig: { ...spec.HostConfig, ReadonlyRootfs: false, CapDrop: [], SecurityOpt: [] },
  };
}

describeDocker(
  "hardened container on a real engine",
  () => {
    const run = newTestRun();
    let engine: DockerEngine;
    let image: string;

    const input = (runtime: RuntimeName, patch: Partial<HardenedContainerInput> = {}): HardenedContainerInput => ({
      image,
      user: "1000:1000",
      runtime,
      limits: LIMITS,
      tmpfsBytes: 16 * MiB,
      labels: run.labels,
      cmd: ["/bin/sh", "-c", PROBE],
      ...patch,
    });

    beforeAll(async () => {
      engine = testEngine();
      image = await buildBusyboxImage(engine, run);
    });

    afterAll(async () => {
      if (engine !== undefined) await cleanupTestRun(engine, run, image);
    });

    describe.each(["runc", "runsc"] as const)("under %s", (runtime) => {
      let probe: Map<string, string>;
      let control: Map<string, string>;

      beforeAll(async () => {
        const spec = buildHardenedContainerSpec(input(runtime));
        const hardened = await engine.runOnce(spec, { timeoutMs: RUN_TIMEOUT_MS });
        expect(hardened.exitCode, hardened.stderr).toBe(0);
        probe = facts(hardened);
        const plain = await engine.runOnce(unhardened(spec), { timeoutMs: RUN_TIMEOUT_MS });
        expect(plain.exitCode, plain.stderr).toBe(0);
        control = facts(plain);
      });

      it("runs as the requested non-root uid and gid", () => {
        expect(fact(probe, "uid")).toBe("1000");
        expect(fact(probe, "gid")).toBe("1000");
      });

      it("cannot write to the root filesystem, which the control can", () => {
        expect(fact(probe, "rootfs_write")).toMatch(/^denied .*Read-only file system/);
        expect(fact(control, "rootfs_write")).toBe("ok");
      });

      it("can write to /tmp but not execute from it", () => {
        expect(fact(probe, "tmp_write")).toBe("hello");
        expect(fact(probe, "tmp_exec_status")).toBe("126");
      });

      it("has empty capability sets, where the control has a bounding set", () => {
        for (const set of ["CapInh", "CapPrm", "CapEff", "CapBnd"]) {
          expect(fact(probe, `status.${set}`), set).toBe("0000000000000000");
        }
        expect(fact(control, "status.CapBnd")).not.toBe("0000000000000000");
      });

      it("sets no_new_privs", () => {
        expect(fact(probe, "no_new_privs")).toBe("1");
        if (runtime === "runc") {
          expect(fact(probe, "status.NoNewPrivs")).toBe("1");
          expect(fact(control, "no_new_privs")).toBe("0");
        } else {
          // gVisor reports no_new_privs for every process, with or without the option,
          // so inside runsc this cannot tell the two apart; docker inspect below shows
          // that the option is set.
          expect(fact(control, "no_new_privs")).toBe("1");
        }
      });

      it("has no network interface but loopback", () => {
        expect(fact(probe, "net")).toBe("lo");
      });

      it(runtime === "runsc" ? "runs inside gVisor, not on the host kernel" : "runs on the host kernel, not in gVisor", () => {
        if (runtime === "runsc") {
          expect(fact(probe, "kernel_log")).toMatch(/gVisor/);
          expect(fact(probe, "proc_version")).not.toContain(release());
        } else {
          expect(fact(probe, "kernel_log")).not.toMatch(/gVisor/);
          expect(fact(probe, "proc_version")).toContain(release());
        }
      });

      if (runtime === "runc") {
        it("keeps the engine's default seccomp filter and applies the cgroup limits", () => {
          expect(fact(probe, "status.Seccomp")).toBe("2");
          expect(fact(probe, "pids_max")).toBe(String(LIMITS.pids));
          expect(fact(probe, "memory_limit")).toBe(String(LIMITS.memoryBytes));
        });
      }
    });

    it("returns the exit code and keeps stdout apart from stderr", async () => {
      const spec = buildHardenedContainerSpec(input("runc", { cmd: ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"] }));
      const result = await engine.runOnce(spec, { timeoutMs: RUN_TIMEOUT_MS });
      expect(result).toEqual({ exitCode: 3, stdout: "out\n", stderr: "err\n", truncated: false });
    });

    it("truncates output beyond the limit", async () => {
      const spec = buildHardenedContainerSpec(input("runc", { cmd: ["/bin/sh", "-c", "echo 0123456789"] }));
      const result = await engine.runOnce(spec, { timeoutMs: RUN_TIMEOUT_MS, maxOutputBytes: 4 });
      expect(result.stdout).toBe("0123");
      expect(result.truncated).toBe(true);
    });

    it("kills and removes a container that outlives its timeout", async () => {
      const spec = buildHardenedContainerSpec(input("runsc", { cmd: ["/bin/sleep", "60"] }));
      const started = Date.now();
      const error = await engine.runOnce(spec, { timeoutMs: 1_500 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isPortcullisError(error) && error.detail).toBe("container did not exit within 1500 ms");
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(await engine.listByLabel(run.selector)).toEqual([]);
    });

    it.each(["runc", "runsc"] as const)(
      "shows its hardening to an outside client (docker inspect, %s)",
      async (runtime) => {
        const spec = buildHardenedContainerSpec(input(runtime, { capAdd: ["NET_BIND_SERVICE"] }));
        const id = await engine.create(spec);
        try {
          const [inspected] = JSON.parse(await dockerCli(["inspect", id])) as [
            { Config: Record<string, unknown>; HostConfig: Record<string, unknown> },
          ];
          const host = inspected.HostConfig;
          expect(host.Runtime).toBe(runtime);
          expect(host.ReadonlyRootfs).toBe(true);
          expect(host.Privileged).toBe(false);
          expect(host.CapDrop).toEqual(["ALL"]);
          expect(host.CapAdd).toEqual(["NET_BIND_SERVICE"]);
          expect(host.SecurityOpt).toEqual(["no-new-privileges:true"]);
          expect(host.NetworkMode).toBe("none");
          expect(host.PidMode).toBe("");
          expect(host.IpcMode).toBe("private");
          expect(host.UsernsMode).toBe("");
          expect(host.Binds ?? []).toEqual([]);
          expect(host.Mounts ?? []).toEqual([]);
          expect(host.Devices ?? []).toEqual([]);
          expect(host.Memory).toBe(LIMITS.memoryBytes);
          expect(host.NanoCpus).toBe(LIMITS.nanoCpus);
          expect(host.PidsLimit).toBe(LIMITS.pids + (runtime === "runsc" ? RUNSC_OVERHEAD.pids : 0));
          expect(host.Tmpfs).toEqual({ "/tmp": `rw,noexec,nosuid,nodev,size=${16 * MiB},mode=1777` });
          expect(host.AutoRemove).toBe(false);
          expect(inspected.Config.User).toBe("1000:1000");
          expect(inspected.Config.Labels).toMatchObject({ ...run.labels, [MANAGED_LABEL]: "true" });
        } finally {
          await engine.remove(id);
        }
      },
    );

    it("labels the imported test image, so that it can be found and removed", async () => {
      const [info] = JSON.parse(await dockerCli(["image", "inspect", image])) as [{ Config: { Labels: unknown } }];
      expect(info.Config.Labels).toEqual(run.labels);
    });

    it("leaves no container behind", async () => {
      const left = await dockerCli(["ps", "-a", "-q", "--filter", `label=${run.selector}`]);
      expect(left.trim()).toBe("");
    });
  },
  { runtimes: ["runc", "runsc"] },
);
