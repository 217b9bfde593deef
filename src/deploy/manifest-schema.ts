/**
 * The manifest schema (portcullis/v1 Deployment) over its JSON data model. Every object
 * refuses unknown fields; every problem is collected with its field path; the result is
 * the normalized DeploymentSpec (units parsed, defaults applied).
 *
 *   apiVersion: portcullis/v1          kind: Deployment
 *   metadata: name, namespace (DNS labels), labels? (<= 32, no io.portcullis. keys)
 *   spec:
 *     image            repo@sha256:<hex> | sha256:<hex> | repo:tag | repo
 *     command?, args?  <= 256 strings, no NUL
 *     workingDir?      absolute, no `..`
 *     env?             <= 128 entries, NAME -> string <= 32 KiB
 *     user?            "uid:gid", both numeric and non-zero
 *     replicas         0..64, default 1
 *     resources        cpus (0 < n <= 64, 3 decimals), memory (6Mi..256Gi), pids (1..32768)
 *     runtime          sandboxed | standard, default sandboxed
 *     network          mode none | namespace (default none); ports only with namespace
 *     healthcheck?     command, interval 1s..5m (5s), timeout <= interval (3s),
 *                      retries 1..10 (3), startPeriod 0s..5m (0s)
 *     placement        nodeLabels, spread (default true)
 *     update           maxSurge 0..10 (1), maxUnavailable 0..10 (0), not both 0
 *     secrets?         <= 32 of { name (secret name), path (absolute string), version? (>= 1),
 *                      namespace? (DNS label) }; where a path may point is admission's
 *                      to judge (secret-references), and the runtime's again
 */
import type { DeploymentSpec, HealthcheckSpec, NetworkMode, PortMapping, RuntimeClass, SecretMount } from "./types.js";
import { MANIFEST_API_VERSION, MANIFEST_KIND } from "./types.js";
import { type ManifestIssue, Walker } from "./manifest-walk.js";
import {
  dnsLabelReason,
  formatMs,
  imageReason,
  labelKeyReason,
  labelValueReason,
  MAX_LABELS,
  parseCpus,
  parseDurationMs,
  parseMemory,
} from "./manifest-values.js";

export const MAX_ARGV_ITEMS = 256;
export const MAX_ARG_BYTES = 65_536;
export const MAX_ENV = 128;
export const MAX_ENV_VALUE_BYTES = 32 * 1024;
export const MAX_REPLICAS = 64;
export const MAX_PIDS = 32_768;
export const MAX_PORTS = 64;
export const MAX_SECRETS = 32;
const SECRET_NAME_RE = /^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ID = 2_147_483_647;

const none = (): undefined => undefined;
const labelMapOpts = { maxEntries: MAX_LABELS, key: labelKeyReason, value: labelValueReason, maxValueBytes: 63 };

type Mutable<T> = { -readonly [K in keyof T]?: T[K] };

/** Checks a manifest value; returns every problem, and the spec when there is none. */
export function checkManifestValue(value: unknown): { issues: ManifestIssue[]; spec?: DeploymentSpec } {
  const w = new Walker();
  const s: Mutable<DeploymentSpec> = {};
  let labels: Record<string, string> = {};

  w.fields(
    value,
    "",
    {
      apiVersion: (v, p) => (v === MANIFEST_API_VERSION ? undefined : w.bad(p, `must be ${JSON.stringify(MANIFEST_API_VERSION)}`)),
      kind: (v, p) => (v === MANIFEST_KIND ? undefined : w.bad(p, `must be ${JSON.stringify(MANIFEST_KIND)}`)),
      metadata: (v, p) =>
        w.fields(
          v,
          p,
          {
            name: (x, q) => (s.name = w.checked(x, q, dnsLabelReason)),
            namespace: (x, q) => (s.namespace = w.checked(x, q, dnsLabelReason)),
            labels: (x, q) => (labels = w.strMap(x, q, labelMapOpts) ?? {}),
          },
          ["name", "namespace"],
        ),
      spec: (v, p) => checkSpec(w, v, p, s),
    },
    ["apiVersion", "kind", "metadata", "spec"],
  );

  if (w.issues.length > 0) return { issues: w.issues };
  const spec: DeploymentSpec = {
    name: s.name as string,
    namespace: s.namespace as string,
    labels,
    image: s.image as string,
    ...(s.command !== undefined ? { command: s.command } : {}),
    ...(s.args !== undefined ? { args: s.args } : {}),
    ...(s.workingDir !== undefined ? { workingDir: s.workingDir } : {}),
    env: s.env ?? {},
    ...(s.user !== undefined ? { user: s.user } : {}),
    replicas: s.replicas ?? 1,
    resources: s.resources as DeploymentSpec["resources"],
    runtime: s.runtime ?? "sandboxed",
    network: s.network ?? { mode: "none", ports: [] },
    ...(s.healthcheck !== undefined ? { healthcheck: s.healthcheck } : {}),
    placement: s.placement ?? { nodeLabels: {}, spread: true },
    update: s.update ?? { maxSurge: 1, maxUnavailable: 0 },
    secrets: s.secrets ?? [],
  };
  return { issues: [], spec };
}

