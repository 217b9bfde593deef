/**
 * Tests against a real Docker engine.
 *
 * `describeDocker` / `itDocker` register tests that need the engine. When the engine
 * cannot be reached (or lacks a runtime the tests need) they are reported as skipped,
 * unless PORTCULLIS_REQUIRE_DOCKER=1: then a failing test says why, so CI never passes
 * by skipping.
 *
 * Everything the tests create carries `io.portcullis.test=1` and a per-run label, and is
 * removed by that label.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, it } from "vitest";
import { DockerEngine, type DockerEngineOptions } from "../../src/runtime/index.js";

const execFileAsync = promisify(execFile);

export const TEST_LABEL = "io.portcullis.test";
export const RUN_LABEL = "io.portcullis.test.run";
export const REQUIRE_DOCKER = process.env.PORTCULLIS_REQUIRE_DOCKER === "1";

/** Where the tests find the engine: DOCKER_HOST (unix:// only) or the default socket. */
export function engineOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): DockerEngineOptions {
  const host = env.DOCKER_HOST;
  if (host === undefined || host === "") return {};
  if (host.startsWith("unix://")) return { socketPath: host.slice("unix://".length) };
  throw new Error(`the tests reach Docker only through a unix:// DOCKER_HOST, not ${host}`);
}

export function testEngine(): DockerEngine {
  return new DockerEngine(engineOptionsFromEnv());
}

export interface DockerProbe {
  readonly available: boolean;
  readonly reason: string;
  readonly runtimes: readonly string[];
}

/** Whether an engine answers, and which runtimes it has. Never throws. */
export async function probeDocker(): Promise<DockerProbe> {
  try {
    const engine = new DockerEngine({ ...engineOptionsFromEnv(), requestTimeoutMs: 5_000 });
    await engine.ping();
    const runtimes = await engine.runtimes();
    return { available: true, reason: "", runtimes };
  } catch (e) {
    const { detail, internal, message } = e as { detail?: string; internal?: unknown; message?: string };
    const cause = internal instanceof Error ? ` (${internal.message})` : "";
    return { available: false, reason: `${detail ?? message ?? String(e)}${cause}`, runtimes: [] };
  }
}

export const dockerProbe: DockerProbe = await probeDocker();

/** Resolves to true when the engine answers. */
export async function dockerAvailable(): Promise<boolean> {
  return (await probeDocker()).available;
}

export interface DockerNeeds {
  /** OCI runtimes the tests need registered, e.g. ["runsc"]. */
  readonly runtimes?: readonly string[];
}

function missing(needs: DockerNeeds): string | undefined {
  if (!dockerProbe.available) return `Docker is unreachable: ${dockerProbe.reason}`;
  const absent = (needs.runtimes ?? []).filter((r) => !dockerProbe.runtimes.includes(r));
  if (absent.length > 0) {
    return `the engine lacks runtime(s) ${absent.join(", ")} (has ${dockerProbe.runtimes.join(", ")})`;
  }
  return undefined;
}

function requiredFailure(what: string): never {
  throw new Error(
    `PORTCULLIS_REQUIRE_DOCKER=1 but ${what}. Start it with scripts/start-docker.sh ` +
      `(and scripts/install-deps.sh), or unset PORTCULLIS_REQUIRE_DOCKER to skip these tests.`,
  );
}

/** A describe block that needs Docker (see the header). */
export function describeDocker(name: string, fn: () => void, needs: DockerNeeds = {}): void {
  const why = missing(needs);
  if (why === undefined) {
    describe(name, fn);
  } else if (REQUIRE_DOCKER) {
    describe(name, () => {
      it("needs a reachable Docker engine", () => requiredFailure(why));
    });
  } else {
    describe.skip(`${name} [skipped: ${why}]`, fn);
  }
}

/** A single test that needs Docker (see the header). */
export function itDocker(
  name: string,
  fn: () => Promise<void> | void,
  needs: DockerNeeds = {},
  timeoutMs?: number,
): void {
  const why = missing(needs);
  if (why === undefined) it(name, fn, timeoutMs);
  else if (REQUIRE_DOCKER) it(name, () => requiredFailure(why));
  else it.skip(`${name} [skipped: ${why}]`, fn);
}

