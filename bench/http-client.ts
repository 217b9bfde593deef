/**
 * Load generator for bench/whoami.ts and bench/admission.ts, in its own process (and CPU
 * when pinned): N keep-alive HTTP/1.1 connections over mutual TLS, one request in flight
 * on each. It speaks just enough HTTP (status line, Content-Length) to stay light, so the
 * server is what is measured. Connections are opened before the clock starts.
 *
 * GET by default; with `bodies`, each connection POSTs its own JSON body (connection i
 * sends bodies[i % bodies.length]) again and again. With `expect`, a 200 whose body lacks
 * that text counts as an error. With `latency`, each request is timed from its write to
 * the end of its answer and the percentiles are returned.
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
  readonly bodies?: readonly string[];
  readonly expect?: string;
  readonly latency?: boolean;
}

/** Latency percentiles in ms, over every answered request of the run. */
export interface LatencySummary {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface HttpRun {
  readonly ok: number;
  readonly errors: number;
  readonly ms: number;
  readonly cpuMs: number;
  readonly firstError?: string;
  readonly sampleBody?: string;
  readonly latency?: LatencySummary;
}

function summarize(xs: Float64Array, n: number): LatencySummary {
  const s = xs.subarray(0, n).sort();
  const q = (p: number) => (n === 0 ? Number.NaN : (s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))] as number));
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i] as number;
  return { n, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: n === 0 ? Number.NaN : (s[n - 1] as number), mean: n === 0 ? Number.NaN : sum / n };
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
  const headers = `Host: 127.0.0.1:${req.port}\r\nAccept: application/json\r\n`;
  const requests =
    req.bodies && req.bodies.length > 0
      ? req.bodies.map((b) =>
          Buffer.from(`POST ${req.path} HTTP/1.1\r\n${headers}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(b)}\r\n\r\n${b}`),
        )
      : [Buffer.from(`GET ${req.path} HTTP/1.1\r\n${headers}\r\n`)];
  let lat = new Float64Array(req.latency ? 1 << 16 : 0);
  let nLat = 0;
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
      (s, i) =>
        new Promise<void>((resolve) => {
          const request = requests[i % requests.length] as Buffer;
          let sentAt = 0;
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
            if (req.latency) sentAt = performance.now();
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
              if (req.latency) {
                if (nLat === lat.length) {
                  const grown = new Float64Array(lat.length * 2);
                  grown.set(lat);
                  lat = grown;
                }
                lat[nLat++] = performance.now() - sentAt;
              }
              const status = Number(head.slice(9, 12));
              if (status !== 200) fail(`status ${status}: ${buf.subarray(h + 4, total).toString("utf8").slice(0, 500)}`);
              else if (req.expect !== undefined && !buf.subarray(h + 4, total).includes(req.expect)) {
                fail(`200 without ${req.expect}: ${buf.subarray(h + 4, total).toString("utf8").slice(0, 500)}`);
              } else ok++;
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
  const ms = performance.now() - t0;
  const cpu = cpuMs() - c0;
  return {
    ok,
    errors,
    ms,
    cpuMs: cpu,
    ...(firstError ? { firstError } : {}),
    ...(sampleBody ? { sampleBody } : {}),
    ...(req.latency ? { latency: summarize(lat, nLat) } : {}),
  };
}

serveRequests(async (msg) => run(msg as unknown as RunRequest));
