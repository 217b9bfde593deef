/**
 * The field checks of the hardened container spec: each takes the raw value of one
 * input field, returns it normalised, or throws PC_RUNTIME_SPEC_INVALID naming the field
 * path and the reason.
 */
import { specInvalid } from "./runtime-errors.js";

/** Capabilities that may be added back after dropping ALL. */
export const ALLOWED_CAPABILITIES: readonly string[] = Object.freeze(["NET_BIND_SERVICE"]);

/** OCI runtimes a container may run under: runc, or runsc (gVisor). */
export const RUNTIMES = Object.freeze(["runc", "runsc"] as const);
export type RuntimeName = (typeof RUNTIMES)[number];

export const DEFAULT_RUNTIME: RuntimeName = "runsc";
export const DEFAULT_NETWORK = "none";

const MAX_UID = 2_147_483_647;
const MAX_ARGS = 256;
const MAX_ARG_BYTES = 64 * 1024;

const NETWORK_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const USER_RE = /^([0-9]{1,10}):([0-9]{1,10})$/;
const FORBIDDEN_NETWORKS = new Set(["host", "bridge", "default"]);

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

export function checkKnownFields(obj: Record<string, unknown>, known: ReadonlySet<string>, prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.has(key)) throw specInvalid(`${prefix}${key}`, "unknown field");
  }
}

export function checkIntegerInRange(field: string, v: unknown, min: number, max: number): number {
  if (v === undefined || v === null) throw specInvalid(field, "is required");
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw specInvalid(field, "must be an integer");
  if (v < min || v > max) throw specInvalid(field, `must be between ${min} and ${max}`);
  return v;
}

export function checkArgv(field: string, v: unknown): string[] | undefined {
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

/** A numeric, non-root "uid:gid" (root group refused too); returns it without leading zeros. */
export function checkUser(v: unknown, field = "user"): string {
  if (v === undefined || v === null || v === "") throw specInvalid(field, "is required");
  if (typeof v !== "string") throw specInvalid(field, "must be a string");
  if (/^root(:|$)/.test(v) || /^0+(:|$)/.test(v)) throw specInvalid(field, "must not be root");
  const m = USER_RE.exec(v);
  if (!m) throw specInvalid(field, "must be a numeric uid:gid");
  const uid = Number(m[1]);
  const gid = Number(m[2]);
  if (gid === 0) throw specInvalid(field, "must not use the root group");
  if (uid > MAX_UID || gid > MAX_UID) throw specInvalid(field, "is out of range");
  return `${uid}:${gid}`;
}

export function checkRuntime(v: unknown): RuntimeName {
  if (v === undefined) return DEFAULT_RUNTIME;
  if (typeof v !== "string" || !(RUNTIMES as readonly string[]).includes(v)) {
    throw specInvalid("runtime", `must be one of ${RUNTIMES.join(", ")}`);
  }
  return v as RuntimeName;
}

export function checkCapAdd(v: unknown): string[] {
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

export function checkNetwork(v: unknown): string {
  if (v === undefined) return DEFAULT_NETWORK;
  if (typeof v !== "string") throw specInvalid("network", "must be a string");
  if (v === "host" || v.startsWith("container:")) {
    throw specInvalid("network", "must not share a host or container namespace");
  }
  if (FORBIDDEN_NETWORKS.has(v)) throw specInvalid("network", `network ${JSON.stringify(v)} is not allowed`);
  if (!NETWORK_RE.test(v)) throw specInvalid("network", "must be \"none\" or a network name");
  return v;
}

export function checkStringMap(
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

export function checkWorkingDir(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !v.startsWith("/") || v.includes("\0") || v.length > 4096) {
    throw specInvalid("workingDir", "must be an absolute path");
  }
  if (v.split("/").includes("..")) throw specInvalid("workingDir", "must not contain \"..\"");
  return v;
}

/** Host paths that a bind must never expose, nor lie below: the engine's own and the kernel's. */
const ENGINE_PATHS = ["/var/run/docker", "/run/docker", "/var/lib/docker", "/run/containerd", "/var/run/containerd", "/var/lib/containerd", "/proc", "/sys", "/dev"];

/**
 * The host directory of a container's secret files (mounted read-only at /run/secrets):
 * an absolute, normalised path (no '..', '.', empty segment or trailing '/'), not '/',
 * no NUL, and neither a socket (a segment ending in ".sock") nor an engine or kernel path
 * (below /dev only /dev/shm, an in-memory filesystem, is allowed).
 */
export function checkSecretsDir(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length > 4096) throw specInvalid("secretsDir", "must be a string");
  if (v.includes("\0")) throw specInvalid("secretsDir", "must not contain NUL");
  if (!v.startsWith("/")) throw specInvalid("secretsDir", "must be an absolute path");
  if (v === "/") throw specInvalid("secretsDir", "must not be /");
  const segs = v.slice(1).split("/");
  if (segs.includes("..")) throw specInvalid("secretsDir", "must not contain \"..\"");
  if (segs.some((s) => s === "" || s === ".")) throw specInvalid("secretsDir", "must be a normalised path");
  if (segs.some((s) => s.endsWith(".sock"))) throw specInvalid("secretsDir", "must not be a socket path");
  const shm = v.startsWith("/dev/shm/");
  if (!shm && ENGINE_PATHS.some((p) => v === p || v.startsWith(`${p}/`))) throw specInvalid("secretsDir", "must not be an engine or kernel path");
  return v;
}
