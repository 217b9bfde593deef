import { createHash, X509Certificate } from "node:crypto";
import { compactVerify, decodeProtectedHeader } from "jose";
import { certificatesFromPem, uriSans } from "../pki/index.js";
import { AUDIT_SIGNER, CHECKPOINT_TYP, type CheckpointPayload } from "./format.js";

/**
 * Verification of checkpoints: compact JWS (ES256) whose protected header carries
 * `x5c: [audit certificate, issuing CA]`. A checkpoint is trusted only if
 *   1. the header is exactly what the format says (alg ES256, typ, two certificates);
 *   2. the audit certificate was issued by the issuing CA, and the issuing CA by the
 *      trusted root (signatures checked, the issuer a CA);
 *   3. the audit certificate names `spiffe://<trust domain>/service/audit` as its only URI SAN;
 *   4. the JWS signature verifies under the audit certificate's key;
 *   5. the payload is well formed, of this trust domain, and its time lies within the
 *      audit certificate's validity.
 * Messages are fixed; nothing from the input is echoed beyond numbers.
 */

export type CheckpointFailureKind = "bad signature" | "untrusted signer" | "format";

export type CheckpointResult =
  | { readonly ok: true; readonly payload: CheckpointPayload }
  | { readonly ok: false; readonly kind: CheckpointFailureKind; readonly message: string; readonly seq: number | null };

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;

export const sha256Hex = (der: Buffer): string => createHash("sha256").update(der).digest("hex");

/** The self-signed CA certificate among `pems`; undefined if there is none or more than one. */
export function findRoot(pems: readonly string[]): { readonly cert: X509Certificate; readonly fingerprint: string } | undefined {
  const roots: X509Certificate[] = [];
  for (const pem of pems) {
    for (const der of certificatesFromPem(pem)) {
      let x: X509Certificate;
      try {
        x = new X509Certificate(der);
      } catch {
        continue;
      }
      if (x.ca && x.checkIssued(x) && x.verify(x.publicKey)) roots.push(x);
    }
  }
  if (roots.length !== 1) return undefined;
  const root = roots[0] as X509Certificate;
  return { cert: root, fingerprint: sha256Hex(root.raw) };
}

/** Reads the payload's seq without trusting it, to name the checkpoint in an error. */
function claimedSeq(jws: string): number | null {
  try {
    const p = JSON.parse(Buffer.from(jws.split(".")[1] ?? "", "base64url").toString("utf8")) as { seq?: unknown };
    return Number.isSafeInteger(p.seq) ? (p.seq as number) : null;
  } catch {
    return null;
  }
}

function parsePayload(bytes: Uint8Array): CheckpointPayload | undefined {
  let p: unknown;
  try {
    p = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof p !== "object" || p === null || Array.isArray(p)) return undefined;
  const o = p as Record<string, unknown>;
  if (Object.keys(o).some((k) => !["seq", "hash", "time", "trustDomain"].includes(k))) return undefined;
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0) return undefined;
  if (typeof o.hash !== "string" || !HEX64.test(o.hash)) return undefined;
  if (typeof o.time !== "string" || !ISO_MS.test(o.time) || Number.isNaN(Date.parse(o.time))) return undefined;
  if (typeof o.trustDomain !== "string") return undefined;
  return { seq: o.seq as number, hash: o.hash, time: o.time, trustDomain: o.trustDomain };
}

export class CheckpointVerifier {
  /** Audit certificates (base64 DER of leaf + issuer) already found to chain to the root. */
  private readonly trustedChains = new Map<string, X509Certificate>();
  private readonly signerUri: string;

  constructor(
    private readonly root: X509Certificate,
    private readonly trustDomain: string,
  ) {
    const [kind, name] = AUDIT_SIGNER.split(":") as [string, string];
    this.signerUri = `spiffe://${trustDomain}/${kind}/${name}`;
  }

  private leafFor(x5c: readonly string[]): X509Certificate | undefined {
    const key = x5c.join(".");
    const cached = this.trustedChains.get(key);
    if (cached) return cached;
    let leaf: X509Certificate;
    let issuer: X509Certificate;
    try {
      leaf = new X509Certificate(Buffer.from(x5c[0] as string, "base64"));
      issuer = new X509Certificate(Buffer.from(x5c[1] as string, "base64"));
    } catch {
      return undefined;
    }
    const chains =
      issuer.ca &&
      !leaf.ca &&
      issuer.checkIssued(this.root) &&
      issuer.verify(this.root.publicKey) &&
      leaf.checkIssued(issuer) &&
      leaf.verify(issuer.publicKey);
    if (!chains) return undefined;
    let uris: string[];
    try {
      uris = uriSans(leaf.raw);
    } catch {
      return undefined;
    }
    if (uris.length !== 1 || uris[0] !== this.signerUri) return undefined;
    this.trustedChains.set(key, leaf);
    return leaf;
  }

  async verify(jws: string): Promise<CheckpointResult> {
    const seq = claimedSeq(jws);
    const fail = (kind: CheckpointFailureKind, message: string): CheckpointResult => ({ ok: false, kind, message, seq });
    if (typeof jws !== "string" || jws.split(".").length !== 3) return fail("format", "checkpoint is not a compact JWS");
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(jws);
    } catch {
      return fail("format", "checkpoint header is malformed");
    }
    if (header.alg !== "ES256" || header.typ !== CHECKPOINT_TYP || header.crit !== undefined) {
      return fail("format", "checkpoint header must be ES256 with the checkpoint type");
    }
    const x5c = header.x5c;
    if (!Array.isArray(x5c) || x5c.length !== 2 || !x5c.every((c) => typeof c === "string")) {
      return fail("format", "checkpoint header must carry the audit certificate and its issuing CA");
    }
    const leaf = this.leafFor(x5c);
    if (!leaf) return fail("untrusted signer", "checkpoint signer is not the audit service certified by the trusted CA");
    let payloadBytes: Uint8Array;
    try {
      ({ payload: payloadBytes } = await compactVerify(jws, leaf.publicKey, { algorithms: ["ES256"] }));
    } catch {
      return fail("bad signature", "signature verification failed");
    }
    const payload = parsePayload(payloadBytes);
    if (!payload) return fail("format", "checkpoint payload is malformed");
    if (payload.trustDomain !== this.trustDomain) return fail("untrusted signer", "checkpoint is of another trust domain");
    const t = Date.parse(payload.time);
    if (t < Date.parse(leaf.validFrom) || t > Date.parse(leaf.validTo)) {
      return fail("untrusted signer", "checkpoint time is outside the audit certificate's validity");
    }
    return { ok: true, payload };
  }
}
