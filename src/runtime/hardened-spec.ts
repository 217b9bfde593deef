/**
 * Builds the one container spec portcullis hands to an engine.
 *
 * Restricts: the user (numeric, non-root uid and gid), the root filesystem (read-only),
 * capabilities (all dropped; only ALLOWED_CAPABILITIES may be added back), privilege
 * escalation (no-new-privileges; the engine's default seccomp profile is kept, never
 * "unconfined"), host namespaces (none shared: IPC private, PID, UTS and user namespaces
 * the container's own; network "none" unless a named user network is given), host paths
 * (no binds and no devices; one mount only: the container's secret directory, read-only
 * at /run/secrets with private propagation, when `secretsDir` is given, see
 * checkSecretsDir), resources (memory without swap, CPU, pids: all required), writable
 * space (only a tmpfs at /tmp: noexec, nosuid, nodev, bounded size),
 * published ports (on DEFAULT_PUBLISH_HOST unless the node names another address; every
 * interface only where the node allows it; see spec-ports.ts), the healthcheck, restarts
 * (on failure, at most RESTART_POLICY.MaximumRetryCount times), logs (json-file, rotated
 * and bounded: LOG_CONFIG), the OCI runtime (runc, or runsc for the gVisor sandbox) and
 * labels (the managed label is always set and cannot be overridden).
 *
 * The input is checked in a fixed order, and the first problem is thrown as an error
 * whose detail names the field path and the reason. Fields it does not know are refused,
 * so a request cannot express "privileged", "binds", any other mount or a host namespace
 * at all.
 *
 * Under runsc the engine's limits hold the whole sandbox, not only the workload: the
 * gVisor kernel's own threads sit in the same pids cgroup (about 40 at rest; runs failed
 * at random below 64), and its own memory in the same memory cgroup (about 13 MiB at
 * rest; 8 MiB is killed at start). So under runsc the pids limit handed to the engine is
 * the requested one plus RUNSC_OVERHEAD.pids, and memory below
 * RUNSC_OVERHEAD.minMemoryBytes is refused.
 *
 * Note for image authors: under runc a tmpfs takes the mode of the image's own /tmp
 * directory when the image has one, so images should ship /tmp as 1777 (as standard
 * base images do).
 */
import type { ContainerCreateOptions } from "dockerode";
import { SECRETS_MOUNT_PATH } from "../deploy/index.js";
import { specInvalid } from "./runtime-errors.js";
import {
  checkArgv,
  checkCapAdd,
  checkIntegerInRange,
  checkKnownFields,
  checkNetwork,
  checkRuntime,
  checkSecretsDir,
  checkStringMap,
  checkUser,
  checkWorkingDir,
  isPlainObject,
  type RuntimeName,
} from "./spec-checks.js";
import {
  checkHealthcheck,
  checkPorts,
  checkPublishHost,
  type HealthcheckInput,
  type PublishedPort,
} from "./spec-ports.js";

export {
  ALLOWED_CAPABILITIES,
  DEFAULT_NETWORK,
  DEFAULT_RUNTIME,
  RUNTIMES,
  type RuntimeName,
} from "./spec-checks.js";

/** The label every container portcullis creates carries. */
export const MANAGED_LABEL = "io.portcullis.managed";

export const DEFAULT_TMPFS_BYTES = 64 * 1024 * 1024;

/** A container that fails is restarted by its engine, a bounded number of times. */
export const RESTART_POLICY = Object.freeze({ Name: "on-failure", MaximumRetryCount: 5 } as const);

/** Logs stay on the engine, rotated: at most max-file files of max-size each. */
export const LOG_CONFIG = Object.freeze({
  Type: "json-file",
  Config: Object.freeze({ "max-size": "10m", "max-file": "3" }),
} as const);

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Bounds on resource limits; the engine's own minimums are 6 MiB and 0.01 CPU. */
export const LIMIT_BOUNDS = Object.freeze({
  memoryBytes: { min: 6 * MiB, max: 256 * GiB },
  nanoCpus: { min: 10_000_000, max: 256_000_000_000 },
  pids: { min: 1, max: 32_768 },
  tmpfsBytes: { min: 1 * MiB, max: 16 * GiB },
});

