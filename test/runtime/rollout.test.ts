/**
 * Rollouts through the real CLI, a real gateway and the real engine: a rolling update
 * with a healthcheck stays within maxSurge / maxUnavailable the whole time; an update
 * whose healthcheck never passes is rolled back to the revision it replaced, whose
 * containers never stopped; a create whose container exits at once leaves nothing.
 */
import Docker from "dockerode";
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { auditEntries, busyboxManifest, cli, deploymentContainers, writeManifest, writeProfile } from "./deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const docker = new Docker();
const NS = `roll-${run.id}`;
const REPLICAS = 3;
const RESOURCES = { cpus: 0.1, memory: "32Mi", pids: 32 };
/** Becomes ready (creates /tmp/ready) a second after it starts; stops on TERM. */
const readyAfterASecond = (tag: string) => ["/bin/sh", "-c", `echo ${tag}; trap 'exit 0' TERM; sleep 1; touch /tmp/ready; while true; do sleep 1; done`];
const healthcheck = (file: string) => ({ command: ["/bin/sh", "-c", `test -f ${file}`], interval: "1s", retries: 2 });

let tg: TestGateway;
let dev = "";
let image = "";
let imageRef = "";
let gatewayId = "";

describeDocker("rollouts", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { reconcileIntervalMs: 1_000, rollout: { pollMs: 100, settleMs: 500 } } });
    gatewayId = tg.gw.deployments.gatewayId;
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = `portcullis-test/busybox@${(JSON.parse(await dockerCli(["image", "inspect", image])) as { Id: string }[])[0]!.Id}`;
    tg.gw.namespaces.create(NS, {}, { identity: "user:admin" });
    tg.gw.policy.bind("user:dev1", "developer", NS, { identity: "user:admin" });
    dev = writeProfile(tg, "dev1", tg.issueClient("user:dev1"), "user:dev1");
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`).catch(() => undefined);
    await cleanupTestRun(engine, run, image).catch(() => undefined);
  }, 60_000);

  const manifest = (name: string, spec: Record<string, unknown>) => busyboxManifest(NS, name, imageRef, { replicas: REPLICAS, resources: RESOURCES, ...spec });

  itDocker("a rolling update never has fewer than `replicas` ready nor more than replicas + maxSurge containers", async () => {
    const m1 = writeManifest(tg, "web1.yaml", manifest("web", { command: readyAfterASecond("one"), healthcheck: healthcheck("/tmp/ready") }));
    const r1 = await cli(dev, ["deploy", "-f", m1]);
    expect(r1.code, r1.stderr).toBe(0);
    const first = await deploymentContainers(docker, gatewayId, "web");
    expect(first.map((c) => [c.revision, c.state, /\(healthy\)/.test(c.status)])).toEqual(Array(REPLICAS).fill([1, "running", true]));

    // Watch the engine while the update runs.
    const samples: { total: number; ready: number; revisions: number[] }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const cs = await deploymentContainers(docker, gatewayId, "web");
        const ready = cs.filter((c) => c.state === "running" && /\(healthy\)/.test(c.status)).length;
        samples.push({ total: cs.length, ready, revisions: [...new Set(cs.map((c) => c.revision))].sort() });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const m2 = writeManifest(tg, "web2.yaml", manifest("web", { command: readyAfterASecond("two"), healthcheck: healthcheck("/tmp/ready") }));
    const r2 = await cli(dev, ["deploy", "-f", m2]);
    watching = false;
    await watcher;
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ outcome: "updated", revision: 2, replicas: REPLICAS });

    // The watch saw the update: both revisions at once, and the surge in use.
    expect(samples.length).toBeGreaterThan(20);
    expect(samples.some((s) => s.revisions.join() === "1,2")).toBe(true);
    expect(Math.max(...samples.map((s) => s.total))).toBe(REPLICAS + 1);
    expect(Math.min(...samples.map((s) => s.ready)), JSON.stringify(samples.filter((s) => s.ready < REPLICAS))).toBeGreaterThanOrEqual(REPLICAS);

    const after = await deploymentContainers(docker, gatewayId, "web");
    expect(after.map((c) => [c.revision, c.state, /\(healthy\)/.test(c.status)])).toEqual(Array(REPLICAS).fill([2, "running", true]));
    const got = JSON.parse((await cli(dev, ["get", "deployment", "web", "-n", NS])).stdout) as { ready: number; revision: number };
    expect(got).toMatchObject({ ready: REPLICAS, revision: 2 });
  }, {}, 120_000);

  itDocker("an update whose healthcheck never passes is rolled back; the old containers never stopped", async () => {
    const before = await deploymentContainers(docker, gatewayId, "web");
    expect(before.map((c) => c.revision)).toEqual(Array(REPLICAS).fill(2));
    const m3 = writeManifest(tg, "web3.yaml", manifest("web", { command: readyAfterASecond("three"), healthcheck: healthcheck("/tmp/never") }));
    const r3 = await cli(dev, ["deploy", "-f", m3]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain("PC_DEPLOY_ROLLOUT_FAILED");
    expect(r3.stdout).toBe("");

    const after = await deploymentContainers(docker, gatewayId, "web");
    expect(after.map((c) => [c.id, c.revision, c.state])).toEqual(before.map((c) => [c.id, 2, "running"]));
    const hist = JSON.parse((await cli(dev, ["rollout", "history", "web", "-n", NS])).stdout) as { revision: number; status: string; current: boolean }[];
    expect(hist.map((h) => [h.revision, h.status, h.current])).toEqual([[1, "superseded", false], [2, "complete", true], [3, "failed", false]]);
    const back = auditEntries(tg, "deploy.rolled_back").filter((e) => e.body.target === "web");
    expect(back.map((e) => (e.body.deploy as { revision: number }).revision)).toEqual([3]);
    expect(back[0]!.reason).toMatch(/health/);
    const got = JSON.parse((await cli(dev, ["get", "deployment", "web", "-n", NS])).stdout) as { ready: number; revision: number; state: string };
    expect(got).toMatchObject({ ready: REPLICAS, revision: 2, state: "active" });
  }, {}, 120_000);

  itDocker("a create whose container exits at once fails and leaves nothing behind", async () => {
    const m = writeManifest(tg, "dud.yaml", manifest("dud", { replicas: 2, command: ["/bin/sh", "-c", "echo bye; exit 3"] }));
    const r = await cli(dev, ["deploy", "-f", m]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PC_DEPLOY_ROLLOUT_FAILED");
    expect(await deploymentContainers(docker, gatewayId, "dud")).toEqual([]);
    const got = await cli(dev, ["get", "deployment", "dud", "-n", NS]);
    expect(got.code).toBe(1);
    expect(got.stderr).toContain("PC_DEPLOY_NOT_FOUND");
    expect(auditEntries(tg, "deploy.rolled_back").filter((e) => e.body.target === "dud")).toHaveLength(1);
    // And it stays that way: the reconciler does not bring it back.
    await new Promise((res) => setTimeout(res, 2_500));
    expect(await deploymentContainers(docker, gatewayId, "dud")).toEqual([]);
  }, {}, 60_000);
});
