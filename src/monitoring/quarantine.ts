/**
 * Quarantine: a container held for forensics. A rule's `quarantine` action records an
 * active quarantine for the container (one per container name), takes it off every
 * network (the names are kept in the record) and pauses it; the engine keeps it with its
 * memory, processes and file system as they were.
 *
 * While the quarantine is active (see docs/monitoring.md, "Quarantine"): the reconciler
 * neither replaces, restarts nor removes the container, nor its secret directory, and
 * does not count it as a replica to create; signed requests that would change its
 * deployment are refused with PC_MONITOR_QUARANTINED; the deployment's view shows it.
 *
 * Releasing ends it: the held container is removed (with its secret directory), the
 * record is marked released (who, when) and the release audited
 * (`monitor.quarantine_released`, with the note); the reconciler then creates a fresh
 * replica in its place. An unmanaged container is removed too: it was never admitted.
 */
import type { AuditSink, Clock } from "../core/index.js";
import { pcError } from "../core/index.js";
import type { DockerEngine } from "../runtime/index.js";
import type { QuarantineRecord, Store } from "../store/index.js";
import { randomBytes } from "node:crypto";
import { checkNote, type AlertActor } from "./alert-service.js";

/** What holding a container needs of its engine. */
export type HoldEngine = Pick<DockerEngine, "inspectContainer" | "disconnectAll" | "pause">;

export interface HoldTarget {
  readonly node: string;
  /** The container's name (or id, for a container the gateway knows no name of). */
  readonly container: string;
  readonly namespace: string | null;
  readonly deployment: string | null;
  readonly alertId: string | null;
  readonly rule: string;
}

export type HoldResult =
  | { readonly kind: "absent" }
  | { readonly kind: "held" | "already"; readonly quarantine: QuarantineRecord; readonly paused: boolean };

/**
 * Holds a container (idempotent): records the quarantine when there is none, takes the
 * container off every network and pauses it when it runs. Recorded first, so that the
 * reconciler leaves the container alone from then on, even if a step after fails (the
 * action is then tried again, and finishes the job).
 */
export async function holdContainer(deps: { store: Store; clock: Clock; engine: HoldEngine }, t: HoldTarget): Promise<HoldResult> {
  const { store, engine } = deps;
  const st = await engine.inspectContainer(t.container);
  if (st === undefined) return { kind: "absent" };
  let q = store.quarantines.active(st.name);
  const already = q !== undefined;
  if (q === undefined) {
    const rec = {
      id: `qr-${randomBytes(8).toString("hex")}`,
      containerName: st.name,
      containerId: st.id,
      node: t.node,
      namespace: t.namespace,
      deployment: t.deployment,
      alertId: t.alertId,
      rule: t.rule,
      networks: [],
      createdAt: deps.clock.now().getTime(),
    };
    store.quarantines.insert(rec);
    q = store.quarantines.active(st.name);
    if (q === undefined) throw pcError("PC_STORE_CORRUPT", `the quarantine of ${st.name} was not recorded`);
  }
  const off = await engine.disconnectAll(st.id);
  if (off === undefined) return { kind: "absent" };
  if (off.length > 0) {
    const networks = [...new Set([...q.networks, ...off])].sort();
    store.quarantines.setNetworks(q.id, networks);
    q = { ...q, networks };
  }
  const now = await engine.inspectContainer(st.id);
  if (now === undefined) return { kind: "absent" };
  // An exited container cannot be paused; it is held as it is.
  const paused = now.running ? await engine.pause(st.id) : false;
  return { kind: already ? "already" : "held", quarantine: q, paused };
}

/** A quarantine as the API and the CLI show it. */
export interface QuarantineView {
  readonly id: string;
  readonly container: string;
  readonly containerId: string | null;
  readonly node: string;
  readonly namespace: string | null;
  readonly deployment: string | null;
  readonly alert: string | null;
  readonly rule: string;
  readonly networks: readonly string[];
  /** ISO 8601. */
  readonly since: string;
  readonly releasedAt?: string;
  readonly releasedBy?: string;
}

