/**
 * Placement: which node runs each new replica. A pure function of the nodes as they are
 * now and what the replicas need, so that it can be tested without engines.
 *
 * Filter, then spread:
 * - a node is eligible when it is healthy, active (not draining), carries every label of
 *   `placement.nodeLabels`, offers the runtime asked for, holds the image, and, for a
 *   deployment with secrets, runs on the gateway's own host (its secret files are written
 *   there and bind-mounted; an engine reached over TCP cannot see them);
 * - a replica fits on an eligible node when the node's free memory, CPU and PIDs (its
 *   capacity minus what the replicas already placed there reserve, their limits being
 *   reservations) cover the replica's limits, and none of the host ports it publishes is
 *   taken there (by another deployment, or by another replica of this request);
 * - with `spread`, each replica goes to the fitting node with the fewest replicas of this
 *   deployment (then the most free memory, then the name); without it, replicas pack: each
 *   goes to the fitting node with the most replicas of this deployment, so a node fills up
 *   before the next is used (ties as with spread).
 *
 * When some replica fits nowhere, nothing is placed and the whole request is refused.
 */
import { pcError } from "../core/index.js";

export interface Resources {
  readonly nanoCpus: number;
  readonly memoryBytes: number;
  readonly pids: number;
}

export interface NodeCandidate {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly healthy: boolean;
  readonly active: boolean;
  readonly runtimes: readonly string[];
  readonly capacity: Resources;
  /** What replicas already placed on the node reserve. */
  readonly allocated: Resources;
  /** Whether the node holds the image (resolved to the same id on every node). */
  readonly hasImage: boolean;
  /** Replicas of this deployment already on the node (kept through an update). */
  readonly sameDeployment: number;
  /** Host ports other deployments publish on the node, as "tcp/8080". */
  readonly usedHostPorts?: ReadonlySet<string>;
  /** Whether the node's engine runs on the gateway's host (a unix socket); absent: no. */
  readonly local?: boolean;
}

export interface PlacementRequest {
  readonly replicas: number;
  readonly resources: Resources;
  readonly runtime: string;
  readonly nodeLabels: Readonly<Record<string, string>>;
  readonly spread: boolean;
  /** Host ports each replica publishes, as "tcp/8080". */
  readonly hostPorts?: readonly string[];
  /** The replicas mount secret files: only nodes on the gateway's host will do. */
  readonly secrets?: boolean;
}

/** Why a node cannot run a replica with secrets. */
export function remoteNodeReason(node: string): string {
  return `secrets are injected from the gateway's host; node ${node} is remote`;
}

/** Why each node was left out, for the error detail and the decision record. */
export interface PlacementResult {
  readonly nodes: readonly string[];
  readonly skipped: Readonly<Record<string, string>>;
}

function ineligibility(n: NodeCandidate, req: PlacementRequest): string | undefined {
  if (!n.healthy) return "unreachable";
  if (!n.active) return "draining";
  for (const [k, v] of Object.entries(req.nodeLabels)) {
    if (n.labels[k] !== v) return `label ${k}=${v} missing`;
  }
  if (!n.runtimes.includes(req.runtime)) return `runtime ${req.runtime} not offered`;
  if (req.secrets === true && n.local !== true) return remoteNodeReason(n.name);
  if (!n.hasImage) return "image not present";
  return undefined;
}

function fits(free: Resources, need: Resources): boolean {
  return free.memoryBytes >= need.memoryBytes && free.nanoCpus >= need.nanoCpus && free.pids >= need.pids;
}

/** Places `req.replicas` replicas, or throws PC_RUNTIME_NO_CAPACITY / PC_RUNTIME_IMAGE_NOT_FOUND. */
export function placeReplicas(candidates: readonly NodeCandidate[], req: PlacementRequest): PlacementResult {
  const skipped: Record<string, string> = {};
  const pool: { name: string; free: { nanoCpus: number; memoryBytes: number; pids: number }; count: number; ports: Set<string> }[] = [];
  const wanted = req.hostPorts ?? [];
  for (const n of candidates) {
    const why = ineligibility(n, req);
    if (why !== undefined) {
      skipped[n.name] = why;
      continue;
    }
    pool.push({
      name: n.name,
      free: {
        nanoCpus: n.capacity.nanoCpus - n.allocated.nanoCpus,
        memoryBytes: n.capacity.memoryBytes - n.allocated.memoryBytes,
        pids: n.capacity.pids - n.allocated.pids,
      },
      count: n.sameDeployment,
      ports: new Set(n.usedHostPorts ?? []),
    });
  }
  if (req.replicas === 0) return { nodes: [], skipped };
  if (pool.length === 0) {
    // Eligible but for the image: the image is what is missing.
    if (candidates.some((n) => ineligibility({ ...n, hasImage: true }, req) === undefined)) {
      throw pcError("PC_RUNTIME_IMAGE_NOT_FOUND", describe(skipped));
    }
    throw pcError("PC_RUNTIME_NO_CAPACITY", describe(skipped));
  }
  const placed: string[] = [];
  for (let i = 0; i < req.replicas; i++) {
    const fitting = pool.filter((p) => fits(p.free, req.resources) && wanted.every((port) => !p.ports.has(port)));
    if (fitting.length === 0) {
      for (const p of pool) {
        skipped[p.name] ??= wanted.some((port) => p.ports.has(port)) ? `host port ${wanted.find((port) => p.ports.has(port))} taken` : "not enough free memory, CPU or PIDs";
      }
      throw pcError("PC_RUNTIME_NO_CAPACITY", `replica ${i + 1} of ${req.replicas} fits nowhere; ${describe(skipped)}`);
    }
    fitting.sort((a, b) =>
      (req.spread ? a.count - b.count : b.count - a.count) || b.free.memoryBytes - a.free.memoryBytes || (a.name < b.name ? -1 : 1),
    );
    const chosen = fitting[0] as (typeof pool)[number];
    chosen.count++;
    chosen.free.memoryBytes -= req.resources.memoryBytes;
    chosen.free.nanoCpus -= req.resources.nanoCpus;
    chosen.free.pids -= req.resources.pids;
    for (const port of wanted) chosen.ports.add(port);
    placed.push(chosen.name);
  }
  return { nodes: placed, skipped };
}

function describe(skipped: Readonly<Record<string, string>>): string {
  const parts = Object.entries(skipped).map(([n, why]) => `${n}: ${why}`);
  return parts.length === 0 ? "no nodes registered" : parts.join("; ");
}
