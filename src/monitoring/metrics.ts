/**
 * The gateway's Prometheus metrics (prom-client), on a registry of their own (never the
 * process-global one): what the domains report through the MetricsSink interface of
 * core (requests, authorization decisions, admission denials, deploy latency, the scan
 * cache, audit appends), the monitoring domain's own series (event streams, alerts, the
 * resource use of managed containers), certificates counted from the store at scrape
 * time, and Node's process metrics, all prefixed `portcullis_`.
 *
 * Label values are bounded: routes are route patterns (never a raw URL; `unmatched` when
 * no route matched), resources, actions and checks come from declarations, and the
 * series of a container go when it does (`forgetContainer`).
 *
 * The network byte totals of a container are counters (`_total`): the engine reports
 * them as totals since the container started, and each sample sets the series to that
 * total (a restarted container starts again from 0, which Prometheus reads as a counter
 * reset).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { MetricsSink } from "../core/index.js";
import type { StatsSample } from "./types.js";

export interface GatewayMetricsOptions {
  /**
   * Certificates issued and revoked (CA certificates excluded), read at each scrape: the
   * store's counts, so they are exact across restarts.
   */
  readonly certificateCounts: () => { readonly issued: number; readonly revoked: number };
}

type ContainerLabels = { namespace: string; deployment: string; container: string; node: string };
type RequestLabels = { listener: string; route: string; method: string; status: string };

const PREFIX = "portcullis_";
const CONTAINER_LABELS = ["namespace", "deployment", "container", "node"] as const;

