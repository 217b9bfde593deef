/**
 * Load generator for bench/handshakes.ts, in its own process (and CPU when pinned):
 * opens new mTLS connections with bounded concurrency, no session resumption. A
 * handshake counts once the server's first byte arrives: the server writes it from
 * 'secureConnection', i.e. after it has verified the client's certificate chain.
 */
import { connect, createSecureContext, type TLSSocket } from "node:tls";
import { cpuMs, serveRequests } from "./lib/proc.js";

interface RunRequest {
  readonly port: number;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly durationMs: number;
  readonly maxOps: number;
  readonly concurrency: number;
}

export interface HandshakeRun {
  readonly ok: number;
  readonly errors: number;
  readonly resumed: number;
  readonly ms: number;
  readonly cpuMs: number;
  readonly firstError?: string;
}

const MAX_ERRORS = 50;
const CONNECT_TIMEOUT_MS = 5000;

function run(req: RunRequest): Promise<HandshakeRun> {
  const ctx = createSecureContext({ ca: req.ca, cert: req.cert, key: req.key, minVersion: "TLSv1.3" });
  const t0 = performance.now();
  const c0 = cpuMs();
  const end = t0 + req.durationMs;
  let started = 0;
  let inflight = 0;
  let ok = 0;
  let errors = 0;
  let resumed = 0;
  let firstError: string | undefined;
  return new Promise((resolve) => {
    const finish = () =>
      resolve({ ok, errors, resumed, ms: performance.now() - t0, cpuMs: cpuMs() - c0, ...(firstError ? { firstError } : {}) });
    const more = () => started < req.maxOps && errors < MAX_ERRORS && performance.now() < end;
    const next = () => {
      while (inflight < req.concurrency && more()) open();
      if (inflight === 0) finish();
    };
    const open = () => {
      started++;
      inflight++;
      let done = false;
      const s: TLSSocket = connect({ host: "127.0.0.1", port: req.port, secureContext: ctx, minVersion: "TLSv1.3" });
      s.setNoDelay(true);
      const settle = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          errors++;
          firstError ??= err.message;
        } else {
          ok++;
          if (s.isSessionReused()) resumed++;
        }
        s.destroy();
        inflight--;
        next();
      };
      const timer = setTimeout(() => settle(new Error("handshake timeout")), CONNECT_TIMEOUT_MS);
      s.once("data", () => settle());
      s.on("error", (e) => settle(e));
      s.once("close", () => settle(new Error("closed before the server's byte")));
    };
    next();
  });
}

serveRequests(async (msg) => run(msg as unknown as RunRequest));
