import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPortcullisError } from "../../src/core/index.js";
import { LOCAL_ENDPOINT, LOCAL_NODE, PIDS_BUDGET, parseEndpoint } from "../../src/runtime/index.js";
import { eventsSince, mark } from "../api/api-support.js";
import { describeDocker } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";

const actor = { identity: "user:ops" };

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isPortcullisError(e)) return e.code;
    throw e;
  }
  throw new Error("expected an error");
}

function insertReplica(t: TestGateway, node: string, name: string): void {
  t.gw.store.db
    .prepare(
      `INSERT INTO replicas (container_name, namespace, name, revision, ordinal, node, created_at, updated_at) VALUES (?, 'default', ?, 1, 0, ?, 0, 0)`,
    )
    .run(`pc-${name}`, name, node);
}

describe("node registry", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("registers the local engine at init, active, with no labels", () => {
    const local = t.gw.nodes.get(LOCAL_NODE);
    expect(local).toMatchObject({ name: "local", endpoint: LOCAL_ENDPOINT, labels: {}, state: "active", publishHost: "127.0.0.1" });
    expect(t.gw.nodes.list().map((n) => n.name)).toEqual(["local"]);
  });

  it("adds, lists, drains, activates and removes a node, each change audited", () => {
    const since = mark(t);
    const rec = t.gw.nodes.add("engine-1", "tcp://127.0.0.1:2376", { zone: "b", "example.com/tier": "gold" }, actor, { publishHost: "10.0.0.5" });
    expect(rec).toMatchObject({ name: "engine-1", state: "active", publishHost: "10.0.0.5", createdBy: "user:ops" });
    expect(Object.keys(rec.labels)).toEqual(["example.com/tier", "zone"]);
    expect(t.gw.nodes.list().map((n) => n.name)).toEqual(["engine-1", "local"]);
    expect(t.gw.nodes.drain("engine-1", actor).state).toBe("draining");
    expect(t.gw.nodes.get("engine-1").state).toBe("draining");
    expect(t.gw.nodes.activate("engine-1", actor).state).toBe("active");
    t.gw.nodes.remove("engine-1", actor);
    expect(codeOf(() => t.gw.nodes.get("engine-1"))).toBe("PC_RUNTIME_NODE_NOT_FOUND");
    const events = eventsSince(t, since).filter((e) => e.type.startsWith("runtime."));
    expect(events.map((e) => [e.type, e.actor, e.target, e.outcome, e.resource])).toEqual([
      ["runtime.node_added", "user:ops", "engine-1", "allowed", "nodes"],
      ["runtime.node_drained", "user:ops", "engine-1", "allowed", "nodes"],
      ["runtime.node_activated", "user:ops", "engine-1", "allowed", "nodes"],
      ["runtime.node_removed", "user:ops", "engine-1", "allowed", "nodes"],
    ]);
  });

  it.each([
    ["upper case name", "Engine", "tcp://127.0.0.1:2376"],
    ["name with a dot", "a.b", "tcp://127.0.0.1:2376"],
    ["name starting with '-'", "-a", "tcp://127.0.0.1:2376"],
    ["name of 64 characters", "a".repeat(64), "tcp://127.0.0.1:2376"],
    ["plain http", "n1", "http://127.0.0.1:2375"],
    ["https scheme", "n1", "https://127.0.0.1:2376"],
    ["tcp without port", "n1", "tcp://127.0.0.1"],
    ["tcp with port 0", "n1", "tcp://127.0.0.1:0"],
    ["tcp with port 70000", "n1", "tcp://127.0.0.1:70000"],
    ["tcp with a path", "n1", "tcp://127.0.0.1:2376/v1"],
    ["tcp with credentials", "n1", "tcp://u@127.0.0.1:2376"],
    ["unbracketed IPv6", "n1", "tcp://::1:2376"],
    ["relative unix path", "n1", "unix://var/run/docker.sock"],
    ["unix path with ..", "n1", "unix:///var/run/../docker.sock"],
    ["ssh", "n1", "ssh://root@host"],
    ["empty", "n1", ""],
  ])("refuses %s with PC_RUNTIME_NODE_INVALID", (_case, name, endpoint) => {
    expect(codeOf(() => t.gw.nodes.add(name, endpoint, {}, actor))).toBe("PC_RUNTIME_NODE_INVALID");
    expect(t.gw.nodes.list().map((n) => n.name)).toEqual(["local"]);
  });

  it("refuses bad labels and a publish host that is not an IP address", () => {
    expect(codeOf(() => t.gw.nodes.add("n1", "tcp://127.0.0.1:2376", { "bad key": "x" }, actor))).toBe("PC_RUNTIME_NODE_INVALID");
    expect(codeOf(() => t.gw.nodes.add("n1", "tcp://127.0.0.1:2376", { k: "bad value!" }, actor))).toBe("PC_RUNTIME_NODE_INVALID");
    expect(codeOf(() => t.gw.nodes.add("n1", "tcp://127.0.0.1:2376", {}, actor, { publishHost: "example.com" }))).toBe("PC_RUNTIME_NODE_INVALID");
    expect(t.gw.nodes.list().map((n) => n.name)).toEqual(["local"]);
  });

  it("accepts IPv6, DNS names and unix sockets", () => {
    expect(parseEndpoint("tcp://[::1]:2376")).toEqual({ kind: "tcp", host: "::1", port: 2376 });
    expect(parseEndpoint("tcp://engine-2.example.com:2376")).toEqual({ kind: "tcp", host: "engine-2.example.com", port: 2376 });
    expect(parseEndpoint("unix:///run/docker.sock")).toEqual({ kind: "unix", socketPath: "/run/docker.sock" });
  });

  it("refuses a duplicate name and unknown nodes", () => {
    expect(codeOf(() => t.gw.nodes.add("local", LOCAL_ENDPOINT, {}, actor))).toBe("PC_RUNTIME_NODE_EXISTS");
    expect(codeOf(() => t.gw.nodes.drain("nope", actor))).toBe("PC_RUNTIME_NODE_NOT_FOUND");
    expect(codeOf(() => t.gw.nodes.remove("nope", actor))).toBe("PC_RUNTIME_NODE_NOT_FOUND");
    expect(codeOf(() => t.gw.nodes.engine("nope"))).toBe("PC_RUNTIME_NODE_NOT_FOUND");
  });

  it("refuses to remove a node that holds replicas, by the replicas table or a given count", () => {
    t.gw.nodes.add("busy", "tcp://127.0.0.1:2376", {}, actor);
    insertReplica(t, "busy", "web");
    expect(codeOf(() => t.gw.nodes.remove("busy", actor))).toBe("PC_RUNTIME_NODE_IN_USE");
    t.gw.store.db.prepare(`DELETE FROM replicas WHERE node = ?`).run("busy");
    expect(codeOf(() => t.gw.nodes.remove("busy", actor, () => 2))).toBe("PC_RUNTIME_NODE_IN_USE");
    expect(t.gw.nodes.get("busy").name).toBe("busy");
    t.gw.nodes.remove("busy", actor);
    expect(t.gw.nodes.list().map((n) => n.name)).toEqual(["local"]);
  });

  it("keeps one engine per node and builds a new one when the record changes", () => {
    t.gw.nodes.add("e2", "tcp://127.0.0.1:2376", {}, actor);
    const first = t.gw.nodes.engine("e2");
    expect(t.gw.nodes.engine("e2")).toBe(first);
    t.gw.nodes.remove("e2", actor);
    t.gw.nodes.add("e2", "tcp://127.0.0.1:2377", {}, actor);
    expect(t.gw.nodes.engine("e2")).not.toBe(first);
    t.gw.nodes.remove("e2", actor);
  });

  it("reports an engine that does not answer as unreachable, within the health timeout", async () => {
    t.gw.nodes.add("gone", "tcp://127.0.0.1:1", {}, actor);
    const start = Date.now();
    const s = await t.gw.nodes.status("gone");
    expect(Date.now() - start).toBeLessThan(2_500);
    expect(s).toMatchObject({ health: "unreachable", runtimes: [], capacity: { nanoCpus: 0, memoryBytes: 0, pids: 0 } });
    t.gw.nodes.remove("gone", actor);
  });
});

describeDocker("node registry with the local engine", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("reports the local engine healthy with its runtimes and capacity", async () => {
    const s = await t.gw.nodes.status(LOCAL_NODE, { fresh: true });
    expect(s.health).toBe("ok");
    expect(s.runtimes).toContain("runc");
    expect(s.version).toMatch(/^\d+\.\d+/);
    expect(s.capacity.nanoCpus).toBeGreaterThanOrEqual(1e9);
    expect(s.capacity.nanoCpus % 1e9).toBe(0);
    expect(s.capacity.memoryBytes).toBeGreaterThan(2 ** 28);
    expect(s.capacity.pids).toBe(PIDS_BUDGET);
    expect(await t.gw.nodes.status(LOCAL_NODE)).toBe(s);
    const all = await t.gw.nodes.refresh();
    expect(all.get(LOCAL_NODE)?.health).toBe("ok");
  });
});
