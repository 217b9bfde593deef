/**
 * The names that appear in RBAC policy entries and requests, and why one is refused.
 *
 * - A string with ':' is an identity (`user:alice`, `node:engine-1`, `service:api`); it must
 *   parse with `parseIdentity` and its name may not contain `..`.
 * - A string without ':' is a role: `/^[a-z][a-z0-9-]{0,62}$/`.
 * - A namespace is a DNS label (RFC 1123); `*` means cluster-wide where it is allowed.
 *
 * Each check returns `undefined` for a good name and a short reason otherwise, so that
 * callers can collect every problem rather than stop at the first.
 */
import { parseIdentity } from "../core/index.js";
import { NAMESPACE_RE } from "./namespaces.js";
import { ACTIONS, CLUSTER, RESOURCES } from "./types.js";

export const ROLE_RE = /^[a-z][a-z0-9-]{0,62}$/;

/** A quoted, shortened rendering of untrusted text, safe to put in a message. */
export function quote(text: string, max = 70): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

export function isIdentityLike(text: string): boolean {
  return text.includes(":");
}

export function identityReason(text: string): string | undefined {
  try {
    parseIdentity(text);
  } catch {
    return `${quote(text)} is not an identity (user:NAME, node:NAME or service:NAME, the NAME of lower-case letters, digits, '.', '_', '-')`;
  }
  if (text.includes("..")) return `${quote(text)} is not an identity ('..' is not allowed in a name)`;
  return undefined;
}

export function roleReason(text: string): string | undefined {
  if (ROLE_RE.test(text)) return undefined;
  return `${quote(text)} is not a role name (a lower-case letter, then up to 62 lower-case letters, digits or '-')`;
}

/** A policy subject or binding member: an identity (with ':') or a role (without). */
export function subjectReason(text: string): string | undefined {
  return isIdentityLike(text) ? identityReason(text) : roleReason(text);
}

/** A namespace in a policy entry or a request: a DNS label, or `*` when `allowCluster`. */
export function namespaceReason(text: string, allowCluster = true): string | undefined {
  if (allowCluster && text === CLUSTER) return undefined;
  if (NAMESPACE_RE.test(text)) return undefined;
  return `${quote(text)} is not a namespace (a DNS label: lower-case letters, digits and '-', at most 63${allowCluster ? `, or "${CLUSTER}"` : ""})`;
}

export function resourceReason(text: string, allowWildcard = true): string | undefined {
  if (allowWildcard && text === "*") return undefined;
  if ((RESOURCES as readonly string[]).includes(text)) return undefined;
  return `unknown resource ${quote(text)}`;
}

export function actionReason(text: string, allowWildcard = true): string | undefined {
  if (allowWildcard && text === "*") return undefined;
  if ((ACTIONS as readonly string[]).includes(text)) return undefined;
  return `unknown action ${quote(text)}`;
}