/** Seconds: from a millisecond to a minute (API requests, audit appends). */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds: deploys include scans, pulls and rollouts. */
const DEPLOY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds: from an engine event to its alert. */
const ALERT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class GatewayMetrics implements MetricsSink {
  /** The registry every series of this gateway is on. */
  readonly registry: Registry;

  private readonly httpRequests: Counter<keyof RequestLabels>;
  private readonly httpDuration: Histogram<keyof RequestLabels>;
  private readonly authzDecisions: Counter<"resource" | "action" | "decision">;
  private readonly admissionDenials: Counter<"check">;
  private readonly deployDuration: Histogram<"outcome">;
  private readonly scanCacheRequests: Counter<"result">;
  private readonly auditAppendSeconds: Histogram;
  private readonly streamUp: Gauge<"node">;
  private readonly eventLag: Gauge<"node">;
  private readonly eventToAlertSeconds: Histogram;
  private readonly alerts: Counter<"rule" | "severity">;
  private readonly cpu: Gauge<keyof ContainerLabels>;
  private readonly memory: Gauge<keyof ContainerLabels>;
  private readonly memoryLimit: Gauge<keyof ContainerLabels>;
  private readonly pids: Gauge<keyof ContainerLabels>;
  private readonly netRx: Counter<keyof ContainerLabels>;
  private readonly netTx: Counter<keyof ContainerLabels>;

  /** Label objects, made once per distinct value set (the hot paths allocate none). */
  private readonly requestLabels = new Map<string, RequestLabels>();
  private readonly authzLabels = new Map<string, { resource: string; action: string; decision: string }>();
  private readonly containers = new Map<string, ContainerLabels>();
  private static readonly HIT = Object.freeze({ result: "hit" });
  private static readonly MISS = Object.freeze({ result: "miss" });

  constructor(opts: GatewayMetricsOptions) {
    this.registry = new Registry();
    const registers = [this.registry];
    const counts = opts.certificateCounts;
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });

    this.httpRequests = new Counter({
      name: `${PREFIX}http_requests_total`,
      help: "API requests answered, by listener, route pattern, method and status",
      labelNames: ["listener", "route", "method", "status"],
      registers,
    });
    this.httpDuration = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: "Time from a request's arrival to its answer, by listener, route pattern, method and status",
      labelNames: ["listener", "route", "method", "status"],
      buckets: FAST_BUCKETS,
      registers,
    });
    this.authzDecisions = new Counter({
      name: `${PREFIX}authz_decisions_total`,
      help: "RBAC decisions of the API's guard, by resource, action and decision (allow or deny)",
      labelNames: ["resource", "action", "decision"],
      registers,
    });
    this.admissionDenials = new Counter({
      name: `${PREFIX}admission_denials_total`,
      help: "Deploy requests denied by admission, by denying check (a request denied by two checks counts once under each)",
      labelNames: ["check"],
      registers,
    });
    this.deployDuration = new Histogram({
      name: `${PREFIX}deploy_duration_seconds`,
      help: "Time from a deploy request's arrival in the pipeline to its decision, by outcome",
      labelNames: ["outcome"],
      buckets: DEPLOY_BUCKETS,
      registers,
    });
    this.scanCacheRequests = new Counter({
      name: `${PREFIX}scan_cache_requests_total`,
      help: "Image-scan verdicts served from the scan cache (hit) or scanned afresh (miss)",
      labelNames: ["result"],
      registers,
    });
    this.auditAppendSeconds = new Histogram({
      name: `${PREFIX}audit_append_seconds`,
      help: "Time to write one audit append (an entry, or a group commit of entries)",
      buckets: FAST_BUCKETS,
      registers,
    });
    this.streamUp = new Gauge({
      name: `${PREFIX}monitor_stream_up`,
      help: "1 while a node's event stream is up, 0 while it connects or is degraded",
      labelNames: ["node"],
      registers,
    });
    this.eventLag = new Gauge({
      name: `${PREFIX}monitor_event_lag_seconds`,
      help: "For the latest event of a node's stream: the time it was received minus the time of the event",
      labelNames: ["node"],
      registers,
    });
    this.eventToAlertSeconds = new Histogram({
      name: `${PREFIX}monitor_event_to_alert_seconds`,
      help: "Time from an event (or stats sample) to the alert it raised",
      buckets: ALERT_BUCKETS,
      registers,
    });
    this.alerts = new Counter({
      name: `${PREFIX}alerts_total`,
      help: "Alerts raised (or added to), by rule and severity",
      labelNames: ["rule", "severity"],
      registers,
    });
    this.cpu = this.containerGauge("container_cpu_percent", "CPU used since the previous sample, in percent of one core");
    this.memory = this.containerGauge("container_memory_bytes", "Memory in use");
    this.memoryLimit = this.containerGauge("container_memory_limit_bytes", "Memory limit (no series for a container without one)");
    this.pids = this.containerGauge("container_pids", "Processes and threads");
    this.netRx = this.containerCounter("container_network_receive_bytes_total", "Bytes received over all interfaces since the container started");
    this.netTx = this.containerCounter("container_network_transmit_bytes_total", "Bytes sent over all interfaces since the container started");
    new Counter({
      name: `${PREFIX}certificates_issued_total`,
      help: "Certificates issued by the gateway's CAs (CA certificates excluded), from the store",
      registers,
      collect() {
        const n = counts().issued;
        this.reset();
        this.inc(n);
      },
    });
    new Counter({
      name: `${PREFIX}certificates_revoked_total`,
      help: "Certificates revoked (CA certificates excluded), from the store",
      registers,
      collect() {
        const n = counts().revoked;
        this.reset();
        this.inc(n);
      },
    });
  }

  // --- MetricsSink ---

  request(listener: "api" | "bootstrap", route: string, method: string, status: number, seconds: number): void {
    const key = `${listener} ${method} ${status} ${route}`;
    let labels = this.requestLabels.get(key);
    if (labels === undefined) {
      labels = Object.freeze({ listener, route, method, status: String(status) }) as RequestLabels;
      this.requestLabels.set(key, labels);
    }
    this.httpRequests.inc(labels);
    if (seconds >= 0 && Number.isFinite(seconds)) this.httpDuration.observe(labels, seconds);
  }

  authz(resource: string, action: string, allowed: boolean): void {
    const key = `${resource} ${action} ${allowed ? "allow" : "deny"}`;
    let labels = this.authzLabels.get(key);
    if (labels === undefined) {
      labels = Object.freeze({ resource, action, decision: allowed ? "allow" : "deny" });
      this.authzLabels.set(key, labels);
    }
    this.authzDecisions.inc(labels);
  }

  admissionDenied(check: string): void {
    this.admissionDenials.inc({ check });
  }

  deployLatency(outcome: "accepted" | "denied" | "error", seconds: number): void {
    if (seconds >= 0 && Number.isFinite(seconds)) this.deployDuration.observe({ outcome }, seconds);
  }

  scanCache(hit: boolean): void {
    this.scanCacheRequests.inc(hit ? GatewayMetrics.HIT : GatewayMetrics.MISS);
  }

  auditAppend(seconds: number): void {
    if (seconds >= 0 && Number.isFinite(seconds)) this.auditAppendSeconds.observe(seconds);
  }

  // --- monitoring ---

  /** The resource use of one managed container, as last sampled. */
  observeSample(sample: StatsSample): void {
    const labels = this.containerLabels(sample);
    if (sample.cpuPercent !== undefined && Number.isFinite(sample.cpuPercent)) this.cpu.set(labels, sample.cpuPercent);
    setFinite(this.memory, labels, sample.memoryBytes);
    if (sample.memoryLimitBytes > 0) setFinite(this.memoryLimit, labels, sample.memoryLimitBytes);
    else this.memoryLimit.remove(labels);
    setFinite(this.pids, labels, sample.pids);
    setTotal(this.netRx, labels, sample.netRxBytes);
    setTotal(this.netTx, labels, sample.netTxBytes);
  }

  /** Removes every series of a container (gone, or no longer managed). */
  forgetContainer(node: string, containerName: string): void {
    const key = `${node}\0${containerName}`;
    const labels = this.containers.get(key);
    if (labels === undefined) return;
    this.containers.delete(key);
    this.removeContainerSeries(labels);
  }

  /** A node's event stream changed state; `lagSeconds` is that of its latest event, if known. */
  setStream(node: string, state: "connecting" | "up" | "degraded", lagSeconds: number | undefined): void {
    this.streamUp.set({ node }, state === "up" ? 1 : 0);
    if (lagSeconds !== undefined && Number.isFinite(lagSeconds)) this.eventLag.set({ node }, lagSeconds);
  }

  /** Removes a node's stream series (the node was removed). */
  forgetNode(node: string): void {
    this.streamUp.remove({ node });
    this.eventLag.remove({ node });
  }

  /** The time from an event (or sample) to the alert it raised. */
  eventToAlert(seconds: number): void {
    if (seconds >= 0 && Number.isFinite(seconds)) this.eventToAlertSeconds.observe(seconds);
  }

  alertRaised(rule: string, severity: string): void {
    this.alerts.inc({ rule, severity });
  }

  /** Every series, in the Prometheus text format (0.0.4). */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  // --- internals ---

  private containerGauge(name: string, help: string): Gauge<keyof ContainerLabels> {
    return new Gauge({ name: `${PREFIX}${name}`, help: `${help}, of a managed container`, labelNames: CONTAINER_LABELS, registers: [this.registry] });
  }

  private containerCounter(name: string, help: string): Counter<keyof ContainerLabels> {
    return new Counter({ name: `${PREFIX}${name}`, help: `${help}, of a managed container`, labelNames: CONTAINER_LABELS, registers: [this.registry] });
  }

  private containerLabels(s: StatsSample): ContainerLabels {
    const key = `${s.node}\0${s.containerName}`;
    const known = this.containers.get(key);
    if (known !== undefined && known.namespace === s.namespace && known.deployment === s.deployment) return known;
    // A name reused by another deployment: the old series go.
    if (known !== undefined) this.removeContainerSeries(known);
    const labels = Object.freeze({ namespace: s.namespace, deployment: s.deployment, container: s.containerName, node: s.node });
    this.containers.set(key, labels);
    return labels;
  }

  private removeContainerSeries(labels: ContainerLabels): void {
    for (const m of [this.cpu, this.memory, this.memoryLimit, this.pids]) m.remove(labels);
    for (const m of [this.netRx, this.netTx]) m.remove(labels);
  }
}

function setFinite(g: Gauge<keyof ContainerLabels>, labels: ContainerLabels, v: number): void {
  if (Number.isFinite(v)) g.set(labels, v);
}

/** Sets a counter to an absolute total (prom-client counters only add). */
function setTotal(c: Counter<keyof ContainerLabels>, labels: ContainerLabels, total: number): void {
  if (!(Number.isFinite(total) && total >= 0)) return;
  c.remove(labels);
  c.inc(labels, total);
}
