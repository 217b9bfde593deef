/**
 * Samples the resource use of managed containers, every `intervalMs`.
 *
 * A pass lists, on every node, the containers that carry the selector label (the
 * gateway's own: never another container) and reports each one's state (`onState`);
 * each running one gets one engine stats read (`statsOnce`, at most `concurrency` at once
 * per node: each read waits for the engine's next stats round, about a second) and a
 * StatsSample (`onSample`):
 *
 * - cpuPercent: container CPU time used between this container's previous sample and
 *   this one, over the wall-clock time between the two engine reads, × 100 (percent of
 *   one core). Undefined on a container's first sample, and when its CPU total went down
 *   (it restarted).
 * - memoryBytes: usage less the page cache (as `docker stats` shows it).
 * - memoryLimitBytes / memoryPercent: against the container's own limit. Without one the
 *   engine reports the host's memory as the limit; a limit at or above the node's total
 *   memory (`info().memoryBytes`, read once per node every 10 minutes) counts as none.
 *
 * A container listed in an earlier pass and no longer listed (removed, or its node
 * removed) is reported through `onGone`. Passes never overlap; a node that fails is
 * logged and skipped for that pass (its containers are not reported gone).
 */
import type { Clock, Logger } from "../core/index.js";
import type { DockerEngine, EngineStats } from "../runtime/index.js";
import { LABELS } from "../runtime/index.js";
import type { StatsSample } from "./types.js";

export interface SampledContainer {
  readonly node: string;
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** running, paused, restarting, exited, created, dead... */
  readonly state: string;
  /** healthy, unhealthy or starting when the container has a healthcheck. */
  readonly health: string | undefined;
}

export interface StatsSamplerOptions {
  readonly intervalMs: number;
  readonly nodes: () => readonly { readonly name: string }[];
  /** `info` gives the node's memory: a limit at or above it is no limit. */
  readonly engine: (node: string) => Pick<DockerEngine, "listContainers" | "statsOnce" | "info">;
  /** The label selector of managed containers: `io.portcullis.gateway=<gatewayId>`. */
  readonly selector: string;
  readonly onSample: (sample: StatsSample, container: SampledContainer) => void;
  /** Every listed container, each pass (for state rules). */
  readonly onState?: (container: SampledContainer, at: number) => void;
  /** A container listed in an earlier pass is no longer listed. */
  readonly onGone?: (node: string, containerId: string) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * Stats reads at once per node; default 16. Each read waits for the engine's next stats
   * round (about a second with dockerd 20.10, one-shot or not), so a pass takes about
   * ceil(running containers / concurrency) seconds: 100 containers in about 7 s.
   */
  readonly concurrency?: number;
}

export const DEFAULT_CONCURRENCY = 16;
/** How long a node's total memory is kept before it is read again. */
const HOST_MEMORY_TTL_MS = 600_000;

interface Previous {
  readonly cpuNs: number;
  readonly readNs: bigint;
}

