import { isAbsolute, resolve } from "node:path";
import { pcError } from "./errors.js";
import { assertTrustDomain } from "./identity.js";

export const DEFAULT_API_LISTEN = "127.0.0.1:8443";
export const DEFAULT_BOOTSTRAP_LISTEN = "127.0.0.1:8444";
export const DEFAULT_TRUST_DOMAIN = "portcullis.local";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses HOST:PORT, [IPv6]:PORT. Port 0 lets the OS choose (tests). */
export function parseHostPort(text: string, what = "address"): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw pcError("PC_CONFIG_INVALID", `${what} must be HOST:PORT`);
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** `--data-dir`, else PORTCULLIS_DATA_DIR, else `.portcullis/` in the current directory. */
export function resolveDataDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const d = flag ?? env.PORTCULLIS_DATA_DIR ?? ".portcullis";
  return isAbsolute(d) ? d : resolve(process.cwd(), d);
}

/** Lifetimes, in milliseconds. */
export interface Lifetimes {
  readonly userDefault: number;
  readonly userMax: number;
  readonly node: number;
  readonly service: number;
  readonly server: number;
  readonly intermediate: number;
  readonly root: number;
  readonly enrollTokenDefault: number;
  readonly enrollTokenMax: number;
}

const H = 3_600_000;
const D = 24 * H;

export const DEFAULT_LIFETIMES: Lifetimes = {
  userDefault: 24 * H,
  userMax: 7 * D,
  node: 7 * D,
  service: 7 * D,
  server: 30 * D,
  intermediate: 365 * D,
  root: 3652 * D,
  enrollTokenDefault: 15 * 60_000,
  enrollTokenMax: 7 * D,
};

/** The gateway's settings, kept in `config.json` in the data directory. */
export interface GatewayConfig {
  readonly trustDomain: string;
  readonly listen: string;
  readonly bootstrapListen: string;
  /** Extra DNS names or IP addresses for the server certificate. */
  readonly sans: readonly string[];
  readonly lifetimes: Lifetimes;
  /** The secret store: where its keyring comes from, where secret files go (absent = defaults). */
  readonly secrets?: SecretsConfig;
  /** The image scanner: its time budget and an optional trivy (absent = defaults). */
  readonly scan?: ScanConfig;
  /** Runtime monitoring: stats interval, stream reconnects, event retention, the alert webhook. */
  readonly monitoring?: MonitoringConfig;
}

/**
 * `statsIntervalMs`: how often managed containers' stats are sampled (1 s to 10 min);
 * `reconnectMaxMs`: the longest wait between two attempts to reconnect a node's event
 * stream (the first is 250 ms, then doubling); `eventRetentionMs`: how long handled
 * engine events are kept (for deduplication and `monitoring rules test --recorded`), at
 * least an hour; `webhook`: where alerts are POSTed, signed with HMAC-SHA256 under the
 * key in `keyFile` (an absolute path to a file of mode 0600 holding at least 32 bytes),
 * tried `maxAttempts` times with backoff, each attempt at most `timeoutMs`.
 */
export interface MonitoringConfig {
  readonly statsIntervalMs: number;
  readonly reconnectMaxMs: number;
  readonly eventRetentionMs: number;
  readonly webhook?: WebhookConfig;
}

export interface WebhookConfig {
  readonly url: string;
  readonly keyFile: string;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
}

export const DEFAULT_MONITORING_CONFIG: MonitoringConfig = {
  statsIntervalMs: 10_000,
  reconnectMaxMs: 30_000,
  eventRetentionMs: 7 * 86_400_000,
};

/** The monitoring settings of a config, the defaults where it has none. */
export function monitoringConfigOf(cfg: GatewayConfig): MonitoringConfig {
  return { ...DEFAULT_MONITORING_CONFIG, ...(cfg.monitoring ?? {}) };
}

