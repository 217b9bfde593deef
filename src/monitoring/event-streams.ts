/**
 * One Docker events stream per node, resumed exactly where it stopped.
 *
 * Per node a loop opens `events({ since })`, turns each event into a MonitorEvent and
 * awaits `handle(node, ev)`: a node's events are handled one after another, in the order
 * the engine sent them. The handler commits the node's cursor (the timeNano of the last
 * event it handled) in the transaction that records the event; the stream never moves the
 * cursor itself. So:
 *
 * - a stream that ends or fails (engine stopped, socket closed, malformed event) marks
 *   the node `degraded`, waits a bounded exponential backoff (base, doubling, at most
 *   max; back to base once a connection stayed up 10 s) and opens again from the cursor;
 *   the engine replays the events it keeps in memory (its last 256) from there;
 * - a handler that throws tears the stream down the same way: the event it failed on was
 *   not committed and is delivered again;
 * - resuming starts `resumeOverlapMs` before the cursor (since is inclusive), so events
 *   the engine published slightly out of time order around a disconnect are delivered
 *   too; every event delivered a second time is recognised by the handler (its id was
 *   recorded) and dropped.
 *
 * A node streamed for the first time (no cursor) starts at the gateway's current time;
 * that start is written through `initCursor` before the stream opens, so a restart before
 * any event resumes there and not at the later restart time.
 *
 * The node list is read again every `pollNodesMs`: streams of new nodes open, those of
 * removed nodes close. `stop()` closes every stream and waits for the loops to end; every
 * timer is unref'd and none is left behind.
 */
import type { Clock, Logger } from "../core/index.js";
import { isPortcullisError } from "../core/index.js";
import type { DockerEngine, EngineEventStream } from "../runtime/index.js";
import { sinceOf, timeNanoOf, toMonitorEvent } from "./event-ids.js";
import type { MonitorEvent } from "./types.js";

export type StreamState = "connecting" | "up" | "degraded";

export interface EventStreamsOptions {
  /** The registry's nodes, read at start and at every poll. */
  readonly nodes: () => readonly { readonly name: string }[];
  readonly engine: (node: string) => Pick<DockerEngine, "events">;
  /** Where a node's stream resumes (a timeNano), undefined when it never streamed. */
  readonly cursor: (node: string) => string | undefined;
  /**
   * Records where a node that never streamed starts (the gateway's time when it first
   * streams it). Should only move a cursor forward (MonitorEventRepo.setCursor does).
   */
  readonly initCursor?: (node: string, timeNano: string) => void;
  /** Awaited: a node's events are handled one after another, in order. Throwing means "not handled". */
  readonly handle: (node: string, ev: MonitorEvent) => Promise<void>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** First reconnect delay; default 250 ms. */
  readonly reconnectBaseMs?: number;
  /** Longest reconnect delay; default 30 s. */
  readonly reconnectMaxMs?: number;
  /** How often the node list is read again; default 5 s. */
  readonly pollNodesMs?: number;
  /** How far before the cursor a stream resumes; default 1 s (see the header). */
  readonly resumeOverlapMs?: number;
  /** Every change of a node's stream state; `detail` says why a stream is down. */
  readonly onState?: (node: string, state: StreamState, detail?: string) => void;
}

export interface StreamStatus {
  readonly state: StreamState;
  /** ISO 8601: since when the stream is in this state. */
  readonly since: string;
  /** ISO 8601: when the latest event was received. */
  readonly lastEventAt?: string;
  /** Receipt time minus event time of the latest event. */
  readonly lagMs?: number;
  /** How many times the stream was opened again after it ended or failed. */
  readonly reconnects: number;
}

/** A connection that stayed up this long resets the backoff. */
const STABLE_MS = 10_000;
/** settle(): a stream counts as idle after this long without an event. */
const IDLE_MS = 250;

