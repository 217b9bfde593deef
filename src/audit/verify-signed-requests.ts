import { X509Certificate } from "node:crypto";
import { isPortcullisError } from "../core/index.js";
import { verifySignedRequestEvidence } from "../deploy/index.js";
import { certificatesFromPem, derToPem } from "../pki/index.js";
import { DEPLOY_ACCEPTED_TYPE, SIGNED_REQUEST_KIND, type EntryBody, type EntryHead, type ExportFilter } from "./format.js";

/**
 * Offline verification of a bundle's signed-request lines, the evidence of accepted
 * deploy requests. For each line, in this order:
 *   1. the line is well formed (exactly the declared fields, all strings) and its jti
 *      appears once;
 *   2. it fits the bundle's filter (its namespace);
 *   3. the JWS verifies with the deploy domain's own evidence check
 *      (`verifySignedRequestEvidence`): the signature under the signer certificate, the
 *      certificate chained to the bundle's root, the audience the bundle's trust domain,
 *      the manifest digest recomputed from the signed manifest;
 *   4. what the line states (jti, requester, operation, namespace, name, digest) is what
 *      was signed;
 *   5. the chain holds its acceptance: a `deploy.request_accepted` entry shown in full
 *      whose `target` is the jti and whose `deploy.digest` is the line's digest.
 * And after the last line, every acceptance entry shown in full came with its signed
 * request (`missing()`), so a request cannot be dropped from a bundle unnoticed.
 * Messages are fixed or come from the evidence check's public message; the jti is shown
 * only when it is plain printable ASCII.
 */

export type SignedRequestFailureKind = "format" | "duplicate" | "filter mismatch" | "bad signed request" | "not in the chain" | "missing signed request";

export type SignedRequestResult =
  | { readonly ok: true; readonly jti: string }
  | { readonly ok: false; readonly kind: SignedRequestFailureKind; readonly message: string; readonly jti: string | null };

const LINE_FIELDS = ["kind", "jti", "requester", "operation", "namespace", "name", "digest", "receivedAt", "jws", "signerCertificate"] as const;
const SHOWN_JTI = /^[\x21-\x7e]{1,128}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

type Obj = Record<string, unknown>;

/**
 * The CA certificates a requester's certificate may chain through, PEM: the root, and
 * the CA certificates among `pems` that the root issued (the issuing CA). Nothing that
 * does not chain to the root is trusted.
 */
export function evidenceAnchorsPem(root: X509Certificate, pems: readonly string[]): string {
  const out = [root.toString()];
  const seen = new Set([root.fingerprint256]);
  for (const pem of pems) {
    for (const der of certificatesFromPem(pem)) {
      let x: X509Certificate;
      try {
        x = new X509Certificate(der);
      } catch {
        continue;
      }
      if (seen.has(x.fingerprint256) || !x.ca || !x.checkIssued(root) || !x.verify(root.publicKey)) continue;
      seen.add(x.fingerprint256);
      out.push(derToPem(x.raw, "CERTIFICATE"));
    }
  }
  return out.map((p) => (p.endsWith("\n") ? p : `${p}\n`)).join("");
}

export class SignedRequestChecker {
  /** Acceptance entries shown in full: jti → seq and stated digest. */
  private readonly accepted = new Map<string, { readonly seq: number; readonly digest: string | undefined }>();
  private readonly seen = new Set<string>();

  constructor(
    private readonly trust: { readonly rootCertificatesPem: string; readonly trustDomain: string },
    private readonly filter: ExportFilter,
  ) {}

  /** Called for every entry of the range (body undefined for a sealed entry). */
  noteEntry(head: EntryHead, body: EntryBody | undefined): void {
    if (head.type !== DEPLOY_ACCEPTED_TYPE) return;
    if (body !== undefined && typeof body.target === "string") this.accepted.set(body.target, { seq: head.seq, digest: body.deploy?.digest });
  }

  check(o: Obj): SignedRequestResult {
    const jti = typeof o.jti === "string" && SHOWN_JTI.test(o.jti) ? o.jti : null;
    const fail = (kind: SignedRequestFailureKind, message: string): SignedRequestResult => ({ ok: false, kind, message, jti });
    const keys = Object.keys(o);
    if (o.kind !== SIGNED_REQUEST_KIND || keys.length !== LINE_FIELDS.length || !LINE_FIELDS.every((k) => typeof o[k] === "string")) {
      return fail("format", "malformed signed-request line");
    }
    const line = o as Record<(typeof LINE_FIELDS)[number], string>;
    if (!ISO_MS.test(line.receivedAt) || Number.isNaN(Date.parse(line.receivedAt))) return fail("format", "receivedAt is not an ISO 8601 time");
    if (this.seen.has(line.jti)) return fail("duplicate", "the same signed request appears twice");
    this.seen.add(line.jti);

    const f = this.filter;
    if (f.namespace !== undefined && line.namespace !== f.namespace) return fail("filter mismatch", "a signed request of another namespace than the filter's");

    let signed: ReturnType<typeof verifySignedRequestEvidence>;
    try {
      signed = verifySignedRequestEvidence({ jws: line.jws, signerCertificatePem: line.signerCertificate }, this.trust);
    } catch (e) {
      return fail("bad signed request", isPortcullisError(e) ? e.publicMessage : "the signed request does not verify");
    }
    const stated: [string, string, string][] = [
      ["jti", line.jti, signed.jti],
      ["requester", line.requester, signed.requester],
      ["operation", line.operation, signed.op],
      ["namespace", line.namespace, signed.namespace],
      ["name", line.name, signed.name],
      ["digest", line.digest, signed.manifestDigest],
    ];
    for (const [field, shown, actual] of stated) {
      if (shown !== actual) return fail("bad signed request", `the line's ${field} is not the signed one`);
    }

    const entry = this.accepted.get(line.jti);
    if (entry !== undefined) {
      if (entry.digest !== line.digest) return fail("not in the chain", `the acceptance entry at seq ${entry.seq} names another manifest digest`);
      return { ok: true, jti: line.jti };
    }
    return fail("not in the chain", `no ${DEPLOY_ACCEPTED_TYPE} entry shown in the bundle names this request`);
  }

  /**
   * After the last line: every acceptance entry the bundle shows in full must have come
   * with its signed request, so that removing a request from a bundle is caught.
   */
  missing(): { readonly jti: string; readonly seq: number } | undefined {
    for (const [jti, e] of this.accepted) if (!this.seen.has(jti)) return { jti, seq: e.seq };
    return undefined;
  }
}
