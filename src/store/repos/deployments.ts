import type { Db } from "../db.js";

/** The desired state of one deployment: which revision, how many replicas. */
export interface DeploymentRecord {
  readonly namespace: string;
  readonly name: string;
  readonly revision: number;
  readonly replicas: number;
  readonly state: "active" | "deleting";
  /** The revision and replica count an update replaced (restored if its rollout fails). */
  readonly prevRevision: number | null;
  readonly prevReplicas: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type RevisionStatus = "pending" | "complete" | "failed" | "superseded";

/** One revision: the admitted manifest (as signed, canonical JSON) and what it resolved to. */
export interface RevisionRecord {
  readonly namespace: string;
  readonly name: string;
  readonly revision: number;
  readonly manifest: string;
  readonly digest: string;
  readonly imageId: string;
  readonly runtime: string;
  readonly jti: string;
  readonly requester: string;
  readonly createdAt: number;
  readonly status: RevisionStatus;
}

/** A replica the gateway intends to run, written before its container is created. */
export interface ReplicaRecord {
  readonly containerName: string;
  readonly namespace: string;
  readonly name: string;
  readonly revision: number;
  readonly ordinal: number;
  readonly node: string;
  readonly containerId: string | null;
  readonly runtime: string | null;
  readonly restarts: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

interface DeploymentRow { namespace: string; name: string; revision: number; replicas: number; state: string; prev_revision: number | null; prev_replicas: number | null; created_at: number; updated_at: number }
interface RevisionRow { namespace: string; name: string; revision: number; manifest: string; digest: string; image_id: string; runtime: string; jti: string; requester: string; created_at: number; status: string }
interface ReplicaRow { container_name: string; namespace: string; name: string; revision: number; ordinal: number; node: string; container_id: string | null; runtime: string | null; restarts: number; created_at: number; updated_at: number }

const dep = (r: DeploymentRow): DeploymentRecord => ({
  namespace: r.namespace, name: r.name, revision: r.revision, replicas: r.replicas,
  state: r.state as DeploymentRecord["state"], prevRevision: r.prev_revision, prevReplicas: r.prev_replicas, createdAt: r.created_at, updatedAt: r.updated_at,
});
const rev = (r: RevisionRow): RevisionRecord => ({
  namespace: r.namespace, name: r.name, revision: r.revision, manifest: r.manifest, digest: r.digest,
  imageId: r.image_id, runtime: r.runtime, jti: r.jti, requester: r.requester, createdAt: r.created_at,
  status: r.status as RevisionStatus,
});
const rep = (r: ReplicaRow): ReplicaRecord => ({
  containerName: r.container_name, namespace: r.namespace, name: r.name, revision: r.revision, ordinal: r.ordinal,
  node: r.node, containerId: r.container_id, runtime: r.runtime, restarts: r.restarts, createdAt: r.created_at, updatedAt: r.updated_at,
});

/** Deployments, their revisions and their replicas (tables of migration 4). */
export class DeploymentRepo {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      depGet: db.prepare<[string, string], DeploymentRow>(`SELECT * FROM deployments WHERE namespace = ? AND name = ?`),
      depAll: db.prepare<[], DeploymentRow>(`SELECT * FROM deployments ORDER BY namespace, name`),
      depNs: db.prepare<[string], DeploymentRow>(`SELECT * FROM deployments WHERE namespace = ? ORDER BY name`),
      depIns: db.prepare(`INSERT INTO deployments (namespace, name, revision, replicas, state, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?)`),
      depSet: db.prepare(`UPDATE deployments SET revision = ?, replicas = ?, state = ?, updated_at = ? WHERE namespace = ? AND name = ?`),
      depPrev: db.prepare(`UPDATE deployments SET prev_revision = ?, prev_replicas = ? WHERE namespace = ? AND name = ?`),
      depDel: db.prepare(`DELETE FROM deployments WHERE namespace = ? AND name = ?`),
      depCount: db.prepare<[string], { n: number }>(`SELECT COUNT(*) AS n FROM deployments WHERE namespace = ?`),
      revGet: db.prepare<[string, string, number], RevisionRow>(`SELECT * FROM deployment_revisions WHERE namespace = ? AND name = ? AND revision = ?`),
      revAll: db.prepare<[string, string], RevisionRow>(`SELECT * FROM deployment_revisions WHERE namespace = ? AND name = ? ORDER BY revision`),
      revMax: db.prepare<[string, string], { m: number | null }>(`SELECT MAX(revision) AS m FROM deployment_revisions WHERE namespace = ? AND name = ?`),
      revIns: db.prepare(`INSERT INTO deployment_revisions (namespace, name, revision, manifest, digest, image_id, runtime, jti, requester, created_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      revStatus: db.prepare(`UPDATE deployment_revisions SET status = ? WHERE namespace = ? AND name = ? AND revision = ?`),
      repOf: db.prepare<[string, string], ReplicaRow>(`SELECT * FROM replicas WHERE namespace = ? AND name = ? ORDER BY revision, ordinal`),
      repAll: db.prepare<[], ReplicaRow>(`SELECT * FROM replicas ORDER BY namespace, name, revision, ordinal`),
      repGet: db.prepare<[string], ReplicaRow>(`SELECT * FROM replicas WHERE container_name = ?`),
      repIns: db.prepare(`INSERT INTO replicas (container_name, namespace, name, revision, ordinal, node, container_id, runtime, restarts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 0, ?, ?)`),
      repSeen: db.prepare(`UPDATE replicas SET container_id = ?, runtime = ?, updated_at = ? WHERE container_name = ?`),
      repRestart: db.prepare(`UPDATE replicas SET restarts = restarts + 1, container_id = NULL, updated_at = ? WHERE container_name = ?`),
      repDel: db.prepare(`DELETE FROM replicas WHERE container_name = ?`),
      repNode: db.prepare<[string], { n: number }>(`SELECT COUNT(*) AS n FROM replicas WHERE node = ?`),
    };
  }

  get(namespace: string, name: string): DeploymentRecord | undefined {
    const r = this.s.depGet.get(namespace, name);
    return r ? dep(r) : undefined;
  }

  list(namespace?: string): DeploymentRecord[] {
    return (namespace === undefined ? this.s.depAll.all() : this.s.depNs.all(namespace)).map(dep);
  }

  countInNamespace(namespace: string): number {
    return this.s.depCount.get(namespace)?.n ?? 0;
  }

  insert(namespace: string, name: string, revision: number, replicas: number, at: number): void {
    this.s.depIns.run(namespace, name, revision, replicas, at, at);
  }

  update(namespace: string, name: string, revision: number, replicas: number, state: DeploymentRecord["state"], at: number): void {
    this.s.depSet.run(revision, replicas, state, at, namespace, name);
  }

  /** Remembers what an update replaces (null: nothing to restore). */
  setPrevious(namespace: string, name: string, revision: number | null, replicas: number | null): void {
    this.s.depPrev.run(revision, replicas, namespace, name);
  }

  delete(namespace: string, name: string): void {
    this.s.depDel.run(namespace, name);
  }

  revision(namespace: string, name: string, revision: number): RevisionRecord | undefined {
    const r = this.s.revGet.get(namespace, name, revision);
    return r ? rev(r) : undefined;
  }

  revisions(namespace: string, name: string): RevisionRecord[] {
    return this.s.revAll.all(namespace, name).map(rev);
  }

  /** The next revision number; numbers are never reused, even after a delete. */
  nextRevision(namespace: string, name: string): number {
    return (this.s.revMax.get(namespace, name)?.m ?? 0) + 1;
  }

  insertRevision(r: Omit<RevisionRecord, "status"> & { status?: RevisionStatus }): void {
    this.s.revIns.run(r.namespace, r.name, r.revision, r.manifest, r.digest, r.imageId, r.runtime, r.jti, r.requester, r.createdAt, r.status ?? "pending");
  }

  setRevisionStatus(namespace: string, name: string, revision: number, status: RevisionStatus): void {
    this.s.revStatus.run(status, namespace, name, revision);
  }

  replicasOf(namespace: string, name: string): ReplicaRecord[] {
    return this.s.repOf.all(namespace, name).map(rep);
  }

  allReplicas(): ReplicaRecord[] {
    return this.s.repAll.all().map(rep);
  }

  replica(containerName: string): ReplicaRecord | undefined {
    const r = this.s.repGet.get(containerName);
    return r ? rep(r) : undefined;
  }

  insertReplica(r: Pick<ReplicaRecord, "containerName" | "namespace" | "name" | "revision" | "ordinal" | "node">, at: number): void {
    this.s.repIns.run(r.containerName, r.namespace, r.name, r.revision, r.ordinal, r.node, at, at);
  }

  /** Records the container that now holds a replica, and the runtime the engine reports for it. */
  replicaSeen(containerName: string, containerId: string, runtime: string, at: number): void {
    this.s.repSeen.run(containerId, runtime, at, containerName);
  }

  replicaRestarted(containerName: string, at: number): void {
    this.s.repRestart.run(at, containerName);
  }

  deleteReplica(containerName: string): void {
    this.s.repDel.run(containerName);
  }

  replicasOnNode(node: string): number {
    return this.s.repNode.get(node)?.n ?? 0;
  }
}
