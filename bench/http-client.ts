/**
 * Load generator for bench/whoami.ts, in its own process (and CPU when pinned): N
 * keep-alive HTTP/1.1 connections over mutual TLS, one request in flight on each. It
 * speaks just enough HTTP (status line, Content-Length) to stay light, so the server
 * is what is measured. Connections are opened before the clock starts.
 */
import { connect, createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import { cpuMs, serveRequests } from "./lib/proc.js";

interface RunRequest {
  readonly port: number;
  readonly path: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly connections: number;
  readonly durationMs: number;
  readonly maxRequests: number;
}

export interface HttpRun {
  readonly ok: number;
  readonly errors: number;
  readonly ms: number;
  readonly cpuMs: number;
  readonly firstError?: string;
  readonly sampleBody?: string;
}

const TIMEOUT_MS = 10_000;
const HEADER_END = Buffer.from("\r\n\r\n");

function open(port: number, ctx: SecureContext): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, secureContext: ctx, minVersion: "TLSv1.3" });
    s.setNoDelay(true);
    const timer = setTimeout(() => s.destroy(new Error("connect timeout")), TIMEOUT_MS);
    s.once("secureConnect", () => {
      clearTimeout(timer);
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

async function run(req: RunRequest): Promise<HttpRun> {
  const ctx = createSecureContext({ ca: req.ca, cert: req.cert, key: req.key, minVersion: "TLSv1.3" });
  const sockets = await Promise.all(Array.from({ length: req.connections }, () => open(req.port, ctx)));
  const request = Buffer.from(`GET ${req.path} HTTP/1.1\r\nHost: 127.0.0.1:${req.port}\r\nAccept: application/json\r\n\r\n`);
  let ok = 0;
  let errors = 0;
  let sent = 0;
  let firstError: string | undefined;
  let sampleBody: string | undefined;
  const t0 = performance.now();
  const c0 = cpuMs();
  const end = t0 + req.durationMs;
  const fail = (msg: string) => {
    errors++;
    firstError ??= msg;
  };
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          let buf: Buffer = Buffer.alloc(0);
          let finished = false;
          const done = () => {
            if (finished) return;
            finished = true;
            clearTimeout(timer);
            s.destroy();
            resolve();
          };
          const timer = setTimeout(() => {
            fail("response timeout");
            done();
          }, req.durationMs + TIMEOUT_MS);
          const send = () => {
            if (sent >= req.maxRequests || performance.now() >= end) return done();
            sent++;
            s.write(request);
          };
          s.on("data", (chunk: Buffer) => {
            buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
            for (;;) {
              const h = buf.indexOf(HEADER_END);
              if (h < 0) return;
              const head = buf.subarray(0, h).toString("latin1");
              const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
              if (!len) {
                fail("response without content-length");
                return done();
              }
              const total = h + 4 + Number(len[1]);
              if (buf.length < total) return;
              const status = Number(head.slice(9, 12));
              if (status === 200) ok++;
              else fail(`status ${status}: ${buf.subarray(h + 4, total).toString("utf8")}`);
              sampleBody ??= buf.subarray(h + 4, total).toString("utf8");
              buf = buf.subarray(total);
              send();
            }
          });
          s.on("error", (e) => {
            fail(e.message);
            done();
          });
          s.on("close", done);
          send();
        }),
    ),
  );
  return { ok, errors, ms: performance.now() - t0, cpuMs: cpuMs() - c0, ...(firstError ? { firstError } : {}), ...(sampleBody ? { sampleBody } : {}) };
}

serveRequests(async (msg) => run(msg as unknown as RunRequest));