const READ_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** The engine's read time (RFC 3339 with up to nine fraction digits) in ns; undefined if unusable. */
export function readTimeNs(read: string): bigint | undefined {
  const m = READ_RE.exec(read);
  if (m === null) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/** `(healthy)`, `(unhealthy)`, `(health: starting)` in the engine's status text. */
export function healthOf(status: string): string | undefined {
  if (/\(healthy\)/.test(status)) return "healthy";
  if (/\(unhealthy\)/.test(status)) return "unhealthy";
  if (/\(health: starting\)/.test(status)) return "starting";
  return undefined;
}

function selectorTest(selector: string): (labels: Readonly<Record<string, string>>) => boolean {
  const eq = selector.indexOf("=");
  if (eq < 0) return (labels) => Object.prototype.hasOwnProperty.call(labels, selector);
  const key = selector.slice(0, eq);
  const value = selector.slice(eq + 1);
  return (labels) => Object.prototype.hasOwnProperty.call(labels, key) && labels[key] === value;
}

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class StatsSampler {
  private readonly previous = new Map<string, Previous>();
  /** Per node, the containers its last successful pass listed. */
  private readonly listed = new Map<string, Set<string>>();
  private readonly hostMemory = new Map<string, { bytes: number; at: number }>();
  private readonly matches: (labels: Readonly<Record<string, string>>) => boolean;
  private readonly concurrency: number;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private pass: Promise<number> | undefined;

  constructor(private readonly opts: StatsSamplerOptions) {
    this.matches = selectorTest(opts.selector);
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const tick = (): void => {
      const began = this.now();
      void this.sampleOnce()
        .catch((e: unknown) => this.opts.logger.error({ err: String(e) }, "monitoring: stats pass failed"))
        .finally(() => {
          if (!this.started) return;
          const wait = Math.max(0, this.opts.intervalMs - (this.now() - began));
          this.timer = setTimeout(tick, wait).unref();
        });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** Stops sampling; a pass running is awaited. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.pass?.catch(() => undefined);
  }

  /** One pass over every node, after the one running (if any); resolves with the samples taken. */
  sampleOnce(): Promise<number> {
    const prior = this.pass ?? Promise.resolve(0);
    const next = prior.catch(() => 0).then(() => this.runPass());
    this.pass = next;
    void next.finally(() => {
      if (this.pass === next) this.pass = undefined;
    }).catch(() => undefined);
    return next;
  }

  private now(): number {
    return this.opts.clock.now().getTime();
  }

  private async runPass(): Promise<number> {
    let names: string[];
    try {
      names = this.opts.nodes().map((n) => n.name);
    } catch (e) {
      this.opts.logger.error({ err: String(e) }, "monitoring: cannot read the node list for stats");
      return 0;
    }
    const current = new Set(names);
    for (const [node, ids] of [...this.listed]) {
      if (current.has(node)) continue;
      for (const id of ids) this.gone(node, id);
      this.listed.delete(node);
      this.hostMemory.delete(node);
    }
    const counts = await Promise.all(
      names.map((node) =>
        this.sampleNode(node).catch((e: unknown) => {
          this.opts.logger.warn({ node, err: String(e) }, "monitoring: stats of the node skipped this pass");
          return 0;
        }),
      ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  private gone(node: string, id: string): void {
    this.previous.delete(`${node}\u0000${id}`);
    try {
      this.opts.onGone?.(node, id);
    } catch (e) {
      this.opts.logger.error({ node, container: id, err: String(e) }, "monitoring: container-gone listener failed");
    }
  }

  private async memoryTotal(node: string, engine: Pick<DockerEngine, "info">): Promise<number> {
    const cached = this.hostMemory.get(node);
    const now = this.now();
    if (cached !== undefined && now - cached.at < HOST_MEMORY_TTL_MS) return cached.bytes;
    const bytes = (await engine.info()).memoryBytes;
    this.hostMemory.set(node, { bytes, at: now });
    return bytes;
  }

  private async sampleNode(node: string): Promise<number> {
    const engine = this.opts.engine(node);
    const listedAt = this.now();
    const all = await engine.listContainers(this.opts.selector);
    // The engine filtered by label; checked again here: another container is never sampled.
    const mine: SampledContainer[] = all
      .filter((c) => this.matches(c.labels))
      .map((c) => ({ node, id: c.id, name: c.name, labels: c.labels, state: c.state, health: healthOf(c.status) }));
    const running = mine.filter((c) => c.state === "running");
    const hostTotal = running.length > 0 ? await this.memoryTotal(node, engine) : 0;

    const before = this.listed.get(node) ?? new Set<string>();
    const now = new Set(mine.map((c) => c.id));
    for (const id of before) if (!now.has(id)) this.gone(node, id);
    this.listed.set(node, now);

    for (const c of mine) {
      try {
        this.opts.onState?.(c, listedAt);
      } catch (e) {
        this.opts.logger.error({ node, container: c.name, err: String(e) }, "monitoring: container-state listener failed");
      }
    }

    let samples = 0;
    await eachLimited(running, this.concurrency, async (c) => {
      let stats: EngineStats | undefined;
      try {
        stats = await engine.statsOnce(c.id);
      } catch (e) {
        this.opts.logger.warn({ node, container: c.name, err: String(e) }, "monitoring: stats of a container skipped this pass");
        return;
      }
      if (stats === undefined) return; // removed since it was listed
      const sample = this.toSample(c, stats, hostTotal);
      samples++;
      try {
        this.opts.onSample(sample, c);
      } catch (e) {
        this.opts.logger.error({ node, container: c.name, err: String(e) }, "monitoring: stats listener failed");
      }
    });
    return samples;
  }

  private toSample(c: SampledContainer, s: EngineStats, hostTotal: number): StatsSample {
    const key = `${c.node}\u0000${c.id}`;
    const readNs = readTimeNs(s.read) ?? BigInt(this.now()) * 1_000_000n;
    const prev = this.previous.get(key);
    let cpuPercent: number | undefined;
    if (prev !== undefined && s.cpuTotalNs >= prev.cpuNs && readNs > prev.readNs) {
      cpuPercent = ((s.cpuTotalNs - prev.cpuNs) / Number(readNs - prev.readNs)) * 100;
    }
    this.previous.set(key, { cpuNs: s.cpuTotalNs, readNs });
    const memoryBytes = Math.max(0, s.memoryUsageBytes - s.memoryCacheBytes);
    const limit = s.memoryLimitBytes > 0 && (hostTotal <= 0 || s.memoryLimitBytes < hostTotal) ? s.memoryLimitBytes : 0;
    return {
      node: c.node,
      containerId: c.id,
      containerName: c.name,
      namespace: c.labels[LABELS.namespace] ?? "",
      deployment: c.labels[LABELS.deployment] ?? "",
      at: Number(readNs / 1_000_000n),
      cpuPercent,
      memoryBytes,
      memoryLimitBytes: limit,
      memoryPercent: limit > 0 ? (memoryBytes / limit) * 100 : undefined,
      pids: s.pids,
      netRxBytes: s.netRxBytes,
      netTxBytes: s.netTxBytes,
    };
  }
}
