import { createHash, X509Certificate } from "node:crypto";
import { pcError, identityFromSpiffe, type Identity } from "../core/index.js";
import { bytesOf, C, children, fromDer, oidOf, pemBlocks, type Asn1 } from "./der.js";
import { OID } from "./oids.js";

/** What the gateway reads from a certificate. The identity comes only from the URI SAN. */
export interface CertificateInfo {
  readonly serialHex: string;
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly uris: readonly string[];
}

export function certificateInfo(der: Buffer): CertificateInfo {
  let x: X509Certificate;
  try {
    x = new X509Certificate(der);
  } catch (e) {
    throw pcError("PC_PKI_CERT_INVALID", "unparseable certificate", e);
  }
  return {
    serialHex: x.serialNumber.toLowerCase().replace(/^(?:00)+(?=[0-9a-f])/, ""),
    fingerprint: createHash("sha256").update(der).digest("hex"),
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    isCa: x.ca,
    uris: uriSans(der),
  };
}

/** The URI entries of the subjectAltName extension, read from the DER. */
export function uriSans(der: Buffer): string[] {
  try {
    const tbs = children(children(fromDer(der))[0]);
    const extsWrapper = tbs.find((n) => n.tagClass === C.CONTEXT_SPECIFIC && n.type === 3);
    if (!extsWrapper) return [];
    const out: string[] = [];
    for (const ext of children(children(extsWrapper)[0])) {
      const parts = children(ext);
      if (oidOf(parts[0]) !== OID.subjectAltName) continue;
      for (const gn of children(fromDer(bytesOf(parts[parts.length - 1] as Asn1)))) {
        if (gn.tagClass === C.CONTEXT_SPECIFIC && gn.type === 6) out.push(bytesOf(gn).toString("utf8"));
      }
    }
    return out;
  } catch (e) {
    throw pcError("PC_PKI_CERT_INVALID", "unparseable extensions", e);
  }
}

/**
 * The identity a certificate carries: exactly one URI SAN, a SPIFFE ID of our trust
 * domain. The subject (CN) is never consulted.
 */
export function identityOfCertificate(der: Buffer, trustDomain: string): Identity {
  const uris = uriSans(der);
  if (uris.length !== 1) throw pcError("PC_PKI_IDENTITY_INVALID", "certificate must carry exactly one URI SAN");
  return identityFromSpiffe(uris[0] as string, trustDomain);
}

export function certificatesFromPem(text: string): Buffer[] {
  try {
    return pemBlocks(text, "CERTIFICATE");
  } catch (e) {
    throw pcError("PC_PKI_PEM_MALFORMED", "bad base64", e);
  }
}

/** `SHA256:<hex>`, how fingerprints are printed and pinned. */
export function formatFingerprint(hex: string): string {
  return `SHA256:${hex.toLowerCase()}`;
}

export function parseFingerprint(text: string): string {
  const m = /^(?:SHA256:)?([0-9a-fA-F]{64}|(?:[0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2})$/.exec(text.trim());
  if (!m) throw pcError("PC_CLI_USAGE", "fingerprint must be SHA256:<64 hex digits>");
  return (m[1] as string).replace(/:/g, "").toLowerCase();
}

/** The renewal rule for every certificate portcullis holds: due once two thirds of its lifetime have passed. */
export function renewalDue(notBefore: Date, notAfter: Date, now: Date): boolean {
  const from = notBefore.getTime();
  return now.getTime() >= from + ((notAfter.getTime() - from) * 2) / 3;
}
