/**
 * The developer's path end to end, through the real CLI, a real gateway and the real
 * engine: deploy signed, see it running (under gVisor when asked), update it, scale it,
 * roll it back, read logs, delete it.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { busyboxManifest, cleanupDeployments, cli, gatewayContainers, writeFile, writeManifest, writeProfile } from "./deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `pay-${run.id}`;
const DEMO_NS = `demo-${run.id}`;
const DEMO_REPO = "portcullis-test/hello";
const demoTag = `${DEMO_REPO}:${run.id}`;
const ROOT = resolve(import.meta.dirname, "../..");
let tg: TestGateway;
let image: string;
let imageId: string;
let dev: string;

interface Decision {
  outcome: string;
  revision: number;
  replicas: number;
  jti: string;
  imageId: string;
  runtime: { requested: string; actual: string[] };
  placement: { container: string; node: string; runtime: string | null; containerId: string | null }[];
}

describeDocker("signed deploys through the CLI", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { reconcileIntervalMs: 500, rollout: { pollMs: 100, settleMs: 500 } } });
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageId = (JSON.parse(await dockerCli(["image", "inspect", image])) as { Id: string }[])[0]!.Id;
    tg.gw.namespaces.create(NS, {}, { identity: "user:admin" });
    tg.gw.namespaces.create(DEMO_NS, { "portcullis.io/runtime": "sandboxed" }, { identity: "user:admin" });
    const devCert = tg.issueClient("user:dev1");
    tg.gw.policy.bind("user:dev1", "developer", NS, { identity: "user:admin" });
    tg.gw.policy.bind("user:dev1", "developer", DEMO_NS, { identity: "user:admin" });
    dev = writeProfile(tg, "dev1", devCert, "user:dev1");
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [NS, DEMO_NS], run).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
    await engine.removeImage(demoTag).catch(() => undefined);
  });

  itDocker("deploys, shows, scales, updates, rolls back, logs and deletes", async () => {
    const m1 = writeManifest(tg, "web.yaml", busyboxManifest(NS, "web", `portcullis-test/busybox@${imageId}`, { replicas: 2, runtime: "sandboxed" }));
    const r1 = await cli(dev, ["deploy", "-f", m1]);
    expect(r1.stderr).toBe("");
    expect(r1.code).toBe(0);
    const d1 = JSON.parse(r1.stdout) as Decision;
    expect(d1.outcome).toBe("deployed");
    expect(d1.revision).toBe(1);
    expect(d1.imageId).toBe(imageId);
    expect(d1.runtime).toEqual({ requested: "runsc", actual: ["runsc"] });
    expect(d1.placement).toHaveLength(2);

    // The engine agrees: two running containers, under runsc, labelled with the request.
    const running = await gatewayContainers(tg.gw.deployments.gatewayId);
    expect(running.map((c) => c.state)).toEqual(["running", "running"]);
    for (const c of running) {
      const inspect = JSON.parse(await dockerCli(["inspect", c.name])) as { HostConfig: { Runtime: string }; Config: { Labels: Record<string, string> } }[];
      expect(inspect[0]!.HostConfig.Runtime).toBe("runsc");
      expect(inspect[0]!.Config.Labels["io.portcullis.jti"]).toBe(d1.jti);
      expect(inspect[0]!.Config.Labels["io.portcullis.revision"]).toBe("1");
    }

    const got = JSON.parse((await cli(dev, ["get", "deployment", "web", "-n", NS])).stdout) as { ready: number; replicas: number; runtime: string };
    expect(got).toMatchObject({ ready: 2, replicas: 2, runtime: "runsc" });

    // Scale down to 1.
    const rs = await cli(dev, ["scale", "deployment", "web", "--replicas", "1", "-n", NS]);
    expect(rs.code, rs.stderr).toBe(0);
    expect((JSON.parse(rs.stdout) as Decision).replicas).toBe(1);
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toHaveLength(1);

    // Update: a new command, rolled out as revision 2.
    const m2 = writeManifest(tg, "web2.yaml", busyboxManifest(NS, "web", `portcullis-test/busybox@${imageId}`, {
      replicas: 1, runtime: "sandboxed", command: ["/bin/sh", "-c", "echo revision-two; trap 'exit 0' TERM; while true; do sleep 1; done"],
    }));
    const r2 = await cli(dev, ["deploy", "-f", m2]);
    expect(r2.code, r2.stderr).toBe(0);
    const d2 = JSON.parse(r2.stdout) as Decision;
    expect(d2).toMatchObject({ outcome: "updated", revision: 2 });
    const after = await gatewayContainers(tg.gw.deployments.gatewayId);
    expect(after.map((c) => c.labels["io.portcullis.revision"])).toEqual(["2"]);

    const logs = await cli(dev, ["logs", "web", "-n", NS]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain("revision-two");

    // Roll back: a new signed update carrying revision 1's manifest.
    const undo = await cli(dev, ["rollout", "undo", "web", "-n", NS]);
    expect(undo.code, undo.stderr).toBe(0);
    expect(JSON.parse(undo.stdout) as Decision).toMatchObject({ outcome: "updated", revision: 3 });
    const hist = JSON.parse((await cli(dev, ["rollout", "history", "web", "-n", NS])).stdout) as { revision: number; status: string; digest: string }[];
    expect(hist.map((h) => [h.revision, h.status])).toEqual([[1, "superseded"], [2, "superseded"], [3, "complete"]]);
    expect(hist[2]!.digest).toBe(hist[0]!.digest);

    const del = await cli(dev, ["delete", "deployment", "web", "-n", NS]);
    expect(del.code, del.stderr).toBe(0);
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);
    const gone = await cli(dev, ["get", "deployment", "web", "-n", NS]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("PC_DEPLOY_NOT_FOUND");
  }, { runtimes: ["runsc"] }, 180_000);

  itDocker("the README's developer walkthrough: demo image, examples/hello.yaml, update, undo", async () => {
    // As written in the README, with this run's namespace and image tag: the example is
    // pinned to the printed image id (sed "s|local/hello:1|local/hello@$ID|", every line).
    const { stdout: id } = await promisify(execFile)("bash", [resolve(ROOT, "scripts/demo-image.sh"), demoTag]);
    expect(id.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const example = readFileSync(resolve(ROOT, "examples/hello.yaml"), "utf8")
      .replace("namespace: payments", `namespace: ${DEMO_NS}`)
      .replaceAll("local/hello:1", `${DEMO_REPO}@${id.trim()}`);
    expect(example).toMatch(new RegExp(`^  image: ${DEMO_REPO}@${id.trim()}\\s`, "m"));
    const v1 = writeFile(tg, "hello.yaml", example);
    const r1 = await cli(dev, ["deploy", "-f", v1]);
    expect(r1.code, r1.stderr).toBe(0);
    const d1 = JSON.parse(r1.stdout) as Decision;
    expect(d1).toMatchObject({ outcome: "deployed", replicas: 2, imageId: id.trim(), runtime: { requested: "runsc", actual: ["runsc"] } });
    const got = JSON.parse((await cli(dev, ["get", "deployment", "hello", "-n", DEMO_NS])).stdout) as { ready: number; containers: { runtime: string; health: string }[] };
    expect(got.ready).toBe(2);
    expect(got.containers.map((c) => [c.runtime, c.health])).toEqual([["runsc", "healthy"], ["runsc", "healthy"]]);
    expect((await cli(dev, ["logs", "hello", "-n", DEMO_NS])).stdout).toMatch(/hello from \S+, uid 10001/);

    const v2 = writeFile(tg, "hello-v2.yaml", example.replace("GREETING: hello", "GREETING: bonjour"));
    const r2 = await cli(dev, ["deploy", "-f", v2]);
    expect(r2.code, r2.stderr).toBe(0);
    expect((JSON.parse(r2.stdout) as Decision).revision).toBe(d1.revision + 1);
    expect((await cli(dev, ["logs", "hello", "-n", DEMO_NS])).stdout).toContain("bonjour from");

    const undo = await cli(dev, ["rollout", "undo", "hello", "-n", DEMO_NS]);
    expect(undo.code, undo.stderr).toBe(0);
    expect((await cli(dev, ["logs", "hello", "-n", DEMO_NS])).stdout).not.toContain("bonjour");

    // The namespace demands the sandbox: the same manifest under runc is refused.
    const std = writeFile(tg, "hello-std.yaml", example.replace("runtime: sandboxed", "runtime: standard"));
    const refused = await cli(dev, ["deploy", "-f", std]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("PC_ADMISSION_DENIED");
    expect(refused.stderr).toMatch(/runtime-class \(spec\.runtime\)/);
    expect((await cli(dev, ["delete", "deployment", "hello", "-n", DEMO_NS])).code).toBe(0);
  }, { runtimes: ["runsc"] }, 180_000);
});
