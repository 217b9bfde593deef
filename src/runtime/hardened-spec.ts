/**
 * Builds the one container spec portcullis hands to an engine.
 *
 * Restricts: the user (numeric, non-root uid and gid), the root filesystem (read-only),
 * capabilities (all dropped; only ALLOWED_CAPABILITIES may be added back), privilege
 * escalation (no-new-privileges; the engine's default seccomp profile is kept), host
 * namespaces (none shared; network "none" unless a named user network is given), host
 * paths (no binds, mounts or devices), resources (memory without swap, CPU, pids: all
 * required), writable space (only a tmpfs at /tmp: noexec, nosuid, nodev, bounded size),
 * the OCI runtime (runc, or runsc for the gVisor sandbox) and labels (the managed label
 * is always set and cannot be overridden).
 *
 * The input is checked in a fixed order, and the first problem is thrown as an error
 * whose detail names the field path and the reason. Fields it does not know are refused,
 * so a request cannot express "privileged", "binds" or a host namespace at all.
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
import { specInvalid } from "./runtime-errors.js";

/** The label every container portcullis creates carries. */
export const MANAGED_LABEL = "io.portcullis.managed";

/** Capabilities that may be added back after dropping ALL. */
export const ALLOWED_CAPABILITIES: readonly string[] = Object.freeze(["NET_BIND_SERVICE"]);

/** OCI runtimes a container may run under: runc, or runsc (gVisor). */
export const RUNTIMES = Object.freeze(["runc", "runsc"] as const);
export type RuntimeName = (typeof RUNTIMES)[number];

export const DEFAULT_RUNTIME: RuntimeName = "runsc";
export const DEFAULT_NETWORK = "none";
export const DEFAULT_TMPFS_BYTES = 64 * 1024 * 1024;

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

const MAX_UID = 2_147_483_647;
const MAX_ARGS = 256;
const MAX_ARG_BYTES = 64 * 1024;
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
  readonly labels?: Readonly<Record<string, string>>;
  /** Plain configuration only: secrets are mounted as files, never passed as variables. */
  readonly env?: Readonly<Record<string, string>>;
  readonly workingDir?: string;
  readonly name?: string;
}

const INPUT_FIELDS = new Set([
  "image", "user", "limits", "cmd", "entrypoint", "runtime", "tmpfsBytes", "capAdd",
  "network", "labels", "env", "workingDir", "name",
]);
const LIMIT_FIELDS = new Set(["memoryBytes", "nanoCpus", "pids"]);

const IMAGE_RE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,511}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const NETWORK_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const USER_RE = /^([0-9]{1,10}):([0-9]{1,10})$/;
const FORBIDDEN_NETWORKS = new Set(["host", "bridge", "default"]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function checkKnownFields(obj: Record<string, unknown>, known: Set<string>, prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.has(key)) throw specInvalid(`${prefix}${key}`, "unknown field");
  }
}

function checkIntegerInRange(field: string, v: unknown, min: number, max: number): number {
  if (v === undefined || v === null) throw specInvalid(field, "is required");
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw specInvalid(field, "must be an integer");
  if (v < min || v > max) throw specInvalid(field, `must be between ${min} and ${max}`);
  return v;
}

function checkArgv(field: string, v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw specInvalid(field, "must be an array of strings");
  if (v.length === 0) throw specInvalid(field, "must not be empty");
  if (v.length > MAX_ARGS) throw specInvalid(field, `must have at most ${MAX_ARGS} elements`);
  return v.map((arg: unknown, i) => {
    if (typeof arg !== "string") throw specInvalid(`${field}[${i}]`, "must be a string");
    if (arg.includes("\0")) throw specInvalid(`${field}[${i}]`, "must not contain NUL");
    if (Buffer.byteLength(arg) > MAX_ARG_BYTES) throw specInvalid(`${field}[${i}]`, "is too long");
    return arg;
  });
}

