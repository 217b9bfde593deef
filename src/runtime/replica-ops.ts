/**
 * What happens to one replica on its engine: create it under its deterministic name (or
 * adopt the container a crashed attempt left under that name), start it, wait until it is
 * ready, remove it. Every step is idempotent, so a rollout or a reconcile that was cut
 * short can simply run again.
 *
 * A replica with secrets gets its files written (replica-secrets.ts) right before its
 * container is created, and again before a stopped container is started when they are
 * gone; they are removed with the container, and when the create fails.
 */
import type { DeploymentSpec } from "../deploy/index.js";
import { pcError } from "../core/index.js";
import type { PinnedSecret } from "../secrets/index.js";
import type { ReplicaRecord } from "../store/index.js";
import { containerSpecFor, GATEWAY_LABEL } from "./container-spec.js";
import type { ContainerState, DockerEngine } from "./engine.js";
import { effectiveUser, resolveImage } from "./images.js";
import { ensureNamespaceNetwork } from "./networks.js";
import { writeReplicaSecrets, type ReplicaSecrets } from "./replica-secrets.js";
import type { SecretFiles } from "./secret-files.js";
import { isUnspecifiedAddress } from "./spec-ports.js";

export interface ReplicaTemplate {
  readonly spec: DeploymentSpec;
  readonly revision: number;
  readonly jti: string;
  readonly manifestDigest: string;
  readonly imageId: string;
  /** The secret versions the revision pinned (empty or absent: none). */
  readonly secrets?: readonly PinnedSecret[];
}

export interface NodePlacement {
  readonly publishHost: string;
  readonly allowPublicBind: boolean;
}

/**
 * Where a node's replicas publish their ports: its configured address (127.0.0.1 unless
 * the operator set another with `node add --publish-host`). Binding every interface
 * (0.0.0.0, ::) happens only on a node whose operator configured exactly that.
 */
export function nodePlacement(node: { readonly publishHost: string }): NodePlacement {
  return { publishHost: node.publishHost, allowPublicBind: isUnspecifiedAddress(node.publishHost) };
}

export interface ReadyOptions {
  readonly pollMs: number;
  /** Without a healthcheck, a replica is ready once it has been running this long. */
  readonly settleMs: number;
  /** Upper bound when there is no healthcheck. */
  readonly noHealthcheckBudgetMs: number;
}

/** The deterministic container name of a replica: one name, so never two containers. */
export function replicaContainerName(gatewayId: string, namespace: string, name: string, revision: number, ordinal: number): string {
  return `pc-${gatewayId}-${namespace}-${name}-r${revision}-${ordinal}`;
}

/** Whether a container belongs to this gateway's replica of that name. */
export function isOurs(state: { labels: Readonly<Record<string, string>> }, gatewayId: string): boolean {
  return state.labels[GATEWAY_LABEL] === gatewayId;
}

/**
 * Makes sure the replica's container exists and runs; returns its state after the start.
 * A container of that name that is not this gateway's is never touched.
 */
