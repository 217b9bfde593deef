/**
 * What monitoring asks of an engine: its event stream, one-shot stats, and the moves of
 * a response (stop without removing, pause, unpause, take off every network). The
 * engine (engine.ts) calls these and turns what they throw into the runtime's errors.
 */
import type { Readable } from "node:stream";
import type Docker from "dockerode";
import { statusCode } from "./engine-support.js";

/** One event as the Docker Engine API sends it (`GET /events`, API 1.41). */
export interface EngineEvent {
  readonly Type: string;
  readonly Action: string;
  readonly Actor: { readonly ID: string; readonly Attributes: Readonly<Record<string, string>> };
  /** Seconds since the epoch. */
  readonly time: number;
  /** Nanoseconds since the epoch, as the engine wrote it (kept as text: it exceeds a double). */
  readonly timeNano: string;
  readonly scope?: string;
}

/** An open event stream: its events in order, and a way to end it. */
export interface EngineEventStream extends AsyncIterable<EngineEvent> {
  close(): void;
}

/** A line (or object) that is not an event ends the stream with this error. */
export class MalformedEventError extends Error {}

const TIME_NANO_RE = /"timeNano"\s*:\s*(\d{1,25})/;

/** Checks one decoded event's shape; the timeNano is taken from the raw text, not the double. */
function toEvent(raw: string): EngineEvent {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new MalformedEventError("an event is not JSON");
  }
  const o = v as Record<string, unknown>;
  const actor = o.Actor as Record<string, unknown> | undefined;
  const nano = TIME_NANO_RE.exec(raw)?.[1];
  if (
    typeof o !== "object" || o === null || typeof o.Type !== "string" || typeof o.Action !== "string" ||
    typeof o.time !== "number" || nano === undefined || typeof actor !== "object" || actor === null || typeof actor.ID !== "string"
  ) {
    throw new MalformedEventError("an event lacks Type, Action, Actor.ID, time or timeNano");
  }
  const attrs: Record<string, string> = {};
  const a = actor.Attributes;
  if (typeof a === "object" && a !== null) {
    for (const [k, val] of Object.entries(a as Record<string, unknown>)) if (typeof val === "string") attrs[k] = val;
  }
  return {
    Type: o.Type,
    Action: o.Action,
    Actor: { ID: actor.ID, Attributes: attrs },
    time: o.time,
    timeNano: nano,
    ...(typeof o.scope === "string" ? { scope: o.scope } : {}),
  };
}

/**
 * Opens `GET /events` from `since` (`SECONDS[.NANOSECONDS]`, inclusive) until the stream
 * is closed, or until `until` when given (the engine then ends it).
 */
export async function openEvents(docker: Docker, opts: { since?: string; until?: string }): Promise<EngineEventStream> {
  const controller = new AbortController();
  const query: Record<string, string> = {};
  if (opts.since !== undefined) query.since = opts.since;
  if (opts.until !== undefined) query.until = opts.until;
  const stream = (await docker.getEvents({ ...query, abortSignal: controller.signal } as Parameters<Docker["getEvents"]>[0])) as unknown as Readable;
  const close = (): void => {
    controller.abort();
    stream.destroy();
  };
  async function* events(): AsyncGenerator<EngineEvent> {
    let buf = "";
    try {
      for await (const chunk of stream) {
        buf += typeof chunk === "string" ? chunk : (chunk as Buffer).toString("utf8");
        if (buf.length > 4 * 1024 * 1024) throw new MalformedEventError("an event is larger than 4 MiB");
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line !== "") yield toEvent(line);
        }
      }
      const rest = buf.trim();
      if (rest !== "") yield toEvent(rest);
    } finally {
      close();
    }
  }
  const it = events();
  return { [Symbol.asyncIterator]: () => it, close };
}

