import { createHash, type KeyObject } from "node:crypto";
import type { Clock, Identity, Lifetimes } from "../core/index.js";
import { formatIdentity, identityToSpiffe } from "../core/index.js";
import { buildCertificate, newSerial, type IssuedCertificate, type NameAttrs, type SanEntry } from "./certificate.js";
import { buildCrl } from "./crl.js";
import { generateKeyPair, spkiDer, type CaKeyAlgorithm } from "./keys.js";
import { toPem } from "./der.js";

/** Clock skew allowance: leaf certificates start this long before they are issued. */
export const BACKDATE_MS = 30_000;

export interface CaMaterial {
  readonly rootDer: Buffer;
  readonly rootKey: KeyObject;
  readonly intermediateDer: Buffer;
  readonly intermediateKey: KeyObject;
}

export interface LeafRequest {
  readonly spki: Buffer;
  readonly profile: "client" | "server";
  readonly lifetimeMs: number;
  /** For clients: the identity, carried as the only URI SAN. */
  readonly identity?: Identity;
  /** For servers: DNS names and IP addresses. */
  readonly names?: readonly SanEntry[];
  readonly commonName?: string;
}

export interface IssuedLeaf extends IssuedCertificate {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export const rootName = (td: string): NameAttrs => ({ commonName: "portcullis root CA", organization: td });
export const intermediateName = (td: string): NameAttrs => ({ commonName: "portcullis issuing CA", organization: td });

/**
 * The certificate authority: a root that signs only the issuing intermediate (and the
 * root CRL), and an intermediate (pathLen 0) that signs every leaf and the leaf CRL.
 * Leaves are built from a template the authority controls; a request contributes only
 * its public key.
 */
export class CertificateAuthority {
  readonly rootSpki: Buffer;
  readonly intermediateSpki: Buffer;
  readonly rootFingerprint: string;
  readonly bundlePem: string;
  readonly intermediatePem: string;

  constructor(
    readonly material: CaMaterial,
    readonly trustDomain: string,
    private readonly clock: Clock,
  ) {
    this.rootSpki = spkiDer(material.rootKey);
    this.intermediateSpki = spkiDer(material.intermediateKey);
    this.rootFingerprint = createHash("sha256").update(material.rootDer).digest("hex");
    this.intermediatePem = toPem(material.intermediateDer, "CERTIFICATE");
    this.bundlePem = toPem(material.rootDer, "CERTIFICATE") + this.intermediatePem;
  }

  /** Creates a new root and intermediate. */
  static create(trustDomain: string, clock: Clock, lifetimes: Lifetimes, alg: CaKeyAlgorithm = "ec-p256"): CertificateAuthority {
    const now = clock.now();
    const root = generateKeyPair(alg);
    const rootSpki = spkiDer(root.publicKey);
    const rootCert = buildCertificate(
      {
        serial: newSerial(),
        subject: rootName(trustDomain),
        issuer: rootName(trustDomain),
        notBefore: new Date(now.getTime() - BACKDATE_MS),
        notAfter: new Date(now.getTime() + lifetimes.root),
        spki: rootSpki,
        issuerSpki: rootSpki,
        ca: {},
      },
      root.privateKey,
    );
    const int = generateKeyPair(alg);
    const intCert = buildCertificate(
      {
        serial: newSerial(),
        subject: intermediateName(trustDomain),
        issuer: rootName(trustDomain),
        notBefore: new Date(now.getTime() - BACKDATE_MS),
        notAfter: new Date(now.getTime() + lifetimes.intermediate),
        spki: spkiDer(int.publicKey),
        issuerSpki: rootSpki,
        ca: { pathLen: 0 },
      },
      root.privateKey,
    );
    return new CertificateAuthority(
      { rootDer: rootCert.der, rootKey: root.privateKey, intermediateDer: intCert.der, intermediateKey: int.privateKey },
      trustDomain,
      clock,
    );
  }

  issueLeaf(req: LeafRequest): IssuedLeaf {
    const now = this.clock.now().getTime();
    const notBefore = new Date(now - BACKDATE_MS);
    const notAfter = new Date(now + req.lifetimeMs);
    const san: SanEntry[] = [];
    if (req.identity) san.push({ uri: identityToSpiffe(req.identity, this.trustDomain) });
    if (req.names) san.push(...req.names);
    const cert = buildCertificate(
      {
        serial: newSerial(),
        subject: { commonName: req.commonName ?? (req.identity ? formatIdentity(req.identity) : "portcullis") },
        issuer: intermediateName(this.trustDomain),
        notBefore,
        notAfter,
        spki: req.spki,
        issuerSpki: this.intermediateSpki,
        extKeyUsage: [req.profile === "client" ? "clientAuth" : "serverAuth"],
        san,
      },
      this.material.intermediateKey,
    );
    return { ...cert, notBefore, notAfter };
  }

  /** The intermediate's CRL of leaf revocations. */
  leafCrl(crlNumber: number, revoked: readonly { serialHex: string; revokedAt: Date; reason: string }[], validityMs: number) {
    const now = this.clock.now();
    return buildCrl({
      issuer: intermediateName(this.trustDomain),
      issuerSpki: this.intermediateSpki,
      issuerKey: this.material.intermediateKey,
      crlNumber,
      thisUpdate: new Date(now.getTime() - BACKDATE_MS),
      nextUpdate: new Date(now.getTime() + validityMs),
      revoked,
    });
  }

  /** The root's CRL (no intermediate is revoked); TLS checks the whole chain against CRLs. */
  rootCrl(validityMs: number) {
    const now = this.clock.now();
    return buildCrl({
      issuer: rootName(this.trustDomain),
      issuerSpki: this.rootSpki,
      issuerKey: this.material.rootKey,
      crlNumber: 1,
      thisUpdate: new Date(now.getTime() - BACKDATE_MS),
      nextUpdate: new Date(now.getTime() + validityMs),
      revoked: [],
    });
  }
}
