/**
 * The compact JWS form of a signed deploy request, read before any crypto: the three
 * parts, the protected header's parameters, and the signing certificate's thumbprint.
 */
import { createHash, type KeyObject } from "node:crypto";
import { parseStrictJson, pcError } from "../core/index.js";
import { DEPLOY_JWS_TYPE } from "./types.js";

/** The longest signed request read. */
export const MAX_JWS_BYTES = 256 * 1024;
export const DEPLOY_ALGORITHMS = ["ES256", "EdDSA"] as const;
export type DeployAlgorithm = (typeof DEPLOY_ALGORITHMS)[number];

/** Header parameters that would let the token name its own key: never accepted. */
const KEY_SOURCES = ["jwk", "jku", "x5u", "x5c", "kid"] as const;
const HEADER_KEYS = new Set(["alg", "typ", "x5t#S256"]);
const B64URL_RE = /^[A-Za-z0-9_-]*$/;
const X5T_RE = /^[A-Za-z0-9_-]{43}$/;

export interface CompactJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly signingInput: string;
  readonly signature: Buffer;
}

export interface DeployHeader {
  readonly alg: DeployAlgorithm;
  /** portcullis-deploy+jws for a deploy request, portcullis-approval+jws for an approval. */
  readonly typ: string;
  readonly "x5t#S256": string;
}

const malformed = (detail: string) => pcError("PC_DEPLOY_REQUEST_MALFORMED", detail);

/** Strict base64url: the alphabet only, no padding, and the canonical encoding of its bytes. */
function b64urlDecode(part: string, what: string): Buffer {
  if (!B64URL_RE.test(part) || part.length % 4 === 1) throw malformed(`${what} is not base64url`);
  const bytes = Buffer.from(part, "base64url");
  if (bytes.toString("base64url") !== part) throw malformed(`${what} is not base64url`);
  return bytes;
}

function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw malformed(`${what} is not UTF-8`);
  }
  let value: unknown;
  try {
    value = parseStrictJson(text);
  } catch (e) {
    const dup = (e as { code?: string }).code === "PC_API_DUPLICATE_KEY";
    throw malformed(dup ? `${what} has a duplicate key` : `${what} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Step 1: three base64url parts, a JSON object header and payload. PC_DEPLOY_REQUEST_MALFORMED. */
export function parseCompactJws(jws: unknown): CompactJws {
  if (typeof jws !== "string") throw malformed("not a compact JWS");
  if (Buffer.byteLength(jws, "utf8") > MAX_JWS_BYTES) throw malformed(`larger than ${MAX_JWS_BYTES} bytes`);
  const parts = jws.split(".");
  if (parts.length !== 3) throw malformed("a compact JWS has exactly three parts");
  const [h, p, s] = parts as [string, string, string];
  if (h.length === 0 || p.length === 0) throw malformed("empty header or payload");
  const header = jsonObject(b64urlDecode(h, "header"), "header");
  const payload = jsonObject(b64urlDecode(p, "payload"), "payload");
  const signature = b64urlDecode(s, "signature");
  return { header, payload, signingInput: `${h}.${p}`, signature };
}

/**
 * Step 2: the algorithm and key source (PC_DEPLOY_ALG_NOT_ALLOWED), then `typ`,
 * `x5t#S256` and no other parameter (PC_DEPLOY_HEADER_INVALID). `typ` is the deploy
 * request's unless another is named (approvals use the same rules with their own).
 */
export function checkDeployHeader(header: Readonly<Record<string, unknown>>, typ: string = DEPLOY_JWS_TYPE): DeployHeader {
  const alg = header.alg;
  if (typeof alg !== "string" || !(DEPLOY_ALGORITHMS as readonly string[]).includes(alg)) {
    throw pcError("PC_DEPLOY_ALG_NOT_ALLOWED", "alg must be ES256 or EdDSA");
  }
  for (const k of KEY_SOURCES) {
    if (Object.prototype.hasOwnProperty.call(header, k)) {
      throw pcError("PC_DEPLOY_ALG_NOT_ALLOWED", `the header must not carry ${k}: the key is the caller's certificate`);
    }
  }
  if (header.typ !== typ) throw pcError("PC_DEPLOY_HEADER_INVALID", `typ must be ${typ}`);
  const x5t = header["x5t#S256"];
  if (typeof x5t !== "string" || !X5T_RE.test(x5t)) throw pcError("PC_DEPLOY_HEADER_INVALID", "x5t#S256 must be the base64url SHA-256 of the signing certificate");
  for (const k of Object.keys(header)) {
    if (!HEADER_KEYS.has(k)) throw pcError("PC_DEPLOY_HEADER_INVALID", `unknown header parameter ${JSON.stringify(k.slice(0, 64))}`);
  }
  return { alg: alg as DeployAlgorithm, typ, "x5t#S256": x5t };
}

/** base64url(SHA-256(DER)), the JWS `x5t#S256` of a certificate. */
export function certificateThumbprint(der: Buffer): string {
  return createHash("sha256").update(der).digest("base64url");
}

/** The JWS algorithm a key signs with: ES256 for EC P-256, EdDSA for Ed25519; undefined otherwise. */
export function algorithmForKey(key: KeyObject): DeployAlgorithm | undefined {
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  if (key.asymmetricKeyType === "ed25519") return "EdDSA";
  return undefined;
}
