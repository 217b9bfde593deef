/**
 * The one function that turns an admitted deployment into a container spec: every
 * container the runtime creates for a deployment is built here, through the hardened
 * spec, and nothing else is handed to an engine.
 *
 * Labels: the manifest's own, plus the reserved LABELS that the reconciler and
 * monitoring select on (a manifest cannot set those). The container is created from the
 * image id resolved on the node, never from a tag, so a tag moved later cannot change
 * what runs.
 */
import type { ContainerCreateOptions } from "dockerode";
import type { DeploymentSpec, RuntimeClass } from "../deploy/index.js";
import { MANAGED_LABEL, buildHardenedContainerSpec, type HardenedContainerInput } from "./hardened-spec.js";
import { specInvalid } from "./runtime-errors.js";
import type { RuntimeName } from "./spec-checks.js";

/** The label keys portcullis sets on every container of a deployment. */
export const LABELS = Object.freeze({
  managed: MANAGED_LABEL,
  gateway: "io.portcullis.gateway",
  namespace: "io.portcullis.namespace",
  deployment: "io.portcullis.deployment",
  revision: "io.portcullis.revision",
  ordinal: "io.portcullis.ordinal",
  jti: "io.portcullis.jti",
  digest: "io.portcullis.digest",
  runtime: "io.portcullis.runtime",
} as const);

/** The gateway that owns a container (its id); another gateway's containers are left alone. */
export const GATEWAY_LABEL = LABELS.gateway;

const RESERVED_LABELS: ReadonlySet<string> = new Set(Object.values(LABELS));

/** The OCI runtime of each runtime class. */
export const RUNTIME_OF_CLASS: Readonly<Record<RuntimeClass, RuntimeName>> = Object.freeze({
  sandboxed: "runsc",
  standard: "runc",
});

export interface ReplicaContext {
  /** Given by the caller. */
  readonly containerName: string;
  /** The id of the gateway that owns the container. */
  readonly gatewayId: string;
  readonly revision: number;
  readonly ordinal: number;
  /** Of the signed request that created the revision. */
  readonly jti: string;
  /** `sha256:<hex>` of the manifest as signed. */
  readonly manifestDigest: string;
  /** `sha256:<hex>`, resolved on the node; the container is created from the id, never the tag. */
  readonly imageId: string;
  /** Numeric uid:gid, already resolved (effectiveUser). */
  readonly user: string;
  /** The node's configured interface for published ports, default 127.0.0.1. */
  readonly publishHost: string;
  /** Whether the node allows publishing on every interface (0.0.0.0, ::). */
  readonly allowPublicBind: boolean;
  /** Set when spec.network.mode is "namespace": the namespace's network. */
  readonly networkName?: string;
  /** The host directory of the replica's secret files (SecretFiles), mounted read-only at /run/secrets. */
  readonly secretsDir?: string;
}

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
const TOKEN_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_ORDINAL = 10_000;

function checkContext(ctx: ReplicaContext): void {
  if (!Number.isSafeInteger(ctx.revision) || ctx.revision < 1) throw specInvalid("context.revision", "must be a positive integer");
  if (!Number.isSafeInteger(ctx.ordinal) || ctx.ordinal < 0 || ctx.ordinal > MAX_ORDINAL) {
    throw specInvalid("context.ordinal", `must be an integer between 0 and ${MAX_ORDINAL}`);
  }
  if (typeof ctx.jti !== "string" || !TOKEN_RE.test(ctx.jti)) throw specInvalid("context.jti", "is not a valid request id");
  if (typeof ctx.gatewayId !== "string" || !TOKEN_RE.test(ctx.gatewayId)) {
    throw specInvalid("context.gatewayId", "is not a valid gateway id");
  }
  if (typeof ctx.manifestDigest !== "string" || !SHA256_RE.test(ctx.manifestDigest)) {
    throw specInvalid("context.manifestDigest", "must be sha256:<hex>");
  }
  if (typeof ctx.imageId !== "string" || !SHA256_RE.test(ctx.imageId)) {
    throw specInvalid("context.imageId", "must be an image id (sha256:<hex>), never a tag");
  }
}

function networkFor(spec: DeploymentSpec, ctx: ReplicaContext): string {
  if (spec.network.mode === "none") return "none";
  if (spec.network.mode !== "namespace") throw specInvalid("network.mode", "must be none or namespace");
  if (ctx.networkName === undefined) throw specInvalid("context.networkName", "is required for a namespace network");
  return ctx.networkName;
}

/** The container spec of one replica of an admitted deployment. */
export function containerSpecFor(spec: DeploymentSpec, ctx: ReplicaContext): ContainerCreateOptions {
  checkContext(ctx);
  const runtime = RUNTIME_OF_CLASS[spec.runtime];
  if (runtime === undefined) throw specInvalid("runtime", "must be sandboxed or standard");
  for (const key of Object.keys(spec.labels)) {
    if (RESERVED_LABELS.has(key)) throw specInvalid(`labels.${key}`, "is reserved");
  }
  // Secret files are mounted exactly when the manifest references secrets.
  if (spec.secrets.length > 0 && ctx.secretsDir === undefined) throw specInvalid("context.secretsDir", "is required when spec.secrets is not empty");
  if (spec.secrets.length === 0 && ctx.secretsDir !== undefined) throw specInvalid("context.secretsDir", "is given but spec.secrets is empty");
  const labels: Record<string, string> = {
    ...spec.labels,
    [LABELS.gateway]: ctx.gatewayId,
    [LABELS.namespace]: spec.namespace,
    [LABELS.deployment]: spec.name,
    [LABELS.revision]: String(ctx.revision),
    [LABELS.ordinal]: String(ctx.ordinal),
    [LABELS.jti]: ctx.jti,
    [LABELS.digest]: ctx.manifestDigest,
    [LABELS.runtime]: runtime,
  };
  const input: HardenedContainerInput = {
    name: ctx.containerName,
    image: ctx.imageId,
    user: ctx.user,
    runtime,
    limits: {
      memoryBytes: spec.resources.memoryBytes,
      nanoCpus: spec.resources.nanoCpus,
      pids: spec.resources.pids,
    },
    network: networkFor(spec, ctx),
    ports: spec.network.ports,
    publishHost: ctx.publishHost,
    allowPublicBind: ctx.allowPublicBind,
    labels,
    env: spec.env,
    ...(spec.args !== undefined ? { cmd: spec.args } : {}),
    ...(spec.command !== undefined ? { entrypoint: spec.command } : {}),
    ...(spec.workingDir !== undefined ? { workingDir: spec.workingDir } : {}),
    ...(spec.healthcheck !== undefined ? { healthcheck: spec.healthcheck } : {}),
    ...(ctx.secretsDir !== undefined ? { secretsDir: ctx.secretsDir } : {}),
  };
  return buildHardenedContainerSpec(input);
}
