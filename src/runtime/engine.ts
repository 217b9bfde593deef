/**
 * One Docker engine, reached through dockerode: on its local socket, or over TCP with
 * mutual TLS (plain TCP is refused). Every container it runs for a caller is removed
 * afterwards, whatever happens.
 */
import type { Readable } from "node:stream";
import { Agent as HttpsAgent } from "node:https";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import Docker from "dockerode";
import type { ContainerCreateOptions } from "dockerode";
import { isPortcullisError } from "../core/index.js";
import { containerTimedOut, engineFailed, engineUnavailable, specInvalid } from "./runtime-errors.js";
import { OutputCollector, demuxDockerStream } from "./output.js";
import * as resources from "./engine-resources.js";
import type { ImageDetails, NetworkCreateSpec, NetworkDetails, NetworkRemoval } from "./engine-resources.js";

export const DEFAULT_SOCKET_PATH = "/var/run/docker.sock";

export interface DockerEngineOptions {
  /** Unix socket of a local engine; the default when no host is given. */
  readonly socketPath?: string;
  /** A remote engine, reached over TLS with a client certificate. */
  readonly host?: string;
  readonly port?: number;
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /**
   * A remote engine's certificate must also carry this URI SAN (its node identity,
   * `spiffe://<trust domain>/node/<name>`), besides the host name or address.
   */
  readonly serverUri?: string;
  /** Timeout of each API request (not of a container's run); default 30 s. */
  readonly requestTimeoutMs?: number;
}

export interface EngineVersion {
  readonly version: string;
  readonly apiVersion: string;
  readonly os: string;
  readonly arch: string;
  readonly kernelVersion: string;
}

export interface EngineInfo {
  readonly runtimes: readonly string[];
  readonly cpus: number;
  readonly memoryBytes: number;
  readonly serverVersion: string;
}

/** What the runtime needs to know about one container. */
export interface ContainerState {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** created, running, paused, restarting, removing, exited, dead */
  readonly status: string;
  readonly running: boolean;
  readonly restarting: boolean;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  /** starting, healthy or unhealthy, when the container has a healthcheck. */
  readonly health: string | undefined;
  readonly restartCount: number;
  /** The OCI runtime the engine used (runc, runsc). */
  readonly runtime: string;
  readonly imageId: string;
}

export interface ContainerSummary {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: string;
}

/** Configuration an imported image is given besides its labels. */
export interface ImportedImageConfig {
  /** The image's USER: a name or uid, with an optional group. */
  readonly user?: string;
  /** The image's CMD (exec form). */
  readonly cmd?: readonly string[];
}

export interface RunOnceOptions {
  /** The container is killed and removed if it has not exited by then. */
  readonly timeoutMs: number;
  /** Output kept per stream; the rest is dropped and `truncated` is set. Default 1 MiB. */
  readonly maxOutputBytes?: number;
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
}

const UNREACHABLE_CODES = new Set([
  "ENOENT", "ECONNREFUSED", "ECONNRESET", "EACCES", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH",
  "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN",
]);
const LABEL_SELECTOR_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(=[A-Za-z0-9._:/@+-]{0,256})?$/;
const LABEL_VALUE_RE = /^[A-Za-z0-9._:/@+-]{0,256}$/;
const REPO_TAG_RE = /^[a-z0-9][a-z0-9._\-/]{0,254}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const IMAGE_USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$/;
const STREAM_END_GRACE_MS = 2_000;

function errorCode(e: unknown): string | undefined {
  if (typeof e === "object" && e !== null && "code" in e) {
    const c = (e as { code: unknown }).code;
    return typeof c === "string" ? c : undefined;
  }
  return undefined;
}

function statusCode(e: unknown): number | undefined {
  if (typeof e === "object" && e !== null && "statusCode" in e) {
    const c = (e as { statusCode: unknown }).statusCode;
    return typeof c === "number" ? c : undefined;
  }
  return undefined;
}

function isUnreachable(e: unknown): boolean {
  const code = errorCode(e);
  if (code !== undefined && UNREACHABLE_CODES.has(code)) return true;
  return e instanceof Error && /timeout/i.test(e.message) && statusCode(e) === undefined;
}

function wrap(operation: string, e: unknown): Error {
  if (isPortcullisError(e)) return e;
  return isUnreachable(e) ? engineUnavailable(e) : engineFailed(operation, e);
}

/**
 * Options docker-modem passes on to https.request (its type declarations lack `agent`
 * and call `checkServerIdentity` a boolean). Connections are pooled per engine: a shared
 * pool could hand a request for one engine a connection whose peer was checked for another.
 */
