import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { pcError } from "../core/index.js";
import { algorithmIdentifier, nameToAsn1, type SanEntry } from "./certificate.js";
import { asn1, bitString, bytesOf, C, children, firstElementBytes, fromDer, oid, oidOf, pemBlocks, seq, smallInt, T, toDer, toPem, type Asn1 } from "./der.js";
import { checkPublicKey, signatureAlgorithmFor, spkiDer } from "./keys.js";
import { OID } from "./oids.js";

/** PKCS#10 certification requests: built by clients, parsed and checked by the CA. */

export const MAX_CSR_BYTES = 8 * 1024;

export interface ParsedCsr {
  readonly spki: Buffer;
  readonly publicKey: KeyObject;
  readonly uris: readonly string[];
  readonly otherSans: number;
  readonly commonName: string | undefined;
}

/** Builds a CSR signed with `key`, carrying the given SANs in an extensionRequest. */
export function buildCsr(opts: { key: KeyObject; publicKey: KeyObject; commonName: string; san: readonly SanEntry[] }): { der: Buffer; pem: string } {
  const sanValue = seq(
    opts.san.map((s) =>
      "uri" in s
        ? asn1.create(C.CONTEXT_SPECIFIC, 6, false, s.uri)
        : "dns" in s
          ? asn1.create(C.CONTEXT_SPECIFIC, 2, false, s.dns)
          : asn1.create(C.CONTEXT_SPECIFIC, 7, false, ipBytes(s.ip).toString("binary")),
    ),
  );
  const extReq = seq([
    oid(OID.extensionRequest),
    asn1.create(C.UNIVERSAL, T.SET, true, [
      seq([seq([oid(OID.subjectAltName), asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, toDer(sanValue).toString("binary"))])]),
    ]),
  ]);
  const info = seq([
    smallInt(0),
    nameToAsn1({ commonName: opts.commonName }),
    fromDer(spkiDer(opts.publicKey)),
    asn1.create(C.CONTEXT_SPECIFIC, 0, true, [extReq]),
  ]);
  const infoDer = toDer(info);
  const alg = signatureAlgorithmFor(opts.key);
  const sig = cryptoSign(alg.hash, infoDer, opts.key);
  const der = toDer(seq([fromDer(infoDer), algorithmIdentifier(alg.oid, alg.rsa), bitString(sig)]));
  return { der, pem: toPem(der, "CERTIFICATE REQUEST") };
}

function ipBytes(ip: string): Buffer {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) return Buffer.from(v4.slice(1).map(Number));
  throw new Error("only IPv4 SANs are supported in client requests");
}

/** Accepts a PEM CSR or its DER, base64-encoded or raw. */
export function decodeCsr(input: string | Buffer): Buffer {
  if (Buffer.isBuffer(input)) return input;
  let blocks: Buffer[];
  try {
    blocks = pemBlocks(input, "CERTIFICATE REQUEST");
  } catch (e) {
    throw pcError("PC_PKI_PEM_MALFORMED", "bad base64", e);
  }
  if (blocks.length !== 1) throw pcError("PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block");
  return blocks[0] as Buffer;
}

const SIG_ALGS: Record<string, "sha256" | "sha384"> = {
  [OID.ecdsaWithSha256]: "sha256",
  [OID.ecdsaWithSha384]: "sha384",
  [OID.sha256WithRsa]: "sha256",
};

/**
 * Parses and checks a CSR in a fixed order: size, structure, key policy, signature
 * algorithm, signature, then the requested names. Every failure is a coded error.
 */
export function parseCsr(input: string | Buffer): ParsedCsr {
  const der = decodeCsr(input);
  if (der.length === 0 || der.length > MAX_CSR_BYTES) throw pcError("PC_PKI_CSR_MALFORMED", "size");
  let top: Asn1[];
  let info: Asn1[];
  try {
    top = children(fromDer(der));
    info = children(top[0]);
  } catch (e) {
    throw pcError("PC_PKI_CSR_MALFORMED", "not a DER certification request", e);
  }
  if (top.length !== 3 || info.length < 3 || info.length > 4) throw pcError("PC_PKI_CSR_MALFORMED", "structure");
  let spki: Buffer;
  let sigAlgOid: string;
  let sig: Buffer;
  try {
    if (bytesOf(info[0] as Asn1).toString("hex") !== "00") throw new Error("version");
    spki = toDer(info[2] as Asn1);
    sigAlgOid = oidOf(children(top[1])[0]);
    const bits = bytesOf(top[2] as Asn1);
    if (bits[0] !== 0) throw new Error("unused bits");
    sig = bits.subarray(1);
  } catch (e) {
    throw pcError("PC_PKI_CSR_MALFORMED", "structure", e);
  }
  const publicKey = checkPublicKey(spki);
  const hash = SIG_ALGS[sigAlgOid];
  if (!hash) throw pcError("PC_PKI_KEY_UNSUPPORTED", "signature algorithm");
  const isRsaSig = sigAlgOid === OID.sha256WithRsa;
  if (isRsaSig !== (publicKey.asymmetricKeyType === "rsa")) throw pcError("PC_PKI_CSR_SIGNATURE");
  let ok = false;
  try {
    ok = cryptoVerify(hash, firstElementBytes(der), publicKey, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw pcError("PC_PKI_CSR_SIGNATURE");

  let names: { uris: string[]; other: number; cn: string | undefined };
  try {
    names = { ...requestedSans(info[3]), cn: commonNameOf(info[1] as Asn1) };
  } catch (e) {
    throw pcError("PC_PKI_CSR_MALFORMED", "attributes", e);
  }
  return { spki, publicKey, uris: names.uris, otherSans: names.other, commonName: names.cn };
}

function requestedSans(attrs: Asn1 | undefined): { uris: string[]; other: number } {
  const uris: string[] = [];
  let other = 0;
  if (!attrs) return { uris, other };
  for (const attr of children(attrs)) {
    const [type, values] = children(attr);
    if (oidOf(type) !== OID.extensionRequest) continue;
    for (const exts of children(values)) {
      for (const ext of children(exts)) {
        const parts = children(ext);
        if (oidOf(parts[0]) !== OID.subjectAltName) continue;
        const gn = fromDer(bytesOf(parts[parts.length - 1] as Asn1));
        for (const name of children(gn)) {
          if (name.tagClass === C.CONTEXT_SPECIFIC && name.type === 6) uris.push(bytesOf(name).toString("utf8"));
          else other++;
        }
      }
    }
  }
  return { uris, other };
}

function commonNameOf(name: Asn1): string | undefined {
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [t, v] = children(atv);
      if (oidOf(t) === OID.commonName) return bytesOf(v as Asn1).toString("utf8");
    }
  }
  return undefined;
}
