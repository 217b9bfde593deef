import { request as httpsRequest, type RequestOptions } from "node:https";
import { isIP } from "node:net";
import { isErrorCode, parseHostPort, PortcullisError, pcError } from "../core/index.js";

/** A minimal HTTPS JSON client for the CLI. TLS material comes from the profile. */
export interface TlsMaterial {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** Only for fetching the CA bundle to compare with a pinned fingerprint. */
  readonly insecureSkipVerify?: boolean;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

export const CLIENT_TIMEOUT_MS = 15_000;

/** Signed deploys wait for the rollout (healthchecks included), so they may take longer. */
export const DEPLOY_TIMEOUT_MS = 600_000;

export function httpsCall(server: string, method: string, path: string, tls: TlsMaterial, body?: unknown, timeoutMs = CLIENT_TIMEOUT_MS): Promise<HttpResult> {
  const { host, port } = parseHostPort(server, "server");
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const opts: RequestOptions = {
    host,
    port,
    method,
    path,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    rejectUnauthorized: !tls.insecureSkipVerify,
    minVersion: "TLSv1.3",
    servername: isIP(host) ? "" : host,
    headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
    timeout: timeoutMs,
    agent: false,
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", (e) => reject(pcError("PC_CLI_SERVER_UNREACHABLE", e.message)));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e: NodeJS.ErrnoException) => {
      // A refused client certificate shows as an alert or, in TLS 1.3, as a reset right
      // after the handshake.
      const tlsish = /SSL|TLS|CERT|certificate|alert|ECONNRESET/i.test(`${e.code ?? ""} ${e.message}`);
      const hint = e.code === "ECONNRESET" ? " (the server closed the connection: is the certificate revoked or expired?)" : "";
      reject(pcError(tlsish ? "PC_CLI_TLS_FAILED" : "PC_CLI_SERVER_UNREACHABLE", `${server}: ${e.code ?? e.message}${hint}`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

/** Calls a JSON route; a gateway error comes back as a PortcullisError with its code. */
export async function callJson<T>(server: string, method: string, path: string, tls: TlsMaterial, body?: unknown, timeoutMs?: number): Promise<T> {
  const r = await httpsCall(server, method, path, tls, body, timeoutMs);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.body.toString("utf8"));
  } catch {
    throw pcError("PC_CLI_BAD_RESPONSE", `HTTP ${r.status}, not JSON`);
  }
  if (r.status >= 400) {
    const e = parsed as { code?: unknown; message?: unknown; decision?: unknown };
    if (isErrorCode(e.code)) throw new RemoteError(e.code, typeof e.message === "string" ? e.message : e.code, r.status, e.decision);
    throw pcError("PC_CLI_BAD_RESPONSE", `HTTP ${r.status}`);
  }
  return parsed as T;
}

/** An error the gateway answered with; carries its code and public message. */
export class RemoteError extends PortcullisError {
  constructor(
    code: ConstructorParameters<typeof PortcullisError>[0],
    readonly remoteMessage: string,
    readonly httpStatus: number,
    decision?: unknown,
  ) {
    super(code, { decision });
  }
  override get publicMessage(): string {
    return this.remoteMessage;
  }
}

/** GETs a streamed body (an audit export) into `out`; an error answer becomes a coded error. */
export function httpsStream(server: string, path: string, tls: TlsMaterial, out: NodeJS.WritableStream): Promise<void> {
  const { host, port } = parseHostPort(server, "server");
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host, port, method: "GET", path, ca: tls.ca, cert: tls.cert, key: tls.key, minVersion: "TLSv1.3", servername: isIP(host) ? "" : host, agent: false, timeout: CLIENT_TIMEOUT_MS },
      (res) => {
        if ((res.statusCode ?? 0) >= 400) {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            try {
              const e = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { code?: unknown; message?: unknown };
              if (isErrorCode(e.code)) return reject(new RemoteError(e.code, typeof e.message === "string" ? e.message : e.code, res.statusCode ?? 0));
            } catch {
              // fall through
            }
            reject(pcError("PC_CLI_BAD_RESPONSE", `HTTP ${res.statusCode}`));
          });
          return;
        }
        res.on("error", (e) => reject(pcError("PC_CLI_SERVER_UNREACHABLE", e.message)));
        res.on("aborted", () => reject(pcError("PC_CLI_BAD_RESPONSE", "the stream ended early")));
        res.pipe(out, { end: false });
        res.on("end", () => (res.complete ? resolve() : reject(pcError("PC_CLI_BAD_RESPONSE", "the stream ended early"))));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e: NodeJS.ErrnoException) => reject(pcError("PC_CLI_SERVER_UNREACHABLE", `${server}: ${e.code ?? e.message}`)));
    req.end();
  });
}
