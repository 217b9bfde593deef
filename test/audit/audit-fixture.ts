import { X509Certificate } from "node:crypto";
import { dirname } from "node:path";
import { compactVerify, decodeProtectedHeader } from "jose";
import { AuditLog, auditSignerFrom, issueAuditCredentials, loadOrCreateHmacKey, type AuditLogOptions, type CheckpointPayload } from "../../src/audit/index.js";
import { pemBlocks } from "../../src/pki/index.js";
import { pkiFixture, type PkiFixture } from "../pki/fixture.js";

export interface AuditFixture extends PkiFixture {
  readonly log: AuditLog;
}

/**
 * A real CA and store in a temporary directory, with the audit log as the PKI's sink,
 * audit credentials issued by that CA for service:audit, and a checkpoint signer.
 */
export function auditFixture(opts: Partial<Omit<AuditLogOptions, "trustDomain" | "hmacKey">> & { sign?: boolean } = {}): AuditFixture {
  let log: AuditLog | undefined;
  const f = pkiFixture({
    audit: (store, clock) => {
      log = new AuditLog(store, clock, {
        ...opts,
        trustDomain: "portcullis.local",
        hmacKey: loadOrCreateHmacKey(dirname(store.db.name)),
      });
      return log;
    },
  });
  const l = log as AuditLog;
  l.useCa(f.ca.bundlePem, f.ca.rootFingerprint);
  l.genesis(f.config.trustDomain, f.ca.rootFingerprint);
  if (opts.sign !== false) l.useSigner(auditSignerFrom(issueAuditCredentials(f.pki, f.dir), f.config.trustDomain));
  const close = f.close;
  return {
    ...f,
    log: l,
    close() {
      void l.close().catch(() => undefined);
      close();
    },
  };
}

/**
 * Verifies a checkpoint as an offline verifier would: the signature against the
 * certificate in x5c, that certificate against its issuer, the issuer against the root.
 */
export async function verifyCheckpoint(jws: string, rootPem: string): Promise<{ payload: CheckpointPayload; leaf: X509Certificate }> {
  const header = decodeProtectedHeader(jws);
  if (header.alg !== "ES256" || !Array.isArray(header.x5c) || header.x5c.length !== 2) throw new Error("bad header");
  const [leaf, issuer] = header.x5c.map((b) => new X509Certificate(Buffer.from(b, "base64"))) as [X509Certificate, X509Certificate];
  const root = new X509Certificate(pemBlocks(rootPem, "CERTIFICATE")[0] as Buffer);
  if (!leaf.verify(issuer.publicKey) || !issuer.verify(root.publicKey) || !leaf.checkIssued(issuer)) throw new Error("chain does not verify");
  const { payload } = await compactVerify(jws, leaf.publicKey, { algorithms: ["ES256"] });
  return { payload: JSON.parse(new TextDecoder().decode(payload)) as CheckpointPayload, leaf };
}