export function quarantineView(q: QuarantineRecord): QuarantineView {
  return {
    id: q.id,
    container: q.containerName,
    containerId: q.containerId,
    node: q.node,
    namespace: q.namespace,
    deployment: q.deployment,
    alert: q.alertId,
    rule: q.rule,
    networks: q.networks,
    since: new Date(q.createdAt).toISOString(),
    ...(q.releasedAt !== null ? { releasedAt: new Date(q.releasedAt).toISOString(), releasedBy: q.releasedBy ?? "" } : {}),
  };
}

export interface QuarantineDeps {
  readonly store: Store;
  readonly audit: AuditSink;
  readonly clock: Clock;
  /** The engine of a node (for an unmanaged container: removed by id). */
  readonly engine: (node: string) => Pick<DockerEngine, "remove">;
  /**
   * A managed replica: under its deployment's lock, removes the held container and its
   * secret directory, then runs `commit` (DeploymentController.releaseHeld).
   */
  readonly releaseReplica: (namespace: string, deployment: string, containerName: string, commit: () => void) => Promise<void>;
}

export class QuarantineService {
  constructor(private readonly deps: QuarantineDeps) {}

  /**
   * The active quarantines, oldest first (with `all`, released ones too, newest first);
   * of the given namespaces only when a list is given.
   */
  list(filter: { namespaces?: readonly string[] | "*"; all?: boolean } = {}): QuarantineView[] {
    const ns = filter.namespaces === undefined || filter.namespaces === "*" ? undefined : new Set(filter.namespaces);
    return this.deps.store.quarantines
      .list({ all: filter.all === true })
      .filter((q) => ns === undefined || (q.namespace !== null && ns.has(q.namespace)))
      .map(quarantineView);
  }

  /** The active quarantine of a container; PC_MONITOR_QUARANTINE_NOT_FOUND otherwise. */
  get(containerName: string): QuarantineView {
    const q = this.deps.store.quarantines.active(containerName);
    if (q === undefined) throw pcError("PC_MONITOR_QUARANTINE_NOT_FOUND", containerName.slice(0, 200));
    return quarantineView(q);
  }

  /**
   * Ends a quarantine: the held container is removed (a managed one with its secret
   * directory, under its deployment's lock), then the record is marked released and the
   * release audited in one transaction. PC_MONITOR_QUARANTINE_NOT_FOUND when the container
   * is not held. If the removal fails, the quarantine stays active.
   */
  async release(containerName: string, actor: AlertActor, note: string): Promise<QuarantineView> {
    const text = checkNote(note);
    const { store, audit, clock } = this.deps;
    const q = store.quarantines.active(containerName);
    if (q === undefined) throw pcError("PC_MONITOR_QUARANTINE_NOT_FOUND", containerName.slice(0, 200));
    let released: QuarantineRecord | undefined;
    const commit = (): void => {
      const at = clock.now().getTime();
      store.transaction(() => {
        if (!store.quarantines.release(q.id, actor.identity, at)) throw pcError("PC_MONITOR_QUARANTINE_NOT_FOUND", `${containerName.slice(0, 200)} was released meanwhile`);
        audit.record({
          type: "monitor.quarantine_released",
          outcome: "allowed",
          actor: actor.identity,
          actorSerial: actor.serial,
          requestId: actor.requestId,
          sourceAddress: actor.sourceAddress,
          resource: "quarantines",
          namespace: q.namespace ?? undefined,
          target: q.containerName,
          reason: `${q.id} (rule ${q.rule}, alert ${q.alertId ?? "-"}): ${text}`.slice(0, 500),
        });
      });
      released = store.quarantines.get(q.id);
    };
    const rep = store.deployments.replica(q.containerName);
    if (q.namespace !== null && q.deployment !== null && rep !== undefined && rep.namespace === q.namespace && rep.name === q.deployment) {
      await this.deps.releaseReplica(q.namespace, q.deployment, q.containerName, commit);
    } else {
      await this.deps.engine(q.node).remove(q.containerId ?? q.containerName);
      commit();
    }
    if (released === undefined) throw pcError("PC_MONITOR_QUARANTINE_NOT_FOUND", containerName.slice(0, 200));
    return quarantineView(released);
  }
}
