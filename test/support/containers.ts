/**
 * Small helpers for tests that run long-lived containers on the real engine: the docker
 * CLI with its exit code, a free loopback port, waiting for a healthcheck.
 */
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import type { DockerEngine } from "../../src/runtime/index.js";

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the docker CLI (no shell); resolves with the exit code instead of throwing. */
export function dockerCliResult(args: readonly string[], timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile("docker", [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A TCP port free on 127.0.0.1 at the moment of asking. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls a container until its healthcheck reports `healthy`; throws with its state if not. */
export async function waitHealthy(engine: DockerEngine, id: string, budgetMs = 30_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const st = await engine.inspectContainer(id);
    if (st?.health === "healthy") return;
    if (st === undefined || !st.running || st.health === "unhealthy" || Date.now() > deadline) {
      throw new Error(`container ${id} did not become healthy: ${JSON.stringify(st)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls a container until it runs. */
export async function waitRunning(engine: DockerEngine, id: string, budgetMs = 15_000): Promise<void> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const st = await engine.inspectContainer(id);
    if (st?.running === true) return;
    if (Date.now() > deadline) throw new Error(`container ${id} is not running: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * An HTTP GET of `/` on `ip:port` with busybox nc from inside container `from` (nc works
 * under runc and under gVisor); returns what came back, "" when nothing answered.
 */
export async function fetchInContainer(from: string, ip: string, port = 8080): Promise<string> {
  const r = await dockerCliResult(
    ["exec", from, "/bin/timeout", "8", "/bin/sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} ${port}`],
    20_000,
  );
  return r.stdout;
}

/**
 * fetchInContainer until the answer contains `expected`: a server just started (gVisor
 * takes longer to listen) or under load can miss one window. At most `tries` attempts
 * 500 ms apart; returns the last answer for the caller to assert on.
 */
export async function fetchInContainerEventually(from: string, ip: string, expected: string, tries = 10, port = 8080): Promise<string> {
  let last = "";
  for (let i = 0; i < tries; i++) {
    last = await fetchInContainer(from, ip, port);
    if (last.includes(expected)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return last;
}
