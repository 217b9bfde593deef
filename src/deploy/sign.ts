/**
 * The client side of a signed deploy request: a compact JWS over the request claims,
 * signed with the caller's own key (EC P-256 → ES256, Ed25519 → EdDSA). The protected
 * header names the signing certificate only by thumbprint (`x5t#S256`); the gateway takes
 * the certificate from the TLS connection, never from the token.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { CompactSign } from "jose";
import { pcError, randomToken } from "../core/index.js";
import { certificatesFromPem } from "../pki/index.js";
import { manifestDigest } from "./digest.js";
import { algorithmForKey, certificateThumbprint } from "./jws-compact.js";
import { DEPLOY_JWS_TYPE, DEPLOY_OPERATIONS, MAX_REQUEST_LIFETIME_S, type DeployOperation, type DeployRequestClaims, type Manifest } from "./types.js";

export const DEFAULT_REQUEST_LIFETIME_S = 120;

export interface SignDeployRequestOptions {
  readonly op: DeployOperation;
  readonly manifest: Manifest;
  /** The gateway's trust domain: the audience. */
  readonly trustDomain: string;
  /** The caller's private key, PEM (PKCS#8, SEC1). */
  readonly privateKeyPem: string;
  /** The caller's certificate, PEM; the first block when a chain is given. */
  readonly certificatePem: string;
  readonly now?: Date;
  /** Default 120, at most 300. */
  readonly lifetimeSeconds?: number;
  /** Default: 128 random bits, base64url. */
  readonly jti?: string;
}

/** Signs a deploy request; returns the compact JWS. */
export async function signDeployRequest(opts: SignDeployRequestOptions): Promise<string> {
  if (!(DEPLOY_OPERATIONS as readonly string[]).includes(opts.op)) throw pcError("PC_DEPLOY_CLAIMS_INVALID", `op: must be one of ${DEPLOY_OPERATIONS.join(", ")}`);
  const lifetime = opts.lifetimeSeconds ?? DEFAULT_REQUEST_LIFETIME_S;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_REQUEST_LIFETIME_S) {
    throw pcError("PC_DEPLOY_CLAIMS_INVALID", `exp: the lifetime must be 1 to ${MAX_REQUEST_LIFETIME_S} seconds`);
  }
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const claims: DeployRequestClaims = {
    op: opts.op,
    namespace: opts.manifest.metadata.namespace,
    name: opts.manifest.metadata.name,
    manifest: opts.manifest,
    manifestDigest: manifestDigest(opts.manifest),
    aud: opts.trustDomain,
    iat,
    exp: iat + lifetime,
    jti: opts.jti ?? randomToken(16),
  };
  return signWithCertificateKey(DEPLOY_JWS_TYPE, claims, opts.privateKeyPem, opts.certificatePem);
}

/**
 * A compact JWS of `typ` over `claims`, signed with the caller's key: ES256 or EdDSA by
 * the key's type, `x5t#S256` of the certificate the key belongs to (checked here, so a
 * key and a certificate that do not match never sign).
 */
export async function signWithCertificateKey(typ: string, claims: object, privateKeyPem: string, certificatePem: string): Promise<string> {
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch {
    throw pcError("PC_PKI_PEM_MALFORMED", "the private key cannot be read");
  }
  const alg = algorithmForKey(key);
  if (alg === undefined) throw pcError("PC_DEPLOY_ALG_NOT_ALLOWED", "the signing key must be EC P-256 or Ed25519");
  const der = certificatesFromPem(certificatePem)[0];
  if (der === undefined) throw pcError("PC_PKI_PEM_MALFORMED", "no certificate in the PEM");
  let certKey: KeyObject;
  try {
    certKey = new X509Certificate(der).publicKey;
  } catch {
    throw pcError("PC_PKI_CERT_INVALID", "the certificate cannot be read");
  }
  const spki = (k: KeyObject) => k.export({ format: "der", type: "spki" });
  if (!spki(createPublicKey(key)).equals(spki(certKey))) {
    throw pcError("PC_DEPLOY_SIGNER_MISMATCH", "the private key does not belong to the certificate");
  }
  return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader({ alg, typ, "x5t#S256": certificateThumbprint(der) })
    .sign(key);
}
