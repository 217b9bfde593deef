/**
 * What every engine call shares: how an engine's failure becomes one of the runtime's
 * errors (unreachable or failed, the engine's own message kept internal), the TLS
 * options of a remote engine, label selectors, and reading the engine's JSON progress.
 */
import { Agent as HttpsAgent } from "node:https";
import type { Readable } from "node:stream";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import type Docker from "dockerode";
import { isPortcullisError } from "../core/index.js";
import { engineFailed, engineUnavailable, specInvalid } from "./runtime-errors.js";

export const UNREACHABLE_CODES = new Set([
  "ENOENT", "ECONNREFUSED", "ECONNRESET", "EACCES", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH",
  "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN",
]);
export const LABEL_SELECTOR_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(=[A-Za-z0-9._:/@+-]{0,256})?$/;
export const LABEL_VALUE_RE = /^[A-Za-z0-9._:/@+-]{0,256}$/;
export const REPO_TAG_RE = /^[a-z0-9][a-z0-9._\-/]{0,254}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const IMAGE_USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$/;
export const STREAM_END_GRACE_MS = 2_000;

export function errorCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e) {
    const c = (e as { code: unknown }).code;
    return typeof c === "string" ? c : undefined;
  }
  return undefined;
}

export function statusCode(e: unknown): number | undefined {
  if (typeof e === "object" && e !== null && "statusCode" in e) {
    const c = (e as { statusCode: unknown }).statusCode;
    return typeof c === "number" ? c : undefined;
  }
  return undefined;
}

export function isUnreachable(e: unknown): boolean {
  const code = errorCode(e);
  if (code !== undefined && UNREACHABLE_CODES.has(code)) return true;
  return e instanceof Error && /timeout/i.test(e.message) && statusCode(e) === undefined;
}

export function wrap(operation: string, e: unknown): Error {
  if (isPortcullisError(e)) return e;
  return isUnreachable(e) ? engineUnavailable(e) : engineFailed(operation, e);
}

/**
 * Options docker-modem passes on to https.request (its type declarations lack `agent`
 * and call `checkServerIdentity` a boolean). Connections are pooled per engine: a shared
 * pool could hand a request for one engine a connection whose peer was checked for another.
 */
export function tlsExtras(serverUri: string | undefined): Docker.DockerOptions {
  const extras: Record<string, unknown> = { agent: new HttpsAgent({ keepAlive: true }) };
  if (serverUri !== undefined) extras.checkServerIdentity = serverIdentityCheck(serverUri);
  return extras as Docker.DockerOptions;
}

/** The host check TLS always makes, and then the engine's node identity. */
export function serverIdentityCheck(uri: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const hostError = checkServerIdentity(host, cert);
    if (hostError !== undefined) return hostError;
    const sans = (cert.subjectaltname ?? "").split(", ");
    return sans.includes(`URI:${uri}`) ? undefined : new Error("the engine's certificate does not name the expected node");
  };
}

export function checkLabelSelector(label: string): void {
  if (!LABEL_SELECTOR_RE.test(label)) throw specInvalid("label", "must be key or key=value");
}


export async function readJsonLines(stream: Readable): Promise<unknown[]> {
  let text = "";
  for await (const chunk of stream) text += Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk);
  const out: unknown[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      out.push({ error: "unreadable progress message" });
    }
  }
  return out;
}
