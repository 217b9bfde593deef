/**
 * Offline re-verification of a stored signed request, for auditors: no gateway, no
 * store, only the stored JWS, the signer's certificate and the CA bundle they trust.
 *
 *   1 the JWS is well formed and its header allowed (as on the gateway)
 *   2 its claims are well formed and name this trust domain as audience
 *   3 the signer certificate chains to a self-signed root of the bundle (through an
 *     intermediate from the bundle or from the evidence), every link a CA, every
 *     certificate valid at the request's iat; the leaf is for client authentication
 *     and names an identity of the trust domain
 *   4 the header's x5t#S256 is that certificate's thumbprint, its key fits alg
 *   5 the signature verifies with it
 *   6 the manifest digest matches the manifest
 *
 * Expiry is not checked (exp has long passed), nor revocation (a CRL is not evidence of
 * the state at iat). Every failure is PC_DEPLOY_EVIDENCE_INVALID with a short fixed reason.
 */
import { verify as cryptoVerify, X509Certificate } from "node:crypto";
import { formatIdentity, pcError } from "../core/index.js";
import { certificatesFromPem, identityOfCertificate } from "../pki/index.js";
import { readClaims } from "./claims.js";
import { manifestDigest } from "./digest.js";
import { algorithmForKey, certificateThumbprint, checkDeployHeader, parseCompactJws, type DeployAlgorithm } from "./jws-compact.js";
import type { DeployOperation } from "./types.js";

export interface SignedRequestEvidence {
  readonly jws: string;
  /** The signer's certificate, PEM; intermediates may follow it. */
  readonly signerCertificatePem: string;
}

export interface EvidenceTrust {
  /** The CA bundle (root, and the issuing intermediate if it is not in the evidence). */
  readonly rootCertificatesPem: string;
  readonly trustDomain: string;
}

export interface VerifiedEvidence {
  readonly requester: string;
  readonly jti: string;
  readonly op: DeployOperation;
  readonly namespace: string;
  readonly name: string;
  readonly manifestDigest: string;
  readonly iat: number;
}

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const fail = (reason: string) => pcError("PC_DEPLOY_EVIDENCE_INVALID", reason);

function attempt<T>(fn: () => T, reason: string): T {
  try {
    return fn();
  } catch {
    throw fail(reason);
  }
}

export function verifySignedRequestEvidence(e: SignedRequestEvidence, trust: EvidenceTrust): VerifiedEvidence {
  const jws = attempt(() => parseCompactJws(e.jws), "the signed request is malformed");
  const header = attempt(() => checkDeployHeader(jws.header), "the signed request header is not allowed");
  const claims = attempt(() => readClaims(jws.payload, trust.trustDomain), "the signed request claims are not valid");

  const presented = attempt(() => certificatesFromPem(e.signerCertificatePem).map((d) => ({ der: d, x: new X509Certificate(d) })), "the signer certificate cannot be read");
  const bundle = attempt(() => certificatesFromPem(trust.rootCertificatesPem).map((d) => new X509Certificate(d)), "the CA bundle cannot be read");
  const leaf = presented[0];
  if (leaf === undefined) throw fail("the signer certificate cannot be read");
  if (bundle.length === 0) throw fail("the CA bundle cannot be read");

  const at = new Date(claims.iat * 1000);
  if (!chainsToRoot(leaf.x, [...presented.slice(1).map((p) => p.x), ...bundle], bundle, at)) {
    throw fail("the signer certificate does not chain to the CA bundle at the time of signing");
  }
  if (leaf.x.ca || !(leaf.x.keyUsage ?? []).includes(CLIENT_AUTH)) throw fail("the signer certificate is not a client certificate");
  const requester = attempt(() => formatIdentity(identityOfCertificate(leaf.der, trust.trustDomain)), "the signer certificate names no identity of this trust domain");

  if (header["x5t#S256"] !== certificateThumbprint(leaf.der)) throw fail("the signer certificate is not the one the header names");
  if (algorithmForKey(leaf.x.publicKey) !== header.alg) throw fail("the signer certificate key does not fit the algorithm");
  if (!signatureVerifies(header.alg, jws.signingInput, jws.signature, leaf.x)) throw fail("the signature does not verify");

  const digest = attempt(() => manifestDigest(claims.manifest), "the manifest digest does not match");
  if (digest !== claims.manifestDigest) throw fail("the manifest digest does not match");

  return {
    requester,
    jti: claims.jti,
    op: claims.op,
    namespace: claims.namespace,
    name: claims.name,
    manifestDigest: claims.manifestDigest,
    iat: claims.iat,
  };
}

function validAt(c: X509Certificate, at: Date): boolean {
  const from = new Date(c.validFrom).getTime();
  const to = new Date(c.validTo).getTime();
  return from <= at.getTime() && at.getTime() <= to;
}

function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

const selfSigned = (c: X509Certificate) => signedBy(c, c);

/** leaf ← (intermediate ←)? root, where the root is a self-signed CA of `roots`. */
function chainsToRoot(leaf: X509Certificate, candidates: readonly X509Certificate[], roots: readonly X509Certificate[], at: Date): boolean {
  if (!validAt(leaf, at)) return false;
  const anchors = roots.filter((r) => r.ca && selfSigned(r) && validAt(r, at));
  if (anchors.some((r) => signedBy(leaf, r))) return true;
  return candidates.some(
    (i) => i.ca && !selfSigned(i) && validAt(i, at) && signedBy(leaf, i) && anchors.some((r) => signedBy(i, r)),
  );
}

function signatureVerifies(alg: DeployAlgorithm, signingInput: string, signature: Buffer, cert: X509Certificate): boolean {
  const data = Buffer.from(signingInput, "ascii");
  try {
    if (alg === "ES256") {
      return signature.length === 64 && cryptoVerify("sha256", data, { key: cert.publicKey, dsaEncoding: "ieee-p1363" }, signature);
    }
    return cryptoVerify(null, data, cert.publicKey, signature);
  } catch {
    return false;
  }
}