interface NodeLoop {
  readonly node: string;
  state: StreamState;
  stateSince: number;
  lastEventAt: number | undefined;
  lastEventTimeMs: number | undefined;
  lagMs: number | undefined;
  reconnects: number;
  busy: boolean;
  stopped: boolean;
  stream: EngineEventStream | undefined;
  /** Ends a backoff wait or a pending open early (stop). */
  wake: (() => void) | undefined;
  done: Promise<void>;
}

class HandlerFailed extends Error {}

function reasonOf(e: unknown): string {
  if (isPortcullisError(e)) return e.publicMessage;
  return e instanceof Error && e.message !== "" ? e.message : String(e);
}

export class EventStreams {
  private readonly loops = new Map<string, NodeLoop>();
  /** Loops of removed nodes that are still ending. */
  private readonly ending = new Map<string, Promise<void>>();
  private pollTimer: NodeJS.Timeout | undefined;
  private started = false;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly pollMs: number;
  private readonly overlapNs: bigint;

  constructor(private readonly opts: EventStreamsOptions) {
    this.baseMs = Math.max(1, opts.reconnectBaseMs ?? 250);
    this.maxMs = Math.max(this.baseMs, opts.reconnectMaxMs ?? 30_000);
    this.pollMs = Math.max(100, opts.pollNodesMs ?? 5_000);
    this.overlapNs = BigInt(Math.max(0, Math.floor(opts.resumeOverlapMs ?? 1_000))) * 1_000_000n;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.sync();
    this.pollTimer = setInterval(() => this.sync(), this.pollMs).unref();
  }

  /** Closes every stream and waits until every loop has ended (a handler running is awaited). */
  async stop(): Promise<void> {
    this.started = false;
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    const all = [...this.loops.values()];
    for (const l of all) this.halt(l);
    await Promise.all([...all.map((l) => l.done), ...this.ending.values()]);
    this.loops.clear();
  }

  state(node: string): StreamState | undefined {
    return this.loops.get(node)?.state;
  }

