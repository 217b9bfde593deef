/**
 * Published ports and the healthcheck of the hardened container spec.
 *
 * Restricts: the host address a port is published on (DEFAULT_PUBLISH_HOST, loopback,
 * unless the node names another interface; an unspecified address, 0.0.0.0 or ::, only
 * when the node allows public binds), the port numbers and protocols, duplicate host
 * ports, and the bounds of the healthcheck's timings. Ports need a user-defined network:
 * a container without one has nothing to publish from.
 */
import type { ContainerCreateOptions } from "dockerode";
import { BlockList, isIP } from "node:net";
import { specInvalid } from "./runtime-errors.js";
import { checkArgv, checkIntegerInRange, checkKnownFields, isPlainObject } from "./spec-checks.js";

/** Where ports are published unless the node says otherwise: loopback only. */
export const DEFAULT_PUBLISH_HOST = "127.0.0.1";
export const PORT_PROTOCOLS = Object.freeze(["tcp", "udp"] as const);
export type PortProtocol = (typeof PORT_PROTOCOLS)[number];

export interface PublishedPort {
  readonly container: number;
  readonly host: number;
  readonly protocol: PortProtocol;
}

export interface HealthcheckInput {
  /** Run directly (exec form, no shell). */
  readonly command: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
}

/** Bounds on the healthcheck; the engine's own minimum for each duration is 1 ms. */
export const HEALTHCHECK_BOUNDS = Object.freeze({
  intervalMs: { min: 1_000, max: 86_400_000 },
  timeoutMs: { min: 1_000, max: 3_600_000 },
  startPeriodMs: { min: 0, max: 3_600_000 },
  retries: { min: 1, max: 100 },
});

const MAX_PORTS = 64;
const PORT_FIELDS = new Set(["container", "host", "protocol"]);
const HEALTHCHECK_FIELDS = new Set(["command", "intervalMs", "timeoutMs", "retries", "startPeriodMs"]);
const NS_PER_MS = 1_000_000;

const UNSPECIFIED = new BlockList();
UNSPECIFIED.addAddress("0.0.0.0", "ipv4");
UNSPECIFIED.addAddress("::", "ipv6");

/** True for 0.0.0.0 and :: (in any spelling): every interface of the host. */
export function isUnspecifiedAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  return UNSPECIFIED.check(ip, family === 4 ? "ipv4" : "ipv6");
}

export function checkPublishHost(v: unknown, allowPublicBind: unknown): string {
  if (allowPublicBind !== undefined && typeof allowPublicBind !== "boolean") {
    throw specInvalid("allowPublicBind", "must be a boolean");
  }
  if (v === undefined) return DEFAULT_PUBLISH_HOST;
  if (typeof v !== "string" || isIP(v) === 0) throw specInvalid("publishHost", "must be an IP address");
  if (isUnspecifiedAddress(v) && allowPublicBind !== true) {
    throw specInvalid("publishHost", `binding every interface (${v}) is not allowed on this node`);
  }
  return v;
}

export interface PortBindings {
  readonly exposedPorts: Record<string, Record<string, never>>;
  readonly portBindings: Record<string, { HostIp: string; HostPort: string }[]>;
}

export function checkPorts(v: unknown, network: string, publishHost: string): PortBindings | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw specInvalid("ports", "must be an array");
  if (v.length === 0) return undefined;
  if (v.length > MAX_PORTS) throw specInvalid("ports", `must have at most ${MAX_PORTS} entries`);
  if (network === "none") throw specInvalid("ports", "need a user-defined network, not \"none\"");
  const exposedPorts: Record<string, Record<string, never>> = {};
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  const hostPorts = new Set<string>();
  v.forEach((p: unknown, i) => {
    const at = `ports[${i}]`;
    if (!isPlainObject(p)) throw specInvalid(at, "must be an object");
    checkKnownFields(p, PORT_FIELDS, `${at}.`);
    const container = checkIntegerInRange(`${at}.container`, p.container, 1, 65_535);
    const host = checkIntegerInRange(`${at}.host`, p.host, 1, 65_535);
    const protocol = p.protocol ?? "tcp";
    if (typeof protocol !== "string" || !(PORT_PROTOCOLS as readonly string[]).includes(protocol)) {
      throw specInvalid(`${at}.protocol`, `must be one of ${PORT_PROTOCOLS.join(", ")}`);
    }
    const hostKey = `${host}/${protocol}`;
    if (hostPorts.has(hostKey)) throw specInvalid(`${at}.host`, `host port ${hostKey} is published twice`);
    hostPorts.add(hostKey);
    const key = `${container}/${protocol}`;
    exposedPorts[key] = {};
    (portBindings[key] ??= []).push({ HostIp: publishHost, HostPort: String(host) });
  });
  return { exposedPorts, portBindings };
}

export function checkHealthcheck(v: unknown): NonNullable<ContainerCreateOptions["Healthcheck"]> | undefined {
  if (v === undefined) return undefined;
  if (!isPlainObject(v)) throw specInvalid("healthcheck", "must be an object");
  checkKnownFields(v, HEALTHCHECK_FIELDS, "healthcheck.");
  if (v.command === undefined) throw specInvalid("healthcheck.command", "is required");
  const command = checkArgv("healthcheck.command", v.command) as string[];
  const b = HEALTHCHECK_BOUNDS;
  const interval = checkIntegerInRange("healthcheck.intervalMs", v.intervalMs, b.intervalMs.min, b.intervalMs.max);
  const timeout = checkIntegerInRange("healthcheck.timeoutMs", v.timeoutMs, b.timeoutMs.min, b.timeoutMs.max);
  const retries = checkIntegerInRange("healthcheck.retries", v.retries, b.retries.min, b.retries.max);
  const start = checkIntegerInRange(
    "healthcheck.startPeriodMs",
    v.startPeriodMs,
    b.startPeriodMs.min,
    b.startPeriodMs.max,
  );
  return {
    Test: ["CMD", ...command],
    Interval: interval * NS_PER_MS,
    Timeout: timeout * NS_PER_MS,
    StartPeriod: start * NS_PER_MS,
    Retries: retries,
  };
}