const intIn = (v: unknown, min: number, max: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min && v <= max;

/**
 * A webhook URL: https, or http only to a loopback address (an alert carries evidence
 * that should not cross a network in the clear); no credentials in it.
 */
export function webhookUrlReason(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "is not a URL";
  }
  if (u.username !== "" || u.password !== "") return "must not carry credentials";
  if (u.protocol === "https:") return undefined;
  if (u.protocol === "http:" && (u.hostname === "127.0.0.1" || u.hostname === "[::1]" || u.hostname === "localhost")) return undefined;
  return "must be https (http only to 127.0.0.1, [::1] or localhost)";
}

function parseMonitoringConfig(raw: unknown): MonitoringConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw pcError("PC_CONFIG_INVALID", "monitoring must be an object");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!["statsIntervalMs", "reconnectMaxMs", "eventRetentionMs", "webhook"].includes(k)) throw pcError("PC_CONFIG_INVALID", `unknown key monitoring.${k.slice(0, 40)}`);
  }
  const d = DEFAULT_MONITORING_CONFIG;
  const statsIntervalMs = o.statsIntervalMs ?? d.statsIntervalMs;
  if (!intIn(statsIntervalMs, 1_000, 600_000)) throw pcError("PC_CONFIG_INVALID", "monitoring.statsIntervalMs must be an integer from 1000 to 600000");
  const reconnectMaxMs = o.reconnectMaxMs ?? d.reconnectMaxMs;
  if (!intIn(reconnectMaxMs, 1_000, 600_000)) throw pcError("PC_CONFIG_INVALID", "monitoring.reconnectMaxMs must be an integer from 1000 to 600000");
  const eventRetentionMs = o.eventRetentionMs ?? d.eventRetentionMs;
  if (!intIn(eventRetentionMs, 3_600_000, 365 * 86_400_000)) throw pcError("PC_CONFIG_INVALID", "monitoring.eventRetentionMs must be an integer from 3600000 (an hour) to a year");
  let webhook: WebhookConfig | undefined;
  if (o.webhook !== undefined) {
    const w = o.webhook as Record<string, unknown>;
    if (typeof w !== "object" || w === null || Array.isArray(w)) throw pcError("PC_CONFIG_INVALID", "monitoring.webhook must be an object");
    for (const k of Object.keys(w)) {
      if (!["url", "keyFile", "maxAttempts", "timeoutMs"].includes(k)) throw pcError("PC_CONFIG_INVALID", `unknown key monitoring.webhook.${k.slice(0, 40)}`);
    }
    if (typeof w.url !== "string" || w.url.length > 2048) throw pcError("PC_CONFIG_INVALID", "monitoring.webhook.url must be a string");
    const why = webhookUrlReason(w.url);
    if (why !== undefined) throw pcError("PC_CONFIG_INVALID", `monitoring.webhook.url ${why}`);
    if (typeof w.keyFile !== "string" || !isAbsolute(w.keyFile) || w.keyFile.includes("\0") || w.keyFile.length > 1024) {
      throw pcError("PC_CONFIG_INVALID", "monitoring.webhook.keyFile must be an absolute path");
    }
    const maxAttempts = w.maxAttempts ?? 6;
    if (!intIn(maxAttempts, 1, 20)) throw pcError("PC_CONFIG_INVALID", "monitoring.webhook.maxAttempts must be an integer from 1 to 20");
    const timeoutMs = w.timeoutMs ?? 5_000;
    if (!intIn(timeoutMs, 100, 60_000)) throw pcError("PC_CONFIG_INVALID", "monitoring.webhook.timeoutMs must be an integer from 100 to 60000");
    webhook = { url: w.url, keyFile: w.keyFile, maxAttempts, timeoutMs };
  }
  return { statsIntervalMs, reconnectMaxMs, eventRetentionMs, ...(webhook !== undefined ? { webhook } : {}) };
}

/**
 * `timeoutMs`: how long one admission may wait for an image's scan (a cold scan exports
 * the image from its engine); `trivyPath`: an absolute trivy executable (else `trivy` on
 * PATH, else the built-in scanner); `trivyServer`: a trivy server URL (`--server`).
 */
