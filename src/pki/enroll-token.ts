import { createHash } from "node:crypto";
import { pcError } from "../core/index.js";

/**
 * Enrollment tokens are `pct_<base64url SPIFFE ID>.<32 random bytes, base64url>`: the
 * client learns which identity to request from the token itself; the server trusts
 * only its stored record, found by the hash of the whole token.
 */
export const TOKEN_RE = /^pct_[A-Za-z0-9_-]{8,400}\.[A-Za-z0-9_-]{43}$/;

/** The SPIFFE ID a token was issued for, as the client reads it (not trusted by the server). */
export function spiffeIdOfToken(token: string): string {
  if (!TOKEN_RE.test(token)) throw pcError("PC_PKI_TOKEN_INVALID");
  return Buffer.from(token.slice(4, token.indexOf(".")), "base64url").toString("utf8");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