function checkSpec(w: Walker, v: unknown, p: string, s: Mutable<DeploymentSpec>): void {
  const argv = { maxItems: MAX_ARGV_ITEMS, maxBytes: MAX_ARG_BYTES };
  w.fields(
    v,
    p,
    {
      image: (x, q) => (s.image = w.checked(x, q, imageReason)),
      command: (x, q) => (s.command = w.strArray(x, q, argv)),
      args: (x, q) => (s.args = w.strArray(x, q, argv)),
      workingDir: (x, q) => (s.workingDir = w.checked(x, q, workingDirReason)),
      env: (x, q) =>
        (s.env = w.strMap(x, q, {
          maxEntries: MAX_ENV,
          key: (k) => (ENV_KEY_RE.test(k) && k.length <= 256 ? undefined : "must be a variable name ([A-Za-z_][A-Za-z0-9_]*)"),
          value: none,
          maxValueBytes: MAX_ENV_VALUE_BYTES,
        })),
      user: (x, q) => (s.user = w.checked(x, q, userReason)),
      replicas: (x, q) => (s.replicas = w.int(x, q, 0, MAX_REPLICAS)),
      resources: (x, q) => (s.resources = checkResources(w, x, q)),
      runtime: (x, q) => (s.runtime = w.oneOf<RuntimeClass>(x, q, ["sandboxed", "standard"])),
      network: (x, q) => (s.network = checkNetwork(w, x, q)),
      healthcheck: (x, q) => (s.healthcheck = checkHealthcheck(w, x, q)),
      placement: (x, q) => {
        let nodeLabels: Record<string, string> | undefined = {};
        let spread: boolean | undefined = true;
        w.fields(x, q, {
          nodeLabels: (y, r) => (nodeLabels = w.strMap(y, r, labelMapOpts)),
          spread: (y, r) => (spread = w.bool(y, r)),
        });
        if (nodeLabels !== undefined && spread !== undefined) s.placement = { nodeLabels, spread };
      },
      update: (x, q) => {
        let maxSurge: number | undefined = 1;
        let maxUnavailable: number | undefined = 0;
        if (!w.fields(x, q, { maxSurge: (y, r) => (maxSurge = w.int(y, r, 0, 10)), maxUnavailable: (y, r) => (maxUnavailable = w.int(y, r, 0, 10)) })) return;
        if (maxSurge === 0 && maxUnavailable === 0) w.bad(q, "maxSurge and maxUnavailable must not both be 0");
        if (maxSurge !== undefined && maxUnavailable !== undefined) s.update = { maxSurge, maxUnavailable };
      },
      secrets: (x, q) => (s.secrets = checkSecrets(w, x, q)),
    },
    ["image", "resources"],
  );
}

function checkSecrets(w: Walker, v: unknown, p: string): SecretMount[] | undefined {
  if (!Array.isArray(v)) return w.bad(p, "must be a list");
  if (v.length > MAX_SECRETS) return w.bad(p, `must have at most ${MAX_SECRETS} items`);
  const before = w.issues.length;
  const out: SecretMount[] = [];
  v.forEach((item, i) => {
    const q = `${p}[${i}]`;
    let name: string | undefined;
    let path: string | undefined;
    let version: number | undefined;
    let namespace: string | undefined;
    const ok = w.fields(
      item,
      q,
      {
        name: (x, r) => (name = w.checked(x, r, (n) => (SECRET_NAME_RE.test(n) ? undefined : "must be a secret name (a-z, 0-9, '-', '.'; at most 63)"))),
        path: (x, r) => (path = w.checked(x, r, secretPathReason)),
        version: (x, r) => (version = w.int(x, r, 1, MAX_ID)),
        namespace: (x, r) => (namespace = w.checked(x, r, dnsLabelReason)),
      },
      ["name", "path"],
    );
    if (!ok || name === undefined || path === undefined) return;
    out.push({ name, path, ...(version !== undefined ? { version } : {}), ...(namespace !== undefined ? { namespace } : {}) });
  });
  return w.issues.length === before ? out : undefined;
}

/** The form of a path only; where it may point is judged by admission. */
function secretPathReason(path: string): string | undefined {
  if (!path.startsWith("/")) return "must be an absolute path";
  if (path.length > 4096) return "must be at most 4096 characters";
  return undefined;
}

function workingDirReason(d: string): string | undefined {
  if (!d.startsWith("/")) return "must be an absolute path";
  if (d.length > 4096) return "must be at most 4096 characters";
  if (d.split("/").includes("..")) return "must not contain '..'";
  return undefined;
}