/** The engine's one-shot stats of a container (API ≥ 1.41: no second sample, no wait). */
export interface EngineStats {
  /** ISO time the engine read the sample. */
  readonly read: string;
  readonly cpuTotalNs: number;
  readonly systemCpuNs: number;
  readonly onlineCpus: number;
  readonly memoryUsageBytes: number;
  readonly memoryLimitBytes: number;
  /** The page cache in the usage (cgroup v2 inactive_file, v1 total_inactive_file), subtracted as `docker stats` does. */
  readonly memoryCacheBytes: number;
  readonly pids: number;
  readonly netRxBytes: number;
  readonly netTxBytes: number;
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

export async function statsOnce(docker: Docker, id: string): Promise<EngineStats | undefined> {
  let s: Record<string, unknown>;
  try {
    s = (await docker.getContainer(id).stats({ stream: false, "one-shot": true } as { stream: false })) as unknown as Record<string, unknown>;
  } catch (e) {
    if (statusCode(e) === 404) return undefined;
    throw e;
  }
  const cpu = (s.cpu_stats ?? {}) as Record<string, unknown>;
  const usage = (cpu.cpu_usage ?? {}) as Record<string, unknown>;
  const mem = (s.memory_stats ?? {}) as Record<string, unknown>;
  const memStats = (mem.stats ?? {}) as Record<string, unknown>;
  const pids = (s.pids_stats ?? {}) as Record<string, unknown>;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values((s.networks ?? {}) as Record<string, Record<string, unknown>>)) {
    rx += num(n.rx_bytes);
    tx += num(n.tx_bytes);
  }
  return {
    read: typeof s.read === "string" ? s.read : new Date().toISOString(),
    cpuTotalNs: num(usage.total_usage),
    systemCpuNs: num(cpu.system_cpu_usage),
    onlineCpus: num(cpu.online_cpus),
    memoryUsageBytes: num(mem.usage),
    memoryLimitBytes: num(mem.limit),
    memoryCacheBytes: num(memStats.inactive_file ?? memStats.total_inactive_file),
    pids: num(pids.current),
    netRxBytes: rx,
    netTxBytes: tx,
  };
}

/** Pauses a running container; a paused one is left as it is. Returns false when absent. */
export async function pause(docker: Docker, id: string): Promise<boolean> {
  const c = docker.getContainer(id);
  try {
    const st = (await c.inspect()).State;
    if (st.Paused) return true;
    await c.pause();
    return true;
  } catch (e) {
    if (statusCode(e) === 404) return false;
    // Paused meanwhile by someone else: what was asked is true.
    if (statusCode(e) === 409 && (await c.inspect().then((i) => i.State.Paused, () => false))) return true;
    throw e;
  }
}

/** Unpauses a paused container; one that is not paused is left as it is. Returns false when absent. */
export async function unpause(docker: Docker, id: string): Promise<boolean> {
  const c = docker.getContainer(id);
  try {
    const st = (await c.inspect()).State;
    if (!st.Paused) return true;
    await c.unpause();
    return true;
  } catch (e) {
    if (statusCode(e) === 404) return false;
    throw e;
  }
}

/** Stops a container (SIGTERM, SIGKILL after `graceSeconds`) and keeps it. Returns false when absent. */
export async function stopKeep(docker: Docker, id: string, graceSeconds: number): Promise<boolean> {
  try {
    await docker.getContainer(id).stop({ t: graceSeconds });
    return true;
  } catch (e) {
    const s = statusCode(e);
    if (s === 304) return true;
    if (s === 404) return false;
    throw e;
  }
}

/**
 * Takes a container off every network it is attached to; returns the names of those it
 * was on (empty when it was on none, undefined when the container is absent).
 */
export async function disconnectAll(docker: Docker, id: string): Promise<string[] | undefined> {
  let info: Docker.ContainerInspectInfo;
  try {
    info = await docker.getContainer(id).inspect();
  } catch (e) {
    if (statusCode(e) === 404) return undefined;
    throw e;
  }
  const names = Object.keys(info.NetworkSettings?.Networks ?? {}).sort();
  for (const name of names) {
    try {
      await docker.getNetwork(name).disconnect({ Container: info.Id, Force: true });
    } catch (e) {
      // Already off it (404), or the network is gone: either way it is not attached.
      const s = statusCode(e);
      if (s !== 404 && s !== 409) throw e;
    }
  }
  return names;
}

/** The names of the networks a container is attached to (undefined when absent). */
export async function networksOf(docker: Docker, id: string): Promise<string[] | undefined> {
  try {
    const info = await docker.getContainer(id).inspect();
    return Object.keys(info.NetworkSettings?.Networks ?? {}).sort();
  } catch (e) {
    if (statusCode(e) === 404) return undefined;
    throw e;
  }
}
