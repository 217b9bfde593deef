/**
 * Runtime monitoring as the gateway runs it: one event stream per node and the stats
 * sampler feed the monitor; response actions and alert deliveries run beside them;
 * recorded events older than the retention are pruned.
 */
import type { AuditSink, Clock, Logger, MonitoringConfig } from "../core/index.js";
import type { DockerEngine } from "../runtime/index.js";
import { GATEWAY_LABEL } from "../runtime/index.js";
import type { Store } from "../store/index.js";
import { EventStreams, type StreamState } from "./event-streams.js";
import { Monitor, type AlertRaiser, type MonitorMetrics, type RuleEvaluator } from "./monitor.js";
import { StatsSampler } from "./stats-sampler.js";

/** A background worker: response actions, webhook deliveries. */
export interface Worker {
  start(): void;
  stop(): Promise<void>;
  kick(): void;
}

export interface MonitoringServiceDeps {
  readonly store: Store;
  readonly audit: AuditSink;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly gatewayId: string;
  readonly config: MonitoringConfig;
  readonly nodes: () => readonly { readonly name: string }[];
  readonly engine: (node: string) => DockerEngine;
  readonly rules: RuleEvaluator;
  readonly alerts: AlertRaiser;
  readonly workers: readonly Worker[];
  readonly metrics?: MonitorMetrics & { setStream(node: string, state: StreamState, lagSeconds: number | undefined): void };
  /** First reconnect delay of an event stream (tests shorten or lengthen it). */
  readonly reconnectBaseMs?: number;
  /** How often the node list is read again for streams to open or close. */
  readonly pollNodesMs?: number;
}

const PRUNE_EVERY_MS = 3_600_000;

export class MonitoringService {
  readonly monitor: Monitor;
  readonly streams: EventStreams;
  readonly sampler: StatsSampler;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: MonitoringServiceDeps) {
    const { store, clock, logger, config } = deps;
    this.monitor = new Monitor({
      store,
      audit: deps.audit,
      clock,
      logger,
      gatewayId: deps.gatewayId,
      engine: deps.engine,
      rules: deps.rules,
      alerts: deps.alerts,
      afterAlerts: () => {
        for (const w of deps.workers) w.kick();
      },
      ...(deps.metrics !== undefined ? { metrics: deps.metrics } : {}),
    });
    this.streams = new EventStreams({
      nodes: deps.nodes,
      engine: deps.engine,
      cursor: (node) => store.monitorEvents.cursor(node),
      initCursor: (node, timeNano) => store.monitorEvents.setCursor(node, timeNano, clock.now().getTime()),
      handle: async (node, ev) => {
        await this.monitor.handleEngineEvent(node, ev);
      },
      clock,
      logger,
      reconnectMaxMs: config.reconnectMaxMs,
      ...(deps.reconnectBaseMs !== undefined ? { reconnectBaseMs: deps.reconnectBaseMs } : {}),
      ...(deps.pollNodesMs !== undefined ? { pollNodesMs: deps.pollNodesMs } : {}),
      onState: (node, state, detail) => {
        if (state === "degraded") logger.warn({ node, detail }, "monitoring: event stream down; the node is degraded until it reconnects");
        else if (state === "up") logger.info({ node }, "monitoring: event stream up");
        deps.metrics?.setStream(node, state, undefined);
      },
    });
    this.sampler = new StatsSampler({
      intervalMs: config.statsIntervalMs,
      nodes: deps.nodes,
      engine: deps.engine,
      selector: `${GATEWAY_LABEL}=${deps.gatewayId}`,
      onSample: (sample, container) => {
        try {
          this.monitor.handleSample(sample, container.labels);
        } catch (e) {
          logger.error({ err: String(e), container: container.name }, "monitoring: judging a stats sample failed");
        }
      },
      onState: (c, at) => {
        try {
          this.monitor.handleState({ node: c.node, containerId: c.id, containerName: c.name, status: c.state, health: c.health, at, labels: c.labels });
        } catch (e) {
          logger.error({ err: String(e), container: c.name }, "monitoring: judging a container state failed");
        }
      },
      onGone: (node, containerId) => this.monitor.containerGone(node, containerId),
      clock,
      logger,
    });
  }

  start(): void {
    for (const w of this.deps.workers) w.start();
    this.streams.start();
    this.sampler.start();
    const prune = (): void => {
      try {
        this.deps.store.monitorEvents.prune(this.deps.clock.now().getTime() - this.deps.config.eventRetentionMs);
      } catch (e) {
        this.deps.logger.error({ err: String(e) }, "monitoring: pruning recorded events failed");
      }
    };
    prune();
    this.pruneTimer = setInterval(prune, PRUNE_EVERY_MS).unref();
  }

  async stop(): Promise<void> {
    if (this.pruneTimer !== undefined) clearInterval(this.pruneTimer);
    this.pruneTimer = undefined;
    await this.streams.stop();
    await this.sampler.stop();
    for (const w of this.deps.workers) await w.stop();
  }

  /** Each node's event stream: up, connecting, or degraded (down, reconnecting). */
  streamStates(): ReturnType<EventStreams["states"]> {
    return this.streams.states();
  }
}
