/**
 * Step 5 of a signed request's verification: its claims. The payload must hold exactly
 * the claims of DeployRequestClaims; each is checked in the order below, and a problem is
 * PC_DEPLOY_CLAIMS_INVALID with the claim's name in the detail. Expiry is checked last,
 * as PC_DEPLOY_EXPIRED, so that a malformed request is never reported as merely late.
 */
import { pcError } from "../core/index.js";
import { DIGEST_RE } from "./digest.js";
import { DEPLOY_OPERATIONS, MAX_REQUEST_LIFETIME_S, type DeployOperation, type DeployRequestClaims, type Manifest } from "./types.js";

export const CLAIM_NAMES = ["op", "namespace", "name", "manifest", "manifestDigest", "aud", "iat", "exp", "jti"] as const;
export const JTI_RE = /^[A-Za-z0-9_-]{16,128}$/;
/** How far in the future `iat` may lie (clock skew). */
export const MAX_IAT_SKEW_S = 60;

export interface ClaimExpectations {
  readonly op?: DeployOperation;
  readonly namespace?: string;
  readonly name?: string;
}

const invalid = (claim: string, reason: string) => pcError("PC_DEPLOY_CLAIMS_INVALID", `${claim}: ${reason}`);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The time-independent checks: claim set, types, audience, lifetime, jti, operation,
 * names against the manifest's metadata and against `expect`.
 */
export function readClaims(payload: Readonly<Record<string, unknown>>, trustDomain: string, expect: ClaimExpectations = {}): DeployRequestClaims {
  for (const k of Object.keys(payload)) {
    if (!(CLAIM_NAMES as readonly string[]).includes(k)) throw invalid(k.slice(0, 64), "unknown claim");
  }
  for (const k of CLAIM_NAMES) {
    if (!Object.prototype.hasOwnProperty.call(payload, k)) throw invalid(k, "is required");
  }
  const { op, namespace, name, manifest, manifestDigest, aud, iat, exp, jti } = payload;
  if (aud !== trustDomain) throw invalid("aud", "must be this gateway's trust domain");
  if (typeof iat !== "number" || !Number.isSafeInteger(iat) || iat < 0) throw invalid("iat", "must be whole seconds since the epoch");
  if (typeof exp !== "number" || !Number.isSafeInteger(exp)) throw invalid("exp", "must be whole seconds since the epoch");
  if (exp <= iat) throw invalid("exp", "must be after iat");
  if (exp - iat > MAX_REQUEST_LIFETIME_S) throw invalid("exp", `must be at most ${MAX_REQUEST_LIFETIME_S} seconds after iat`);
  if (typeof jti !== "string" || !JTI_RE.test(jti)) throw invalid("jti", "must be 16 to 128 characters of A-Z, a-z, 0-9, '-', '_'");
  if (typeof op !== "string" || !(DEPLOY_OPERATIONS as readonly string[]).includes(op)) {
    throw invalid("op", `must be one of ${DEPLOY_OPERATIONS.join(", ")}`);
  }
  if (typeof manifestDigest !== "string" || !DIGEST_RE.test(manifestDigest)) throw invalid("manifestDigest", "must be sha256:<64 hex>");
  if (!isObj(manifest) || !isObj(manifest.metadata)) throw invalid("manifest", "must be a manifest with metadata");
  if (typeof namespace !== "string" || namespace !== manifest.metadata.namespace) throw invalid("namespace", "must equal manifest.metadata.namespace");
  if (typeof name !== "string" || name !== manifest.metadata.name) throw invalid("name", "must equal manifest.metadata.name");
  if (expect.op !== undefined && op !== expect.op) throw invalid("op", `must be ${expect.op} for this request`);
  if (expect.namespace !== undefined && namespace !== expect.namespace) throw invalid("namespace", "does not match the request's namespace");
  if (expect.name !== undefined && name !== expect.name) throw invalid("name", "does not match the request's deployment name");
  return {
    op: op as DeployOperation,
    namespace,
    name,
    manifest: manifest as unknown as Manifest,
    manifestDigest,
    aud,
    iat,
    exp,
    jti,
  };
}

/** `iat` not too far ahead (PC_DEPLOY_CLAIMS_INVALID), then `exp` not passed (PC_DEPLOY_EXPIRED). */
export function checkClaimTimes(claims: Pick<DeployRequestClaims, "iat" | "exp">, now: Date): void {
  const nowS = now.getTime() / 1000;
  if (claims.iat > nowS + MAX_IAT_SKEW_S) throw invalid("iat", "is in the future");
  if (claims.exp <= nowS) throw pcError("PC_DEPLOY_EXPIRED");
}