export interface ScanConfig {
  readonly timeoutMs: number;
  readonly trivyPath?: string;
  readonly trivyServer?: string;
}

export const DEFAULT_SCAN_CONFIG: ScanConfig = { timeoutMs: 60_000 };

/** The scanner settings of a config, the defaults where it has none. */
export function scanConfigOf(cfg: GatewayConfig): ScanConfig {
  return { ...DEFAULT_SCAN_CONFIG, ...(cfg.scan ?? {}) };
}

function parseScanConfig(raw: unknown): ScanConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw pcError("PC_CONFIG_INVALID", "scan must be an object");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!["timeoutMs", "trivyPath", "trivyServer"].includes(k)) throw pcError("PC_CONFIG_INVALID", `unknown key scan.${k.slice(0, 40)}`);
  const timeoutMs = o.timeoutMs ?? DEFAULT_SCAN_CONFIG.timeoutMs;
  if (typeof timeoutMs !== "number" || !Number.isInteger(timeoutMs) || timeoutMs < 1_000 || timeoutMs > 600_000) {
    throw pcError("PC_CONFIG_INVALID", "scan.timeoutMs must be an integer from 1000 to 600000");
  }
  if (o.trivyPath !== undefined && (typeof o.trivyPath !== "string" || !isAbsolute(o.trivyPath) || o.trivyPath.includes("\0"))) {
    throw pcError("PC_CONFIG_INVALID", "scan.trivyPath must be an absolute path");
  }
  if (o.trivyServer !== undefined) {
    let ok = false;
    try {
      const u = new URL(String(o.trivyServer));
      ok = typeof o.trivyServer === "string" && (u.protocol === "http:" || u.protocol === "https:") && u.username === "" && u.password === "";
    } catch {
      ok = false;
    }
    if (!ok) throw pcError("PC_CONFIG_INVALID", "scan.trivyServer must be an http(s) URL without credentials");
  }
  return {
    timeoutMs,
    ...(o.trivyPath !== undefined ? { trivyPath: o.trivyPath as string } : {}),
    ...(o.trivyServer !== undefined ? { trivyServer: o.trivyServer as string } : {}),
  };
}

/** `keyring`: the data dir's keyring file, or the PORTCULLIS_KEYRING environment variable. */
export interface SecretsConfig {
  readonly keyring: "file" | "env";
  /** Absolute; the in-memory filesystem below which secret files are written. */
  readonly tmpfsRoot: string;
}

export const DEFAULT_SECRETS_CONFIG: SecretsConfig = { keyring: "file", tmpfsRoot: "/run/portcullis/secrets" };

/** The secrets settings of a config, the defaults where it has none. */
export function secretsConfigOf(cfg: GatewayConfig): SecretsConfig {
  return cfg.secrets ?? DEFAULT_SECRETS_CONFIG;
}

function parseSecretsConfig(raw: unknown): SecretsConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw pcError("PC_CONFIG_INVALID", "secrets must be an object");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== "keyring" && k !== "tmpfsRoot") throw pcError("PC_CONFIG_INVALID", `unknown key secrets.${k.slice(0, 40)}`);
  const keyring = o.keyring ?? DEFAULT_SECRETS_CONFIG.keyring;
  if (keyring !== "file" && keyring !== "env") throw pcError("PC_CONFIG_INVALID", 'secrets.keyring must be "file" or "env"');
  const tmpfsRoot = o.tmpfsRoot ?? DEFAULT_SECRETS_CONFIG.tmpfsRoot;
  if (typeof tmpfsRoot !== "string" || !isAbsolute(tmpfsRoot) || tmpfsRoot.includes("\0") || tmpfsRoot.length > 1024 || /(^|\/)\.\.?(\/|$)/.test(tmpfsRoot)) {
    throw pcError("PC_CONFIG_INVALID", "secrets.tmpfsRoot must be an absolute path without '.' or '..' segments");
  }
  return { keyring, tmpfsRoot };
}

