import { createHash, randomBytes, sign as cryptoSign, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { asn1, bitString, C, children, fromDer, int, octetString, oid, seq, smallInt, T, time, toDer, toPem, type Asn1 } from "./der.js";
import { signatureAlgorithmFor } from "./keys.js";
import { OID } from "./oids.js";

/**
 * Builds X.509 v3 certificates: forge builds the names, extensions and DER; the
 * signature comes from node:crypto with the issuer's key.
 */

export interface NameAttrs {
  readonly commonName: string;
  readonly organization?: string;
}

export type SanEntry = { readonly uri: string } | { readonly dns: string } | { readonly ip: string };

export interface CertificateTemplate {
  readonly serial: Buffer;
  readonly subject: NameAttrs;
  readonly issuer: NameAttrs;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key. */
  readonly spki: Buffer;
  /** DER SubjectPublicKeyInfo of the issuer, for the authority key identifier. */
  readonly issuerSpki: Buffer;
  readonly ca?: { readonly pathLen?: number } | undefined;
  readonly extKeyUsage?: readonly ("clientAuth" | "serverAuth")[];
  readonly san?: readonly SanEntry[];
}

export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  readonly serialHex: string;
  readonly fingerprint: string;
}

/**
 * 16 random bytes, never zero. Encoded by `positive()`: a 0x00 octet is prefixed when
 * the high bit is set, so the DER INTEGER is positive and at most 17 octets long.
 */
export function newSerial(): Buffer {
  const b = randomBytes(16);
  if (b.every((x) => x === 0)) b[15] = 1;
  return b;
}

export function serialToHex(serial: Buffer): string {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0) i++;
  return serial.subarray(i).toString("hex");
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  const bits = bytesOfBitString(children(fromDer(spki))[1]);
  return createHash("sha1").update(bits).digest();
}

function bytesOfBitString(node: Asn1 | undefined): Buffer {
  if (!node || node.type !== T.BITSTRING || typeof node.value !== "string") throw new Error("expected BIT STRING");
  return Buffer.from(node.value, "binary").subarray(1);
}

export function nameToAsn1(n: NameAttrs): Asn1 {
  const c = forge.pki.createCertificate();
  const attrs: forge.pki.CertificateField[] = [];
  if (n.organization) attrs.push({ shortName: "O", value: n.organization, valueTagClass: T.UTF8 as unknown as forge.asn1.Class });
  attrs.push({ shortName: "CN", value: n.commonName, valueTagClass: T.UTF8 as unknown as forge.asn1.Class });
  c.setSubject(attrs);
  return forge.pki.distinguishedNameToAsn1(c.subject);
}

const nameCache = new Map<string, Asn1>();
function cachedName(n: NameAttrs): Buffer {
  const k = `${n.organization ?? ""}\u0000${n.commonName}`;
  let v = nameCache.get(k);
  if (!v) {
    v = nameToAsn1(n);
    if (nameCache.size > 256) nameCache.clear();
    nameCache.set(k, v);
  }
  return toDer(v);
}

function extensions(t: CertificateTemplate): Asn1 {
  const exts: object[] = [];
  exts.push(
    t.ca
      ? { name: "basicConstraints", critical: true, cA: true, ...(t.ca.pathLen !== undefined ? { pathLenConstraint: t.ca.pathLen } : {}) }
      : { name: "basicConstraints", critical: true, cA: false },
  );
  exts.push(
    t.ca
      ? { name: "keyUsage", critical: true, keyCertSign: true, cRLSign: true, digitalSignature: false }
      : { name: "keyUsage", critical: true, digitalSignature: true },
  );
  if (t.extKeyUsage && t.extKeyUsage.length > 0) {
    const eku: Record<string, boolean | string> = { name: "extKeyUsage" };
    for (const u of t.extKeyUsage) eku[u] = true;
    exts.push(eku);
  }
  if (t.san && t.san.length > 0) {
    exts.push({
      name: "subjectAltName",
      critical: false,
      altNames: t.san.map((s) => ("uri" in s ? { type: 6, value: s.uri } : "dns" in s ? { type: 2, value: s.dns } : { type: 7, ip: s.ip })),
    });
  }
  exts.push({ id: OID.subjectKeyIdentifier, value: octetString(keyIdentifier(t.spki)) });
  exts.push({
    id: OID.authorityKeyIdentifier,
    value: seq([asn1.create(C.CONTEXT_SPECIFIC, 0, false, keyIdentifier(t.issuerSpki).toString("binary"))]),
  });
  const c = forge.pki.createCertificate();
  c.setExtensions(exts as forge.pki.CertificateField[]);
  // Exported by forge at run time but missing from its type definitions.
  const toAsn1 = (forge.pki as unknown as { certificateExtensionsToAsn1(e: unknown): Asn1 }).certificateExtensionsToAsn1;
  return toAsn1(c.extensions);
}

export function algorithmIdentifier(sigOid: string, rsa: boolean): Asn1 {
  return seq(rsa ? [oid(sigOid), asn1.create(C.UNIVERSAL, T.NULL, false, "")] : [oid(sigOid)]);
}

/** Wraps DER that is already encoded so that forge copies it as is. */
function raw(der: Buffer): Asn1 {
  return fromDer(der);
}

export function buildCertificate(t: CertificateTemplate, issuerKey: KeyObject): IssuedCertificate {
  const alg = signatureAlgorithmFor(issuerKey);
  const algId = algorithmIdentifier(alg.oid, alg.rsa);
  const tbs = seq([
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [smallInt(2)]),
    int(positive(t.serial)),
    algId,
    raw(cachedName(t.issuer)),
    seq([time(t.notBefore), time(t.notAfter)]),
    raw(cachedName(t.subject)),
    raw(t.spki),
    extensions(t), // certificateExtensionsToAsn1 returns the [3] EXPLICIT wrapper
  ]);
  const tbsDer = toDer(tbs);
  const signature = cryptoSign(alg.hash, tbsDer, issuerKey);
  const der = Buffer.concat([
    derHeader(0x30, tbsDer.length + algIdDer(algId).length + bitStringLen(signature)),
    tbsDer,
    algIdDer(algId),
    toDer(bitString(signature)),
  ]);
  return {
    der,
    pem: toPem(der, "CERTIFICATE"),
    serialHex: serialToHex(positive(t.serial)),
    fingerprint: createHash("sha256").update(der).digest("hex"),
  };
}

/** DER INTEGER contents: a leading 0x00 when the high bit is set, so it stays positive. */
export function positive(serial: Buffer): Buffer {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0 && ((serial[i + 1] as number) & 0x80) === 0) i++;
  const s = serial.subarray(i);
  return ((s[0] as number) & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), s]) : s;
}

const algIdCache = new WeakMap<Asn1, Buffer>();
function algIdDer(a: Asn1): Buffer {
  let d = algIdCache.get(a);
  if (!d) {
    d = toDer(a);
    algIdCache.set(a, d);
  }
  return d;
}

function bitStringLen(sig: Buffer): number {
  const content = sig.length + 1;
  return derHeader(0x03, content).length + content;
}

export function derHeader(tag: number, len: number): Buffer {
  if (len < 0x80) return Buffer.from([tag, len]);
  const bytes: number[] = [];
  let l = len;
  while (l > 0) {
    bytes.unshift(l & 0xff);
    l = Math.floor(l / 256);
  }
  return Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
}