  states(): Record<string, StreamStatus> {
    const out: Record<string, StreamStatus> = {};
    for (const l of [...this.loops.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))) {
      out[l.node] = {
        state: l.state,
        since: new Date(l.stateSince).toISOString(),
        ...(l.lastEventAt !== undefined ? { lastEventAt: new Date(l.lastEventAt).toISOString() } : {}),
        ...(l.lagMs !== undefined ? { lagMs: l.lagMs } : {}),
        reconnects: l.reconnects,
      };
    }
    return out;
  }

  /**
   * Resolves true once every node's stream has caught up to `timeMs`: an event at or
   * after it was handled, or the stream is up and has been idle (no event, no handler
   * running) for a moment past it. False when `budgetMs` runs out first. For tests and
   * the CLI's `--wait`.
   */
  async settle(timeMs: number, budgetMs: number): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    for (;;) {
      const now = this.now();
      const caughtUp = [...this.loops.values()].every(
        (l) =>
          (l.lastEventTimeMs !== undefined && l.lastEventTimeMs >= timeMs) ||
          (l.state === "up" && !l.busy && now >= timeMs + IDLE_MS && now - l.stateSince >= IDLE_MS && now - (l.lastEventAt ?? 0) >= IDLE_MS),
      );
      if (caughtUp) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 25).unref());
    }
  }

  private now(): number {
    return this.opts.clock.now().getTime();
  }

  /** Opens streams for new nodes, closes those of removed ones. */
  private sync(): void {
    if (!this.started) return;
    let names: Set<string>;
    try {
      names = new Set(this.opts.nodes().map((n) => n.name));
    } catch (e) {
      this.opts.logger.error({ err: String(e) }, "monitoring: cannot read the node list for event streams");
      return;
    }
    for (const [node, l] of this.loops) {
      if (names.has(node)) continue;
      this.loops.delete(node);
      this.halt(l);
      const done = l.done.finally(() => this.ending.delete(node));
      this.ending.set(node, done);
    }
    for (const node of names) {
      // A node removed and added again waits until its old loop has ended.
      if (this.loops.has(node) || this.ending.has(node)) continue;
      this.loops.set(node, this.spawn(node));
    }
  }

  private halt(l: NodeLoop): void {
    l.stopped = true;
    l.stream?.close();
    l.wake?.();
  }

  private spawn(node: string): NodeLoop {
    const l: NodeLoop = {
      node,
      state: "connecting",
      stateSince: this.now(),
      lastEventAt: undefined,
      lastEventTimeMs: undefined,
      lagMs: undefined,
      reconnects: 0,
      busy: false,
      stopped: false,
      stream: undefined,
      wake: undefined,
      done: Promise.resolve(),
    };
    this.opts.onState?.(node, "connecting");
    l.done = this.run(l).catch((e: unknown) => {
      this.opts.logger.error({ node, err: String(e) }, "monitoring: event stream loop failed");
    });
    return l;
  }

  private setState(l: NodeLoop, state: StreamState, detail?: string): void {
    if (l.state === state) return;
    l.state = state;
    l.stateSince = this.now();
    try {
      this.opts.onState?.(l.node, state, detail);
    } catch (e) {
      this.opts.logger.error({ node: l.node, err: String(e) }, "monitoring: stream state listener failed");
    }
  }

  /** Where to resume: the cursor less the overlap; a node without one starts now. */
  private since(node: string): string {
    let cursor = this.opts.cursor(node);
    if (cursor === undefined) {
      cursor = timeNanoOf(this.now());
      this.opts.initCursor?.(node, cursor);
      return sinceOf(cursor);
    }
    const from = BigInt(cursor) - this.overlapNs;
    return sinceOf((from < 0n ? 0n : from).toString());
  }

  private async run(l: NodeLoop): Promise<void> {
    const { node } = l;
    let attempt = 0;
    while (!l.stopped) {
      let openedAt: number | undefined;
      let reason = "the engine ended the event stream";
      try {
        const opening = this.opts.engine(node).events({ since: this.since(node) });
        const stream = await new Promise<EngineEventStream | undefined>((resolve, reject) => {
          l.wake = () => resolve(undefined);
          opening.then(resolve, reject);
        }).finally(() => (l.wake = undefined));
        if (stream === undefined || l.stopped) {
          // Stopped while opening: close the stream if it opens after all.
          opening.then((s) => s.close(), () => undefined);
          break;
        }
        l.stream = stream;
        if (l.stopped) break;
        openedAt = this.now();
        this.setState(l, "up");
        for await (const e of stream) {
          if (l.stopped) break;
          const ev = toMonitorEvent(node, e);
          l.busy = true;
          try {
            await this.opts.handle(node, ev);
          } catch (err) {
            this.opts.logger.error({ node, event: ev.id, type: ev.type, action: ev.action, err: String(err) }, "monitoring: handling an event failed; the stream resumes from the last event handled");
            throw new HandlerFailed("handling an event failed");
          } finally {
            l.busy = false;
          }
          const at = this.now();
          l.lastEventAt = at;
          l.lastEventTimeMs = ev.timeMs;
          l.lagMs = Math.max(0, at - ev.timeMs);
        }
      } catch (e) {
        reason = e instanceof HandlerFailed ? e.message : reasonOf(e);
        if (!l.stopped && !(e instanceof HandlerFailed)) {
          const internal = isPortcullisError(e) && e.internal !== undefined ? String(e.internal) : undefined;
          this.opts.logger.warn({ node, reason, ...(internal !== undefined ? { cause: internal } : {}) }, "monitoring: event stream failed");
        }
      } finally {
        l.stream?.close();
        l.stream = undefined;
      }
      if (l.stopped) break;
      if (openedAt !== undefined && this.now() - openedAt >= STABLE_MS) attempt = 0;
      l.reconnects++;
      this.setState(l, "degraded", reason);
      const delay = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(attempt, 30));
      attempt++;
      await this.sleep(l, delay);
    }
  }

  private sleep(l: NodeLoop, ms: number): Promise<void> {
    if (l.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        l.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms).unref();
      l.wake = done;
    });
  }
}
