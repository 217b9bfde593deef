/**
 * What `get deployments`, `get deployment`, `rollout history` and `logs` show: the stored
 * desired state joined with what the engines report now.
 */
import { pcError } from "../core/index.js";
import type { DeploymentRecord, Store } from "../store/index.js";
import type { NodeAccess } from "./placement.js";

export interface ReplicaView {
  readonly container: string;
  readonly ordinal: number;
  readonly revision: number;
  readonly node: string;
  readonly containerId: string | null;
  /** The runtime the engine reports for the container (runc, runsc). */
  readonly runtime: string | null;
  /** running, exited, missing, unknown (node unreachable), quarantined (held for forensics), ... */
  readonly state: string;
  /** healthy, unhealthy, starting, or none (no healthcheck). */
  readonly health: string;
  readonly restarts: number;
}

export interface DeploymentView {
  readonly namespace: string;
  readonly name: string;
  readonly revision: number;
  readonly replicas: number;
  readonly ready: number;
  readonly state: string;
  readonly image: string;
  readonly imageId: string;
  readonly runtime: string;
  readonly manifestDigest: string;
  readonly updatedAt: string;
  readonly containers: readonly ReplicaView[];
  /** Its containers held in quarantine (empty when none): requests that would change it are refused. */
  readonly quarantined: readonly QuarantinedView[];
}

/** A container of the deployment held in quarantine, and why. */
export interface QuarantinedView {
  readonly container: string;
  /** ISO 8601. */
  readonly since: string;
  readonly alert: string | null;
  readonly rule: string;
}

export interface RevisionView {
  readonly revision: number;
  readonly status: string;
  readonly digest: string;
  readonly imageId: string;
  readonly runtime: string;
  readonly jti: string;
  readonly requester: string;
  readonly createdAt: string;
  readonly current: boolean;
  /** The manifest as signed. */
  readonly manifest: unknown;
}

export class DeploymentViews {
  constructor(
    private readonly store: Store,
    private readonly nodes: NodeAccess,
  ) {}

  private must(namespace: string, name: string): DeploymentRecord {
    const d = this.store.deployments.get(namespace, name);
    if (d === undefined) throw pcError("PC_DEPLOY_NOT_FOUND", `${namespace}/${name}`);
    return d;
  }

  async list(namespace?: string): Promise<DeploymentView[]> {
    return Promise.all(this.store.deployments.list(namespace).map((d) => this.view(d)));
  }

  async get(namespace: string, name: string): Promise<DeploymentView> {
    return this.view(this.must(namespace, name));
  }

  history(namespace: string, name: string): RevisionView[] {
    const d = this.must(namespace, name);
    return this.store.deployments.revisions(namespace, name).map((r) => ({
      revision: r.revision,
      status: r.status,
      digest: r.digest,
      imageId: r.imageId,
      runtime: r.runtime,
      jti: r.jti,
      requester: r.requester,
      createdAt: new Date(r.createdAt).toISOString(),
      current: r.revision === d.revision,
      manifest: JSON.parse(r.manifest) as unknown,
    }));
  }

  /** The last `tail` lines of every replica's container, replica by replica. */
  async logs(namespace: string, name: string, tail: number): Promise<{ container: string; node: string; stdout: string; stderr: string }[]> {
    this.must(namespace, name);
    const out = [];
    for (const r of this.store.deployments.replicasOf(namespace, name)) {
      if (r.containerId === null) continue;
      const engine = this.nodes.engine(r.node);
      const logs = await engine.logs(r.containerId, tail).catch(() => ({ stdout: "", stderr: "(logs unavailable: node unreachable or container gone)\n" }));
      out.push({ container: r.containerName, node: r.node, stdout: logs.stdout, stderr: logs.stderr });
    }
    return out;
  }

  private async view(d: DeploymentRecord): Promise<DeploymentView> {
    const rev = this.store.deployments.revision(d.namespace, d.name, d.revision);
    const manifest = rev === undefined ? undefined : (JSON.parse(rev.manifest) as { spec?: { image?: unknown } });
    const held = this.store.quarantines.activeOf(d.namespace, d.name);
    const heldNames = new Set(held.map((q) => q.containerName));
    const containers = await Promise.all(
      this.store.deployments.replicasOf(d.namespace, d.name).map(async (r): Promise<ReplicaView> => {
        const st = await this.nodes.engine(r.node).inspectContainer(r.containerName).catch(() => null);
        return {
          container: r.containerName,
          ordinal: r.ordinal,
          revision: r.revision,
          node: r.node,
          containerId: r.containerId,
          runtime: st?.runtime ?? r.runtime,
          state: heldNames.has(r.containerName) ? "quarantined" : st === null ? "unknown" : st === undefined ? "missing" : st.status,
          health: st?.health ?? "none",
          restarts: r.restarts + (st?.restartCount ?? 0),
        };
      }),
    );
    const ready = containers.filter((c) => c.revision === d.revision && c.state === "running" && (c.health === "healthy" || c.health === "none")).length;
    return {
      namespace: d.namespace,
      name: d.name,
      revision: d.revision,
      replicas: d.replicas,
      ready,
      state: d.state,
      image: typeof manifest?.spec?.image === "string" ? manifest.spec.image : "",
      imageId: rev?.imageId ?? "",
      runtime: rev?.runtime ?? "",
      manifestDigest: rev?.digest ?? "",
      updatedAt: new Date(d.updatedAt).toISOString(),
      containers,
      quarantined: held.map((q) => ({ container: q.containerName, since: new Date(q.createdAt).toISOString(), alert: q.alertId, rule: q.rule })),
    };
  }
}
