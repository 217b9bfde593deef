/**
 * Check `hardening`: Pod Security "restricted", as far as a portcullis manifest can
 * express it. The manifest schema already refuses privileged, host paths, host
 * namespaces and added capabilities; what remains is checked here.
 *
 * Restricted fields and allowed values:
 * - spec.user: a numeric, non-root `uid:gid`; when absent, the image's own user
 *   (attrs.image.user) must be a numeric, non-root `uid:gid` (unknown: "missing input").
 * - spec.network.mode: one of params.allowedNetworkModes (default none, namespace).
 * - spec.network.ports[*].host: only when params.allowHostPorts (default true), and
 *   within params.minHostPort..params.maxHostPort (default 1024..65535).
 *
 * Restated, not checked (the runtime sets them for every container and no manifest
 * field changes them): a read-only root filesystem, all capabilities dropped with none
 * added back (params.allowedCapabilities, default NET_BIND_SERVICE, bounds what a
 * future field could add), no-new-privileges and the engine's default seccomp profile.
 */
import type { NetworkMode } from "../../deploy/index.js";
import { ParamReader } from "../params.js";
import { deny, ok } from "../results.js";
import type { AdmissionAttributes, CheckDefinition, CheckResult } from "../types.js";

export interface HardeningParams {
  readonly allowedNetworkModes: readonly NetworkMode[];
  readonly allowHostPorts: boolean;
  readonly minHostPort: number;
  readonly maxHostPort: number;
  readonly allowedCapabilities: readonly string[];
}

const NAME = "hardening";
const NETWORK_MODES: readonly NetworkMode[] = ["none", "namespace"];
const CAPABILITIES = ["NET_BIND_SERVICE"] as const;
const USER_RE = /^([0-9]{1,10}):([0-9]{1,10})$/;

function nonRootReason(user: string): string | undefined {
  const m = USER_RE.exec(user);
  if (!m) return 'is not a numeric "uid:gid"';
  if (Number(m[1]) === 0 || Number(m[2]) === 0) return "is root (uid or gid 0)";
  return undefined;
}

export const hardeningCheck: CheckDefinition<HardeningParams> = {
  name: NAME,
  validateParams(raw) {
    const r = new ParamReader(raw, ["allowedNetworkModes", "allowHostPorts", "minHostPort", "maxHostPort", "allowedCapabilities"]);
    const allowedNetworkModes = r.strings("allowedNetworkModes", NETWORK_MODES, (s) =>
      (NETWORK_MODES as readonly string[]).includes(s) ? undefined : `must be one of ${NETWORK_MODES.join(", ")}`,
    ) as readonly NetworkMode[];
    const allowHostPorts = r.bool("allowHostPorts", true);
    const minHostPort = r.int("minHostPort", 1024, 65_535) ?? 1024;
    const maxHostPort = r.int("maxHostPort", 1024, 65_535) ?? 65_535;
    if (minHostPort > maxHostPort) r.issues.push({ field: "minHostPort", reason: `must not be above maxHostPort (${maxHostPort})` });
    const allowedCapabilities = r.strings("allowedCapabilities", CAPABILITIES, (s) =>
      (CAPABILITIES as readonly string[]).includes(s) ? undefined : `must be one of ${CAPABILITIES.join(", ")}`,
    );
    return r.result({ allowedNetworkModes, allowHostPorts, minHostPort, maxHostPort, allowedCapabilities });
  },
  run(attrs, params) {
    const violations = [...userViolations(attrs), ...networkViolations(attrs, params)];
    const checked = violations.length > 0 ? violations : [ok(NAME, "user, network mode and host ports are allowed")];
    return [...checked, ...runtimeInvariants(params)];
  },
};

function userViolations(attrs: AdmissionAttributes): CheckResult[] {
  const { user } = attrs.spec;
  if (user !== undefined) {
    const why = nonRootReason(user);
    return why === undefined ? [] : [deny(NAME, "spec.user", "runs as root", `spec.user ${JSON.stringify(user)} ${why}`)];
  }
  const imageUser = attrs.image?.user;
  if (imageUser === undefined) {
    return [deny(NAME, "spec.user", "missing input", "spec.user is not set and the image's user is not known; set spec.user to a non-root uid:gid")];
  }
  const why = nonRootReason(imageUser);
  if (why === undefined) return [];
  const shown = imageUser === "" ? "(none, which is root)" : JSON.stringify(imageUser);
  return [deny(NAME, "spec.user", "runs as root", `spec.user is not set and the image's user ${shown} ${why}; set spec.user to a non-root uid:gid`)];
}

function networkViolations(attrs: AdmissionAttributes, params: HardeningParams): CheckResult[] {
  const out: CheckResult[] = [];
  const { mode, ports } = attrs.spec.network;
  if (!params.allowedNetworkModes.includes(mode)) {
    out.push(deny(NAME, "spec.network.mode", "network mode not allowed", `spec.network.mode is ${mode}; allowed: ${params.allowedNetworkModes.join(", ") || "none"}`));
  }
  ports.forEach((p, i) => {
    const field = `spec.network.ports[${i}].host`;
    if (!params.allowHostPorts) {
      out.push(deny(NAME, field, "host port not allowed", `${field} publishes ${p.host}/${p.protocol}; this policy allows no host ports`));
    } else if (p.host < params.minHostPort || p.host > params.maxHostPort) {
      out.push(deny(NAME, field, "host port out of range", `${field} is ${p.host}; allowed: ${params.minHostPort}-${params.maxHostPort}`));
    }
  });
  return out;
}

function runtimeInvariants(params: HardeningParams): CheckResult[] {
  const caps = params.allowedCapabilities.length > 0 ? params.allowedCapabilities.join(", ") : "none";
  return [
    ok(NAME, "the runtime mounts the root filesystem read-only; no manifest field changes it", "runtime.readOnlyRootFilesystem"),
    ok(NAME, `the runtime drops all capabilities and adds none back; no manifest field adds one (allowed here: ${caps})`, "runtime.capabilities"),
    ok(NAME, "the runtime sets no-new-privileges; no manifest field changes it", "runtime.noNewPrivileges"),
    ok(NAME, "the runtime keeps the engine's default seccomp profile; no manifest field changes it", "runtime.seccomp"),
  ];
}
