/**
 * `--metrics-listen`: a plain-HTTP listener that serves GET /metrics and nothing else,
 * for a Prometheus server on the same host. It listens on a loopback address only: the
 * metrics name namespaces, deployments and containers, and are served here without TLS
 * or identity, so they must not leave the host in the clear. Anything but GET /metrics
 * is 404; no request body is ever read.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { HostPort, Logger } from "../core/index.js";
import { formatHostPort, newRequestId, parseHostPort, pcError } from "../core/index.js";
import { errorBody } from "./errors.js";

/** The hosts `--metrics-listen` accepts. */
export const METRICS_LOOPBACK_HOSTS: readonly string[] = Object.freeze(["127.0.0.1", "::1", "localhost"]);

/** Parses `--metrics-listen HOST:PORT`; PC_CONFIG_INVALID unless HOST is a loopback address. */
export function parseMetricsListen(text: string): HostPort {
  const hp = parseHostPort(text, "metrics listen");
  if (!METRICS_LOOPBACK_HOSTS.includes(hp.host.toLowerCase())) {
    throw pcError(
      "PC_CONFIG_INVALID",
      `metrics listen ${hp.host}: only a loopback address is allowed (${METRICS_LOOPBACK_HOSTS.join(", ")}); metrics name namespaces and deployments and are not served in the clear off the host (GET /metrics on the API port needs metrics:read)`,
    );
  }
  return hp;
}

export interface MetricsListener {
  /** host:port it listens on. */
  readonly address: string;
  close(): Promise<void>;
}

type Render = () => Promise<{ contentType: string; body: string }>;

/** Starts the listener; resolves once it listens. */
export async function startMetricsListener(listen: HostPort, render: Render, logger: Logger): Promise<MetricsListener> {
  const server = createServer((req, res) => {
    void answer(req, res, render, logger);
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    address: formatHostPort({ host: listen.host, port }),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

async function answer(req: IncomingMessage, res: ServerResponse, render: Render, logger: Logger): Promise<void> {
  const requestId = newRequestId();
  res.setHeader("x-request-id", requestId);
  const path = (req.url ?? "").split("?", 1)[0];
  if (req.method !== "GET" || path !== "/metrics") {
    // The body (if any) is never read: the connection ends with the answer.
    send(res, 404, "application/json; charset=utf-8", JSON.stringify(errorBody(pcError("PC_API_NOT_FOUND"), requestId)), true);
    return;
  }
  try {
    const m = await render();
    send(res, 200, m.contentType, m.body, false);
  } catch (e) {
    logger.error({ err: String(e), requestId }, "metrics could not be rendered");
    send(res, 500, "application/json; charset=utf-8", JSON.stringify(errorBody(pcError("PC_INTERNAL"), requestId)), false);
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string, close: boolean): void {
  res.statusCode = status;
  res.setHeader("content-type", contentType);
  res.setHeader("content-length", Buffer.byteLength(body));
  res.setHeader("cache-control", "no-store");
  if (close) res.setHeader("connection", "close");
  res.end(body);
}
