import forge from "node-forge";

/**
 * Bridges between node:crypto's Buffers and forge's ASN.1 toolkit, which works on
 * binary strings. forge builds and parses the structures; node:crypto holds the keys
 * and makes and checks the signatures (forge has no ECDSA).
 */
export const asn1 = forge.asn1;
export type Asn1 = forge.asn1.Asn1;

export const C = forge.asn1.Class;
export const T = forge.asn1.Type;

export function toDer(obj: Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(obj).getBytes(), "binary");
}

/** Parses strict DER; trailing bytes or malformed input throw. */
export function fromDer(buf: Buffer): Asn1 {
  const opts = { strict: true, parseAllBytes: true, decodeBitStrings: false };
  return (forge.asn1.fromDer as unknown as (b: forge.util.ByteStringBuffer, o: typeof opts) => Asn1)(
    forge.util.createBuffer(buf.toString("binary")),
    opts,
  );
}

export function oid(o: string): Asn1 {
  return asn1.create(C.UNIVERSAL, T.OID, false, asn1.oidToDer(o).getBytes());
}

export function seq(items: Asn1[]): Asn1 {
  return asn1.create(C.UNIVERSAL, T.SEQUENCE, true, items);
}

export function int(bytes: Buffer): Asn1 {
  return asn1.create(C.UNIVERSAL, T.INTEGER, false, bytes.toString("binary"));
}

export function smallInt(n: number): Asn1 {
  return asn1.create(C.UNIVERSAL, T.INTEGER, false, asn1.integerToDer(n).getBytes());
}

export function bitString(bytes: Buffer): Asn1 {
  return asn1.create(C.UNIVERSAL, T.BITSTRING, false, `\u0000${bytes.toString("binary")}`);
}

export function octetString(bytes: Buffer): Asn1 {
  return asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, bytes.toString("binary"));
}

export function time(d: Date): Asn1 {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050
    ? asn1.create(C.UNIVERSAL, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(C.UNIVERSAL, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

export function bytesOf(node: Asn1): Buffer {
  if (typeof node.value !== "string") throw new Error("expected a primitive ASN.1 value");
  return Buffer.from(node.value, "binary");
}

export function children(node: Asn1 | undefined): Asn1[] {
  if (!node || !Array.isArray(node.value)) throw new Error("expected a constructed ASN.1 value");
  return node.value;
}

export function oidOf(node: Asn1 | undefined): string {
  if (!node || node.type !== T.OID || typeof node.value !== "string") throw new Error("expected an OID");
  return asn1.derToOid(node.value);
}

/**
 * The exact bytes of the first element inside a DER SEQUENCE: the to-be-signed part
 * of a certificate, CSR or CRL, as it was received (never re-encoded).
 */
export function firstElementBytes(der: Buffer): Buffer {
  const inner = headerLength(der, 0);
  const start = inner.headerLen;
  const first = headerLength(der, start);
  return der.subarray(start, start + first.headerLen + first.contentLen);
}

function headerLength(buf: Buffer, at: number): { headerLen: number; contentLen: number } {
  if (at + 2 > buf.length) throw new Error("truncated DER");
  const lenByte = buf[at + 1] as number;
  if (lenByte < 0x80) return { headerLen: 2, contentLen: lenByte };
  const n = lenByte & 0x7f;
  if (n === 0 || n > 4 || at + 2 + n > buf.length) throw new Error("bad DER length");
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (buf[at + 2 + i] as number);
  return { headerLen: 2 + n, contentLen: len };
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

/** Decodes every PEM block of the given label; malformed base64 is refused. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    if (m[1] !== label) continue;
    const b64 = (m[2] as string).replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new Error("bad base64 in PEM");
    out.push(Buffer.from(b64, "base64"));
  }
  return out;
}

export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}
