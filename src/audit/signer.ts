import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { CompactSign } from "jose";
import { identityToSpiffe, parseIdentity } from "../core/index.js";
import { pemBlocks } from "../pki/index.js";
import { AUDIT_SIGNER, CHECKPOINT_TYP, type CheckpointPayload } from "./format.js";

export interface AuditSignerOptions {
  /** The audit key: PKCS#8 PEM or a private KeyObject, EC P-256. */
  readonly key: string | KeyObject;
  /** The audit certificate and the CA that issued it, PEM (one string or one per certificate). */
  readonly certChainPem: readonly string[];
  readonly trustDomain: string;
}

/**
 * Signs checkpoints: a compact JWS (ES256) whose protected header carries the audit
 * certificate and its issuing CA (x5c), so that each checkpoint can be verified on its
 * own, also after the audit certificate was renewed.
 */
export class AuditSigner {
  readonly certificate: X509Certificate;
  /** Base64 DER of the audit certificate, then of its issuer. */
  readonly x5c: readonly [string, string];
  readonly trustDomain: string;
  private readonly key: KeyObject;

  constructor(opts: AuditSignerOptions) {
    const key = typeof opts.key === "string" ? createPrivateKey(opts.key) : opts.key;
    if (key.type !== "private" || key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new TypeError("the audit key must be an EC P-256 private key");
    }
    const ders = opts.certChainPem.flatMap((p) => pemBlocks(p, "CERTIFICATE"));
    if (ders.length !== 2) throw new TypeError("the audit certificate chain must hold the audit certificate and its issuing CA");
    const [leafDer, issuerDer] = ders as [Buffer, Buffer];
    const leaf = new X509Certificate(leafDer);
    const issuer = new X509Certificate(issuerDer);
    if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) throw new TypeError("the audit certificate is not issued by the given CA");
    const pub = createPublicKey(key).export({ format: "der", type: "spki" });
    if (!leaf.publicKey.export({ format: "der", type: "spki" }).equals(pub)) throw new TypeError("the audit key does not match the audit certificate");
    const uri = identityToSpiffe(parseIdentity(AUDIT_SIGNER), opts.trustDomain);
    if (!(leaf.subjectAltName ?? "").split(", ").includes(`URI:${uri}`)) throw new TypeError(`the audit certificate is not for ${AUDIT_SIGNER}`);
    this.key = key;
    this.certificate = leaf;
    this.x5c = [leafDer.toString("base64"), issuerDer.toString("base64")];
    this.trustDomain = opts.trustDomain;
  }

  /** PEM of the audit certificate and its issuer. */
  chainPem(): string[] {
    return this.x5c.map((b64) => `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`);
  }

  async sign(payload: CheckpointPayload): Promise<string> {
    const body = { seq: payload.seq, hash: payload.hash, time: payload.time, trustDomain: payload.trustDomain };
    return new CompactSign(new TextEncoder().encode(JSON.stringify(body)))
      .setProtectedHeader({ alg: "ES256", typ: CHECKPOINT_TYP, x5c: [...this.x5c] })
      .sign(this.key);
  }
}
