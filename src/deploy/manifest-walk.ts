/**
 * The checking primitives of the manifest schema: a walker that visits an object's keys
 * in document order, refuses unknown ones (with a better reason for names that ask for
 * privileges), and collects every problem as `{ field, reason }`.
 */

export interface ManifestIssue {
  /** Field path such as `spec.resources.memory` or `spec.command[2]`. */
  readonly field: string;
  readonly reason: string;
}

export type Obj = Record<string, unknown>;
type Handler = (value: unknown, path: string) => void;

/**
 * Names that ask for privileges or host access. None is part of the schema, so each is
 * refused as an unknown field anyway; the table only gives the reason.
 */
const FORBIDDEN: Readonly<Record<string, string>> = (() => {
  const t: Record<string, string> = {};
  const add = (names: string[], reason: string) => names.forEach((n) => (t[n] = reason));
  add(["privileged"], "privileged containers are never allowed");
  add(["allowPrivilegeEscalation", "noNewPrivileges"], "privilege escalation is never allowed");
  add(["capAdd", "cap_add", "capabilities", "capDrop", "cap_drop"], "capabilities are set by the gateway: all are dropped, none may be added");
  add(["volumes", "volumeMounts", "mounts", "binds", "hostPath", "tmpfs"], "host paths and volumes are never allowed");
  add(["hostNetwork", "hostPID", "hostPid", "hostIPC", "hostIpc", "pid", "ipc", "uts", "networkMode", "userns", "usernsMode", "cgroupParent"], "host namespaces are never allowed");
  add(["devices", "deviceRequests", "gpus"], "devices are never allowed");
  add(["securityContext", "securityOpt", "seccomp", "seccompProfile", "apparmor", "apparmorProfile", "selinux", "seLinuxOptions"], "security options are set by the gateway");
  add(["sysctls", "ulimits"], "kernel settings are set by the gateway");
  add(["readOnlyRootFilesystem", "readonlyRootfs"], "the root filesystem is always read-only");
  add(["runAsUser", "runAsGroup", "runAsNonRoot"], "use spec.user (uid:gid, never 0)");
  add(["runtimeClassName", "runtimeClass"], "use spec.runtime (sandboxed or standard)");
  return t;
})();

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `a.b` for plain keys, `a["x/y"]` otherwise; long keys are cut. */
export function child(path: string, key: string): string {
  const k = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  if (IDENT_RE.test(k)) return path ? `${path}.${k}` : k;
  return `${path}[${JSON.stringify(k)}]`;
}

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export class Walker {
  readonly issues: ManifestIssue[] = [];

  bad(field: string, reason: string): undefined {
    this.issues.push({ field, reason });
    return undefined;
  }

  /**
   * Visits an object's keys in document order: known keys go to their handler, unknown
   * ones are problems; then every missing required key is a problem. False when `value`
   * is not an object.
   */
  fields(value: unknown, path: string, handlers: Readonly<Record<string, Handler>>, required: readonly string[] = []): boolean {
    if (!isObj(value)) {
      this.bad(path || "manifest", "must be a map");
      return false;
    }
    for (const key of Object.keys(value)) {
      const p = child(path, key);
      const h = Object.prototype.hasOwnProperty.call(handlers, key) ? handlers[key] : undefined;
      if (h === undefined) {
        const why = Object.prototype.hasOwnProperty.call(FORBIDDEN, key) ? FORBIDDEN[key] : undefined;
        this.bad(p, why ? `unknown field (${why})` : `unknown field (allowed: ${Object.keys(handlers).join(", ")})`);
        continue;
      }
      h(value[key], p);
    }
    for (const key of required) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) this.bad(child(path, key), "is required");
    }
    return true;
  }

  str(v: unknown, path: string, opts: { maxBytes?: number; nonEmpty?: boolean } = {}): string | undefined {
    if (typeof v !== "string") return this.bad(path, "must be a string");
    if (opts.nonEmpty && v.length === 0) return this.bad(path, "must not be empty");
    if (v.includes("\0")) return this.bad(path, "must not contain NUL");
    const max = opts.maxBytes ?? 65_536;
    if (Buffer.byteLength(v, "utf8") > max) return this.bad(path, `must be at most ${max} bytes`);
    return v;
  }

  /** A string that `reason` accepts. */
  checked(v: unknown, path: string, reason: (s: string) => string | undefined): string | undefined {
    const s = this.str(v, path);
    if (s === undefined) return undefined;
    const why = reason(s);
    return why === undefined ? s : this.bad(path, why);
  }

  int(v: unknown, path: string, min: number, max: number): number | undefined {
    if (typeof v !== "number" || !Number.isInteger(v)) return this.bad(path, "must be an integer");
    if (v < min || v > max) return this.bad(path, `must be between ${min} and ${max}`);
    return v;
  }

  bool(v: unknown, path: string): boolean | undefined {
    return typeof v === "boolean" ? v : this.bad(path, "must be true or false");
  }

  oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T | undefined {
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    return this.bad(path, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
  }

  strArray(v: unknown, path: string, opts: { maxItems: number; maxBytes: number; nonEmpty?: boolean }): string[] | undefined {
    if (!Array.isArray(v)) return this.bad(path, "must be a list of strings");
    if (opts.nonEmpty && v.length === 0) return this.bad(path, "must not be empty");
    if (v.length > opts.maxItems) return this.bad(path, `must have at most ${opts.maxItems} items`);
    const before = this.issues.length;
    const out = v.map((item, i) => this.str(item, `${path}[${i}]`, { maxBytes: opts.maxBytes }) ?? "");
    return this.issues.length === before ? out : undefined;
  }

  /** A map of string values; `key` and `value` say why an entry is refused. */
  strMap(
    v: unknown,
    path: string,
    opts: { maxEntries: number; key: (k: string) => string | undefined; value: (s: string) => string | undefined; maxValueBytes: number },
  ): Record<string, string> | undefined {
    if (!isObj(v)) return this.bad(path, "must be a map");
    const entries = Object.entries(v);
    if (entries.length > opts.maxEntries) return this.bad(path, `must have at most ${opts.maxEntries} entries`);
    const before = this.issues.length;
    const out: Record<string, string> = {};
    for (const [k, val] of entries) {
      const p = child(path, k);
      const why = opts.key(k);
      if (why !== undefined) {
        this.bad(p, why);
        continue;
      }
      const s = this.str(val, p, { maxBytes: opts.maxValueBytes });
      if (s === undefined) continue;
      const vwhy = opts.value(s);
      if (vwhy !== undefined) this.bad(p, vwhy);
      else out[k] = s;
    }
    return this.issues.length === before ? out : undefined;
  }

  /** Records `parse`'s string result as the problem, or returns its number. */
  parsed(v: unknown, path: string, parse: (v: unknown) => number | string): number | undefined {
    const r = parse(v);
    return typeof r === "string" ? this.bad(path, r) : r;
  }
}
