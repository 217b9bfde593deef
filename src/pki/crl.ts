import { sign as cryptoSign, type KeyObject } from "node:crypto";
import { algorithmIdentifier, keyIdentifier, positive, type NameAttrs, nameToAsn1 } from "./certificate.js";
import { asn1, bitString, C, int, oid, seq, smallInt, T, time, toDer, toPem, type Asn1 } from "./der.js";
import { signatureAlgorithmFor } from "./keys.js";
import { OID } from "./oids.js";

/** X.509 v2 CRLs (RFC 5280 §5), built with forge's ASN.1 and signed with node:crypto. */

export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export function isRevocationReason(v: string): v is RevocationReason {
  return Object.prototype.hasOwnProperty.call(REVOCATION_REASONS, v);
}

export interface CrlInput {
  readonly issuer: NameAttrs;
  readonly issuerSpki: Buffer;
  readonly issuerKey: KeyObject;
  readonly crlNumber: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly revoked: readonly { serialHex: string; revokedAt: Date; reason: string }[];
}

export function buildCrl(input: CrlInput): { der: Buffer; pem: string } {
  const alg = signatureAlgorithmFor(input.issuerKey);
  const algId = algorithmIdentifier(alg.oid, alg.rsa);
  const entries: Asn1[] = input.revoked.map((r) => {
    const code = isRevocationReason(r.reason) ? REVOCATION_REASONS[r.reason] : 0;
    const serial = int(positive(Buffer.from(r.serialHex, "hex")));
    // RFC 5280 §5.3.1: the reason code "unspecified" should be absent.
    if (code === 0) return seq([serial, time(r.revokedAt)]);
    const reasonExt = seq([
      oid(OID.crlReason),
      asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, toDer(asn1.create(C.UNIVERSAL, T.ENUMERATED, false, String.fromCharCode(code))).toString("binary")),
    ]);
    return seq([serial, time(r.revokedAt), seq([reasonExt])]);
  });
  const crlExts = asn1.create(C.CONTEXT_SPECIFIC, 0, true, [
    seq([
      seq([
        oid(OID.authorityKeyIdentifier),
        asn1.create(
          C.UNIVERSAL,
          T.OCTETSTRING,
          false,
          toDer(seq([asn1.create(C.CONTEXT_SPECIFIC, 0, false, keyIdentifier(input.issuerSpki).toString("binary"))])).toString("binary"),
        ),
      ]),
      seq([oid(OID.crlNumber), asn1.create(C.UNIVERSAL, T.OCTETSTRING, false, toDer(smallInt(input.crlNumber)).toString("binary"))]),
    ]),
  ]);
  const tbsItems: Asn1[] = [smallInt(1), algId, nameToAsn1(input.issuer), time(input.thisUpdate), time(input.nextUpdate)];
  if (entries.length > 0) tbsItems.push(seq(entries));
  tbsItems.push(crlExts);
  const tbsDer = toDer(seq(tbsItems));
  const sig = cryptoSign(alg.hash, tbsDer, input.issuerKey);
  const der = toDer(seq([seq(tbsItems), algorithmIdentifier(alg.oid, alg.rsa), bitString(sig)]));
  return { der, pem: toPem(der, "X509 CRL") };
}
