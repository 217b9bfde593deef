/**
 * Server certificates for Docker engines (`dockerd --tlsverify`): EKU serverAuth, the
 * DNS names and IP addresses the engine is reached at, and the URI SAN
 * `spiffe://<trust domain>/node/<name>` that the gateway checks when it connects. The
 * request contributes only its public key (a CSR, to prove possession); the names come
 * from the operator, checked here.
 */
import { isIP } from "node:net";
import { parseIdentity, pcError } from "../core/index.js";
import type { SanEntry } from "./certificate.js";
import { parseCsr } from "./csr.js";
import type { Actor, IssuedBundle, PkiService } from "./service.js";

export const NODE_SERVER_PROFILE = "node-server";
export const NODE_SERVER_LIFETIME_MS = 90 * 24 * 3_600_000;
export const MAX_NODE_SANS = 16;

const NODE_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DNS_NAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** DNS names (lower case) and IP addresses; at least one, at most 16, no wildcards. */
export function nodeServerSans(sans: readonly string[]): SanEntry[] {
  if (!Array.isArray(sans) || sans.length === 0 || sans.length > MAX_NODE_SANS) {
    throw pcError("PC_RUNTIME_NODE_INVALID", `give 1 to ${MAX_NODE_SANS} DNS names or IP addresses (--san)`);
  }
  const out: SanEntry[] = [];
  const seen = new Set<string>();
  for (const s of sans) {
    if (typeof s !== "string" || seen.has(s)) throw pcError("PC_RUNTIME_NODE_INVALID", `san ${JSON.stringify(String(s).slice(0, 70))} given twice`);
    seen.add(s);
    if (isIP(s) !== 0) out.push({ ip: s });
    else if (DNS_NAME_RE.test(s)) out.push({ dns: s });
    else throw pcError("PC_RUNTIME_NODE_INVALID", `san ${JSON.stringify(s.slice(0, 70))} is not a lower-case DNS name or an IP address`);
  }
  return out;
}

/** Issues an engine's server certificate for the key in `csr`. */
export function issueNodeServerCertificate(pki: PkiService, name: string, csr: string, sans: readonly string[], actor: Actor): IssuedBundle {
  if (typeof name !== "string" || !NODE_NAME_RE.test(name)) throw pcError("PC_RUNTIME_NODE_INVALID", `name ${JSON.stringify(String(name).slice(0, 70))} is not a DNS label`);
  const identity = parseIdentity(`node:${name}`);
  const names = nodeServerSans(sans);
  const parsed = parseCsr(csr);
  return pki.issueRecorded(
    { spki: parsed.spki, profile: "server", identity, names, commonName: `node:${name}`, lifetimeMs: NODE_SERVER_LIFETIME_MS },
    identity,
    NODE_SERVER_PROFILE,
    actor,
  );
}
