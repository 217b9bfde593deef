/**
 * One Docker engine, reached through dockerode: on its local socket, or over TCP with
 * mutual TLS (plain TCP is refused). Every container it runs for a caller is removed
 * afterwards, whatever happens.
 */
import type { Readable } from "node:stream";
import Docker from "dockerode";
import type { ContainerCreateOptions } from "dockerode";
import { containerTimedOut, engineFailed, specInvalid } from "./runtime-errors.js";
import {
  checkLabelSelector,
  IMAGE_USER_RE,
  LABEL_VALUE_RE,
  readJsonLines,
  REPO_TAG_RE,
  statusCode,
  STREAM_END_GRACE_MS,
  tlsExtras,
  wrap,
} from "./engine-support.js";
import type {
  ContainerState,
  ContainerSummary,
  DockerEngineOptions,
  EngineInfo,
  EngineVersion,
  ImportedImageConfig,
  RunOnceOptions,
  RunResult,
} from "./engine-types.js";
export type {
  ContainerState,
  ContainerSummary,
  DockerEngineOptions,
  EngineInfo,
  EngineVersion,
  ImportedImageConfig,
  RunOnceOptions,
  RunResult,
} from "./engine-types.js";
import { OutputCollector, demuxDockerStream } from "./output.js";
import * as resources from "./engine-resources.js";
import * as monitoring from "./engine-monitoring.js";
import type { EngineEventStream, EngineStats } from "./engine-monitoring.js";
export type { EngineEvent, EngineEventStream, EngineStats } from "./engine-monitoring.js";
import type { ImageDetails, NetworkCreateSpec, NetworkDetails, NetworkRemoval } from "./engine-resources.js";

export const DEFAULT_SOCKET_PATH = "/var/run/docker.sock";

export class DockerEngine {
  private readonly docker: Docker;
  /** The same engine without a request timeout: an event stream may stay quiet for long. */
  private readonly streamDocker: Docker;

  constructor(options: DockerEngineOptions = {}) {
    const timeout = options.requestTimeoutMs ?? 30_000;
    if (options.host !== undefined) {
      if (options.socketPath !== undefined) {
        throw specInvalid("engine", "socketPath and host are exclusive");
      }
      if (options.ca === undefined || options.cert === undefined || options.key === undefined) {
        throw specInvalid("engine", "a remote engine needs ca, cert and key (mutual TLS)");
      }
      const remote = {
        host: options.host,
        port: options.port ?? 2376,
        protocol: "https" as const,
        ...tlsExtras(options.serverUri),
        ca: options.ca,
        cert: options.cert,
        key: options.key,
      };
      this.docker = new Docker({ ...remote, timeout });
      this.streamDocker = new Docker(remote);
    } else {
      const socketPath = options.socketPath ?? DEFAULT_SOCKET_PATH;
      this.docker = new Docker({ socketPath, timeout });
      this.streamDocker = new Docker({ socketPath });
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

  /**
   * Removes a container and its anonymous volumes, running, paused or not; absent is
   * fine. (gVisor cannot kill a paused sandbox: a paused container is unpaused first
   * when the engine refuses to remove it.)
   */
  async remove(id: string): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      await c.remove({ force: true, v: true });
    } catch (e) {
      if (statusCode(e) === 404) return;
      const paused = await c.inspect().then((i) => i.State.Paused === true, () => false);
      if (!paused) throw wrap("remove a container", e);
      try {
        await monitoring.unpause(this.docker, id);
        await c.remove({ force: true, v: true });
      } catch (e2) {
        if (statusCode(e2) === 404) return;
        throw wrap("remove a container", e2);
      }
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
      return list.map((c) => ({ id: c.Id, name: (c.Names[0] ?? "").replace(/^\//, ""), labels: c.Labels ?? {}, state: c.State, status: c.Status ?? "" }));
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

  /**
   * The image as a `docker save` archive (manifest.json, config, layer tars), streamed as
   * the engine sends it. `ref` is an image id (`sha256:<hex>`) or a `repo:tag`.
   */
  async exportImage(ref: string): Promise<NodeJS.ReadableStream> {
    const isId = /^(sha256:)?[a-f0-9]{64}$/.test(ref);
    if (!isId && (!REPO_TAG_RE.test(ref) || ref.split("/").some((s) => s === ".." || s === "."))) {
      throw specInvalid("image", "must be an image id (sha256:<hex>) or a repo:tag");
    }
    try {
      return await this.docker.getImage(ref).get();
    } catch (e) {
      throw wrap("export an image", e);
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

  /**
   * The engine's event stream from `since` (`SECONDS[.NANOSECONDS]`, inclusive), until it
   * is closed or, with `until`, until then. Fails when the engine does not answer.
   */
  async events(opts: { since?: string; until?: string } = {}): Promise<EngineEventStream> {
    for (const t of [opts.since, opts.until]) {
      if (t !== undefined && !/^\d{1,12}(\.\d{1,9})?$/.test(t)) throw specInvalid("events", "since and until are SECONDS[.NANOSECONDS]");
    }
    try {
      return await monitoring.openEvents(this.streamDocker, opts);
    } catch (e) {
      throw wrap("open its event stream", e);
    }
  }

  /** One sample of a container's resource use, without waiting; undefined when absent. */
  async statsOnce(id: string): Promise<EngineStats | undefined> {
    try {
      return await monitoring.statsOnce(this.docker, id);
    } catch (e) {
      throw wrap("report a container's stats", e);
    }
  }

  /** Pauses a container (idempotent); false when absent. */
  async pause(id: string): Promise<boolean> {
    try {
      return await monitoring.pause(this.docker, id);
    } catch (e) {
      throw wrap("pause a container", e);
    }
  }

  /** Unpauses a container (idempotent); false when absent. */
  async unpause(id: string): Promise<boolean> {
    try {
      return await monitoring.unpause(this.docker, id);
    } catch (e) {
      throw wrap("unpause a container", e);
    }
  }

  /** Stops a container and keeps it (idempotent); false when absent. */
  async stop(id: string, graceSeconds = 5): Promise<boolean> {
    try {
      return await monitoring.stopKeep(this.docker, id, graceSeconds);
    } catch (e) {
      throw wrap("stop a container", e);
    }
  }

  /** Takes a container off every network; the names it was on, undefined when absent. */
  async disconnectAll(id: string): Promise<string[] | undefined> {
    try {
      return await monitoring.disconnectAll(this.docker, id);
    } catch (e) {
      throw wrap("disconnect a container from its networks", e);
    }
  }

  /** The networks a container is on; undefined when absent. */
  async networksOf(id: string): Promise<string[] | undefined> {
    try {
      return await monitoring.networksOf(this.docker, id);
    } catch (e) {
      throw wrap("list a container's networks", e);
    }
  }
}
