/**
 * Where a deployment's secret files may go: below /run/secrets, as plain relative
 * segments, and never onto each other. One rule for admission (the secret-references
 * check reports each problem as a violation with its field path) and for the runtime
 * (which refuses the same paths again before it writes a file or mounts a directory).
 *
 * A path is allowed when it is `/run/secrets/<seg>[/<seg>...]` with 1 to 4 segments of
 * letters, digits, '.', '_' and '-' (at most 128 each), none of them "." or "..", no
 * empty segment (so no "//" and no trailing "/"). Two mounts collide when their paths are
 * equal or one is a directory of the other. The mount of /run/secrets itself is the
 * runtime's, so no path may be that directory; the container's other mounts (its root
 * filesystem, read-only, and the /tmp tmpfs) lie outside it.
 */
import type { SecretMount } from "./types.js";

export const SECRETS_MOUNT_PATH = "/run/secrets";
const SEGMENT_RE = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_DEPTH = 4;

/** Why a secret path is not allowed, or undefined when it is. */
export function secretPathReason(path: string): string | undefined {
  const prefix = `${SECRETS_MOUNT_PATH}/`;
  if (path.includes("\0")) return "must not contain NUL";
  if (!path.startsWith(prefix)) return `must lie below ${prefix}`;
  const rest = path.slice(prefix.length).split("/");
  if (rest.includes("..")) return "must not contain '..'";
  if (rest.includes(".")) return "must not contain '.' segments";
  if (rest.some((s) => s === "")) return "must not have empty segments or a trailing '/'";
  if (rest.length > MAX_DEPTH) return `must be at most ${MAX_DEPTH} levels below ${SECRETS_MOUNT_PATH}`;
  const bad = rest.find((s) => !SEGMENT_RE.test(s));
  if (bad !== undefined) return "segments may hold only letters, digits, '.', '_' and '-' (at most 128)";
  return undefined;
}

/** The path below /run/secrets ("db/password") of an allowed path. */
export function secretRelativePath(path: string): string {
  return path.slice(SECRETS_MOUNT_PATH.length + 1);
}

export interface SecretMountProblem {
  /** Index in spec.secrets. */
  readonly index: number;
  /** Field path: spec.secrets[i].path or spec.secrets[i].namespace. */
  readonly field: string;
  readonly reason: string;
  readonly detail: string;
}

/**
 * Every problem with a deployment's secret mounts, in order: a path that is not allowed,
 * a path colliding with an earlier one, a reference to another namespace.
 */
export function secretMountProblems(namespace: string, mounts: readonly SecretMount[]): SecretMountProblem[] {
  const out: SecretMountProblem[] = [];
  const seen: { path: string; index: number }[] = [];
  mounts.forEach((m, index) => {
    const field = `spec.secrets[${index}]`;
    if (m.namespace !== undefined && m.namespace !== namespace) {
      out.push({
        index, field: `${field}.namespace`, reason: "cross-namespace reference",
        detail: `${field} references secret ${m.name} of namespace ${m.namespace}; a deployment in ${namespace} may use only its own namespace's secrets`,
      });
    }
    const why = secretPathReason(m.path);
    if (why !== undefined) {
      out.push({ index, field: `${field}.path`, reason: "secret path not allowed", detail: `${field}.path ${JSON.stringify(m.path.slice(0, 200))} ${why}` });
      return;
    }
    const clash = seen.find((s) => s.path === m.path || s.path.startsWith(`${m.path}/`) || m.path.startsWith(`${s.path}/`));
    if (clash !== undefined) {
      out.push({
        index, field: `${field}.path`, reason: "secret path collides",
        detail: `${field}.path ${m.path} collides with spec.secrets[${clash.index}].path ${clash.path}`,
      });
      return;
    }
    seen.push({ path: m.path, index });
  });
  return out;
}
