import { createHash } from "node:crypto";
import { canonicalize } from "../core/index.js";

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * The digest of a manifest as signed: `sha256:` and the hex SHA-256 of its RFC 8785
 * canonical form, so that key order and white space never change it.
 */
export function manifestDigest(manifest: unknown): string {
  return `sha256:${createHash("sha256").update(canonicalize(manifest), "utf8").digest("hex")}`;
}
