import { randomBytes, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseIdentity, type Clock } from "../core/index.js";
import { generateKeyPair, privateKeyPem, spkiDer, type Actor, type PkiService, renewalDue } from "../pki/index.js";
import { readKeyFile, writeFileAtomic, writeKeyFile } from "../store/index.js";
import { AUDIT_SIGNER } from "./format.js";
import { AuditSigner } from "./signer.js";

/** Where the audit key, its certificate and the log's HMAC key live in a data directory. */
export function auditPaths(dataDir: string) {
  const dir = join(dataDir, "audit");
  return { dir, key: join(dir, "audit.key"), cert: join(dir, "audit.crt"), hmacKey: join(dir, "hmac.key") };
}

export interface AuditCredentials {
  readonly keyPem: string;
  /** The audit certificate, then the issuing CA. */
  readonly certChainPem: readonly [string, string];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const ISSUER: Actor = { identity: "service:portcullis" };

/**
 * Issues a new P-256 audit key and a certificate for `service:audit` from our CA (the
 * service lifetime), and writes them: audit.key 0600, audit.crt (certificate + issuer).
 */
export function issueAuditCredentials(pki: PkiService, dataDir: string, actor: Actor = ISSUER): AuditCredentials {
  const kp = generateKeyPair("ec-p256");
  const issued = pki.issueClient(parseIdentity(AUDIT_SIGNER), spkiDer(kp.publicKey), actor);
  const p = auditPaths(dataDir);
  const keyPem = privateKeyPem(kp.privateKey);
  writeKeyFile(p.key, keyPem);
  writeFileAtomic(p.cert, issued.certificate + issued.chain, 0o644);
  return loadAuditCredentials(dataDir);
}

/** Reads the audit key and certificate; the key file must be 0600. */
export function loadAuditCredentials(dataDir: string): AuditCredentials {
  const p = auditPaths(dataDir);
  const keyPem = readKeyFile(p.key);
  const pem = readFileSync(p.cert, "utf8");
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  if (blocks.length !== 2) throw new Error(`${p.cert} must hold the audit certificate and its issuing CA`);
  const leaf = new X509Certificate(blocks[0] as string);
  return {
    keyPem,
    certChainPem: [blocks[0] as string, blocks[1] as string],
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}

/**
 * Issues new audit credentials when there are none, or when two thirds of the current
 * certificate's life have passed. Returns the new credentials, or undefined when the
 * current ones stay. Older checkpoints stay verifiable: each carries its own x5c.
 */
export function renewAuditCredentialsIfDue(pki: PkiService, dataDir: string, clock: Clock): AuditCredentials | undefined {
  if (!existsSync(auditPaths(dataDir).cert) || !existsSync(auditPaths(dataDir).key)) return issueAuditCredentials(pki, dataDir);
  let c: AuditCredentials;
  try {
    c = loadAuditCredentials(dataDir);
    auditSignerFrom(c, pki.config.trustDomain);
  } catch {
    // Unreadable, or a key and a certificate that do not belong together (a crash
    // between the two writes): start over with a new pair.
    return issueAuditCredentials(pki, dataDir);
  }
  if (!renewalDue(c.notBefore, c.notAfter, clock.now())) return undefined;
  return issueAuditCredentials(pki, dataDir);
}

/** A checkpoint signer over the given credentials. */
export function auditSignerFrom(creds: AuditCredentials, trustDomain: string): AuditSigner {
  return new AuditSigner({ key: creds.keyPem, certChainPem: creds.certChainPem, trustDomain });
}

/** The log's HMAC key (32 random bytes, 0600), created on first use. */
export function loadOrCreateHmacKey(dataDir: string): Buffer {
  const p = auditPaths(dataDir).hmacKey;
  if (!existsSync(p)) writeKeyFile(p, `${randomBytes(32).toString("hex")}\n`);
  const hex = readKeyFile(p).trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${p} is not a 32-byte hex key`);
  return Buffer.from(hex, "hex");
}
