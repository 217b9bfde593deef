/**
 * Placement (placeReplicas) as a pure function: which nodes are eligible, which have
 * room, how replicas are spread or packed, and which refusal a request gets when some
 * replica fits nowhere.
 */
import { describe, expect, it } from "vitest";
import { isPortcullisError } from "../../src/core/index.js";
import { placeReplicas, type NodeCandidate, type PlacementRequest } from "../../src/runtime/scheduler.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const CPU = 1_000_000_000;

function node(name: string, over: Partial<NodeCandidate> = {}): NodeCandidate {
  return {
    name,
    labels: {},
    healthy: true,
    active: true,
    runtimes: ["runc", "runsc"],
    capacity: { nanoCpus: 2 * CPU, memoryBytes: 4 * GiB, pids: 1_000 },
    allocated: { nanoCpus: 0, memoryBytes: 0, pids: 0 },
    hasImage: true,
    sameDeployment: 0,
    ...over,
  };
}

function request(over: Partial<PlacementRequest> = {}): PlacementRequest {
  return {
    replicas: 1,
    resources: { nanoCpus: CPU / 4, memoryBytes: 64 * MiB, pids: 64 },
    runtime: "runsc",
    nodeLabels: {},
    spread: true,
    ...over,
  };
}

/** The code and detail of what `fn` throws. */
function refusal(fn: () => unknown): { code: string; detail: string } {
  try {
    fn();
  } catch (e) {
    if (!isPortcullisError(e)) throw e;
    return { code: e.code, detail: e.detail ?? "" };
  }
  throw new Error("placement did not refuse");
}

describe("placeReplicas: eligibility filters", () => {
  it.each<[string, Partial<NodeCandidate>, Partial<PlacementRequest>, string]>([
    ["an unhealthy node", { healthy: false }, {}, "unreachable"],
    ["a draining node", { active: false }, {}, "draining"],
    ["a node without the placement label", { labels: { zone: "b" } }, { nodeLabels: { zone: "a" } }, "label zone=a missing"],
    ["a node without the label at all", {}, { nodeLabels: { gpu: "true" } }, "label gpu=true missing"],
    ["a node without the runtime", { runtimes: ["runc"] }, { runtime: "runsc" }, "runtime runsc not offered"],
  ])("leaves out %s and names why (PC_RUNTIME_NO_CAPACITY when it is the only one)", (_what, bad, req, why) => {
    const ok = placeReplicas([node("bad", bad), node("good", { labels: { zone: "a", gpu: "true" } })], request(req));
    expect(ok.nodes).toEqual(["good"]);
    expect(ok.skipped).toEqual({ bad: why });
    expect(refusal(() => placeReplicas([node("bad", bad)], request(req)))).toEqual({ code: "PC_RUNTIME_NO_CAPACITY", detail: `bad: ${why}` });
  });

  it("leaves out a node without the image; with no other node it is PC_RUNTIME_IMAGE_NOT_FOUND", () => {
    const ok = placeReplicas([node("a", { hasImage: false }), node("b")], request());
    expect(ok).toEqual({ nodes: ["b"], skipped: { a: "image not present" } });
    expect(refusal(() => placeReplicas([node("a", { hasImage: false })], request()))).toEqual({
      code: "PC_RUNTIME_IMAGE_NOT_FOUND",
      detail: "a: image not present",
    });
  });

  it("checks every label of placement.nodeLabels, not only one", () => {
    const nodes = [node("a", { labels: { zone: "a" } }), node("b", { labels: { zone: "a", disk: "ssd" } })];
    expect(placeReplicas(nodes, request({ nodeLabels: { zone: "a", disk: "ssd" } })).nodes).toEqual(["b"]);
  });

  it("reports the first reason of each node, in filter order", () => {
    const nodes = [
      node("n1", { healthy: false, active: false }),
      node("n2", { active: false, runtimes: [] }),
      node("n3", { runtimes: ["runc"], hasImage: false }),
    ];
    expect(refusal(() => placeReplicas(nodes, request()))).toEqual({
      code: "PC_RUNTIME_NO_CAPACITY",
      detail: "n1: unreachable; n2: draining; n3: runtime runsc not offered",
    });
  });

  it("with no node at all: PC_RUNTIME_NO_CAPACITY, no nodes registered", () => {
    expect(refusal(() => placeReplicas([], request()))).toEqual({ code: "PC_RUNTIME_NO_CAPACITY", detail: "no nodes registered" });
  });
});

describe("placeReplicas: PC_RUNTIME_IMAGE_NOT_FOUND versus PC_RUNTIME_NO_CAPACITY", () => {
  it.each<[string, NodeCandidate[], string]>([
    ["the only node lacks only the image", [node("a", { hasImage: false })], "PC_RUNTIME_IMAGE_NOT_FOUND"],
    [
      "one node lacks the image, another is draining",
      [node("a", { hasImage: false }), node("b", { active: false })],
      "PC_RUNTIME_IMAGE_NOT_FOUND",
    ],
    ["a node lacks the image but is unhealthy too", [node("a", { hasImage: false, healthy: false })], "PC_RUNTIME_NO_CAPACITY"],
    ["a node lacks the image but also the runtime", [node("a", { hasImage: false, runtimes: ["runc"] })], "PC_RUNTIME_NO_CAPACITY"],
    ["a node lacks the image but also the label", [node("a", { hasImage: false })], "PC_RUNTIME_NO_CAPACITY"],
  ])("%s → %s", (what, nodes, code) => {
    const req = what.includes("label") ? request({ nodeLabels: { zone: "x" } }) : request();
    expect(refusal(() => placeReplicas(nodes, req)).code).toBe(code);
  });

  it("an eligible node that holds the image but is full is NO_CAPACITY, even when another lacks the image", () => {
    const full = node("full", { allocated: { nanoCpus: 0, memoryBytes: 4 * GiB, pids: 0 } });
    const r = refusal(() => placeReplicas([full, node("empty", { hasImage: false })], request()));
    expect(r.code).toBe("PC_RUNTIME_NO_CAPACITY");
    expect(r.detail).toContain("empty: image not present");
    expect(r.detail).toContain("full: not enough free memory, CPU or PIDs");
  });
});