function userReason(u: string): string | undefined {
  const m = /^([0-9]{1,10}):([0-9]{1,10})$/.exec(u);
  if (!m) return 'must be numeric "uid:gid"';
  const [uid, gid] = [Number(m[1]), Number(m[2])];
  if (uid === 0 || gid === 0) return "must not be root (uid or gid 0)";
  if (uid > MAX_ID || gid > MAX_ID) return `uid and gid must be at most ${MAX_ID}`;
  if (/(^|:)0/.test(u)) return "must not have leading zeros";
  return undefined;
}

function checkResources(w: Walker, v: unknown, p: string): DeploymentSpec["resources"] | undefined {
  let nanoCpus: number | undefined;
  let memoryBytes: number | undefined;
  let pids: number | undefined;
  w.fields(
    v,
    p,
    {
      cpus: (x, q) => (nanoCpus = w.parsed(x, q, parseCpus)),
      memory: (x, q) => (memoryBytes = w.parsed(x, q, parseMemory)),
      pids: (x, q) => (pids = w.int(x, q, 1, MAX_PIDS)),
    },
    ["cpus", "memory", "pids"],
  );
  return nanoCpus !== undefined && memoryBytes !== undefined && pids !== undefined ? { nanoCpus, memoryBytes, pids } : undefined;
}

function checkNetwork(w: Walker, v: unknown, p: string): DeploymentSpec["network"] | undefined {
  let mode: NetworkMode | undefined = "none";
  let ports: PortMapping[] | undefined = [];
  let portsPath: string | undefined;
  const ok = w.fields(v, p, {
    mode: (x, q) => (mode = w.oneOf<NetworkMode>(x, q, ["none", "namespace"])),
    ports: (x, q) => {
      portsPath = q;
      ports = checkPorts(w, x, q);
    },
  });
  if (!ok) return undefined;
  if (mode === "none" && portsPath !== undefined && (ports === undefined || ports.length > 0)) {
    w.bad(portsPath, "only allowed with mode namespace");
    return undefined;
  }
  return mode !== undefined && ports !== undefined ? { mode, ports } : undefined;
}

function checkPorts(w: Walker, v: unknown, p: string): PortMapping[] | undefined {
  if (!Array.isArray(v)) return w.bad(p, "must be a list");
  if (v.length > MAX_PORTS) return w.bad(p, `must have at most ${MAX_PORTS} items`);
  const before = w.issues.length;
  const out: PortMapping[] = [];
  const seen = new Set<string>();
  v.forEach((item, i) => {
    const q = `${p}[${i}]`;
    let container: number | undefined;
    let host: number | undefined;
    let protocol: "tcp" | "udp" | undefined = "tcp";
    const ok = w.fields(
      item,
      q,
      {
        container: (x, r) => (container = w.int(x, r, 1, 65_535)),
        host: (x, r) => (host = w.int(x, r, 1024, 65_535)),
        protocol: (x, r) => (protocol = w.oneOf<"tcp" | "udp">(x, r, ["tcp", "udp"])),
      },
      ["container", "host"],
    );
    if (!ok || container === undefined || host === undefined || protocol === undefined) return;
    const key = `${host}/${protocol}`;
    if (seen.has(key)) w.bad(`${q}.host`, `host port ${host}/${protocol} is already used by another port`);
    seen.add(key);
    out.push({ container, host, protocol });
  });
  return w.issues.length === before ? out : undefined;
}

const S = 1_000;
const MIN5 = 5 * 60_000;

function checkHealthcheck(w: Walker, v: unknown, p: string): HealthcheckSpec | undefined {
  let command: string[] | undefined;
  let intervalMs: number | undefined = 5 * S;
  let timeoutMs: number | undefined;
  let retries: number | undefined = 3;
  let startPeriodMs: number | undefined = 0;
  let timeoutPath = "";
  const range = (x: unknown, q: string, min: number, max: number): number | undefined => {
    const ms = w.parsed(x, q, parseDurationMs);
    if (ms === undefined) return undefined;
    return ms < min || ms > max ? w.bad(q, `must be between ${formatMs(min)} and ${formatMs(max)}`) : ms;
  };
  const ok = w.fields(
    v,
    p,
    {
      command: (x, q) => (command = w.strArray(x, q, { maxItems: MAX_ARGV_ITEMS, maxBytes: MAX_ARG_BYTES, nonEmpty: true })),
      interval: (x, q) => (intervalMs = range(x, q, S, MIN5)),
      timeout: (x, q) => {
        timeoutPath = q;
        timeoutMs = range(x, q, 1, MIN5);
      },
      retries: (x, q) => (retries = w.int(x, q, 1, 10)),
      startPeriod: (x, q) => (startPeriodMs = range(x, q, 0, MIN5)),
    },
    ["command"],
  );
  if (!ok || command === undefined || intervalMs === undefined || retries === undefined || startPeriodMs === undefined) return undefined;
  if (timeoutPath === "") timeoutMs = Math.min(3 * S, intervalMs);
  if (timeoutMs === undefined) return undefined;
  if (timeoutMs > intervalMs) return w.bad(timeoutPath, "must not be longer than the interval");
  return { command, intervalMs, timeoutMs, retries, startPeriodMs };
}
