import { readFileSync } from "node:fs";
import type { AuditEvent, AuditSink, Clock, GatewayConfig, Identity } from "../core/index.js";
import { formatIdentity, identityToSpiffe, parseIdentity, pcError, randomToken } from "../core/index.js";
import type { CertificateRecord, Store } from "../store/index.js";
import { readKeyFile } from "../store/index.js";
import { CertificateAuthority, type IssuedLeaf, type LeafRequest } from "./authority.js";
import { certificateInfo, certificatesFromPem } from "./certificate-info.js";
import { isRevocationReason, type RevocationReason } from "./crl.js";
import { parseCsr } from "./csr.js";
import { EngineClientAuthority, ENGINE_CLIENT_IDENTITY, loadEngineClientAuthority, writeEngineClientAuthority } from "./engine-client-ca.js";
import { loadPrivateKey } from "./keys.js";
import { pkiPaths } from "./layout.js";
import { hashToken, TOKEN_RE } from "./enroll-token.js";
import { serverSans } from "./server-credentials.js";

/** Leaf CRLs are re-signed well before they lapse; the root CRL lasts a year. */
export const LEAF_CRL_VALIDITY_MS = 7 * 24 * 3_600_000;
export const ROOT_CRL_VALIDITY_MS = 365 * 24 * 3_600_000;

export interface IssuedBundle {
  readonly identity: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly certificate: string;
  readonly chain: string;
  readonly caBundle: string;
}

export interface EnrollTokenCreated {
  readonly id: string;
  readonly token: string;
  readonly identity: string;
  readonly expiresAt: string;
}

export interface CrlSet {
  readonly generation: number;
  /** Intermediate (leaf) CRL. */
  readonly leafDer: Buffer;
  readonly leafPem: string;
  /**
   * Root CRL and leaf CRL, for a TLS server's `crl` option. Node's TLS checks CRLs for
   * the whole chain, and reads one CRL per array element.
   */
  readonly tls: readonly string[];
}

export interface Actor {
  readonly identity: string;
  readonly serial?: string | undefined;
  readonly sourceAddress?: string | undefined;
  readonly requestId?: string | undefined;
}

/**
 * The PKI domain's operations. Every state change and its audit event commit in one
 * transaction: if the audit write fails, nothing changes.
 */
export class PkiService {
  private crlCache: CrlSet | undefined;
  private rootCrlPem: string | undefined;
  private engineClientCa: EngineClientAuthority | undefined;

  constructor(
    readonly ca: CertificateAuthority,
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    readonly config: GatewayConfig,
  ) {}

  static load(dataDir: string, store: Store, audit: AuditSink, clock: Clock, config: GatewayConfig): PkiService {
    const p = pkiPaths(dataDir);
    const one = (path: string): Buffer => {
      const certs = certificatesFromPem(readFileSync(path, "utf8"));
      if (certs.length !== 1) throw pcError("PC_STORE_CORRUPT", `${path} must hold one certificate`);
      return certs[0] as Buffer;
    };
    const ca = new CertificateAuthority(
      {
        rootDer: one(p.rootCert),
        rootKey: loadPrivateKey(readKeyFile(p.rootKey)),
        intermediateDer: one(p.intermediateCert),
        intermediateKey: loadPrivateKey(readKeyFile(p.intermediateKey)),
      },
      config.trustDomain,
      clock,
    );
    const pki = new PkiService(ca, store, audit, clock, config);
    pki.engineClientCa = loadEngineClientAuthority(dataDir, config.trustDomain, clock);
    return pki;
  }

  /**
   * The engine-client CA (see engine-client-ca.ts). `init` creates it; a data directory
   * from before it existed gets it at start, through `ensureEngineClientAuthority`.
   */
  get engineClients(): EngineClientAuthority {
    if (!this.engineClientCa) throw pcError("PC_STORE_CORRUPT", "the data directory has no engine-client CA");
    return this.engineClientCa;
  }

  /**
   * Loads the engine-client CA of `dataDir`, or creates it under our root (the
   * intermediate lifetime), writes it there and records it, with its audit entry.
   */
  ensureEngineClientAuthority(dataDir: string, actor: Actor): EngineClientAuthority {
    this.engineClientCa ??= loadEngineClientAuthority(dataDir, this.config.trustDomain, this.clock);
    if (this.engineClientCa) return this.engineClientCa;
    const a = EngineClientAuthority.create(this.ca, this.clock, this.config.lifetimes.intermediate);
    const info = certificateInfo(a.material.certDer);
    this.store.transaction(() => {
      this.store.certificates.insert({
        serial: info.serialHex,
        identity: "ca:engine-client",
        kind: "ca",
        profile: "ca",
        fingerprint: info.fingerprint,
        notBefore: info.notBefore.getTime(),
        notAfter: info.notAfter.getTime(),
        issuedAt: this.clock.now().getTime(),
        pem: a.certPem,
      });
      this.audit.record(this.event(actor, "pki.certificate_issued", "allowed", info.serialHex, "engine-client CA"));
      writeEngineClientAuthority(dataDir, a);
    });
    this.engineClientCa = a;
    return a;
  }

