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
  };
}

/** Validates a parsed config.json; unknown keys are refused. */
export function parseConfig(raw: unknown): GatewayConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw pcError("PC_CONFIG_INVALID", "config must be an object");
  const o = raw as Record<string, unknown>;
  const known = ["trustDomain", "listen", "bootstrapListen", "sans", "lifetimes", "secrets", "scan"];
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
