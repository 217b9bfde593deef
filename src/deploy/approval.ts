/**
 * Approvals of a deploy request that waits for them (the two-person rule). An approver
 * signs the request's manifest digest, together with the request's id and jti, with the
 * key of their own client certificate: a compact JWS with the same header rules as a
 * deploy request (alg ES256 or EdDSA, `x5t#S256` of the signing certificate, nothing
 * else) but `typ: portcullis-approval+jws`.
 *
 * The gateway takes the certificate from the TLS connection, as for deploy requests.
 * Every refusal is PC_ADMISSION_APPROVAL_INVALID with a short reason: the approval
 * does not count.
 */
import { createHash, X509Certificate } from "node:crypto";
import { compactVerify } from "jose";
import { signWithCertificateKey } from "./sign.js";
import { formatIdentity, pcError, PortcullisError } from "../core/index.js";
import { derToPem, identityOfCertificate } from "../pki/index.js";
import { DIGEST_RE } from "./digest.js";
import { JTI_RE } from "./claims.js";
import { algorithmForKey, certificateThumbprint, checkDeployHeader, parseCompactJws } from "./jws-compact.js";
import { MAX_REQUEST_LIFETIME_S } from "./types.js";

/** The JWS `typ` of an approval. */
export const APPROVAL_JWS_TYPE = "portcullis-approval+jws";
export const APPROVAL_CLAIM_NAMES = ["requestId", "jti", "manifestDigest", "namespace", "aud", "iat", "exp"] as const;
/** How long an approval is good for by default; it never outlives its request. */
export const DEFAULT_APPROVAL_LIFETIME_S = 120;
const REQUEST_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
const NAMESPACE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The payload of an approval. */
export interface ApprovalClaims {
  /** The id of the pending deploy request. */
  readonly requestId: string;
  /** The jti of the signed deploy request. */
  readonly jti: string;
  readonly manifestDigest: string;
  readonly namespace: string;
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
}

export interface SignApprovalOptions {
  readonly requestId: string;
  readonly jti: string;
  readonly manifestDigest: string;
  readonly namespace: string;
  readonly trustDomain: string;
  /** The approver's private key, PEM. */
  readonly privateKeyPem: string;
  /** The approver's certificate, PEM; the first block when a chain is given. */
  readonly certificatePem: string;
  readonly now?: Date;
  /** Default 120, at most 300. */
  readonly lifetimeSeconds?: number;
}

/** What the approval must be for: the pending request as the gateway stored it. */
export interface ApprovalExpectations {
  readonly requestId: string;
  readonly jti: string;
  readonly manifestDigest: string;
  readonly namespace: string;
}

export interface VerifyApprovalContext {
  /** The client certificate of the TLS connection that carried the approval, DER. */
  readonly callerCertificateDer: Buffer;
  readonly trustDomain: string;
  readonly now: Date;
  readonly expect: ApprovalExpectations;
}

export interface VerifiedApproval {
  readonly jws: string;
  readonly claims: ApprovalClaims;
  /** `user:bob`, from the signing certificate (which is the caller's). */
  readonly approver: string;
  readonly signerCertificatePem: string;
}

const invalid = (reason: string) => pcError("PC_ADMISSION_APPROVAL_INVALID", reason);

/** Signs an approval; returns the compact JWS. */
export async function signApproval(opts: SignApprovalOptions): Promise<string> {
  const lifetime = opts.lifetimeSeconds ?? DEFAULT_APPROVAL_LIFETIME_S;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_REQUEST_LIFETIME_S) {
    throw invalid(`exp: the lifetime must be 1 to ${MAX_REQUEST_LIFETIME_S} seconds`);
  }
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const claims: ApprovalClaims = {
    requestId: opts.requestId,
    jti: opts.jti,
    manifestDigest: opts.manifestDigest,
    namespace: opts.namespace,
    aud: opts.trustDomain,
    iat,
    exp: iat + lifetime,
  };
  return signWithCertificateKey(APPROVAL_JWS_TYPE, claims, opts.privateKeyPem, opts.certificatePem);
}

