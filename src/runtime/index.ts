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
export type { DockerEngineOptions, EngineVersion, RunOnceOptions, RunResult } from "./engine.js";
