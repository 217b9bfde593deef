/**
 * The server side of a signed deploy request. The checks run in a fixed order, and each
 * refusal has its own code, so that the first problem is the one reported:
 *
 *   1 form       at most 256 KiB, three base64url parts, the header and the payload
 *                JSON objects without duplicate keys          PC_DEPLOY_REQUEST_MALFORMED
 *   2 header     alg ES256 or EdDSA; no jwk, jku, x5u, x5c, kid PC_DEPLOY_ALG_NOT_ALLOWED
 *                typ portcullis-deploy+jws, x5t#S256, nothing else
 *                (no crit, no b64)                             PC_DEPLOY_HEADER_INVALID
 *   3 signer     x5t#S256 is the caller's TLS certificate, whose key fits alg
 *                (ES256: P-256, EdDSA: Ed25519) and which names an identity of
 *                this trust domain                             PC_DEPLOY_SIGNER_MISMATCH
 *   4 signature  verifies with that certificate's key           PC_DEPLOY_SIGNATURE_INVALID
 *   5 claims     exactly op, namespace, name, manifest, manifestDigest, aud, iat, exp,
 *                jti; aud this trust domain; exp - iat in (0, 300]; iat at most 60 s
 *                ahead; jti a 16-128 token; names equal the manifest's and the route's
 *                                                              PC_DEPLOY_CLAIMS_INVALID
 *                exp not passed                                PC_DEPLOY_EXPIRED
 *   6 replay     the jti is new, or this is a byte-identical retry by the same
 *                requester (ReplayGuard, run by the caller)    PC_DEPLOY_REPLAYED
 *   7 manifest   manifestDigest is the digest of the manifest  PC_DEPLOY_DIGEST_MISMATCH
 *                the manifest passes its schema                PC_DEPLOY_MANIFEST_INVALID
 *
 * verifyDeployRequest runs 1-5, checkManifest runs 7; DeployRequestVerifier (verifier.ts)
 * runs all seven.
 */
import { createHash, X509Certificate } from "node:crypto";
import { compactVerify, importSPKI } from "jose";
import { formatIdentity, pcError } from "../core/index.js";
import { derToPem, identityOfCertificate } from "../pki/index.js";
import { checkClaimTimes, readClaims, type ClaimExpectations } from "./claims.js";
import { manifestDigest } from "./digest.js";
import { algorithmForKey, certificateThumbprint, checkDeployHeader, parseCompactJws } from "./jws-compact.js";
import { validateManifest } from "./manifest.js";
import type { AuthenticatedDeployRequest, VerifiedDeployRequest } from "./types.js";

export interface VerifyContext {
  /** The client certificate of the TLS connection that carried the request, DER. */
  readonly callerCertificateDer: Buffer;
  readonly trustDomain: string;
  readonly now: Date;
  /** What the route says the request is for; a claim that differs is refused. */
  readonly expect?: ClaimExpectations;
}

/** Steps 1-5: form, header, signer, signature, claims. */
/** A caller certificate read once: its key (imported for jose), algorithm and identity. */
interface Signer {
  readonly alg: string;
  readonly key: Awaited<ReturnType<typeof importSPKI>>;
  readonly requester: string;
}

/** Signers by certificate thumbprint and trust domain; a certificate is the same bytes every time. */
const signers = new Map<string, Promise<Signer>>();
const MAX_SIGNERS = 512;

function signerOf(der: Buffer, thumbprint: string, trustDomain: string): Promise<Signer> {
  const key = `${thumbprint} ${trustDomain}`;
  let s = signers.get(key);
  if (s === undefined) {
    s = readSigner(der, trustDomain);
    s.catch(() => signers.delete(key));
    if (signers.size >= MAX_SIGNERS) signers.delete(signers.keys().next().value as string);
    signers.set(key, s);
  }
  return s;
}

async function readSigner(der: Buffer, trustDomain: string): Promise<Signer> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw pcError("PC_DEPLOY_SIGNER_MISMATCH", "the caller's certificate cannot be read");
  }
  const alg = algorithmForKey(cert.publicKey);
  let requester: string;
  try {
    requester = formatIdentity(identityOfCertificate(der, trustDomain));
  } catch {
    throw pcError("PC_DEPLOY_SIGNER_MISMATCH", "the caller's certificate names no identity of this trust domain");
  }
  if (alg === undefined) return { alg: "", key: undefined as never, requester };
  const spki = cert.publicKey.export({ type: "spki", format: "pem" }).toString();
  return { alg, key: await importSPKI(spki, alg), requester };
}

export async function verifyDeployRequest(jws: string, ctx: VerifyContext): Promise<AuthenticatedDeployRequest> {
  const parsed = parseCompactJws(jws);
  const header = checkDeployHeader(parsed.header);

  const der = ctx.callerCertificateDer;
  const thumbprint = certificateThumbprint(der);
  if (header["x5t#S256"] !== thumbprint) {
    throw pcError("PC_DEPLOY_SIGNER_MISMATCH", "x5t#S256 is not the thumbprint of the caller's certificate");
  }
  const signer = await signerOf(der, thumbprint, ctx.trustDomain);
  if (signer.alg !== header.alg) {
    throw pcError("PC_DEPLOY_SIGNER_MISMATCH", `the caller's certificate key does not fit ${header.alg}`);
  }
  const requester = signer.requester;

  try {
    await compactVerify(jws, signer.key, { algorithms: [header.alg] });
  } catch {
    throw pcError("PC_DEPLOY_SIGNATURE_INVALID");
  }

  const claims = readClaims(parsed.payload, ctx.trustDomain, ctx.expect);
  checkClaimTimes(claims, ctx.now);

  return {
    jws,
    claims,
    requester,
    signerCertificatePem: derToPem(der, "CERTIFICATE"),
    jwsSha256: createHash("sha256").update(jws, "utf8").digest("hex"),
  };
}

/** Step 7: the digest covers the manifest, and the manifest passes its schema. */
export function checkManifest(req: AuthenticatedDeployRequest): VerifiedDeployRequest {
  let digest: string;
  try {
    digest = manifestDigest(req.claims.manifest);
  } catch {
    throw pcError("PC_DEPLOY_DIGEST_MISMATCH");
  }
  if (digest !== req.claims.manifestDigest) throw pcError("PC_DEPLOY_DIGEST_MISMATCH");
  const { spec } = validateManifest(req.claims.manifest);
  return { ...req, spec };
}
