/**
 * One Docker engine, reached through dockerode: on its local socket, or over TCP with
 * mutual TLS (plain TCP is refused). Every container it runs for a caller is removed
 * afterwards, whatever happens.
 */
import type { Readable } from "node:stream";
import Docker from "dockerode";
import type { ContainerCreateOptions } from "dockerode";
import { isPortcullisError } from "../core/index.js";
import { containerTimedOut, engineFailed, engineUnavailable, specInvalid } from "./runtime-errors.js";
import { OutputCollector, demuxDockerStream } from "./output.js";

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
  ): Promise<string> {
    if (!REPO_TAG_RE.test(repoTag)) throw specInvalid("repoTag", "must be a lower-case repository:tag");
    const changes: string[] = [];
    for (const [k, v] of Object.entries(labels)) {
      checkLabelSelector(k);
      if (!LABEL_VALUE_RE.test(v)) throw specInvalid(`labels.${k}`, "bad label value");
      changes.push(`LABEL ${JSON.stringify(k)}=${JSON.stringify(v)}`);
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