/** What the gVisor sandbox itself needs inside the container's cgroups (see above). */
export const RUNSC_OVERHEAD = Object.freeze({ pids: 128, minMemoryBytes: 32 * MiB });

const MAX_LABELS = 64;
const MAX_ENV = 128;

export interface ResourceLimits {
  /** Memory in bytes; swap is disabled (MemorySwap = Memory). */
  readonly memoryBytes: number;
  /** CPU in units of 1e-9 CPUs. */
  readonly nanoCpus: number;
  /** Maximum number of processes and threads of the workload. */
  readonly pids: number;
}

export interface HardenedContainerInput {
  /** Image reference (name[:tag] or name@digest, or an image id). */
  readonly image: string;
  /** Numeric "uid:gid"; neither may be 0. Names are refused: an image could map one to root. */
  readonly user: string;
  readonly limits: ResourceLimits;
  readonly cmd?: readonly string[];
  readonly entrypoint?: readonly string[];
  /** Defaults to runsc. */
  readonly runtime?: RuntimeName;
  /** Size of the /tmp tmpfs; defaults to 64 MiB, or the memory limit if that is smaller. */
  readonly tmpfsBytes?: number;
  /** Capabilities to add back; only ALLOWED_CAPABILITIES. */
  readonly capAdd?: readonly string[];
  /** "none" (default) or the name of a user-defined network. */
  readonly network?: string;
  /** Ports published on `publishHost`; they need a user-defined network. */
  readonly ports?: readonly PublishedPort[];
  /** The host address ports are published on; defaults to 127.0.0.1. */
  readonly publishHost?: string;
  /** Whether `publishHost` may be 0.0.0.0 or :: (a node setting); default false. */
  readonly allowPublicBind?: boolean;
  readonly healthcheck?: HealthcheckInput;
  readonly labels?: Readonly<Record<string, string>>;
  /** Plain configuration only: secrets are mounted as files, never passed as variables. */
  readonly env?: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  readonly name?: string;
  /**
   * The host directory of the container's secret files (SecretFiles): mounted read-only
   * at /run/secrets, private propagation. The only host path a container ever sees.
   */
  readonly secretsDir?: string;
}

const INPUT_FIELDS = new Set([
  "image", "user", "limits", "cmd", "entrypoint", "runtime", "tmpfsBytes", "capAdd",
  "network", "ports", "publishHost", "allowPublicBind", "healthcheck", "labels", "env",
  "workingDir", "name", "secretsDir",
]);
const LIMIT_FIELDS = new Set(["memoryBytes", "nanoCpus", "pids"]);

const IMAGE_RE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,511}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/**
 * Returns the create options for a hardened container, or throws if the input asks for
 * anything the hardening does not allow.
 */