function tlsExtras(serverUri: string | undefined): Docker.DockerOptions {
  const extras: Record<string, unknown> = { agent: new HttpsAgent({ keepAlive: true }) };
  if (serverUri !== undefined) extras.checkServerIdentity = serverIdentityCheck(serverUri);
  return extras as Docker.DockerOptions;
}

/** The host check TLS always makes, and then the engine's node identity. */
function serverIdentityCheck(uri: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const hostError = checkServerIdentity(host, cert);
    if (hostError !== undefined) return hostError;
    const sans = (cert.subjectaltname ?? "").split(", ");
    return sans.includes(`URI:${uri}`) ? undefined : new Error("the engine's certificate does not name the expected node");
  };
}

function checkLabelSelector(label: string): void {
  if (!LABEL_SELECTOR_RE.test(label)) throw specInvalid("label", "must be key or key=value");
}

export class DockerEngine {
  private readonly docker: Docker;

  constructor(options: DockerEngineOptions = {}) {
    const timeout = options.requestTimeoutMs ?? 30_000;
    if (options.host !== undefined) {
      if (options.socketPath !== undefined) {
        throw specInvalid("engine", "socketPath and host are exclusive");
      }
      if (options.ca === undefined || options.cert === undefined || options.key === undefined) {
        throw specInvalid("engine", "a remote engine needs ca, cert and key (mutual TLS)");
      }
      this.docker = new Docker({
        host: options.host,
        port: options.port ?? 2376,
        protocol: "https",
        ...tlsExtras(options.serverUri),
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        timeout,
      });
    } else {
      this.docker = new Docker({ socketPath: options.socketPath ?? DEFAULT_SOCKET_PATH, timeout });
    }
  }