/** Runs the docker CLI (no shell) against the same engine; returns stdout. */
export async function dockerCli(args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync("docker", [...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** One test file's run: a label that marks everything it creates. */
export interface TestRun {
  readonly id: string;
  /** "io.portcullis.test.run=<id>", for filters. */
  readonly selector: string;
  /** Labels to put on every container and image. */
  readonly labels: Readonly<Record<string, string>>;
}

export function newTestRun(): TestRun {
  const id = randomBytes(6).toString("hex");
  return { id, selector: `${RUN_LABEL}=${id}`, labels: { [TEST_LABEL]: "1", [RUN_LABEL]: id } };
}

export const BUSYBOX = "/bin/busybox";
const APPLETS = [
  "sh", "cat", "cp", "cut", "dmesg", "echo", "grep", "head", "httpd", "id", "ip", "ls", "nc",
  "ping", "printf", "rm", "setpriv", "sleep", "timeout", "touch", "tr", "true", "wget",
];

export interface BusyboxImageOptions {
  /** The image's USER (none by default: the engine then runs it as root). */
  readonly user?: string;
  /** The image's CMD. */
  readonly cmd?: readonly string[];
  /** Distinguishes several images of one run: the tag's repository suffix. */
  readonly variant?: string;
}

/**
 * The package metadata of an image made from this machine's busybox-static: its dpkg
 * status paragraph as this machine installed it, and this machine's os-release, so that
 * the image scanner finds one Debian package (an image without any is refused).
 */
export function writeBusyboxPackageFiles(root: string): void {
  mkdirSync(join(root, "var", "lib", "dpkg"), { recursive: true });
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "var", "lib", "dpkg", "status"), busyboxStatus());
  writeFileSync(join(root, "etc", "os-release"), readFileSync("/etc/os-release"));
}

let statusParagraph: string | undefined;
function busyboxStatus(): string {
  if (statusParagraph !== undefined) return statusParagraph;
  const all = readFileSync("/var/lib/dpkg/status", "utf8");
  const para = all.split(/\n\n+/).find((p) => /^Package: busybox-static$/m.test(p));
  if (para === undefined) throw new Error("busybox-static is not in /var/lib/dpkg/status; install it (scripts/install-deps.sh)");
  statusParagraph = `${para.trim()}\n`;
  return statusParagraph;
}

/**
 * Builds a minimal image from the static busybox: /bin/busybox plus applet links, the
 * package's dpkg status and /etc/os-release (see writeBusyboxPackageFiles), /tmp
 * and /scratch (both mode 1777, so that only a read-only root filesystem stops a write
 * to /scratch). Imported the way `docker import` does it (the engine's image-create-from-source
 * call), labelled with the run's labels; returns its tag.
 */
export async function buildBusyboxImage(
  engine: DockerEngine,
  run: TestRun,
  options: BusyboxImageOptions = {},
): Promise<string> {
  if (!existsSync(BUSYBOX)) {
    throw new Error(`${BUSYBOX} is missing; install busybox-static (scripts/install-deps.sh)`);
  }
  const root = mkdtempSync(join(tmpdir(), "portcullis-rootfs-"));
  try {
    for (const d of ["bin", "etc", "proc", "sys", "dev"]) mkdirSync(join(root, d));
    for (const d of ["tmp", "scratch"]) {
      mkdirSync(join(root, d));
      chmodSync(join(root, d), 0o1777);
    }
    copyFileSync(BUSYBOX, join(root, "bin", "busybox"));
    chmodSync(join(root, "bin", "busybox"), 0o755);
    for (const applet of APPLETS) symlinkSync("busybox", join(root, "bin", applet));
    writeBusyboxPackageFiles(root);

    const variant = options.variant === undefined ? "" : `-${options.variant}`;
    const tag = `portcullis-test/busybox${variant}:${run.id}`;
    const tar = spawn("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", root, "-cf", "-", "."], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let tarErr = "";
    tar.stderr.on("data", (d: Buffer) => (tarErr += d.toString()));
    const tarExit = new Promise<number | null>((resolve) => tar.on("close", resolve));
    try {
      const config = {
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options.cmd !== undefined ? { cmd: options.cmd } : {}),
      };
      await engine.importImage(tar.stdout, tag, run.labels, config);
    } catch (e) {
      tar.kill();
      throw e;
    }
    const code = await tarExit;
    if (code !== 0) throw new Error(`tar exited with ${code}: ${tarErr}`);
    return tag;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Removes every container of the run, then its networks, then the run's images. */
export async function cleanupTestRun(engine: DockerEngine, run: TestRun, ...images: (string | undefined)[]): Promise<void> {
  await engine.removeByLabel(run.selector);
  for (const network of await engine.listNetworks([run.selector])) await engine.removeNetwork(network.id);
  for (const image of images) if (image !== undefined) await engine.removeImage(image);
}
