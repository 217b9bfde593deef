import { pcError } from "./errors.js";

/**
 * An identity is a kind and a name, written `user:alice` for people and carried in a
 * certificate only as the URI SAN `spiffe://<trust-domain>/<kind>/<name>`.
 */
export const IDENTITY_KINDS = ["user", "node", "service"] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];

export interface Identity {
  readonly kind: IdentityKind;
  readonly name: string;
}

const NAME_RE = /^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$/;
const TRUST_DOMAIN_RE = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

function isKind(k: string): k is IdentityKind {
  return (IDENTITY_KINDS as readonly string[]).includes(k);
}

export function validTrustDomain(td: string): boolean {
  return TRUST_DOMAIN_RE.test(td) && !td.includes("..");
}

export function assertTrustDomain(td: string): string {
  if (!validTrustDomain(td)) {
    throw pcError("PC_CONFIG_INVALID", "trust domain must be lower-case letters, digits, '.' and '-'");
  }
  return td;
}

/** Parses `kind:name`. */
export function parseIdentity(text: string): Identity {
  const i = text.indexOf(":");
  const kind = i > 0 ? text.slice(0, i) : "";
  const name = i > 0 ? text.slice(i + 1) : "";
  if (!isKind(kind) || !NAME_RE.test(name)) {
    throw pcError(
      "PC_PKI_IDENTITY_INVALID",
      "identity must be user:NAME, node:NAME or service:NAME (lower-case letters, digits, '.', '_', '-')",
    );
  }
  return { kind, name };
}

export function formatIdentity(id: Identity): string {
  return `${id.kind}:${id.name}`;
}

export function identityToSpiffe(id: Identity, trustDomain: string): string {
  return `spiffe://${trustDomain}/${id.kind}/${id.name}`;
}

/** Parses a SPIFFE ID of our trust domain; anything else is refused. */
export function identityFromSpiffe(uri: string, trustDomain: string): Identity {
  const prefix = `spiffe://${trustDomain}/`;
  if (!uri.startsWith(prefix)) throw pcError("PC_PKI_IDENTITY_INVALID", "not of this trust domain");
  const parts = uri.slice(prefix.length).split("/");
  if (parts.length !== 2) throw pcError("PC_PKI_IDENTITY_INVALID", "malformed SPIFFE ID");
  return parseIdentity(`${parts[0]}:${parts[1]}`);
}

export function sameIdentity(a: Identity, b: Identity): boolean {
  return a.kind === b.kind && a.name === b.name;
}