/** Verifies an approval against the connection's certificate and the pending request. */
export async function verifyApproval(jws: string, ctx: VerifyApprovalContext): Promise<VerifiedApproval> {
  let parsed: ReturnType<typeof parseCompactJws>;
  let header: ReturnType<typeof checkDeployHeader>;
  try {
    parsed = parseCompactJws(jws);
    header = checkDeployHeader(parsed.header, APPROVAL_JWS_TYPE);
  } catch (e) {
    throw invalid(e instanceof PortcullisError && e.detail ? e.detail : "not a compact JWS");
  }
  const der = ctx.callerCertificateDer;
  if (header["x5t#S256"] !== certificateThumbprint(der)) throw invalid("x5t#S256 is not the thumbprint of the caller's certificate");
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw invalid("the caller's certificate cannot be read");
  }
  if (algorithmForKey(cert.publicKey) !== header.alg) throw invalid(`the caller's certificate key does not fit ${header.alg}`);
  let approver: string;
  try {
    approver = formatIdentity(identityOfCertificate(der, ctx.trustDomain));
  } catch {
    throw invalid("the caller's certificate names no identity of this trust domain");
  }
  try {
    await compactVerify(jws, cert.publicKey, { algorithms: [header.alg] });
  } catch {
    throw invalid("the signature does not verify");
  }
  const claims = readApprovalClaims(parsed.payload, ctx.trustDomain);
  const e = ctx.expect;
  if (claims.requestId !== e.requestId) throw invalid("requestId: the approval is for another request");
  if (claims.jti !== e.jti) throw invalid("jti: the approval is for another signed request");
  if (claims.manifestDigest !== e.manifestDigest) throw invalid("manifestDigest: the approval is for another manifest");
  if (claims.namespace !== e.namespace) throw invalid("namespace: the approval is for another namespace");
  const nowS = ctx.now.getTime() / 1000;
  if (claims.iat > nowS + 60) throw invalid("iat: is in the future");
  if (claims.exp <= nowS) throw invalid("exp: the approval has expired");
  return { jws, claims, approver, signerCertificatePem: derToPem(der, "CERTIFICATE") };
}

function readApprovalClaims(payload: Readonly<Record<string, unknown>>, trustDomain: string): ApprovalClaims {
  for (const k of Object.keys(payload)) {
    if (!(APPROVAL_CLAIM_NAMES as readonly string[]).includes(k)) throw invalid(`${k.slice(0, 64)}: unknown claim`);
  }
  for (const k of APPROVAL_CLAIM_NAMES) {
    if (!Object.prototype.hasOwnProperty.call(payload, k)) throw invalid(`${k}: is required`);
  }
  const { requestId, jti, manifestDigest, namespace, aud, iat, exp } = payload;
  if (aud !== trustDomain) throw invalid("aud: must be this gateway's trust domain");
  if (typeof iat !== "number" || !Number.isSafeInteger(iat) || iat < 0) throw invalid("iat: must be whole seconds since the epoch");
  if (typeof exp !== "number" || !Number.isSafeInteger(exp) || exp <= iat) throw invalid("exp: must be whole seconds after iat");
  if (exp - iat > MAX_REQUEST_LIFETIME_S) throw invalid(`exp: must be at most ${MAX_REQUEST_LIFETIME_S} seconds after iat`);
  if (typeof requestId !== "string" || !REQUEST_ID_RE.test(requestId)) throw invalid("requestId: must be a request id");
  if (typeof jti !== "string" || !JTI_RE.test(jti)) throw invalid("jti: must be a request's jti");
  if (typeof manifestDigest !== "string" || !DIGEST_RE.test(manifestDigest)) throw invalid("manifestDigest: must be sha256:<64 hex>");
  if (typeof namespace !== "string" || !NAMESPACE_RE.test(namespace)) throw invalid("namespace: must be a namespace name");
  return { requestId, jti, manifestDigest, namespace, aud, iat, exp };
}

/** Hex SHA-256 of an approval's JWS text (for the audit entry). */
export function approvalSha256(jws: string): string {
  return createHash("sha256").update(jws, "utf8").digest("hex");
}
