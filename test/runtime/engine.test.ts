import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { rejection } from "../support/refusal.js";
import { DockerEngine, buildHardenedContainerSpec } from "../../src/runtime/index.js";

async function rejectionOf(p: Promise<unknown>): Promise<{ code: string; detail: string | undefined }> {
  const e = await rejection(p);
  return { code: e.code, detail: e.detail };
}

describe("DockerEngine without an engine", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-engine-"));
  const engine = new DockerEngine({ socketPath: join(dir, "docker.sock"), requestTimeoutMs: 2_000 });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reports an unreachable engine on ping, version and runtimes", async () => {
    const unreachable = { code: "PC_RUNTIME_ENGINE_UNAVAILABLE", detail: "container engine unreachable" };
    expect(await rejectionOf(engine.ping())).toEqual(unreachable);
    expect(await rejectionOf(engine.version())).toEqual(unreachable);
    expect(await rejectionOf(engine.runtimes())).toEqual(unreachable);
  });

  it("reports an unreachable engine when asked to run a container", async () => {
    const spec = buildHardenedContainerSpec({
      image: "portcullis-test/busybox:none",
      user: "1000:1000",
      limits: { memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pids: 64 },
    });
    expect(await rejectionOf(engine.runOnce(spec, { timeoutMs: 1_000 }))).toEqual({
      code: "PC_RUNTIME_ENGINE_UNAVAILABLE",
      detail: "container engine unreachable",
    });
  });

  it("refuses a run without a positive timeout", async () => {
    const spec = buildHardenedContainerSpec({
      image: "x",
      user: "1000:1000",
      limits: { memoryBytes: 64 * 1024 * 1024, nanoCpus: 500_000_000, pids: 64 },
    });
    for (const timeoutMs of [0, -1, 1.5, Number.NaN]) {
      expect(await rejectionOf(engine.runOnce(spec, { timeoutMs }))).toEqual({
        code: "PC_RUNTIME_SPEC_INVALID",
        detail: "container spec timeoutMs: must be a positive integer",
      });
    }
  });

  it("refuses label selectors that are not key or key=value", async () => {
    for (const label of ["", "a b", "k=v;rm", "=v"]) {
      expect(await rejectionOf(engine.listByLabel(label))).toEqual({
        code: "PC_RUNTIME_SPEC_INVALID",
        detail: "container spec label: must be key or key=value",
      });
    }
  });
});

describe("DockerEngine configuration", () => {
  it("refuses a remote engine without mutual TLS", () => {
    expect(() => new DockerEngine({ host: "127.0.0.1", port: 2375 })).toThrow(
      "container spec engine: a remote engine needs ca, cert and key (mutual TLS)",
    );
  });

  it("refuses a socket and a host at once", () => {
    expect(
      () => new DockerEngine({ socketPath: "/var/run/docker.sock", host: "127.0.0.1", ca: "x", cert: "y", key: "z" }),
    ).toThrow("container spec engine: socketPath and host are exclusive");
  });
});
