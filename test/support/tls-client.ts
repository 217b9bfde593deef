import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { request } from "node:https";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { parseHostPort } from "../../src/core/index.js";

export const execFileP = promisify(execFile);

export interface HandshakeResult {
  readonly ok: boolean;
  /** For a completed request: the HTTP status; for a refusal: the error code/message. */
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
}

/**
 * Makes a real TLS connection and one HTTP GET. In TLS 1.3 the server verifies the
 * client certificate after the client's handshake completes, so a refusal shows up as
 * an alert or a reset on the first read; both count as "refused".
 */
export function mtlsGet(addr: string, path: string, opts: Pick<ConnectionOptions, "ca" | "cert" | "key">): Promise<HandshakeResult> {
  const { host, port } = parseHostPort(addr);
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: "GET", ...opts, agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ ok: true, status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ ok: false, error: `${e.code ?? ""} ${e.message}` }));
    req.end();
  });
}

/** Sends a JSON body to an mTLS route. */
export function mtlsJson(
  addr: string,
  method: string,
  path: string,
  opts: Pick<ConnectionOptions, "ca" | "cert" | "key">,
  body: string | Buffer,
  contentType = "application/json",
): Promise<HandshakeResult> {
  const { host, port } = parseHostPort(addr);
  return new Promise((resolve) => {
    const req = request(
      { host, port, path, method, ...opts, agent: false, timeout: 5000, headers: { "content-type": contentType, "content-length": Buffer.byteLength(body) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ ok: true, status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ ok: false, error: `${e.code ?? ""} ${e.message}` }));
    req.end(body);
  });
}

/** Opens a raw TLS connection and resolves once it is established or fails. */
export function tlsConnect(addr: string, opts: ConnectionOptions): Promise<{ socket?: TLSSocket; error?: string }> {
  const { host, port } = parseHostPort(addr);
  return new Promise((resolve) => {
    const s = connect({ host, port, ...opts });
    s.once("secureConnect", () => resolve({ socket: s }));
    s.once("error", (e: NodeJS.ErrnoException) => resolve({ error: `${e.code ?? ""} ${e.message}` }));
  });
}
