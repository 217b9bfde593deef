import { describe, expect, it } from "vitest";
import { refusal } from "../support/refusal.js";
import {
  MANAGED_LABEL,
  RUNSC_OVERHEAD,
  buildHardenedContainerSpec,
  type HardenedContainerInput,
} from "../../src/runtime/index.js";

const VALID: HardenedContainerInput = {
  image: "portcullis-test/busybox:abc",
  user: "1000:1000",
  limits: { memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pids: 64 },
  cmd: ["/bin/sh", "-c", "true"],
};

function specRefusal(input: unknown): { code: string; detail: string } {
  const e = refusal(() => buildHardenedContainerSpec(input as HardenedContainerInput));
  return { code: e.code, detail: e.detail ?? "" };
}

const with_ = (patch: Record<string, unknown>): unknown => ({ ...VALID, ...patch });
const limits = (patch: Record<string, unknown>): unknown => ({ ...VALID, limits: { ...VALID.limits, ...patch } });
const without = (field: string): unknown => {
  const copy: Record<string, unknown> = { ...VALID };
  delete copy[field];
  return copy;
};

describe("buildHardenedContainerSpec", () => {
  it("builds the hardened create options", () => {
    const spec = buildHardenedContainerSpec({
      ...VALID,
      runtime: "runc",
      capAdd: ["NET_BIND_SERVICE"],
      labels: { "io.portcullis.test": "1" },
      env: { MODE: "probe" },
      workingDir: "/",
      name: "probe-1",
      tmpfsBytes: 16 * 1024 * 1024,
    });
    expect(spec).toEqual({
      name: "probe-1",
      Image: "portcullis-test/busybox:abc",
      Cmd: ["/bin/sh", "-c", "true"],
      User: "1000:1000",
      Env: ["MODE=probe"],
      WorkingDir: "/",
      Labels: { "io.portcullis.test": "1", [MANAGED_LABEL]: "true" },
      Tty: false,
      OpenStdin: false,
      AttachStdin: false,
      StdinOnce: false,
      HostConfig: {
        Runtime: "runc",
        Privileged: false,
        ReadonlyRootfs: true,
        CapDrop: ["ALL"],
        CapAdd: ["NET_BIND_SERVICE"],
        SecurityOpt: ["no-new-privileges:true"],
        NetworkMode: "none",
        IpcMode: "private",
        PidMode: "",
        UTSMode: "",
        UsernsMode: "",
        CgroupnsMode: "private",
        Memory: 64 * 1024 * 1024,
        MemorySwap: 64 * 1024 * 1024,
        NanoCpus: 500_000_000,
        PidsLimit: 64,
        Tmpfs: { "/tmp": "rw,noexec,nosuid,nodev,size=16777216,mode=1777" },
        Binds: [],
        Mounts: [],
        Devices: [],
        PortBindings: {},
        PublishAllPorts: false,
        Init: false,
        AutoRemove: false,
        RestartPolicy: { Name: "on-failure", MaximumRetryCount: 5 },
        LogConfig: { Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } },
      },
    });
  });

  it("defaults to the gVisor runtime, no network, no added capability and a bounded /tmp", () => {
    const spec = buildHardenedContainerSpec(VALID);
    expect(spec.HostConfig?.Runtime).toBe("runsc");
    expect(spec.HostConfig?.NetworkMode).toBe("none");
    expect(spec.HostConfig?.CapAdd).toEqual([]);
    expect(spec.HostConfig?.Tmpfs?.["/tmp"]).toBe("rw,noexec,nosuid,nodev,size=67108864,mode=1777");
    expect(JSON.stringify(spec)).not.toMatch(/unconfined/);
  });

  it("gives the gVisor sandbox its own pids on top of the workload's", () => {
    expect(buildHardenedContainerSpec({ ...VALID, runtime: "runsc" }).HostConfig?.PidsLimit).toBe(64 + RUNSC_OVERHEAD.pids);
    expect(buildHardenedContainerSpec({ ...VALID, runtime: "runc" }).HostConfig?.PidsLimit).toBe(64);
  });

  it("caps the default /tmp at the memory limit", () => {
    const small = { ...VALID, runtime: "runc" as const, limits: { ...VALID.limits, memoryBytes: 8 * 1024 * 1024 } };
    const spec = buildHardenedContainerSpec(small);
    expect(spec.HostConfig?.Tmpfs?.["/tmp"]).toContain("size=8388608,");
  });

  it("normalises CAP_ prefixes and duplicates", () => {
    const spec = buildHardenedContainerSpec({ ...VALID, capAdd: ["cap_net_bind_service", "NET_BIND_SERVICE"] });
    expect(spec.HostConfig?.CapAdd).toEqual(["NET_BIND_SERVICE"]);
  });

  it("always sets the managed label", () => {
    expect(buildHardenedContainerSpec(VALID).Labels).toEqual({ [MANAGED_LABEL]: "true" });
  });

  it("does not share its result between calls", () => {
    const a = buildHardenedContainerSpec(VALID);
    a.HostConfig!.CapDrop!.pop();
    expect(buildHardenedContainerSpec(VALID).HostConfig?.CapDrop).toEqual(["ALL"]);
  });

  // [case, input, detail]; every refusal is PC_RUNTIME_SPEC_INVALID.
  const refusals: [string, unknown, string][] = [
    ["input that is not an object", "nope", "(input): must be an object"],
    ["an array as input", [], "(input): must be an object"],
    // privileges the input cannot express
    ["privileged", with_({ privileged: true }), "privileged: unknown field"],
    ["Privileged (engine spelling)", with_({ Privileged: true }), "Privileged: unknown field"],
    ["bind mounts", with_({ binds: ["/:/host"] }), "binds: unknown field"],
    ["host PID namespace", with_({ pidMode: "host" }), "pidMode: unknown field"],
    ["a seccomp override", with_({ securityOpt: ["seccomp=unconfined"] }), "securityOpt: unknown field"],
    ["a read-write root filesystem", with_({ readonlyRootfs: false }), "readonlyRootfs: unknown field"],
    ["an unknown limit", limits({ kernelMemory: 1 }), "limits.kernelMemory: unknown field"],
    // image and command
    ["a missing image", without("image"), "image: is required"],
    ["an image with spaces", with_({ image: "busybox latest" }), "image: is not a valid image reference"],
    ["an image with an option", with_({ image: "--privileged" }), "image: is not a valid image reference"],
    ["cmd that is a string", with_({ cmd: "sh -c true" }), "cmd: must be an array of strings"],
    ["an empty cmd", with_({ cmd: [] }), "cmd: must not be empty"],
    ["a cmd element that is not a string", with_({ cmd: ["sh", 1] }), "cmd[1]: must be a string"],
    ["a NUL in the entrypoint", with_({ entrypoint: ["a\0b"] }), "entrypoint[0]: must not contain NUL"],
    // user
    ["a missing user", without("user"), "user: is required"],
    ["an empty user", with_({ user: "" }), "user: is required"],
    ["user root", with_({ user: "root" }), "user: must not be root"],
    ["user root:root", with_({ user: "root:root" }), "user: must not be root"],
    ["uid 0", with_({ user: "0" }), "user: must not be root"],
    ["uid 0 with a group", with_({ user: "0:1000" }), "user: must not be root"],
    ["uid 00", with_({ user: "00:1000" }), "user: must not be root"],
    ["the root group", with_({ user: "1000:0" }), "user: must not use the root group"],
    ["a uid without a gid", with_({ user: "1000" }), "user: must be a numeric uid:gid"],
    ["a user name", with_({ user: "app:app" }), "user: must be a numeric uid:gid"],
    ["a negative uid", with_({ user: "-1:1000" }), "user: must be a numeric uid:gid"],
    ["a uid out of range", with_({ user: "4294967296:1000" }), "user: is out of range"],
    ["a user that is a number", with_({ user: 1000 }), "user: must be a string"],
    // runtime
    ["an unknown runtime", with_({ runtime: "kata" }), "runtime: must be one of runc, runsc"],
    ["the runc shim path", with_({ runtime: "io.containerd.runc.v2" }), "runtime: must be one of runc, runsc"],
    ["an empty runtime", with_({ runtime: "" }), "runtime: must be one of runc, runsc"],
    // limits
    ["missing limits", without("limits"), "limits: is required"],
    ["limits that are not an object", with_({ limits: 5 }), "limits: must be an object"],
    ["a missing memory limit", limits({ memoryBytes: undefined }), "limits.memoryBytes: is required"],
    ["a missing CPU limit", limits({ nanoCpus: undefined }), "limits.nanoCpus: is required"],
    ["a missing pids limit", limits({ pids: undefined }), "limits.pids: is required"],
    ["memory 0 (unlimited)", limits({ memoryBytes: 0 }), "limits.memoryBytes: must be between 6291456 and 274877906944"],
    ["fractional CPUs", limits({ nanoCpus: 1.5 }), "limits.nanoCpus: must be an integer"],
    ["CPU as a string", limits({ nanoCpus: "1e9" }), "limits.nanoCpus: must be an integer"],
    ["pids -1 (unlimited)", limits({ pids: -1 }), "limits.pids: must be between 1 and 32768"],
    ["pids 0", limits({ pids: 0 }), "limits.pids: must be between 1 and 32768"],
    ["too little memory for the gVisor sandbox", limits({ memoryBytes: 16 * 1024 * 1024 }), "limits.memoryBytes: must be at least 33554432 under runsc"],
    ["a tiny tmpfs", with_({ tmpfsBytes: 1 }), "tmpfsBytes: must be between 1048576 and 17179869184"],
    ["a tmpfs above the memory limit", with_({ tmpfsBytes: 128 * 1024 * 1024 }), "tmpfsBytes: must not exceed limits.memoryBytes"],
    // capabilities
    ["SYS_ADMIN", with_({ capAdd: ["SYS_ADMIN"] }), 'capAdd[0]: capability "SYS_ADMIN" is not allowed'],
    ["ALL", with_({ capAdd: ["ALL"] }), 'capAdd[0]: capability "ALL" is not allowed'],
    ["an unknown capability", with_({ capAdd: ["NET_BIND_SERVICE", "CAP_FLY"] }), 'capAdd[1]: capability "CAP_FLY" is not allowed'],
    ["capAdd as a string", with_({ capAdd: "NET_ADMIN" }), "capAdd: must be an array of strings"],
    // network
    ["the host network", with_({ network: "host" }), "network: must not share a host or container namespace"],
    ["another container's network", with_({ network: "container:abc" }), "network: must not share a host or container namespace"],
    ["the default bridge", with_({ network: "bridge" }), 'network: network "bridge" is not allowed'],
    ["a network name with a slash", with_({ network: "a/b" }), 'network: must be "none" or a network name'],
    // labels, env, paths
    ["overriding the managed label", with_({ labels: { [MANAGED_LABEL]: "false" } }), `labels.${MANAGED_LABEL}: is reserved`],
    ["a label value that is not a string", with_({ labels: { a: 1 } }), "labels.a: must be a string"],
    ["a bad label key", with_({ labels: { "=x": "1" } }), "labels.=x: is not a valid name"],
    ["an env name with =", with_({ env: { "A=B": "1" } }), "env.A=B: is not a valid name"],
    ["env as an array", with_({ env: ["A=1"] }), "env: must be an object of strings"],
    ["a relative working dir", with_({ workingDir: "tmp" }), "workingDir: must be an absolute path"],
    ["a working dir with ..", with_({ workingDir: "/tmp/../etc" }), 'workingDir: must not contain ".."'],
    ["a bad container name", with_({ name: "../x" }), "name: is not a valid container name"],
  ];

  it.each(refusals)("refuses %s", (_case, input, detail) => {
    expect(specRefusal(input)).toEqual({ code: "PC_RUNTIME_SPEC_INVALID", detail: `container spec ${detail}` });
  });

  it("checks fields in a fixed order (unknown fields first, then image, user, runtime, limits)", () => {
    expect(specRefusal({ privileged: true, user: "root" }).detail).toBe("container spec privileged: unknown field");
    expect(specRefusal({ user: "root", limits: {} }).detail).toBe("container spec image: is required");
    expect(specRefusal(with_({ user: "root", runtime: "kata" })).detail).toBe("container spec user: must not be root");
    expect(specRefusal(with_({ runtime: "kata", limits: {} })).detail).toBe(
      "container spec runtime: must be one of runc, runsc",
    );
  });
});
