import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

/**
 * Child processes of the benchmarks: each runs TypeScript through tsx, optionally pinned
 * to one CPU with `taskset`, and talks to its parent over the IPC channel.
 */

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

let tasksetOk: boolean | undefined;
export function canPin(): boolean {
  tasksetOk ??= spawnSync("taskset", ["-c", "0", "true"], { stdio: "ignore" }).status === 0;
  return tasksetOk;
}

/** Extra node flags for the processes that host the code under test (e.g. --cpu-prof). */
export function profileFlags(): string[] {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

/** Starts `bench/<file>` under node + tsx, pinned to `cpu` when taskset works. */
export function spawnBench(file: string, cpu: number | undefined, nodeFlags: readonly string[] = []): ChildProcess {
  const nodeArgs = [...nodeFlags, "--import", "tsx", resolve(ROOT, "bench", file)];
  const pinned = cpu !== undefined && canPin();
  const cmd = pinned ? "taskset" : process.execPath;
  const args = pinned ? ["-c", String(cpu), process.execPath, ...nodeArgs] : nodeArgs;
  return spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"], env: { ...process.env } });
}

interface Envelope {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
}

let nextId = 1;

/** Sends one request to a child and waits (bounded) for its answer. */
export function call<T>(child: ChildProcess, msg: Record<string, unknown>, timeoutMs: number): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolveP, rejectP) => {
    const timer = setTimeout(() => {
      cleanup();
      rejectP(new Error(`no answer from child within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: unknown) => {
      const e = m as Envelope;
      if (!e || e.id !== id) return;
      cleanup();
      if (e.ok) resolveP(e.value as T);
      else rejectP(new Error(e.error ?? "child failed"));
    };
    const onExit = (code: number | null) => {
      cleanup();
      rejectP(new Error(`child exited (${code}) before answering`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
    child.send({ ...msg, id });
  });
}

/** Child side: answers each request with `handler`; exits when the parent goes away. */
export function serveRequests(handler: (msg: Record<string, unknown>) => Promise<unknown>): void {
  process.on("disconnect", () => process.exit(0));
  process.on("message", (m: unknown) => {
    const msg = m as Record<string, unknown> & { id: number };
    handler(msg).then(
      (value) => process.send?.({ id: msg.id, ok: true, value }),
      (e: unknown) => process.send?.({ id: msg.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
}

/** Waits (bounded) for a child to exit; kills it by pid if it does not. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolveP) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolveP(code);
    });
  });
}

/** Stops a client child: closes the IPC channel (it exits on disconnect), then waits. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.connected) child.disconnect();
  await waitExit(child, 5000);
}

/** CPU time of this process in ms (user + system). */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Entry point of a benchmark script: prints its table, hands the result to bench/run.ts
 * when started by it, and exits (non-zero only on an error, never on a missed target).
 */
export function runBenchmark<T extends { table: string }>(fn: () => Promise<T>): void {
  fn().then(
    async (r) => {
      process.stdout.write(`${r.table}\n\n`);
      const send = process.send?.bind(process);
      if (send) await new Promise<void>((res) => send(r, () => res()));
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
