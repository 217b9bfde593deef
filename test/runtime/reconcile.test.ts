/**
 * The reconciler against real engines: what runs is brought back to what the store says
 * should run. A container removed or stopped behind the gateway's back comes back; a
 * container that carries the gateway's label but no record is removed, one without the
 * label is left alone; a replica that keeps ending is restarted with growing delays; a
 * replica on a node that is down is shown as unknown and not moved, and runs again when
 * the node (its dockerd) comes back.
 */
import Docker from "dockerode";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { copyImage } from "../support/second-engine.js";
import {
  auditEntries,
  busyboxManifest,
  convergenceProblem,
  developerIn,
  deploymentContainers,
  engineCredentials,
  eventually,
  getDeployment,
  pinnedRef,
  postSigned,
  restartableEngine,
  signRequest,
  type ApiClient,
  type RestartableEngine,
} from "./deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const docker = new Docker();
const NS = `recon-${run.id}`;
const RESOURCES = { cpus: 0.1, memory: "32Mi", pids: 32 };

let tg: TestGateway;
let dev: ApiClient;
let image = "";
let imageRef = "";
let gatewayId = "";

async function deploy(name: string, spec: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const m = busyboxManifest(NS, name, imageRef, { resources: RESOURCES, ...spec });
  const r = await postSigned(tg.api, dev, NS, await signRequest(dev, "create", m));
  expect(r.status, r.body ?? r.error).toBe(200);
  return m;
}

async function remove(manifest: Record<string, unknown>): Promise<void> {
  const r = await postSigned(tg.api, dev, NS, await signRequest(dev, "delete", manifest));
  expect(r.status, r.body ?? r.error).toBe(200);
}

const containersOf = (name: string, d: Docker = docker) => deploymentContainers(d, gatewayId, name);

async function exists(name: string): Promise<boolean> {
  return dockerCli(["inspect", "--type", "container", name]).then(
    () => true,
    () => false,
  );
}

