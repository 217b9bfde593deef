import type { Socket } from "node:net";
import type { SecureContextOptions, Server as TlsServer, TLSSocket } from "node:tls";
import type { AuditSink, Logger } from "../core/index.js";
import type { PkiService } from "../pki/index.js";
import { knownCallerOf } from "./identity.js";

export interface ServerCredentials {
  readonly keyPem: string;
  /** The server certificate followed by the intermediate. */
  readonly certPem: string;
}

/** TLS settings of the API port: TLS 1.3, client certificates from our CA, CRL-checked. */
export function apiTlsOptions(creds: ServerCredentials, pki: PkiService): SecureContextOptions {
  return {
    key: creds.keyPem,
    cert: creds.certPem,
    ca: pki.ca.bundlePem,
    crl: [...pki.crls().tls],
    minVersion: "TLSv1.3",
  };
}

/** TLS settings of the bootstrap port: server authentication only. */
export function bootstrapTlsOptions(creds: ServerCredentials): SecureContextOptions {
  return { key: creds.keyPem, cert: creds.certPem, minVersion: "TLSv1.3" };
}

/**
 * Keeps the API port's TLS context in step with the revocation list. It polls the
 * store (revocations made by another process show up too) and reloads the context as
 * soon as the list changes; live connections of revoked certificates are closed.
 */
export class RevocationEnforcer {
  private generation: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly sockets = new Set<TLSSocket>();
  private revoked: Set<string>;

  constructor(
    private readonly server: TlsServer,
    private readonly pki: PkiService,
    private creds: ServerCredentials,
    private readonly log: Logger,
    private readonly pollMs = 250,
  ) {
    this.generation = pki.revocationGeneration();
    this.revoked = pki.revokedSerials();
    server.on("secureConnection", (s: TLSSocket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
  }

  start(): void {
    this.timer = setInterval(() => this.check(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  isRevoked(serial: string): boolean {
    return this.revoked.has(serial);
  }

  /** Reloads now if the revocation list changed. Safe to call at any time. */
  check(): void {
    let gen: number;
    try {
      gen = this.pki.revocationGeneration();
    } catch (e) {
      this.log.error({ err: String(e) }, "cannot read revocation state");
      return;
    }
    if (gen === this.generation) return;
    this.reload();
    this.generation = gen;
  }

  /** Reloads the context (new CRL, or new server credentials). */
  reload(creds?: ServerCredentials): void {
    if (creds) this.creds = creds;
    this.revoked = this.pki.revokedSerials();
    this.server.setSecureContext(apiTlsOptions(this.creds, this.pki));
    for (const s of this.sockets) {
      const c = knownCallerOf(s);
      if (c && this.revoked.has(c.serial)) s.destroy();
    }
    this.log.info({ revoked: this.revoked.size }, "TLS context reloaded");
  }
}

/**
 * Records handshakes the server refused. A refused socket is already destroyed when the
 * event fires, so its peer address is taken when the connection arrives; the reason is
 * the certificate verification error when there is one (the socket error itself is
 * then only the reset that followed it).
 */
export function auditRefusedHandshakes(server: TlsServer, audit: AuditSink, log: Logger, port: string): void {
  const peers = new WeakMap<Socket, string>();
  server.on("connection", (raw: Socket) => {
    if (raw.remoteAddress) peers.set(raw, raw.remoteAddress);
  });
  server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    const verifyError = socket.authorizationError ? String(socket.authorizationError) : undefined;
    try {
      audit.recordAfter({
        type: "tls.handshake_refused",
        outcome: "denied",
        actor: "anonymous",
        sourceAddress: socket.remoteAddress ?? (raw ? peers.get(raw) : undefined),
        route: port,
        reason: verifyError ?? (typeof err.code === "string" ? err.code : "TLS_ERROR"),
      });
    } catch (e) {
      log.error({ err: String(e) }, "cannot record a refused handshake");
    }
  });
}
