/**
 * A node whose engine stops and starts again, as the gateway sees it: the node is
 * degraded while its event stream is down (the API says so), and events the engine
 * emits after its restart, before the stream is back, are handled once it is — none
 * missed, none twice.
 */
import Docker from "dockerode";
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, itDocker, newTestRun, RUN_LABEL, TEST_LABEL } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { copyImage } from "../support/second-engine.js";
import { apiCall, engineCredentials, eventually, restartableEngine, type ApiClient, type RestartableEngine } from "../runtime/deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const docker = new Docker();

let tg: TestGateway;
let edge: RestartableEngine | undefined;
let admin: ApiClient;
let image = "";

async function eventsState(node: string): Promise<string | undefined> {
  const r = await apiCall(tg.api, admin, "GET", "/v1/nodes", undefined, { timeoutMs: 10_000 });
  expect(r.status, r.body ?? r.error).toBe(200);
  return (JSON.parse(r.body ?? "{}") as { items: { name: string; events?: string }[] }).items.find((n) => n.name === node)?.events;
}

async function strayOn(d: Docker, name: string): Promise<void> {
  const c = await d.createContainer({ name, Image: image, Cmd: ["sleep", "60"], Labels: { [TEST_LABEL]: "1", [RUN_LABEL]: run.id } });
  await c.start();
}

describeDocker("a node's event stream across an engine restart", () => {
  beforeAll(async () => {
    // A long first reconnect delay: the engine is back, and busy, before the stream is.
    tg = await startTestGateway({ vulndb: false, start: { monitoring: { reconnectBaseMs: 4_000, pollNodesMs: 200 } } });
    admin = { trustDomain: tg.gw.config.trustDomain, caPem: tg.caPem, certPem: tg.admin.certPem, keyPem: tg.admin.keyPem };
    image = await buildBusyboxImage(engine, run, {});
    edge = await restartableEngine(engineCredentials(tg, "edge"));
    await copyImage(docker, edge.docker, image);
    tg.gw.nodes.add("edge", edge.endpoint, {}, { identity: "user:admin" });
  }, 120_000);

  afterAll(async () => {
    await tg?.close();
    await edge?.destroy();
    await cleanupTestRun(engine, run, image).catch(() => undefined);
  }, 60_000);

  itDocker("marks the node degraded while its stream is down, and handles what the engine emitted before it came back", async () => {
    const e = edge!;
    await eventually(async () => ((await eventsState("edge")) === "up" ? true : undefined), 20_000, "the edge stream up");
    await strayOn(e.docker, "stray-before");
    const before = await eventually(async () => tg.gw.alerts.list({ rule: "container-drift" }).find((a) => a.node === "edge" && a.container === "stray-before"), 15_000, "drift on edge");
    expect(before.severity).toBe("high");

    await e.stop();
    await eventually(async () => ((await eventsState("edge")) === "degraded" ? true : undefined), 20_000, "the edge node degraded");
    await e.start();
    // Right after the engine is back; the stream is still waiting out its backoff.
    await strayOn(e.docker, "stray-after");
    expect(await eventsState("edge")).toBe("degraded");

    const after = await eventually(async () => tg.gw.alerts.list({ rule: "container-drift" }).find((a) => a.node === "edge" && a.container === "stray-after"), 40_000, "drift for the container made while the stream was down");
    expect(after.count).toBe(1);
    await eventually(async () => ((await eventsState("edge")) === "up" ? true : undefined), 20_000, "the edge stream up again");
    // Each engine event of the two containers was handled once.
    const created = tg.gw.store.monitorEvents
      .list({ node: "edge", type: "container", limit: 10_000 })
      .filter((ev) => ev.action === "create")
      .map((ev) => ev.attributes.name)
      .sort();
    expect(created).toEqual(["stray-after", "stray-before"]);
    // The local node is watched too, and was never degraded by the other's outage.
    expect(await eventsState("local")).toBe("up");
  });
});
