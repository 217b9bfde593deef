/**
 * The engine-client CA: a second intermediate under our root (P-256, pathLen 0) that
 * issues one certificate and nothing else, the gateway's `service:gateway` client
 * certificate for the Docker engines it reaches over TCP.
 *
 * Engines are given this CA, not our root, as `dockerd --tlscacert`. dockerd cannot
 * filter client certificates by identity: it accepts any certificate that chains to
 * the CA file. Every other certificate we issue (users, nodes, the server, audit)
 * comes from the main issuing intermediate and so does not chain to this one; which
 * makes the gateway the only client an engine lets in.
 */
import { createHash, X509Certificate, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { Clock } from "../core/index.js";
import { formatIdentity, identityToSpiffe, pcError } from "../core/index.js";
import { readKeyFile, writeFileAtomic, writeKeyFile } from "../store/index.js";
import { BACKDATE_MS, rootName, type CertificateAuthority, type IssuedLeaf, type LeafRequest } from "./authority.js";
import { buildCertificate, newSerial, type NameAttrs } from "./certificate.js";
import { certificatesFromPem } from "./certificate-info.js";
import { toPem } from "./der.js";
import { checkPublicKey, generateKeyPair, loadPrivateKey, privateKeyPem, spkiDer } from "./keys.js";
import { pkiPaths } from "./layout.js";

/** The one identity the engine-client CA certifies. */
export const ENGINE_CLIENT_IDENTITY = "service:gateway";

export const engineClientCaName = (td: string): NameAttrs => ({ commonName: "portcullis engine clients", organization: td });

export interface EngineClientCaMaterial {
  readonly certDer: Buffer;
  readonly key: KeyObject;
}

export class EngineClientAuthority {
  readonly spki: Buffer;
  readonly certPem: string;
  readonly fingerprint: string;

  constructor(
    readonly material: EngineClientCaMaterial,
    readonly trustDomain: string,
    private readonly clock: Clock,
  ) {
    this.spki = spkiDer(material.key);
    this.certPem = toPem(material.certDer, "CERTIFICATE");
    this.fingerprint = createHash("sha256").update(material.certDer).digest("hex");
  }

  /**
   * A new engine-client intermediate, signed by the root of `ca`, with the intermediate
   * lifetime; never past the root's end.
   */
  static create(ca: CertificateAuthority, clock: Clock, lifetimeMs: number): EngineClientAuthority {
    const now = clock.now().getTime();
    const rootEnd = Date.parse(new X509Certificate(ca.material.rootDer).validTo);
    const kp = generateKeyPair("ec-p256");
    const cert = buildCertificate(
      {
        serial: newSerial(),
        subject: engineClientCaName(ca.trustDomain),
        issuer: rootName(ca.trustDomain),
        notBefore: new Date(now - BACKDATE_MS),
        notAfter: new Date(Math.min(now + lifetimeMs, rootEnd)),
        spki: spkiDer(kp.publicKey),
        issuerSpki: ca.rootSpki,
        ca: { pathLen: 0 },
      },
      ca.material.rootKey,
    );
    return new EngineClientAuthority({ certDer: cert.der, key: kp.privateKey }, ca.trustDomain, clock);
  }

  /**
   * Issues the gateway's engine-client certificate. Anything else is refused: a server
   * profile, another identity, DNS or IP names, another common name.
   */
  issueLeaf(req: LeafRequest): IssuedLeaf {
    const identity = req.identity;
    if (req.profile !== "client" || identity === undefined || formatIdentity(identity) !== ENGINE_CLIENT_IDENTITY || (req.names !== undefined && req.names.length > 0)) {
      throw pcError("PC_PKI_PROFILE_REFUSED", `the engine-client CA issues only the ${ENGINE_CLIENT_IDENTITY} client certificate`);
    }
    if (req.commonName !== undefined && req.commonName !== ENGINE_CLIENT_IDENTITY) {
      throw pcError("PC_PKI_PROFILE_REFUSED", "the engine-client certificate's common name is its identity");
    }
    if (!Number.isInteger(req.lifetimeMs) || req.lifetimeMs < 60_000) throw pcError("PC_PKI_TTL_INVALID", "a certificate lifetime is at least 1m");
    checkPublicKey(req.spki);
    const now = this.clock.now().getTime();
    const notBefore = new Date(now - BACKDATE_MS);
    const notAfter = new Date(now + req.lifetimeMs);
    const cert = buildCertificate(
      {
        serial: newSerial(),
        subject: { commonName: ENGINE_CLIENT_IDENTITY },
        issuer: engineClientCaName(this.trustDomain),
        notBefore,
        notAfter,
        spki: req.spki,
        issuerSpki: this.spki,
        extKeyUsage: ["clientAuth"],
        san: [{ uri: identityToSpiffe(identity, this.trustDomain) }],
      },
      this.material.key,
    );
    return { ...cert, notBefore, notAfter };
  }

  /** Whether `certPem`'s first certificate was signed by this CA. */
  issued(certPem: string): boolean {
    const first = certificatesFromPem(certPem)[0];
    if (first === undefined) return false;
    const leaf = new X509Certificate(first);
    const ca = new X509Certificate(this.material.certDer);
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
  }
}

/**
 * Reads the engine-client CA from a data directory; undefined when it has none. The
 * certificate is written after the key, so a key without a certificate is an unfinished
 * creation (made again), while a certificate without its key is corrupt.
 */
export function loadEngineClientAuthority(dataDir: string, trustDomain: string, clock: Clock): EngineClientAuthority | undefined {
  const p = pkiPaths(dataDir);
  if (!existsSync(p.engineClientCaCert)) return undefined;
  if (!existsSync(p.engineClientCaKey)) throw pcError("PC_STORE_CORRUPT", `${p.engineClientCaKey} is missing`);
  const certs = certificatesFromPem(readFileSync(p.engineClientCaCert, "utf8"));
  if (certs.length !== 1) throw pcError("PC_STORE_CORRUPT", `${p.engineClientCaCert} must hold one certificate`);
  const key = loadPrivateKey(readKeyFile(p.engineClientCaKey));
  const a = new EngineClientAuthority({ certDer: certs[0] as Buffer, key }, trustDomain, clock);
  if (!new X509Certificate(a.material.certDer).checkPrivateKey(key)) throw pcError("PC_STORE_CORRUPT", `${p.engineClientCaCert} is not for ${p.engineClientCaKey}`);
  return a;
}

/** Writes the engine-client CA's key (0600) and certificate into a data directory. */
export function writeEngineClientAuthority(dataDir: string, a: EngineClientAuthority): void {
  const p = pkiPaths(dataDir);
  writeKeyFile(p.engineClientCaKey, privateKeyPem(a.material.key));
  writeFileAtomic(p.engineClientCaCert, a.certPem, 0o644);
}
