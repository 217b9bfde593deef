import { createPublicKey, generateKeyPairSync, createPrivateKey, type KeyObject } from "node:crypto";
import { pcError } from "../core/index.js";
import { OID } from "./oids.js";

/** Key algorithms the CA can hold. Clients may also present RSA >= 2048 and P-384. */
export type CaKeyAlgorithm = "ec-p256" | "rsa-2048";

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export function generateKeyPair(alg: CaKeyAlgorithm = "ec-p256"): KeyPair {
  return alg === "ec-p256"
    ? generateKeyPairSync("ec", { namedCurve: "prime256v1" })
    : generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 65537 });
}

export function privateKeyPem(k: KeyObject): string {
  return k.export({ format: "pem", type: "pkcs8" }) as string;
}

export function loadPrivateKey(pem: string): KeyObject {
  return createPrivateKey(pem);
}

/** DER SubjectPublicKeyInfo of a public key, or of a private key's public half. */
export function spkiDer(k: KeyObject): Buffer {
  const pub = k.type === "private" ? createPublicKey(k) : k;
  return pub.export({ format: "der", type: "spki" });
}

/** Signature algorithm (OID and digest) used by a signing key. */
export function signatureAlgorithmFor(k: KeyObject): { oid: string; hash: "sha256" | "sha384"; rsa: boolean } {
  if (k.asymmetricKeyType === "ec") {
    return k.asymmetricKeyDetails?.namedCurve === "secp384r1"
      ? { oid: OID.ecdsaWithSha384, hash: "sha384", rsa: false }
      : { oid: OID.ecdsaWithSha256, hash: "sha256", rsa: false };
  }
  if (k.asymmetricKeyType === "rsa") return { oid: OID.sha256WithRsa, hash: "sha256", rsa: true };
  throw pcError("PC_PKI_KEY_UNSUPPORTED", k.asymmetricKeyType ?? "unknown");
}

/**
 * The key policy for public keys we certify: EC P-256 or P-384; RSA of at least 2048
 * bits with exponent 65537. Everything else is refused.
 */
export function checkPublicKey(spki: Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (e) {
    throw pcError("PC_PKI_KEY_UNSUPPORTED", "unreadable public key", e);
  }
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "ec":
      if (d.namedCurve === "prime256v1" || d.namedCurve === "secp384r1") return key;
      if (d.namedCurve === "prime192v1" || d.namedCurve === "secp224r1" || d.namedCurve === "secp192k1") {
        throw pcError("PC_PKI_KEY_TOO_WEAK", `EC curve ${d.namedCurve}`);
      }
      throw pcError("PC_PKI_KEY_UNSUPPORTED", `EC curve ${d.namedCurve ?? "unknown"}`);
    case "rsa":
      if ((d.modulusLength ?? 0) < 2048) throw pcError("PC_PKI_KEY_TOO_WEAK", `RSA ${d.modulusLength ?? 0} bits, need 2048`);
      if (d.publicExponent !== 65537n) throw pcError("PC_PKI_KEY_TOO_WEAK", "RSA public exponent must be 65537");
      return key;
    default:
      throw pcError("PC_PKI_KEY_UNSUPPORTED", key.asymmetricKeyType ?? "unknown");
  }
}