describe("placeReplicas: capacity", () => {
  it.each<[string, Partial<NodeCandidate>]>([
    ["memory", { allocated: { nanoCpus: 0, memoryBytes: 4 * GiB - 63 * MiB, pids: 0 } }],
    ["CPU", { allocated: { nanoCpus: 2 * CPU - CPU / 8, memoryBytes: 0, pids: 0 } }],
    ["PIDs", { allocated: { nanoCpus: 0, memoryBytes: 0, pids: 1_000 - 63 } }],
    ["a node whose capacity is zero", { capacity: { nanoCpus: 0, memoryBytes: 0, pids: 0 } }],
  ])("%s exhausted → PC_RUNTIME_NO_CAPACITY naming each node and its reason", (_what, over) => {
    const r = refusal(() => placeReplicas([node("a", over), node("b", { ...over, active: false })], request()));
    expect(r.code).toBe("PC_RUNTIME_NO_CAPACITY");
    expect(r.detail).toBe("replica 1 of 1 fits nowhere; b: draining; a: not enough free memory, CPU or PIDs");
  });

  it("a replica that exactly fills the free room fits", () => {
    const exact = node("a", { capacity: { nanoCpus: CPU / 4, memoryBytes: 64 * MiB, pids: 64 } });
    expect(placeReplicas([exact], request()).nodes).toEqual(["a"]);
  });

  it("counts the replicas of this request against the room: the third of three does not fit where two do", () => {
    const small = node("a", { capacity: { nanoCpus: CPU, memoryBytes: 128 * MiB, pids: 1_000 } });
    expect(placeReplicas([small], request({ replicas: 2 })).nodes).toEqual(["a", "a"]);
    const r = refusal(() => placeReplicas([small], request({ replicas: 3 })));
    expect(r).toEqual({ code: "PC_RUNTIME_NO_CAPACITY", detail: "replica 3 of 3 fits nowhere; a: not enough free memory, CPU or PIDs" });
  });

  it("places nothing when one replica fits nowhere (all or nothing)", () => {
    const nodes = [node("a", { capacity: { nanoCpus: CPU, memoryBytes: 64 * MiB, pids: 1_000 } })];
    expect(refusal(() => placeReplicas(nodes, request({ replicas: 2 }))).code).toBe("PC_RUNTIME_NO_CAPACITY");
  });

  it("does not change the candidates it is given", () => {
    const nodes = [node("a"), node("b")];
    const before = JSON.stringify(nodes);
    placeReplicas(nodes, request({ replicas: 5 }));
    expect(JSON.stringify(nodes)).toBe(before);
  });
});

describe("placeReplicas: spread and pack", () => {
  it("spread: one replica per node in turn", () => {
    const r = placeReplicas([node("a"), node("b"), node("c")], request({ replicas: 5 }));
    expect([...r.nodes].sort()).toEqual(["a", "a", "b", "b", "c"]);
  });

  it("spread: counts the replicas of the deployment already on a node", () => {
    const r = placeReplicas([node("a", { sameDeployment: 2 }), node("b")], request({ replicas: 2 }));
    expect(r.nodes).toEqual(["b", "b"]);
  });

  it("spread: ties go to the node with the most free memory, then the name", () => {
    const busy = node("a", { allocated: { nanoCpus: 0, memoryBytes: GiB, pids: 0 } });
    expect(placeReplicas([busy, node("b")], request()).nodes).toEqual(["b"]);
    expect(placeReplicas([node("z"), node("m")], request()).nodes).toEqual(["m"]);
  });

  it("pack: every replica on the first fitting node (most free memory, then the name)", () => {
    const r = placeReplicas([node("b"), node("a")], request({ replicas: 3, spread: false }));
    expect(r.nodes).toEqual(["a", "a", "a"]);
  });

  it("pack: overflows to the next node when the first is full", () => {
    const small = node("a", { capacity: { nanoCpus: 2 * CPU, memoryBytes: 8 * GiB, pids: 128 } });
    const r = placeReplicas([small, node("b")], request({ replicas: 3, spread: false }));
    expect(r.nodes).toEqual(["a", "a", "b"]);
  });
});

describe("placeReplicas: 0 replicas", () => {
  it("places nothing and refuses nothing, even with no eligible node", () => {
    expect(placeReplicas([], request({ replicas: 0 }))).toEqual({ nodes: [], skipped: {} });
    expect(placeReplicas([node("a", { hasImage: false }), node("b", { healthy: false })], request({ replicas: 0 }))).toEqual({
      nodes: [],
      skipped: { a: "image not present", b: "unreachable" },
    });
  });
});