export function buildHardenedContainerSpec(input: HardenedContainerInput): ContainerCreateOptions {
  const raw: unknown = input;
  if (!isPlainObject(raw)) throw specInvalid("(input)", "must be an object");
  checkKnownFields(raw, INPUT_FIELDS, "");

  // image, command
  if (raw.image === undefined || raw.image === "") throw specInvalid("image", "is required");
  if (typeof raw.image !== "string" || !IMAGE_RE.test(raw.image)) {
    throw specInvalid("image", "is not a valid image reference");
  }
  const image = raw.image;
  const cmd = checkArgv("cmd", raw.cmd);
  const entrypoint = checkArgv("entrypoint", raw.entrypoint);

  // identity and sandbox
  const user = checkUser(raw.user);
  const runtime = checkRuntime(raw.runtime);

  // resources
  if (raw.limits === undefined || raw.limits === null) throw specInvalid("limits", "is required");
  if (!isPlainObject(raw.limits)) throw specInvalid("limits", "must be an object");
  checkKnownFields(raw.limits, LIMIT_FIELDS, "limits.");
  const b = LIMIT_BOUNDS;
  const memory = checkIntegerInRange("limits.memoryBytes", raw.limits.memoryBytes, b.memoryBytes.min, b.memoryBytes.max);
  const nanoCpus = checkIntegerInRange("limits.nanoCpus", raw.limits.nanoCpus, b.nanoCpus.min, b.nanoCpus.max);
  const pids = checkIntegerInRange("limits.pids", raw.limits.pids, b.pids.min, b.pids.max);
  const tmpfsBytes =
    raw.tmpfsBytes === undefined
      ? Math.min(DEFAULT_TMPFS_BYTES, memory)
      : checkIntegerInRange("tmpfsBytes", raw.tmpfsBytes, b.tmpfsBytes.min, b.tmpfsBytes.max);
  if (tmpfsBytes > memory) throw specInvalid("tmpfsBytes", "must not exceed limits.memoryBytes");
  if (runtime === "runsc" && memory < RUNSC_OVERHEAD.minMemoryBytes) {
    throw specInvalid("limits.memoryBytes", `must be at least ${RUNSC_OVERHEAD.minMemoryBytes} under runsc`);
  }
  const enginePids = runtime === "runsc" ? pids + RUNSC_OVERHEAD.pids : pids;

  // privileges and isolation
  const capAdd = checkCapAdd(raw.capAdd);
  const network = checkNetwork(raw.network);
  const publishHost = checkPublishHost(raw.publishHost, raw.allowPublicBind);
  const ports = checkPorts(raw.ports, network, publishHost);
  const healthcheck = checkHealthcheck(raw.healthcheck);

  // metadata and environment
  const labels = checkStringMap("labels", raw.labels, MAX_LABELS, LABEL_KEY_RE, 1024);
  if (Object.prototype.hasOwnProperty.call(labels, MANAGED_LABEL)) {
    throw specInvalid(`labels.${MANAGED_LABEL}`, "is reserved");
  }
  const env = checkStringMap("env", raw.env, MAX_ENV, ENV_KEY_RE, 32 * 1024);
  const workingDir = checkWorkingDir(raw.workingDir);
  if (raw.name !== undefined && (typeof raw.name !== "string" || !NAME_RE.test(raw.name))) {
    throw specInvalid("name", "is not a valid container name");
  }
  const name = raw.name as string | undefined;
  const secretsDir = checkSecretsDir(raw.secretsDir);

  const spec: ContainerCreateOptions = {
    Image: image,
    User: user,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...labels, [MANAGED_LABEL]: "true" },
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    StdinOnce: false,
    // CgroupnsMode is in the engine's API (1.41) but not in dockerode's types.
    HostConfig: <NonNullable<ContainerCreateOptions["HostConfig"]>>{
      Runtime: runtime,
      Privileged: false,
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      CapAdd: capAdd,
      SecurityOpt: ["no-new-privileges:true"],
      NetworkMode: network,
      IpcMode: "private",
      PidMode: "",
      UTSMode: "",
      UsernsMode: "",
      // Its own cgroup namespace: the container does not see the host's cgroup tree.
      CgroupnsMode: "private",
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: nanoCpus,
      PidsLimit: enginePids,
      Tmpfs: { "/tmp": `rw,noexec,nosuid,nodev,size=${tmpfsBytes},mode=1777` },
      Binds: [],
      Mounts:
        secretsDir === undefined
          ? []
          : [{ Type: "bind", Source: secretsDir, Target: SECRETS_MOUNT_PATH, ReadOnly: true, BindOptions: { Propagation: "rprivate" } }],
      Devices: [],
      PortBindings: ports?.portBindings ?? {},
      PublishAllPorts: false,
      Init: false,
      AutoRemove: false,
      RestartPolicy: { ...RESTART_POLICY },
      LogConfig: { Type: LOG_CONFIG.Type, Config: { ...LOG_CONFIG.Config } },
    },
  };
  if (name !== undefined) spec.name = name;
  if (cmd !== undefined) spec.Cmd = cmd;
  if (entrypoint !== undefined) spec.Entrypoint = entrypoint;
  if (workingDir !== undefined) spec.WorkingDir = workingDir;
  if (ports !== undefined) spec.ExposedPorts = ports.exposedPorts;
  if (healthcheck !== undefined) spec.Healthcheck = healthcheck;
  return spec;
}
