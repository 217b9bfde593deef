/**
 * Where new replicas go: the node candidates as they are now (health, runtimes, capacity,
 * what is already placed, the image), handed to the scheduler. The image is resolved on
 * every reachable node once; its user is checked here, before anything is recorded, so
 * that an image that would run as root is refused (PC_RUNTIME_IMAGE_INVALID), never
 * rolled out. A deployment with secrets is placed only on nodes reached through a unix
 * socket (engines on the gateway's own host), where its secret files can be mounted.
 */
import { isPortcullisError, pcError } from "../core/index.js";
import type { DeploymentSpec } from "../deploy/index.js";
import type { RevisionRecord, Store } from "../store/index.js";
import { RUNTIME_OF_CLASS } from "./container-spec.js";
import type { DockerEngine } from "./engine.js";
import { effectiveUser, resolveImage, type ResolvedImage } from "./images.js";
import { placeReplicas, type NodeCandidate, type Resources } from "./scheduler.js";

/** What placement and the controller need of the node registry. */
export interface NodeAccess {
  list(): readonly {
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly state: string;
    readonly publishHost: string;
    /** `unix:///…` (an engine on the gateway's host) or `tcp://…`; absent counts as remote. */
    readonly endpoint?: string;
  }[];
  engine(name: string): DockerEngine;
  status(name: string): Promise<{ readonly health: string; readonly runtimes: readonly string[]; readonly capacity: Resources }>;
}

export interface Placed {
  /** The node of each new replica, in ordinal order. */
  readonly nodes: readonly string[];
  readonly imageId: string;
}

const NONE: Resources = { nanoCpus: 0, memoryBytes: 0, pids: 0 };

/**
 * Whether a node's engine runs on the gateway's host: reached through a unix socket.
 * (A socket forwarded from another machine would pass this test; an operator who
 * registers one says the engine is local.)
 */
export function isLocalEndpoint(endpoint: string | undefined): boolean {
  return typeof endpoint === "string" && endpoint.startsWith("unix:///");
}

/** The host ports a spec publishes, as "tcp/8080". */
export function hostPortsOf(spec: DeploymentSpec): string[] {
  return spec.network.ports.map((p) => `${p.protocol}/${p.host}`);
}

/**
 * How long an image resolved on a node is reused: one request resolves the image for
 * admission and then again for placement, a moment apart. Short enough that a retag is
 * seen by the next request; containers are created from the resolved id in any case.
 */
const RESOLVED_TTL_MS = 1_000;

export class Placement {
  private readonly resolved = new Map<string, { readonly at: number; readonly image: Promise<ResolvedImage | undefined> }>();

  constructor(
    private readonly store: Store,
    private readonly nodes: NodeAccess,
    private readonly specOf: (rev: RevisionRecord) => DeploymentSpec,
  ) {}

  /**
   * Places `count` new replicas of `spec` running `imageRef`. `replacing`: the request
   * replaces the deployment's replicas (create, update), so theirs do not count as taken
   * (a rollout holds at most maxSurge replicas more than that for a moment).
   */
  async place(spec: DeploymentSpec, imageRef: string, count: number, replacing = false): Promise<Placed> {
    const { candidates, images } = await this.candidates(imageRef, spec.namespace, spec.name, replacing);
    const placed = placeReplicas(candidates, {
      replicas: count,
      resources: spec.resources,
      runtime: RUNTIME_OF_CLASS[spec.runtime],
      nodeLabels: spec.placement.nodeLabels,
      spread: spec.placement.spread,
      hostPorts: hostPortsOf(spec),
      secrets: spec.secrets.length > 0,
    });
    const image = [...images.values()][0];
    if (image === undefined) throw pcError("PC_RUNTIME_IMAGE_NOT_FOUND", spec.image);
    effectiveUser(spec.user, image.user);
    return { nodes: placed.nodes, imageId: image.id };
  }