  /**
   * Issues the gateway's client certificate for engines from the engine-client CA
   * (`chain` is that CA), stores it and audits it in one transaction.
   */
  issueEngineClient(spki: Buffer, actor: Actor): IssuedBundle {
    const issuer = this.engineClients;
    const identity = parseIdentity(ENGINE_CLIENT_IDENTITY);
    const leaf = issuer.issueLeaf({ spki, profile: "client", identity, lifetimeMs: this.lifetimeFor(identity) });
    this.store.transaction(() => {
      this.store.certificates.insert(this.record(leaf, ENGINE_CLIENT_IDENTITY, identity.kind, "engine-client"));
      this.audit.record(this.event(actor, "pki.certificate_issued", "allowed", leaf.serialHex));
    });
    return { ...this.bundle(ENGINE_CLIENT_IDENTITY, leaf), chain: issuer.certPem };
  }

  private event(actor: Actor, type: string, outcome: AuditEvent["outcome"], target?: string, reason?: string): AuditEvent {
    return {
      type,
      outcome,
      actor: actor.identity,
      actorSerial: actor.serial,
      sourceAddress: actor.sourceAddress,
      requestId: actor.requestId,
      target,
      reason,
    };
  }

  private record(leaf: IssuedLeaf, identity: string, kind: string, profile: string): Omit<CertificateRecord, "revokedAt" | "revocationReason"> {
    return {
      serial: leaf.serialHex,
      identity,
      kind,
      profile,
      fingerprint: leaf.fingerprint,
      notBefore: leaf.notBefore.getTime(),
      notAfter: leaf.notAfter.getTime(),
      issuedAt: this.clock.now().getTime(),
      pem: leaf.pem,
    };
  }

  private bundle(identity: string, leaf: IssuedLeaf): IssuedBundle {
    return {
      identity,
      serial: leaf.serialHex,
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
      certificate: leaf.pem,
      chain: this.ca.intermediatePem,
      caBundle: this.ca.bundlePem,
    };
  }

  lifetimeFor(id: Identity, requested?: number | null): number {
    const lt = this.config.lifetimes;
    if (requested !== undefined && requested !== null && (!Number.isInteger(requested) || requested < 60_000)) {
      throw pcError("PC_PKI_TTL_INVALID", "a certificate lifetime is a whole number of milliseconds, at least 1m");
    }
    if (id.kind === "user") {
      const want = requested ?? lt.userDefault;
      if (want > lt.userMax) throw pcError("PC_PKI_TTL_INVALID", `user certificates last at most ${lt.userMax / 3_600_000}h`);
      return want;
    }
    return id.kind === "node" ? lt.node : lt.service;
  }

  /** Issues a client certificate directly (init, tests, offline tools). */
  issueClient(identity: Identity, spki: Buffer, actor: Actor, lifetimeMs?: number): IssuedBundle {
    const lifetime = lifetimeMs ?? this.lifetimeFor(identity);
    const leaf = this.ca.issueLeaf({ spki, profile: "client", identity, lifetimeMs: lifetime });
    const id = formatIdentity(identity);
    this.store.transaction(() => {
      this.store.certificates.insert(this.record(leaf, id, identity.kind, "client"));
      this.audit.record(this.event(actor, "pki.certificate_issued", "allowed", leaf.serialHex));
    });
    return this.bundle(id, leaf);
  }

  /**
   * Issues a leaf from a request the caller has already validated, stores it and audits
   * it in one transaction.
   */
  issueRecorded(req: LeafRequest, identity: Identity, profile: string, actor: Actor): IssuedBundle {
    const leaf = this.ca.issueLeaf(req);
    const id = formatIdentity(identity);
    this.store.transaction(() => {
      this.store.certificates.insert(this.record(leaf, id, identity.kind, profile));
      this.audit.record(this.event(actor, "pki.certificate_issued", "allowed", leaf.serialHex));
    });
    return this.bundle(id, leaf);
  }

