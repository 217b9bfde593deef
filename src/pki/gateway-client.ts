/**
 * The gateway's client certificate for the engines it reaches over TCP: identity
 * `service:gateway`, EKU clientAuth, the service lifetime, issued by the engine-client
 * CA (the only certificate that CA issues), renewed like every other certificate once
 * two thirds of its life have passed. The key (P-256) is written 0600 into the data
 * directory and never leaves it.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { Clock } from "../core/index.js";
import { readKeyFile, writeFileAtomic, writeKeyFile } from "../store/index.js";
import { certificatesFromPem, renewalDue } from "./certificate-info.js";
import { toPem } from "./der.js";
import { ENGINE_CLIENT_IDENTITY } from "./engine-client-ca.js";
import { generateKeyPair, privateKeyPem, spkiDer } from "./keys.js";
import { pkiPaths } from "./layout.js";
import type { Actor, PkiService } from "./service.js";

export const GATEWAY_CLIENT_IDENTITY = ENGINE_CLIENT_IDENTITY;

export interface GatewayClientCredentials {
  /** Our CA (root and issuing CA): the trust anchors for engine certificates. */
  readonly caPem: string;
  /** The client certificate, then its issuer (the engine-client CA). */
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const ISSUER: Actor = { identity: "service:portcullis" };

/** Issues a new key and `service:gateway` client certificate from the engine-client CA and writes them. */
export function issueGatewayClientCredentials(pki: PkiService, dataDir: string, actor: Actor = ISSUER): GatewayClientCredentials {
  const kp = generateKeyPair("ec-p256");
  const issued = pki.issueEngineClient(spkiDer(kp.publicKey), actor);
  const p = pkiPaths(dataDir);
  writeKeyFile(p.gatewayClientKey, privateKeyPem(kp.privateKey));
  writeFileAtomic(p.gatewayClientCert, issued.certificate + issued.chain, 0o644);
  return loadGatewayClientCredentials(dataDir, pki.ca.bundlePem);
}

/** Reads the key (must be 0600) and certificate; refuses a pair that does not belong together. */
export function loadGatewayClientCredentials(dataDir: string, caPem: string): GatewayClientCredentials {
  const p = pkiPaths(dataDir);
  const keyPem = readKeyFile(p.gatewayClientKey);
  const certPem = readFileSync(p.gatewayClientCert, "utf8");
  const first = certificatesFromPem(certPem)[0];
  if (first === undefined) throw new Error(`${p.gatewayClientCert} holds no certificate`);
  const leaf = new X509Certificate(toPem(first, "CERTIFICATE"));
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`${p.gatewayClientCert} is not for ${p.gatewayClientKey}`);
  return { caPem, certPem, keyPem, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) };
}

/**
 * Issues new credentials when there are none (a data directory from before TCP engines),
 * when they are unreadable, when the certificate is not the engine-client CA's (one
 * from before that CA existed), or when two thirds of its life have passed. Returns the
 * credentials in force.
 */
export function ensureGatewayClientCredentials(pki: PkiService, dataDir: string, clock: Clock): GatewayClientCredentials {
  const p = pkiPaths(dataDir);
  if (!existsSync(p.gatewayClientCert) || !existsSync(p.gatewayClientKey)) return issueGatewayClientCredentials(pki, dataDir);
  let c: GatewayClientCredentials;
  try {
    c = loadGatewayClientCredentials(dataDir, pki.ca.bundlePem);
  } catch {
    return issueGatewayClientCredentials(pki, dataDir);
  }
  if (!pki.engineClients.issued(c.certPem)) return issueGatewayClientCredentials(pki, dataDir);
  return renewalDue(c.notBefore, c.notAfter, clock.now()) ? issueGatewayClientCredentials(pki, dataDir) : c;
}
