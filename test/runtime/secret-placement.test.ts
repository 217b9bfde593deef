/**
 * A deployment with secrets runs only where its files can be mounted: on a node whose
 * engine is on the gateway's own host (a unix socket). Nodes reached over TCP are left
 * out with a reason that says so; deployments without secrets are placed as before.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPortcullisError } from "../../src/core/index.js";
import { validateManifest, type DeploymentSpec } from "../../src/deploy/index.js";
import { DockerEngine, isLocalEndpoint, Placement, placeReplicas, remoteNodeReason, type NodeAccess, type NodeCandidate } from "../../src/runtime/index.js";
import { Store } from "../../src/store/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { tempDir } from "../support/gateway.js";
import { busyboxManifest } from "./deploy-support.js";

const GiB = 1024 ** 3;

function candidate(name: string, local: boolean | undefined): NodeCandidate {
  return {
    name, labels: {}, healthy: true, active: true, runtimes: ["runc", "runsc"],
    capacity: { nanoCpus: 4e9, memoryBytes: 8 * GiB, pids: 10_000 }, allocated: { nanoCpus: 0, memoryBytes: 0, pids: 0 },
    hasImage: true, sameDeployment: 0, ...(local !== undefined ? { local } : {}),
  };
}

function refusal(fn: () => unknown): { code: string; detail: string } {
  try {
    fn();
  } catch (e) {
    if (isPortcullisError(e)) return { code: e.code, detail: e.detail ?? "" };
    throw e;
  }
  throw new Error("expected a refusal");
}

const REQ = { replicas: 2, resources: { nanoCpus: 1e8, memoryBytes: 64 * 1024 * 1024, pids: 32 }, runtime: "runc", nodeLabels: {}, spread: true };

describe("placement of a deployment with secrets", () => {
  it("leaves out every node that is not on the gateway's host, saying why", () => {
    const nodes = [candidate("local", true), candidate("far", false), candidate("unknown", undefined)];
    const placed = placeReplicas(nodes, { ...REQ, secrets: true });
    expect(placed.nodes).toEqual(["local", "local"]);
    expect(placed.skipped).toEqual({ far: remoteNodeReason("far"), unknown: remoteNodeReason("unknown") });
    expect(remoteNodeReason("far")).toBe("secrets are injected from the gateway's host; node far is remote");
  });

  it("refuses when only remote nodes are left, with each node's reason", () => {
    expect(refusal(() => placeReplicas([candidate("far", false), candidate("other", false)], { ...REQ, secrets: true }))).toEqual({
      code: "PC_RUNTIME_NO_CAPACITY",
      detail: `far: ${remoteNodeReason("far")}; other: ${remoteNodeReason("other")}`,
    });
  });

  it("places a deployment without secrets on remote nodes as before", () => {
    expect(placeReplicas([candidate("far", false), candidate("other", false)], REQ).nodes).toEqual(["far", "other"]);
  });

  it.each([
    ["unix:///var/run/docker.sock", true],
    ["unix:///run/user/1000/docker.sock", true],
    ["tcp://127.0.0.1:2376", false],
    ["tcp://[::1]:2376", false],
    [undefined, false],
    ["", false],
  ])("counts %j as local: %s", (endpoint, local) => {
    expect(isLocalEndpoint(endpoint)).toBe(local);
  });
});

const run = newTestRun();
const engine = new DockerEngine();
let image = "";
let imageRef = "";
const tmp = tempDir();
let store: Store | undefined;

describeDocker("Placement reads where each node's engine is", () => {
  beforeAll(async () => {
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = `portcullis-test/busybox@${(JSON.parse(await dockerCli(["image", "inspect", image])) as { Id: string }[])[0]!.Id}`;
    store = Store.open(tmp.dir);
  }, 60_000);

  afterAll(async () => {
    store?.close();
    tmp.cleanup();
    await cleanupTestRun(engine, run, image).catch(() => undefined);
  });

  /** Two registered nodes on the one engine here, one of them registered over TCP. */
  function access(endpoints: Record<string, string>): NodeAccess {
    return {
      list: () => Object.entries(endpoints).map(([name, endpoint]) => ({ name, endpoint, labels: {}, state: "active", publishHost: "127.0.0.1" })),
      engine: () => engine,
      status: async () => ({ health: "ok", runtimes: ["runc", "runsc"], capacity: { nanoCpus: 4e9, memoryBytes: 8 * GiB, pids: 10_000 } }),
    };
  }
  const specOf = (secrets: boolean): DeploymentSpec =>
    validateManifest(busyboxManifest("team-a", "web", imageRef, { replicas: 2, ...(secrets ? { secrets: [{ name: "db", path: "/run/secrets/db" }] } : {}) })).spec;

  itDocker("places replicas with secrets on the unix-socket node only, and refuses when there is none", async () => {
    const both = new Placement(store!, access({ near: "unix:///var/run/docker.sock", far: "tcp://127.0.0.1:2376" }), () => specOf(false));
    expect((await both.place(specOf(true), imageRef, 2)).nodes).toEqual(["near", "near"]);
    expect([...(await both.place(specOf(false), imageRef, 2)).nodes].sort()).toEqual(["far", "near"]);

    const remoteOnly = new Placement(store!, access({ far: "tcp://127.0.0.1:2376" }), () => specOf(false));
    const e = await remoteOnly.place(specOf(true), imageRef, 1).then(() => undefined, (x: unknown) => x);
    expect(isPortcullisError(e) && [e.code, e.detail]).toEqual(["PC_RUNTIME_NO_CAPACITY", `far: ${remoteNodeReason("far")}`]);
  }, {}, 60_000);
});