  /** Issues a server certificate for the gateway. */
  issueServer(spki: Buffer, actor: Actor): IssuedLeaf {
    const leaf = this.ca.issueLeaf({
      spki,
      profile: "server",
      names: serverSans(this.config),
      commonName: "portcullis gateway",
      lifetimeMs: this.config.lifetimes.server,
    });
    this.store.transaction(() => {
      this.store.certificates.insert(this.record(leaf, "service:gateway", "service", "server"));
      this.audit.record(this.event(actor, "pki.certificate_issued", "allowed", leaf.serialHex));
    });
    return leaf;
  }

  createEnrollToken(identityText: string, ttlMs: number | undefined, actor: Actor, certTtlMs?: number): EnrollTokenCreated {
    const identity = parseIdentity(identityText);
    const lt = this.config.lifetimes;
    const ttl = ttlMs ?? lt.enrollTokenDefault;
    if (!Number.isInteger(ttl) || ttl < 60_000 || ttl > lt.enrollTokenMax) throw pcError("PC_PKI_TTL_INVALID", "token lifetime must be between 1m and the configured maximum");
    if (certTtlMs !== undefined) {
      if (identity.kind !== "user") throw pcError("PC_PKI_TTL_INVALID", `${identity.kind} certificates have a fixed lifetime`);
      this.lifetimeFor(identity, certTtlMs);
    }
    const token = `pct_${Buffer.from(identityToSpiffe(identity, this.config.trustDomain)).toString("base64url")}.${randomToken(32)}`;
    const hash = hashToken(token);
    const now = this.clock.now().getTime();
    const id = hash.slice(0, 16);
    this.store.transaction(() => {
      this.store.enrollTokens.insert({
        id,
        tokenHash: hash,
        identity: formatIdentity(identity),
        createdBy: actor.identity,
        createdAt: now,
        expiresAt: now + ttl,
        certTtlMs: certTtlMs ?? null,
      });
      this.audit.record(this.event(actor, "pki.enroll_token_created", "allowed", `token:${id} ${formatIdentity(identity)}`));
    });
    return { id, token, identity: formatIdentity(identity), expiresAt: new Date(now + ttl).toISOString() };
  }

  /**
   * Enrollment, in a fixed order: the token (known, not revoked, not used, not expired),
   * then the CSR (structure, key policy, signature), then the identity it asks for (must
   * be exactly the token's). The token is consumed and the certificate stored in one
   * transaction.
   */
  enroll(token: string, csr: string, actor: Omit<Actor, "identity">): IssuedBundle {
    const anon: Actor = { ...actor, identity: "anonymous" };
    if (typeof token !== "string" || !TOKEN_RE.test(token)) throw pcError("PC_PKI_TOKEN_INVALID");
    const rec = this.store.enrollTokens.findByHash(hashToken(token));
    const now = this.clock.now().getTime();
    if (!rec) throw pcError("PC_PKI_TOKEN_INVALID");
    if (rec.revokedAt !== null) throw pcError("PC_PKI_TOKEN_REVOKED");
    if (rec.usedAt !== null) throw pcError("PC_PKI_TOKEN_USED");
    if (rec.expiresAt <= now) throw pcError("PC_PKI_TOKEN_EXPIRED");
    const identity = parseIdentity(rec.identity);
    const parsed = parseCsr(csr);
    this.checkRequestedIdentity(parsed, identity);
    const leaf = this.ca.issueLeaf({ spki: parsed.spki, profile: "client", identity, lifetimeMs: this.lifetimeFor(identity, rec.certTtlMs) });
    const who: Actor = { ...anon, identity: rec.identity };
    this.store.transaction(() => {
      if (!this.store.enrollTokens.markUsed(rec.id, now, leaf.serialHex)) throw pcError("PC_PKI_TOKEN_USED");
      this.store.certificates.insert(this.record(leaf, rec.identity, identity.kind, "client"));
      this.audit.record(this.event(who, "pki.enroll_token_used", "allowed", `token:${rec.id}`));
      this.audit.record(this.event(who, "pki.certificate_issued", "allowed", leaf.serialHex));
    });
    return this.bundle(rec.identity, leaf);
  }

  /** Renewal: a fresh certificate for the caller's own identity, for a new key. */
  renew(caller: Identity, csr: string, actor: Actor): IssuedBundle {
    const parsed = parseCsr(csr);
    this.checkRequestedIdentity(parsed, caller);
    return this.issueClient(caller, parsed.spki, actor);
  }

