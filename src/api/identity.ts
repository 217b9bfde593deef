import type { TLSSocket } from "node:tls";
import type { Identity } from "../core/index.js";
import { formatIdentity, pcError } from "../core/index.js";
import { certificateInfo, identityOfCertificate } from "../pki/index.js";

/** The caller as established by mutual TLS. Taken only from the verified peer certificate. */
export interface Caller {
  readonly identity: Identity;
  /** `user:alice` */
  readonly id: string;
  readonly serial: string;
  readonly fingerprint: string;
  readonly notAfter: Date;
  /** The client certificate (DER) presented on the connection: signed requests must be signed with its key. */
  readonly certificateDer: Buffer;
}

const bySocket = new WeakMap<TLSSocket, Caller>();

/**
 * Reads the caller of a TLS socket: the handshake has verified the chain, the CRL and
 * the EKU; here the identity is parsed from the URI SAN (never the subject). Parsed
 * once per connection.
 */
export function callerOf(socket: TLSSocket, trustDomain: string): Caller {
  const cached = bySocket.get(socket);
  if (cached) return cached;
  if (!socket.authorized) throw pcError("PC_API_UNAUTHENTICATED");
  const peer = socket.getPeerCertificate(false);
  if (!peer || !peer.raw) throw pcError("PC_API_UNAUTHENTICATED");
  const info = certificateInfo(peer.raw);
  if (info.isCa) throw pcError("PC_API_UNAUTHENTICATED", "a CA certificate is not a client identity");
  let identity: Identity;
  try {
    identity = identityOfCertificate(peer.raw, trustDomain);
  } catch (e) {
    throw pcError("PC_API_UNAUTHENTICATED", "the certificate carries no identity of this trust domain", e);
  }
  const caller: Caller = {
    identity,
    id: formatIdentity(identity),
    serial: info.serialHex,
    fingerprint: info.fingerprint,
    notAfter: info.notAfter,
    certificateDer: Buffer.from(peer.raw),
  };
  bySocket.set(socket, caller);
  return caller;
}

/** The serial of an established connection's client certificate, if already known. */
export function knownCallerOf(socket: TLSSocket): Caller | undefined {
  return bySocket.get(socket);
}
