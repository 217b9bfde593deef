import { randomBytes, randomUUID } from "node:crypto";

/** A request id: random, unguessable, never taken from the caller. */
export function newRequestId(): string {
  return randomUUID();
}

/** URL-safe random token of `bytes` bytes of entropy. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}