  /** The image on a node, resolved at most once per RESOLVED_TTL_MS (a failure is not kept). */
  private resolve(node: string, ref: string): Promise<ResolvedImage | undefined> {
    const key = `${node}\n${ref}`;
    const now = Date.now();
    const hit = this.resolved.get(key);
    if (hit !== undefined && now - hit.at < RESOLVED_TTL_MS) return hit.image;
    const image = resolveImage(this.nodes.engine(node), ref);
    this.resolved.set(key, { at: now, image });
    image.catch(() => this.resolved.delete(key));
    if (this.resolved.size > 1_024) for (const [k, v] of this.resolved) if (now - v.at >= RESOLVED_TTL_MS) this.resolved.delete(k);
    return image;
  }

  /**
   * The image as the reachable nodes hold it: its id on each, and its configured user.
   * What admission judges the image by (a malformed reference is refused here already).
   */
  async imageFacts(ref: string): Promise<{ reference: string; idsByNode: Record<string, string>; user?: string }> {
    const idsByNode: Record<string, string> = {};
    let user: string | undefined;
    for (const n of this.nodes.list()) {
      const status = await this.nodes.status(n.name).catch(() => undefined);
      if (status?.health !== "ok") continue;
      const img = await this.resolve(n.name, ref).catch((e: unknown) => {
        if (isPortcullisError(e) && e.code === "PC_RUNTIME_IMAGE_INVALID") throw e;
        return undefined;
      });
      if (img === undefined) continue;
      idsByNode[n.name] = img.id;
      user ??= img.user;
    }
    return user === undefined ? { reference: ref, idsByNode } : { reference: ref, idsByNode, user };
  }

  private async candidates(imageRef: string, namespace: string, name: string, replacing: boolean): Promise<{ candidates: NodeCandidate[]; images: Map<string, ResolvedImage> }> {
    const allocated = new Map<string, Resources>();
    const same = new Map<string, number>();
    const ports = new Map<string, Set<string>>();
    for (const r of this.store.deployments.allReplicas()) {
      const rev = this.store.deployments.revision(r.namespace, r.name, r.revision);
      if (rev === undefined) continue;
      const own = r.namespace === namespace && r.name === name;
      if (!(own && replacing)) {
        const res = this.specOf(rev).resources;
        const a = allocated.get(r.node) ?? NONE;
        allocated.set(r.node, { nanoCpus: a.nanoCpus + res.nanoCpus, memoryBytes: a.memoryBytes + res.memoryBytes, pids: a.pids + res.pids });
      }
      if (own) same.set(r.node, (same.get(r.node) ?? 0) + 1);
      // The deployment's own ports are not taken: its old replicas go as the new ones come.
      else for (const p of hostPortsOf(this.specOf(rev))) ports.set(r.node, (ports.get(r.node) ?? new Set()).add(p));
    }
    const images = new Map<string, ResolvedImage>();
    const candidates = await Promise.all(
      this.nodes.list().map(async (n): Promise<NodeCandidate> => {
        const status = await this.nodes.status(n.name).catch(() => ({ health: "unreachable", runtimes: [], capacity: NONE }));
        if (status.health === "ok") {
          const img = await this.resolve(n.name, imageRef).catch((e: unknown) => {
            if (isPortcullisError(e) && e.code === "PC_RUNTIME_IMAGE_INVALID") throw e;
            return undefined;
          });
          if (img !== undefined) images.set(n.name, img);
        }
        return {
          name: n.name,
          labels: n.labels,
          healthy: status.health === "ok",
          active: n.state === "active",
          runtimes: status.runtimes,
          capacity: status.capacity,
          allocated: allocated.get(n.name) ?? NONE,
          hasImage: images.has(n.name),
          sameDeployment: same.get(n.name) ?? 0,
          usedHostPorts: ports.get(n.name) ?? new Set(),
          local: isLocalEndpoint(n.endpoint),
        };
      }),
    );
    // A tag may point at different images on different nodes: keep the nodes that agree
    // with the first (by name), so that every replica runs the same image id.
    const first = [...images.entries()].sort(([a], [b]) => (a < b ? -1 : 1))[0]?.[1].id;
    return {
      candidates: candidates.map((c) => (c.hasImage && images.get(c.name)?.id !== first ? { ...c, hasImage: false } : c)),
      images: new Map([...images].filter(([, img]) => img.id === first)),
    };
  }
}
