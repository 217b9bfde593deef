/** The runtime domain: engines, the hardened container spec. */
export {
  ALLOWED_CAPABILITIES,
  DEFAULT_NETWORK,
  DEFAULT_RUNTIME,
  DEFAULT_TMPFS_BYTES,
  LIMIT_BOUNDS,
  MANAGED_LABEL,
  RUNTIMES,
  RUNSC_OVERHEAD,
  buildHardenedContainerSpec,
} from "./hardened-spec.js";
export type { HardenedContainerInput, ResourceLimits, RuntimeName } from "./hardened-spec.js";
export { DEFAULT_SOCKET_PATH, DockerEngine } from "./engine.js";
export type { DockerEngineOptions, EngineEvent, EngineEventStream, EngineInfo, EngineStats, EngineVersion, RunOnceOptions, RunResult } from "./engine.js";
export {
  DEFAULT_PUBLISH_HOST,
  HEALTH_TIMEOUT_MS,
  HEALTH_TTL_MS,
  LOCAL_ENDPOINT,
  LOCAL_NODE,
  NODE_NAME_RE,
  NodeRegistry,
  PIDS_BUDGET,
  assertNodeName,
  parseEndpoint,
} from "./nodes.js";
export type {
  NodeActor,
  NodeCapacity,
  NodeCredentials,
  NodeEndpoint,
  NodeRegistryOptions,
  NodeStatus,
  ReplicaCount,
} from "./nodes.js";
export { LOG_CONFIG, RESTART_POLICY } from "./hardened-spec.js";
export { HEALTHCHECK_BOUNDS, PORT_PROTOCOLS, isUnspecifiedAddress } from "./spec-ports.js";
export type { HealthcheckInput, PortProtocol, PublishedPort } from "./spec-ports.js";
export { GATEWAY_LABEL, LABELS, RUNTIME_OF_CLASS, containerSpecFor } from "./container-spec.js";
export type { ReplicaContext } from "./container-spec.js";
export { effectiveUser, parseImageReference, resolveImage } from "./images.js";
export type { ImageReference, ResolvedImage } from "./images.js";
export {
  NAMESPACE_NETWORK_OPTIONS,
  NAMESPACE_NETWORK_PREFIX,
  NETWORK_NAMESPACE_LABEL,
  ensureNamespaceNetwork,
  namespaceNetworkName,
  removeNamespaceNetworkIfUnused,
} from "./networks.js";
export type { NamespaceNetworkOptions } from "./networks.js";
export type { ImageDetails, NetworkCreateSpec, NetworkDetails, NetworkRemoval } from "./engine-resources.js";
export type { ImportedImageConfig } from "./engine.js";
export { DeploymentController, SANDBOX_LABEL, sameExceptReplicas } from "./deployments.js";
export type { ControllerOptions, RequestLedger } from "./deployments.js";
export { certificateSha256 } from "./decision.js";
export type { DecisionRecord, PlacedReplica, RequestContext } from "./decision.js";
export { Placement, hostPortsOf, isLocalEndpoint } from "./placement.js";
export type { NodeAccess, Placed } from "./placement.js";
export { DeploymentViews } from "./deployment-views.js";
export type { DeploymentView, ReplicaView, RevisionView } from "./deployment-views.js";
export { Reconciler } from "./reconciler.js";
export type { ReconcileReport, ReconcilerOptions } from "./reconciler.js";
export { placeReplicas, remoteNodeReason } from "./scheduler.js";
export type { NodeCandidate, PlacementRequest, PlacementResult, Resources } from "./scheduler.js";
export { replicaContainerName } from "./replica-ops.js";
export { DEFAULT_SECRETS_TMPFS_ROOT, RAMFS_MAGIC, SECRETS_TMPFS_OPTIONS, SecretFiles, TMPFS_MAGIC, isMemoryFs, relativePathReason } from "./secret-files.js";
export type { SecretFilesOptions } from "./secret-files.js";
export { writeReplicaSecrets } from "./replica-secrets.js";
export type { ReplicaSecrets } from "./replica-secrets.js";