  private checkRequestedIdentity(csr: ReturnType<typeof parseCsr>, identity: Identity): void {
    const want = identityToSpiffe(identity, this.config.trustDomain);
    if (csr.otherSans > 0 || csr.uris.length !== 1 || csr.uris[0] !== want) {
      throw pcError("PC_PKI_IDENTITY_MISMATCH", `the request must name exactly ${formatIdentity(identity)}`);
    }
    if (csr.commonName !== undefined && csr.commonName !== formatIdentity(identity)) {
      throw pcError("PC_PKI_IDENTITY_MISMATCH", "the subject common name must be absent or the identity");
    }
  }

  revokeSerial(serialText: string, reason: string, actor: Actor): { revoked: string[] } {
    const serial = normaliseSerial(serialText);
    const r = checkReason(reason);
    const rec = this.store.certificates.get(serial);
    if (!rec) throw pcError("PC_PKI_CERT_NOT_FOUND", serial);
    const revoked = this.store.transaction(() => {
      const changed = this.store.certificates.revoke(serial, r, this.clock.now().getTime());
      this.audit.record(this.event(actor, "pki.certificate_revoked", "allowed", serial, r));
      return changed ? [serial] : [];
    });
    this.crlCache = undefined;
    return { revoked };
  }

  /** Revokes every certificate of an identity and every unused enrollment token for it. */
  revokeIdentity(identityText: string, reason: string, actor: Actor): { revoked: string[]; tokensRevoked: number } {
    const id = formatIdentity(parseIdentity(identityText));
    const r = checkReason(reason);
    const now = this.clock.now().getTime();
    const out = this.store.transaction(() => {
      const revoked = this.store.certificates.revokeIdentity(id, r, now);
      const tokensRevoked = this.store.enrollTokens.revokeForIdentity(id, now);
      this.audit.record(this.event(actor, "pki.identity_revoked", "allowed", id, `${r}; certificates=${revoked.length}; tokens=${tokensRevoked}`));
      return { revoked, tokensRevoked };
    });
    this.crlCache = undefined;
    return out;
  }

  list(identity?: string): CertificateRecord[] {
    return this.store.certificates.list(identity ? formatIdentity(parseIdentity(identity)) : undefined);
  }

  get(serial: string): CertificateRecord | undefined {
    return this.store.certificates.get(normaliseSerial(serial));
  }

  revocationGeneration(): number {
    return this.store.certificates.revocationGeneration();
  }

  revokedSerials(): Set<string> {
    return new Set(this.store.certificates.listRevoked().map((r) => r.serial));
  }

  /** Current CRLs, re-signed when revocations change or the cached one nears its end. */
  crls(): CrlSet {
    const gen = this.revocationGeneration();
    const now = this.clock.now().getTime();
    if (this.crlCache && this.crlCache.generation === gen && this.crlFresh(now)) return this.crlCache;
    const revoked = this.store.certificates.listRevoked().map((r) => ({ serialHex: r.serial, revokedAt: new Date(r.revokedAt), reason: r.reason }));
    const leaf = this.ca.leafCrl(gen + 1, revoked, LEAF_CRL_VALIDITY_MS);
    this.rootCrlPem ??= this.ca.rootCrl(ROOT_CRL_VALIDITY_MS).pem;
    this.crlBuiltAt = now;
    this.crlCache = { generation: gen, leafDer: leaf.der, leafPem: leaf.pem, tls: [this.rootCrlPem, leaf.pem] };
    return this.crlCache;
  }

  private crlBuiltAt = 0;
  private crlFresh(now: number): boolean {
    return now - this.crlBuiltAt < LEAF_CRL_VALIDITY_MS / 2;
  }
}

/**
 * A serial as it is stored: whole octets in lower-case hex, without leading zero octets
 * (`0a1b…`, as node and openssl print it). A leading zero digit is kept or restored: the
 * first octet of one serial in sixteen is below 0x10.
 */
export function normaliseSerial(text: string): string {
  const s = text.trim().toLowerCase().replace(/:/g, "");
  if (!/^[0-9a-f]{1,40}$/.test(s)) throw pcError("PC_PKI_CERT_NOT_FOUND", "a serial is up to 40 hex digits");
  const octets = s.length % 2 === 1 ? `0${s}` : s;
  return octets.replace(/^(?:00)+(?=[0-9a-f]{2})/, "");
}

function checkReason(reason: string): RevocationReason {
  if (!isRevocationReason(reason)) throw pcError("PC_PKI_REVOKE_REASON_INVALID", reason.slice(0, 40));
  return reason;
}

export interface InitResult {
  readonly rootFingerprint: string;
  readonly adminProfilePath: string;
  readonly config: GatewayConfig;
}