export function defaultConfig(partial: Partial<GatewayConfig> = {}): GatewayConfig {
  return {
    trustDomain: partial.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    listen: partial.listen ?? DEFAULT_API_LISTEN,
    bootstrapListen: partial.bootstrapListen ?? DEFAULT_BOOTSTRAP_LISTEN,
    sans: partial.sans ?? [],
    lifetimes: { ...DEFAULT_LIFETIMES, ...(partial.lifetimes ?? {}) },
    ...(partial.secrets ? { secrets: partial.secrets } : {}),
    ...(partial.scan ? { scan: partial.scan } : {}),
    ...(partial.monitoring ? { monitoring: partial.monitoring } : {}),
  };
}

/** Validates a parsed config.json; unknown keys are refused. */
export function parseConfig(raw: unknown): GatewayConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw pcError("PC_CONFIG_INVALID", "config must be an object");
  const o = raw as Record<string, unknown>;
  const known = ["trustDomain", "listen", "bootstrapListen", "sans", "lifetimes", "secrets", "scan", "monitoring"];
  for (const k of Object.keys(o)) if (!known.includes(k)) throw pcError("PC_CONFIG_INVALID", `unknown key ${k}`);
  const str = (k: string): string => {
    if (typeof o[k] !== "string") throw pcError("PC_CONFIG_INVALID", `${k} must be a string`);
    return o[k] as string;
  };
  const strs = (k: string): string[] => {
    const v = o[k];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw pcError("PC_CONFIG_INVALID", `${k} must be a list of strings`);
    return v as string[];
  };
  const ltRaw = o.lifetimes === undefined ? {} : o.lifetimes;
  if (typeof ltRaw !== "object" || ltRaw === null || Array.isArray(ltRaw)) throw pcError("PC_CONFIG_INVALID", "lifetimes must be an object");
  const lt = ltRaw as Record<string, unknown>;
  const lifetimes: Record<string, number> = { ...DEFAULT_LIFETIMES };
  for (const [k, v] of Object.entries(lt)) {
    // Own keys only: `toString` or `__proto__` are not lifetimes.
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_LIFETIMES, k)) throw pcError("PC_CONFIG_INVALID", `unknown lifetime ${k}`);
    if (typeof v !== "number" || !Number.isInteger(v) || v < 60_000) throw pcError("PC_CONFIG_INVALID", `lifetimes.${k} must be at least 60000 ms`);
    lifetimes[k] = v;
  }
  const cfg: GatewayConfig = {
    trustDomain: str("trustDomain"),
    listen: str("listen"),
    bootstrapListen: str("bootstrapListen"),
    sans: strs("sans"),
    lifetimes: lifetimes as unknown as Lifetimes,
    ...(o.secrets === undefined ? {} : { secrets: parseSecretsConfig(o.secrets) }),
    ...(o.scan === undefined ? {} : { scan: parseScanConfig(o.scan) }),
    ...(o.monitoring === undefined ? {} : { monitoring: parseMonitoringConfig(o.monitoring) }),
  };
  assertTrustDomain(cfg.trustDomain);
  for (const n of cfg.sans) {
    if (!/^[A-Za-z0-9.:-]{1,253}$/.test(n)) throw pcError("PC_CONFIG_INVALID", `sans: ${JSON.stringify(n).slice(0, 80)} is not a DNS name or IP address`);
  }
  parseHostPort(cfg.listen, "listen");
  parseHostPort(cfg.bootstrapListen, "bootstrapListen");
  if (cfg.lifetimes.userDefault > cfg.lifetimes.userMax) throw pcError("PC_CONFIG_INVALID", "lifetimes.userDefault exceeds userMax");
  if (cfg.lifetimes.enrollTokenDefault > cfg.lifetimes.enrollTokenMax) {
    throw pcError("PC_CONFIG_INVALID", "lifetimes.enrollTokenDefault exceeds enrollTokenMax");
  }
  return cfg;
}