describeDocker("the reconciler", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { reconcileIntervalMs: 300, rollout: { pollMs: 100, settleMs: 500 } } });
    gatewayId = tg.gw.deployments.gatewayId;
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = await pinnedRef(image);
    dev = developerIn(tg, NS);
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`).catch(() => undefined);
    await cleanupTestRun(engine, run, image).catch(() => undefined);
  }, 60_000);

  itDocker("replaces a container removed behind its back (docker rm -f), and only that one", async () => {
    await deploy("gone", { replicas: 2 });
    const before = await containersOf("gone");
    expect(convergenceProblem(before, 1, 2)).toBeUndefined();
    const [victim, other] = before as [(typeof before)[0], (typeof before)[0]];
    await dockerCli(["rm", "-f", victim.name]);
    const replacedOf = () => auditEntries(tg, "deploy.replica_replaced").filter((e) => e.body.target === victim.name);
    const after = await eventually(async () => {
      const cs = await containersOf("gone");
      const back = convergenceProblem(cs, 1, 2) === undefined && cs.find((c) => c.name === victim.name)?.id !== victim.id;
      return back && replacedOf().length > 0 ? cs : undefined;
    }, 15_000, "the removed replica to come back");
    expect(after.map((c) => c.name)).toEqual(before.map((c) => c.name));
    expect(after.find((c) => c.name === other.name)?.id).toBe(other.id);
    const replaced = replacedOf();
    expect(replaced.map((e) => e.reason)).toEqual(["missing"]);
    expect((await getDeployment(tg.api, dev, NS, "gone"))?.ready).toBe(2);
  }, {}, 60_000);

  itDocker("runs a stopped container again (docker stop)", async () => {
    await deploy("halt");
    const [before] = await containersOf("halt");
    await dockerCli(["stop", "-t", "2", before!.name]);
    const replacedOf = () => auditEntries(tg, "deploy.replica_replaced").filter((e) => e.body.target === before!.name);
    const after = await eventually(async () => {
      const cs = await containersOf("halt");
      return convergenceProblem(cs, 1, 1) === undefined && cs[0]?.id !== before!.id && replacedOf().length > 0 ? cs : undefined;
    }, 15_000, "the stopped replica to run again");
    expect(after.map((c) => [c.name, c.state])).toEqual([[before!.name, "running"]]);
    const replaced = replacedOf();
    expect(replaced).toHaveLength(1);
    expect(String(replaced[0]!.reason)).toMatch(/^exited \(exit \d+\)$/);
  }, {}, 60_000);

  itDocker("removes a container with its label and no record; leaves one without the label alone", async () => {
    const orphan = `pc-${gatewayId}-x-y-r9-0`;
    const stranger = `pc-${gatewayId}-x-y-r9-1`;
    const common = ["run", "-d", "--network", "none", "--label", `io.portcullis.test=1`, "--label", run.selector];
    await dockerCli([...common, "--label", "io.portcullis.gateway=someone-else", "--name", stranger, image, "sleep", "600"]);
    // Created, then started if the reconciler has not removed it already (it may, between the two).
    const created = (await dockerCli(["create", ...common.slice(2), "--label", `io.portcullis.gateway=${gatewayId}`, "--name", orphan, image, "sleep", "600"])).trim();
    expect(created).toMatch(/^[0-9a-f]{64}$/);
    await dockerCli(["start", orphan]).catch(() => undefined);
    await eventually(async () => ((await exists(orphan)) ? undefined : true), 15_000, "the orphan to be removed");
    // Several more passes: the other container stays, running.
    await new Promise((r) => setTimeout(r, 1_500));
    const st = JSON.parse(await dockerCli(["inspect", stranger])) as { State: { Running: boolean } }[];
    expect(st[0]!.State.Running).toBe(true);
    expect(auditEntries(tg, "deploy.orphan_removed").map((e) => e.body.target)).toEqual([orphan]);
    await dockerCli(["rm", "-f", stranger]);
  }, {}, 60_000);

  itDocker("backs off a replica that keeps ending, and replaces one the engine gave up on", async () => {
    // Ends after 1.5 s with success: the engine's on-failure policy leaves it, every restart is the gateway's.
    const brief = await deploy("brief", { command: ["/bin/sh", "-c", "sleep 1.5; exit 0"] });
    // Fails after 1.5 s: the engine restarts it up to its limit, then the gateway replaces it.
    const flaky = await deploy("flaky", { command: ["/bin/sh", "-c", "sleep 1.5; exit 1"] });
    const [b] = await containersOf("brief");
    const [f] = await containersOf("flaky");
    const replacedOf = (name: string) => auditEntries(tg, "deploy.replica_replaced").filter((e) => e.body.target === name);
    const briefs = await eventually(async () => {
      const r = replacedOf(b!.name);
      return r.length >= 4 ? r : undefined;
    }, 30_000, "four restarts of the ending replica");
    const gaps = briefs.slice(1, 4).map((e, i) => e.at - briefs[i]!.at);
    // 1 s, 2 s, 4 s of backoff, counted from each restart, against a process that lives
    // 1.5 s: the first two gaps are the run and its detection (how long a pass takes under
    // load moves them by a few hundred ms), the second at least its 2 s of backoff (less
    // the jitter of two starts), the third its 4 s.
    expect(gaps[1]!, `gaps ${gaps.join(", ")} ms`).toBeGreaterThanOrEqual(1_800);
    expect(gaps[2]!, `gaps ${gaps.join(", ")} ms`).toBeGreaterThan(gaps[1]! + 500);
    expect(gaps[2]!, `gaps ${gaps.join(", ")} ms`).toBeGreaterThanOrEqual(3_500);
    expect(briefs.every((e) => e.reason === "exited (exit 0)")).toBe(true);

    const flakies = await eventually(async () => {
      const r = replacedOf(f!.name);
      return r.length >= 1 ? r : undefined;
    }, 30_000, "the failing replica to be replaced after the engine's retries");
    expect(flakies[0]!.reason).toBe("exited (exit 1)");
    // Not before the engine's own five restarts: at least six runs of 1.5 s.
    const flakyDeployedAt = auditEntries(tg, "deploy.completed").find((e) => (e.body.deploy as { containers?: string[] }).containers?.includes(f!.name))!.at;
    expect(flakies[0]!.at - flakyDeployedAt).toBeGreaterThan(6 * 1_500);
    const [f2] = await containersOf("flaky");
    expect(f2!.id).not.toBe(f!.id);
    await remove(brief);
    await remove(flaky);
    expect(await containersOf("brief")).toEqual([]);
    expect(await containersOf("flaky")).toEqual([]);
  }, {}, 90_000);

  describe("on a second engine", () => {
    let edge: RestartableEngine | undefined;

    beforeAll(async () => {
      edge = await restartableEngine(engineCredentials(tg, "edge"));
      tg.gw.nodes.add("edge", edge.endpoint, { zone: "edge" }, { identity: "user:admin" });
      await copyImage(docker, edge.docker, image);
      await deploy("edgy", { placement: { nodeLabels: { zone: "edge" } } });
    }, 90_000);

    afterAll(async () => {
      await edge?.destroy();
    }, 60_000);

    const onEdge = async () => {
      const cs = await containersOf("edgy", edge!.docker);
      return convergenceProblem(cs, 1, 1) === undefined ? cs : undefined;
    };

    itDocker("a node outage: the replica shows unknown and is not moved; it runs again when the node is back", async () => {
      const [before] = (await onEdge()) ?? [];
      expect(before?.state).toBe("running");
      expect(await containersOf("edgy")).toEqual([]);
      await edge!.stop();
      const down = await eventually(async () => {
        const d = await getDeployment(tg.api, dev, NS, "edgy");
        return d?.containers[0]?.state === "unknown" ? d : undefined;
      }, 15_000, "the replica to show unknown");
      expect(down.containers.map((c) => [c.node, c.state])).toEqual([["edge", "unknown"]]);
      expect(down.ready).toBe(0);
      // Well past the node's health cache: still there, still on edge, nothing on the local engine.
      await new Promise((r) => setTimeout(r, 11_000));
      const still = await getDeployment(tg.api, dev, NS, "edgy");
      expect(still?.containers.map((c) => [c.container, c.node, c.state])).toEqual([[before!.name, "edge", "unknown"]]);
      expect(await containersOf("edgy")).toEqual([]);

      await edge!.start();
      // Within the node's health cache (10 s) and a short backoff: the outage was not the replica's failure.
      const back = await eventually(onEdge, 30_000, "the replica to run again on edge", 300);
      expect(back.map((c) => c.name)).toEqual([before!.name]);
      const d = await eventually(async () => {
        const v = await getDeployment(tg.api, dev, NS, "edgy");
        return v?.ready === 1 ? v : undefined;
      }, 10_000, "get deployment to show it ready");
      expect(d.containers.map((c) => [c.node, c.state])).toEqual([["edge", "running"]]);
      expect(await containersOf("edgy")).toEqual([]);
    }, {}, 120_000);

    itDocker("dockerd restarted under a running deployment: reconnected, reconciled, no duplicate", async () => {
      const [before] = (await eventually(onEdge, 30_000, "the replica on edge")) ?? [];
      await edge!.stop();
      await edge!.start();
      const after = await eventually(onEdge, 30_000, "the replica to run again after the engine restart", 300);
      expect(after.map((c) => c.name)).toEqual([before!.name]);
      const d = await getDeployment(tg.api, dev, NS, "edgy");
      expect(d).toMatchObject({ revision: 1, replicas: 1, ready: 1 });
      expect(d?.containers.map((c) => [c.container, c.node, c.state])).toEqual([[before!.name, "edge", "running"]]);
      expect(await containersOf("edgy")).toEqual([]);
    }, {}, 120_000);
  });
});