  /** Resolves when the engine answers; throws if it does not. */
  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (e) {
      throw wrap("answer a ping", e);
    }
  }

  async version(): Promise<EngineVersion> {
    try {
      const v = await this.docker.version();
      return {
        version: v.Version,
        apiVersion: v.ApiVersion,
        os: v.Os,
        arch: v.Arch,
        kernelVersion: v.KernelVersion,
      };
    } catch (e) {
      throw wrap("report its version", e);
    }
  }

  /** What the engine reports about itself: its runtimes, CPUs and memory. */
  async info(): Promise<EngineInfo> {
    try {
      const i = (await this.docker.info()) as { Runtimes?: Record<string, unknown>; NCPU?: unknown; MemTotal?: unknown; ServerVersion?: unknown };
      return {
        runtimes: Object.keys(i.Runtimes ?? {}).sort(),
        cpus: typeof i.NCPU === "number" ? i.NCPU : 0,
        memoryBytes: typeof i.MemTotal === "number" ? i.MemTotal : 0,
        serverVersion: typeof i.ServerVersion === "string" ? i.ServerVersion : "",
      };
    } catch (e) {
      throw wrap("report its resources", e);
    }
  }

  /** The OCI runtimes registered with the engine (for example runc, runsc). */
  async runtimes(): Promise<string[]> {
    try {
      const info = (await this.docker.info()) as { Runtimes?: Record<string, unknown> };
      return Object.keys(info.Runtimes ?? {}).sort();
    } catch (e) {
      throw wrap("report its runtimes", e);
    }
  }

  /** Creates (does not start) a container; returns its id. */
  async create(spec: ContainerCreateOptions): Promise<string> {
    const { name, ...body } = spec;
    // The spec goes in the request body only; by default dockerode would also copy it
    // into the query string, where an engine's request log could record it.
    const request = { _query: name === undefined ? {} : { name }, _body: body };
    try {
      const container = await this.docker.createContainer(request as unknown as ContainerCreateOptions);
      return container.id;
    } catch (e) {
      throw wrap("create a container", e);
    }
  }

  /** Removes a container and its anonymous volumes, running or not; absent is fine. */
  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (e) {
      if (statusCode(e) === 404) return;
      throw wrap("remove a container", e);
    }
  }

  /** Ids of all containers (running or not) that carry a label ("key" or "key=value"). */
  async listByLabel(label: string): Promise<string[]> {
    checkLabelSelector(label);
    try {
      const list = await this.docker.listContainers({ all: true, filters: { label: [label] } });
      return list.map((c) => c.Id);
    } catch (e) {
      throw wrap("list containers", e);
    }
  }

  /** Removes every container that carries a label; returns how many it removed. */
  async removeByLabel(label: string): Promise<number> {
    const ids = await this.listByLabel(label);
    for (const id of ids) await this.remove(id);
    return ids.length;
  }

  /** Starts a created or stopped container; a running one is left as it is. */
  async start(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (e) {
      if (statusCode(e) === 304) return;
      throw wrap("start a container", e);
    }
  }

  /** Stops a container (SIGTERM, then SIGKILL after `graceSeconds`) and removes it; absent is fine. */
  async stopAndRemove(id: string, graceSeconds = 5): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: graceSeconds });
    } catch (e) {
      const s = statusCode(e);
      if (s !== 304 && s !== 404) throw wrap("stop a container", e);
    }
    await this.remove(id);
  }

  /** The state of a container by id or name; undefined when the engine has no such container. */
  async inspectContainer(idOrName: string): Promise<ContainerState | undefined> {
    try {
      const c = await this.docker.getContainer(idOrName).inspect();
      const st = c.State as typeof c.State & { Health?: { Status?: string } };
      return {
        id: c.Id,
        name: c.Name.replace(/^\//, ""),
        labels: c.Config.Labels ?? {},
        status: st.Status,
        running: st.Running === true,
        restarting: st.Restarting === true,
        exitCode: st.ExitCode,
        oomKilled: st.OOMKilled === true,
        health: st.Health?.Status,
        restartCount: c.RestartCount ?? 0,
        runtime: (c.HostConfig as { Runtime?: string }).Runtime ?? "",
        imageId: c.Image,
      };
    } catch (e) {
      if (statusCode(e) === 404) return undefined;
      throw wrap("inspect a container", e);
    }
  }

  /** Every container (running or not) that carries a label ("key" or "key=value"). */
  async listContainers(label: string): Promise<ContainerSummary[]> {
    checkLabelSelector(label);
    try {
      const list = await this.docker.listContainers({ all: true, filters: { label: [label] } });
      return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? "").replace(/^\//, ""), labels: c.Labels ?? {}, state: c.State }));
    } catch (e) {
      throw wrap("list containers", e);
    }
  }

  /** The last `tail` lines a container wrote to stdout and stderr. */
  async logs(id: string, tail: number): Promise<{ stdout: string; stderr: string; truncated: boolean }> {
    const stdout = new OutputCollector(1024 * 1024);
    const stderr = new OutputCollector(1024 * 1024);
    try {
      const buf = (await this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, tail })) as unknown as Buffer;
      const { PassThrough } = await import("node:stream");
      const stream = new PassThrough();
      const ended = demuxDockerStream(stream, stdout, stderr);
      stream.end(buf);
      await ended;
    } catch (e) {
      throw wrap("read container logs", e);
    }
    return { stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.truncated || stderr.truncated };
  }

  /**
   * Creates a container, runs it to completion and removes it, always. Output is read
   * from the moment before the start, so nothing the process writes is missed.
   */
  async runOnce(spec: ContainerCreateOptions, options: RunOnceOptions): Promise<RunResult> {
    const { timeoutMs } = options;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
      throw specInvalid("timeoutMs", "must be a positive integer");
    }
    const stdout = new OutputCollector(options.maxOutputBytes ?? 1024 * 1024);
    const stderr = new OutputCollector(options.maxOutputBytes ?? 1024 * 1024);
    const id = await this.create(spec);
    const container = this.docker.getContainer(id);
    let stream: NodeJS.ReadWriteStream | undefined;
    let timer: NodeJS.Timeout | undefined;
    let failure: unknown;
    let result: RunResult | undefined;
    try {
      try {
        stream = await container.attach({ stream: true, stdout: true, stderr: true });
      } catch (e) {
        throw wrap("attach to a container", e);
      }
      const ended = demuxDockerStream(stream as unknown as Readable, stdout, stderr);
      try {
        await container.start();
      } catch (e) {
        throw wrap("start a container", e);
      }
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const waited = container.wait() as Promise<{ StatusCode?: unknown }>;
      waited.catch(() => undefined); // settled below or abandoned after a timeout
      let outcome: { StatusCode?: unknown } | "timeout";
      try {
        outcome = await Promise.race([waited, timedOut]);
      } catch (e) {
        throw wrap("wait for a container", e);
      }
      if (outcome === "timeout") {
        await container.kill().catch(() => undefined);
        throw containerTimedOut(timeoutMs);
      }
      if (typeof outcome.StatusCode !== "number") {
        throw engineFailed("report an exit code", outcome);
      }
      await Promise.race([ended, new Promise((r) => setTimeout(r, STREAM_END_GRACE_MS).unref())]);
      result = {
        exitCode: outcome.StatusCode,
        stdout: stdout.text(),
        stderr: stderr.text(),
        truncated: stdout.truncated || stderr.truncated,
      };
    } catch (e) {
      failure = e;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      (stream as unknown as Readable | undefined)?.destroy();
    }
    try {
      await this.remove(id);
    } catch (e) {
      failure ??= e;
    }
    if (failure !== undefined || result === undefined) throw failure;
    return result;
  }

  /**
   * Imports a root filesystem (a tar stream) as an image tagged `repoTag`, with labels.
   * Returns the image id.
   */
  async importImage(
    tar: Readable,
    repoTag: string,
    labels: Readonly<Record<string, string>> = {},
    config: ImportedImageConfig = {},
  ): Promise<string> {
    if (!REPO_TAG_RE.test(repoTag)) throw specInvalid("repoTag", "must be a lower-case repository:tag");
    const changes: string[] = [];
    for (const [k, v] of Object.entries(labels)) {
      checkLabelSelector(k);
      if (!LABEL_VALUE_RE.test(v)) throw specInvalid(`labels.${k}`, "bad label value");
      changes.push(`LABEL ${JSON.stringify(k)}=${JSON.stringify(v)}`);
    }
    if (config.user !== undefined) {
      if (!IMAGE_USER_RE.test(config.user)) throw specInvalid("user", "must be a user name or uid[:gid]");
      changes.push(`USER ${config.user}`);
    }
    if (config.cmd !== undefined) {
      if (config.cmd.length === 0 || config.cmd.some((a) => /[\0\r\n]/.test(a))) {
        throw specInvalid("cmd", "must be a non-empty list of single-line arguments");
      }
      changes.push(`CMD ${JSON.stringify(config.cmd)}`);
    }
    const sep = repoTag.lastIndexOf(":");
    try {
      const progress = await this.docker.importImage(tar, {
        repo: repoTag.slice(0, sep),
        tag: repoTag.slice(sep + 1),
        changes,
      });
      const messages = await readJsonLines(progress as unknown as Readable);
      const failed = messages.find((m) => typeof m === "object" && m !== null && "error" in m);
      if (failed !== undefined) throw engineFailed("import an image", failed);
      const info = await this.docker.getImage(repoTag).inspect();
      return info.Id;
    } catch (e) {
      throw wrap("import an image", e);
    }
  }

  /** Removes an image by reference; absent is fine. */
  async removeImage(ref: string): Promise<void> {
    try {
      await this.docker.getImage(ref).remove({ force: true });
    } catch (e) {
      if (statusCode(e) === 404) return;
      throw wrap("remove an image", e);
    }
  }

  /** An image by id, `repo:tag` or `repo@digest`; undefined when the engine lacks it. */
  async inspectImage(ref: string): Promise<ImageDetails | undefined> {
    try {
      return await resources.inspectImage(this.docker, ref);
    } catch (e) {
      throw wrap("inspect an image", e);
    }
  }

  /** The engine's full view of a container (configuration included); undefined when absent. */
  async inspectContainerConfig(idOrName: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(idOrName).inspect();
    } catch (e) {
      if (statusCode(e) === 404) return undefined;
      throw wrap("inspect a container", e);
    }
  }

  /** Networks that carry every one of the labels (each "key" or "key=value"). */
  async listNetworks(labels: readonly string[]): Promise<NetworkDetails[]> {
    if (labels.length === 0) throw specInvalid("label", "at least one label selects the networks");
    labels.forEach(checkLabelSelector);
    try {
      return await resources.listNetworks(this.docker, labels);
    } catch (e) {
      throw wrap("list networks", e);
    }
  }

  /** A network by id or name; undefined when absent. */
  async inspectNetwork(idOrName: string): Promise<NetworkDetails | undefined> {
    try {
      return await resources.inspectNetwork(this.docker, idOrName);
    } catch (e) {
      throw wrap("inspect a network", e);
    }
  }

  /** Creates a bridge network; undefined when one of that name exists already. */
  async createBridgeNetwork(spec: NetworkCreateSpec): Promise<string | undefined> {
    try {
      return await resources.createBridgeNetwork(this.docker, spec);
    } catch (e) {
      throw wrap("create a network", e);
    }
  }

  /** Removes a network; "in-use" (and kept) while a running container is attached to it. */
  async removeNetwork(id: string): Promise<NetworkRemoval> {
    try {
      return await resources.removeNetwork(this.docker, id);
    } catch (e) {
      throw wrap("remove a network", e);
    }
  }

  /** Ids of the containers, running or not, attached to a network. */
  async containersOnNetwork(networkId: string): Promise<string[]> {
    try {
      return await resources.containersOnNetwork(this.docker, networkId);
    } catch (e) {
      throw wrap("list a network's containers", e);
    }
  }
}

async function readJsonLines(stream: Readable): Promise<unknown[]> {
  let text = "";
  for await (const chunk of stream) text += Buffer.isBuffer(chunk) ? chunk.toString("utf8") : String(chunk);
  const out: unknown[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      out.push({ error: "unreadable progress message" });
    }
  }
  return out;
}
