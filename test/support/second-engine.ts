/**
 * A second, real Docker engine beside the first, for multi-node tests.
 *
 * `dockerd` runs with its own --data-root, --exec-root and --pidfile, listens only on
 * tcp://127.0.0.1:PORT with --tlsverify (the certificates given, from the project's CA),
 * and has no iptables rules and no masquerading, so it leaves the host's network alone.
 * Its default bridge is one of its own (`pcb<hex>`, an address in 10.231.0.0/16), made
 * before it starts and removed after it stops: with `--bridge none`, dockerd deletes any
 * interface named docker0 at start, which is the first engine's. It needs no separate containerd: dockerd 20.10 starts its own, with its
 * socket and state under the exec root (<exec-root>/containerd), so the two engines do
 * not share one. runsc is registered through a config file with --network=host, as on
 * the first engine.
 *
 * `stop()` ends the engine (SIGTERM, then SIGKILL after a grace period), ends any
 * process still running from its directories (its containerd and shims), unmounts what
 * it mounted there and removes the directories and its bridge. `engineProcess()` gives
 * the same engine with `start()`/`halt()` apart, for restarts on the same data root.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import Docker from "dockerode";
import { freePort } from "../api/api-support.js";

export interface EngineTlsFiles {
  /** The CA that client certificates must chain to. */
  readonly caFile: string;
  /** The engine's server certificate (and its issuer). */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface ClientTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface SecondEngine {
  readonly port: number;
  readonly endpoint: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** The temporary directory that holds everything of this engine. */
  readonly root: string;
  readonly pid: number;
  /** What dockerd wrote to stdout and stderr. */
  log(): string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 15_000;

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Processes whose command line mentions `dir` (the engine's containerd and shims). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmd.includes(dir)) pids.push(Number(entry));
    } catch {
      // gone already
    }
  }
  return pids;
}

/** Mount points under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** A bridge of the engine's own, with an address of its own; removed with the engine. */
function ownBridge(): { readonly name: string; remove(): void } {
  const name = `pcb${randomBytes(4).toString("hex")}`;
  const taken = execFileSync("ip", ["-o", "-4", "addr", "show"], { encoding: "utf8" });
  let octet = 1 + randomInt(250);
  while (taken.includes(`10.231.${octet}.`)) octet = 1 + randomInt(250);
  execFileSync("ip", ["link", "add", name, "type", "bridge"]);
  execFileSync("ip", ["addr", "add", `10.231.${octet}.1/24`, "dev", name]);
  execFileSync("ip", ["link", "set", name, "up"]);
  return { name, remove: () => void execFileSync("ip", ["link", "del", name]) };
}

/** A second engine that can be started and halted again on the same data root and port. */
export interface EngineProcess extends SecondEngine {
  start(): Promise<void>;
  /** Ends dockerd, keeping its data root (an engine restart, a node outage). */
  halt(): Promise<void>;
}

/**
 * Prepares the engine's directories, bridge and port, without starting it. `stop()`
 * halts it and removes everything.
 */
export async function engineProcess(opts: { tls: EngineTlsFiles; client?: ClientTls }): Promise<EngineProcess> {
  const root = mkdtempSync("/tmp/pc-engine-");
  const dataRoot = join(root, "data");
  const execRoot = join(root, "exec");
  const config = join(root, "daemon.json");
  writeFileSync(config, JSON.stringify({ runtimes: { runsc: { path: "/usr/bin/runsc", runtimeArgs: ["--network=host"] } } }));
  const logFile = join(root, "dockerd.log");
  const port = await freePort();
  const bridge = ownBridge();
  const docker = opts.client ? new Docker({ host: "127.0.0.1", port, protocol: "https", ...opts.client, timeout: 2_000 }) : undefined;
  const log = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  let child: ChildProcess | undefined;
  let stopped: Promise<void> | undefined;
  const engine: EngineProcess = {
    port,
    endpoint: `tcp://127.0.0.1:${port}`,
    dataRoot,
    execRoot,
    root,
    get pid() {
      return child?.pid ?? -1;
    },
    log,
    async start() {
      const out = openSync(logFile, "a");
      const c = spawn(
        "dockerd",
        [
          "--config-file", config,
          "--data-root", dataRoot,
          "--exec-root", execRoot,
          "--pidfile", join(root, "dockerd.pid"),
          "-H", `tcp://127.0.0.1:${port}`,
          "--tlsverify",
          "--tlscacert", opts.tls.caFile,
          "--tlscert", opts.tls.certFile,
          "--tlskey", opts.tls.keyFile,
          "--bridge", bridge.name,
          "--iptables=false",
          "--ip-masq=false",
          "--ip-forward=false",
        ],
        { stdio: ["ignore", out, out] },
      );
      closeSync(out);
      child = c;
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`dockerd exited with ${c.exitCode}:\n${log()}`);
        const up = docker ? await docker.ping().then(() => true, () => false) : await tcpOpen(port);
        if (up) return;
        if (Date.now() > deadline) throw new Error(`dockerd did not answer within ${START_TIMEOUT_MS} ms:\n${log()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async halt() {
      const c = child;
      if (c === undefined) return;
      c.kill("SIGTERM");
      if (!(await exited(c, STOP_GRACE_MS))) {
        c.kill("SIGKILL");
        await exited(c, 5_000);
      }
    },
    stop: () =>
      (stopped ??= (async () => {
        await engine.halt();
        for (const pid of processesUnder(root)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // gone already
          }
        }
        for (const m of mountsUnder(root)) execFileSync("umount", ["-l", m]);
        rmSync(root, { recursive: true, force: true });
        bridge.remove();
      })()),
  };
  return engine;
}

/**
 * Starts the engine and waits until it answers over mutual TLS with `client` (or, without
 * `client`, until its port accepts connections).
 */
export async function startSecondEngine(opts: { tls: EngineTlsFiles; client?: ClientTls }): Promise<SecondEngine> {
  const engine = await engineProcess(opts);
  try {
    await engine.start();
  } catch (e) {
    await engine.stop();
    throw e;
  }
  return engine;
}

/**
 * Copies an image from one engine to another (`docker save | docker load`). Moving
 * images between nodes is not something the gateway does; tests use it to put the same
 * image on two nodes.
 */
export async function copyImage(from: Docker, to: Docker, ref: string): Promise<void> {
  const tar = await from.getImage(ref).get();
  const progress = await to.loadImage(tar);
  await new Promise<void>((resolve, reject) => {
    to.modem.followProgress(progress, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}