function checkUser(v: unknown): string {
  if (v === undefined || v === null || v === "") throw specInvalid("user", "is required");
  if (typeof v !== "string") throw specInvalid("user", "must be a string");
  if (/^root(:|$)/.test(v) || /^0+(:|$)/.test(v)) throw specInvalid("user", "must not be root");
  const m = USER_RE.exec(v);
  if (!m) throw specInvalid("user", "must be a numeric uid:gid");
  const uid = Number(m[1]);
  const gid = Number(m[2]);
  if (gid === 0) throw specInvalid("user", "must not use the root group");
  if (uid > MAX_UID || gid > MAX_UID) throw specInvalid("user", "is out of range");
  return `${uid}:${gid}`;
}

function checkRuntime(v: unknown): RuntimeName {
  if (v === undefined) return DEFAULT_RUNTIME;
  if (typeof v !== "string" || !(RUNTIMES as readonly string[]).includes(v)) {
    throw specInvalid("runtime", `must be one of ${RUNTIMES.join(", ")}`);
  }
  return v as RuntimeName;
}

function checkCapAdd(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw specInvalid("capAdd", "must be an array of strings");
  const out: string[] = [];
  v.forEach((cap: unknown, i) => {
    if (typeof cap !== "string") throw specInvalid(`capAdd[${i}]`, "must be a string");
    const name = cap.toUpperCase().replace(/^CAP_/, "");
    if (!ALLOWED_CAPABILITIES.includes(name)) {
      throw specInvalid(`capAdd[${i}]`, `capability ${JSON.stringify(cap)} is not allowed`);
    }
    if (!out.includes(name)) out.push(name);
  });
  return out;
}

function checkNetwork(v: unknown): string {
  if (v === undefined) return DEFAULT_NETWORK;
  if (typeof v !== "string") throw specInvalid("network", "must be a string");
  if (v === "host" || v.startsWith("container:")) {
    throw specInvalid("network", "must not share a host or container namespace");
  }
  if (FORBIDDEN_NETWORKS.has(v)) throw specInvalid("network", `network ${JSON.stringify(v)} is not allowed`);
  if (!NETWORK_RE.test(v)) throw specInvalid("network", "must be \"none\" or a network name");
  return v;
}

function checkStringMap(
  field: string,
  v: unknown,
  max: number,
  keyRe: RegExp,
  maxValueBytes: number,
): Record<string, string> {
  if (v === undefined) return {};
  if (!isPlainObject(v)) throw specInvalid(field, "must be an object of strings");
  const keys = Object.keys(v);
  if (keys.length > max) throw specInvalid(field, `must have at most ${max} entries`);
  const out: Record<string, string> = {};
  for (const key of keys) {
    const value = v[key];
    if (!keyRe.test(key)) throw specInvalid(`${field}.${key}`, "is not a valid name");
    if (typeof value !== "string") throw specInvalid(`${field}.${key}`, "must be a string");
    if (value.includes("\0")) throw specInvalid(`${field}.${key}`, "must not contain NUL");
    if (Buffer.byteLength(value) > maxValueBytes) throw specInvalid(`${field}.${key}`, "is too long");
    out[key] = value;
  }
  return out;
}

function checkWorkingDir(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !v.startsWith("/") || v.includes("\0") || v.length > 4096) {
    throw specInvalid("workingDir", "must be an absolute path");
  }
  if (v.split("/").includes("..")) throw specInvalid("workingDir", "must not contain \"..\"");
  return v;
}

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

  const spec: ContainerCreateOptions = {
    Image: image,
    User: user,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...labels, [MANAGED_LABEL]: "true" },
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    StdinOnce: false,
    HostConfig: {
      Runtime: runtime,
      Privileged: false,
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      CapAdd: capAdd,
      SecurityOpt: ["no-new-privileges:true"],
      NetworkMode: network,
      IpcMode: "private",
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: nanoCpus,
      PidsLimit: enginePids,
      Tmpfs: { "/tmp": `rw,noexec,nosuid,nodev,size=${tmpfsBytes},mode=1777` },
      Binds: [],
      Mounts: [],
      Devices: [],
      PublishAllPorts: false,
      Init: false,
      AutoRemove: false,
      RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
    },
  };
  if (name !== undefined) spec.name = name;
  if (cmd !== undefined) spec.Cmd = cmd;
  if (entrypoint !== undefined) spec.Entrypoint = entrypoint;
  if (workingDir !== undefined) spec.WorkingDir = workingDir;
  return spec;
}