export async function ensureReplicaRunning(
  engine: DockerEngine,
  gatewayId: string,
  rep: ReplicaRecord,
  tpl: ReplicaTemplate,
  node: NodePlacement,
  secrets?: ReplicaSecrets,
): Promise<ContainerState> {
  let st = await engine.inspectContainer(rep.containerName);
  if (st !== undefined && !isOurs(st, gatewayId)) {
    throw pcError("PC_RUNTIME_ENGINE_FAILED", `a container named ${rep.containerName} exists and is not managed by this gateway`);
  }
  const pins = tpl.secrets ?? [];
  const userOf = async (): Promise<string> => {
    const image = await resolveImage(engine, tpl.imageId);
    if (image === undefined) throw pcError("PC_RUNTIME_IMAGE_NOT_FOUND", `${tpl.imageId} on node ${rep.node}`);
    return effectiveUser(tpl.spec.user, image.user);
  };
  let created: string | undefined;
  if (st === undefined) {
    const image = await resolveImage(engine, tpl.imageId);
    if (image === undefined) throw pcError("PC_RUNTIME_IMAGE_NOT_FOUND", `${tpl.imageId} on node ${rep.node}`);
    const user = effectiveUser(tpl.spec.user, image.user);
    const networkName = tpl.spec.network.mode === "namespace" ? await ensureNamespaceNetwork(engine, tpl.spec.namespace) : undefined;
    const secretsDir = pins.length > 0 ? await writeReplicaSecrets(secrets, tpl.spec.namespace, rep.containerName, user, pins) : undefined;
    try {
      const create = containerSpecFor(tpl.spec, {
        containerName: rep.containerName,
        gatewayId,
        revision: tpl.revision,
        ordinal: rep.ordinal,
        jti: tpl.jti,
        manifestDigest: tpl.manifestDigest,
        imageId: image.id,
        user,
        publishHost: node.publishHost,
        allowPublicBind: node.allowPublicBind,
        ...(networkName !== undefined ? { networkName } : {}),
        ...(secretsDir !== undefined ? { secretsDir } : {}),
      });
      try {
        created = await engine.create(create);
      } catch (e) {
        // A crashed attempt may have created it between our inspect and create.
        const again = await engine.inspectContainer(rep.containerName);
        if (again === undefined || !isOurs(again, gatewayId)) throw e;
      }
    } catch (e) {
      if (secretsDir !== undefined) await secrets?.files.remove(rep.containerName).catch(() => undefined);
      throw e;
    }
  }
  let id = created;
  if (id === undefined) {
    st = await engine.inspectContainer(rep.containerName);
    if (st === undefined) throw pcError("PC_RUNTIME_ENGINE_FAILED", `container ${rep.containerName} vanished after create`);
    id = st.id;
    if (!st.running && !st.restarting) {
      // A stopped container of ours mounts its directory by name: written again when gone.
      if (pins.length > 0 && !(await secrets?.files.has(rep.containerName))) {
        await writeReplicaSecrets(secrets, tpl.spec.namespace, rep.containerName, await userOf(), pins);
      }
      await engine.start(id);
    }
  } else {
    // Created by this call, so not started yet: no need to read its state before the start.
    await engine.start(id);
  }
  const after = await engine.inspectContainer(id);
  if (after === undefined) throw pcError("PC_RUNTIME_ENGINE_FAILED", `container ${rep.containerName} vanished after start`);
  return after;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until the replica is ready: healthy when it has a healthcheck, otherwise running
 * without a restart for `settleMs`. Returns undefined when ready, or why it is not.
 * `observed`, the state read from the engine right after the start (what
 * ensureReplicaRunning returns), is taken as the first poll instead of reading it again.
 */
export async function waitReady(
  engine: DockerEngine,
  containerName: string,
  spec: DeploymentSpec,
  opts: ReadyOptions,
  observed?: ContainerState,
): Promise<string | undefined> {
  const hc = spec.healthcheck;
  const budget = hc
    ? hc.startPeriodMs + (hc.intervalMs + hc.timeoutMs) * (hc.retries + 1) + 10_000
    : opts.noHealthcheckBudgetMs;
  const deadline = Date.now() + budget;
  let runningSince: number | undefined;
  let first = observed;
  for (;;) {
    const st = first ?? (await engine.inspectContainer(containerName));
    first = undefined;
    if (st === undefined) return "the container disappeared";
    if (st.oomKilled) return "the container was killed for running out of memory";
    if (st.restartCount > 0 || st.restarting) return `the container exited with code ${st.exitCode} and was restarted`;
    if (!st.running) return `the container exited with code ${st.exitCode}`;
    if (hc) {
      if (st.health === "healthy") return undefined;
      if (st.health === "unhealthy") return "the healthcheck failed";
    } else {
      runningSince ??= Date.now();
      if (Date.now() - runningSince >= opts.settleMs) return undefined;
    }
    if (Date.now() > deadline) return hc ? "the healthcheck did not pass in time" : "the container did not settle in time";
    await sleep(opts.pollMs);
  }
}

/**
 * Stops and removes a replica's container, if it is this gateway's; absent is fine. Its
 * secret directory goes after it (never before: a running container would see its files
 * vanish).
 */
export async function removeReplicaContainer(engine: DockerEngine, gatewayId: string, containerName: string, files?: SecretFiles): Promise<void> {
  const st = await engine.inspectContainer(containerName);
  if (st !== undefined && isOurs(st, gatewayId)) await engine.stopAndRemove(st.id, 5);
  if (st === undefined || isOurs(st, gatewayId)) await files?.remove(containerName);
}
