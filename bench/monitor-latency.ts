/**
 * Benchmark 13: runtime monitoring, event-to-alert latency under a burst of engine events.
 *
 * The monitoring the gateway runs, built as `src/app.ts` builds it: a real data directory
 * (SQLite in WAL, the hash-chained audit log), the shipped monitoring rules seeded through
 * MonitoringRulesService, RuleEngine, AlertService, ResponseActions, GatewayMetrics and
 * MonitoringService with one node (`local`, the engine on the local socket). One managed
 * container: a busybox container made with `containerSpecFor` (the gateway's labels, runc,
 * a memory limit) and the revision, deployment and replica records that name it, so the
 * monitor counts it as managed (checked: the alert names its namespace and deployment).
 *
 * The burst: EVENTS `docker exec` creations into that container through the Engine API
 * (`POST /containers/{id}/exec`, IN_FLIGHT at once, as fast as the engine takes them), by
 * a client process on CPU 1; each makes one `exec_create` engine event, which the shipped
 * critical rule `exec-into-container` matches. Every event is recorded, judged and
 * deduplicated into one alert whose count grows, each in its own transaction.
 *
 * Latency of an event: the time `Monitor.handleEngineEvent` returned for it (its
 * transaction committed) minus the event's own engine time (`timeNano`). Baseline in the
 * same run: the same burst read by a bare stream (`DockerEngine.events`, no handling):
 * receipt time minus event time. Each side gets a warm-up of WARMUP execs first. Checked:
 * every exec of the burst was handled exactly once (its event, by `execID`), the recorded
 * events and the alert's count are warm-up + burst, and the alert names the deployment.
 * Target: p99 <= 500 ms.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { AuditLog } from "../src/audit/index.js";
import { DEFAULT_MONITORING_CONFIG } from "../src/core/index.js";
import { manifestDigest, validateManifest } from "../src/deploy/index.js";
import type { MonitoringService, MonitorEvent } from "../src/monitoring/index.js";
import { DockerEngine, GATEWAY_LABEL, LOCAL_NODE, containerSpecFor, resolveImage } from "../src/runtime/index.js";
import { createDataDir, Store } from "../src/store/index.js";
import { buildBusyboxImage, newTestRun } from "../test/support/docker.js";
import { benchMonitoring } from "./lib/monitoring.js";
import { call, canPin, cpuMs, runBenchmark, serveRequests, spawnBench, stopChild } from "./lib/proc.js";
import { fmtRatio, type BenchResult } from "./lib/stats.js";

const EVENTS = Number(process.env.BENCH_MONITOR_EVENTS ?? 1_000);
const WARMUP = Number(process.env.BENCH_MONITOR_WARMUP ?? 50);
const IN_FLIGHT = Number(process.env.BENCH_MONITOR_IN_FLIGHT ?? 8);
const TARGET_P99_MS = 500;
/** How long a side may take to see every event of a burst before the benchmark fails. */
const DRAIN_BUDGET_MS = 120_000;
const NS = "bench";
const DEPLOYMENT = "watched";
const GATEWAY_ID = "benchmonlat";
const UID = 10001;
const TD = "portcullis.local";
const RULE = "exec-into-container";
/** Set in the environment of the client process this file starts. */
const CLIENT_ENV = "BENCH_MONITOR_EXEC_CLIENT";

/** Wall-clock time in ms since the epoch, with sub-millisecond resolution. */
const wallMs = (): number => performance.timeOrigin + performance.now();
/** An engine event's time in ms since the epoch, to the microsecond. */
const eventMs = (timeNano: string): number => Number(BigInt(timeNano) / 1000n) / 1000;

function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)} ms` : "n/a");

// ---------------------------------------------------------------------------------------
// The client (CPU 1): exec creations, IN_FLIGHT at once.

interface BurstRequest {
  readonly op: "burst";
  readonly container: string;
  readonly count: number;
  readonly inFlight: number;
}

interface BurstResult {
  readonly execIds: string[];
  /** Wall clock (ms since the epoch) when the first request went out and the last answer came. */
  readonly startMs: number;
  readonly endMs: number;
}

async function burst(req: BurstRequest): Promise<BurstResult> {
  const docker = new Docker();
  const container = docker.getContainer(req.container);
  const execIds: string[] = [];
  let next = 0;
  const startMs = wallMs();
  const worker = async (): Promise<void> => {
    while (next < req.count) {
      next++;
      const exec = await container.exec({ Cmd: ["/bin/true"], AttachStdout: false, AttachStderr: false });
      execIds.push(exec.id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(req.inFlight, req.count) }, worker));
  return { execIds, startMs, endMs: wallMs() };
}

// ---------------------------------------------------------------------------------------
// The benchmark (CPU 0).

interface Side {
  /** For each exec whose event was seen: receipt (or commit) time minus event time, at its first sighting. */
  readonly latency: Map<string, number>;
  /** When each exec's event was first seen (wall clock). */
  readonly seenAt: Map<string, number>;
  /** How many times each exec's event was seen. */
  readonly seen: Map<string, number>;
}

const newSide = (): Side => ({ latency: new Map(), seenAt: new Map(), seen: new Map() });

function observe(side: Side, execId: string, timeNano: string): void {
  const at = wallMs();
  const n = side.seen.get(execId) ?? 0;
  side.seen.set(execId, n + 1);
  if (n > 0) return;
  side.latency.set(execId, at - eventMs(timeNano));
  side.seenAt.set(execId, at);
}

async function until(cond: () => boolean, budgetMs: number, what: string): Promise<void> {
  const deadline = Date.now() + budgetMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Measured {
  readonly lat: number[];
  readonly emitMs: number;
  readonly emitRate: number;
  /** From the first exec sent to the last event handled. */
  readonly drainMs: number;
  /** From the last exec answered to the last event handled. */
  readonly tailMs: number;
  /** Events per second from the first event handled to the last. */
  readonly handleRate: number;
}

/** The figures of one burst: its execs' latencies and times, on one side. */
function measured(side: Side, b: BurstResult): Measured {
  const lat = b.execIds.map((id) => side.latency.get(id) as number);
  const seen = b.execIds.map((id) => side.seenAt.get(id) as number);
  const first = Math.min(...seen);
  const last = Math.max(...seen);
  return {
    lat,
    emitMs: b.endMs - b.startMs,
    emitRate: (b.execIds.length * 1000) / (b.endMs - b.startMs),
    drainMs: last - b.startMs,
    tailMs: last - b.endMs,
    handleRate: last > first ? ((b.execIds.length - 1) * 1000) / (last - first) : Number.NaN,
  };
}

async function main(): Promise<BenchResult> {
  const engine = new DockerEngine();
  const run = newTestRun();
  const work = mkdtempSync(join(tmpdir(), "portcullis-bench-monlat-"));
  const dataDir = join(work, "data");
  createDataDir(dataDir, { createdAt: new Date().toISOString(), trustDomain: TD });
  const store = Store.open(dataDir);
  const image = await buildBusyboxImage(engine, run, { user: `${UID}:${UID}` });
  process.env[CLIENT_ENV] = "1";
  const client = spawnBench("monitor-latency.ts", canPin() ? 1 : undefined);
  delete process.env[CLIENT_ENV];
  let service: MonitoringService | undefined;
  let audit: AuditLog | undefined;
  try {
    const imageId = (await resolveImage(engine, image))?.id;
    if (imageId === undefined) throw new Error("the bench image is missing");

    // The managed container and the records the deployment controller would have written.
    const parsed = validateManifest({
      apiVersion: "portcullis/v1",
      kind: "Deployment",
      metadata: { name: DEPLOYMENT, namespace: NS },
      spec: {
        image,
        command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
        user: `${UID}:${UID}`,
        replicas: 1,
        resources: { cpus: 0.25, memory: "32Mi", pids: 64 },
        runtime: "standard",
      },
    });
    const digest = manifestDigest(parsed.manifest);
    const jti = `bench-${randomBytes(8).toString("hex")}`;
    const containerName = `pc-${GATEWAY_ID}-${NS}-${DEPLOYMENT}-r1-0`;
    const now = Date.now();
    store.namespaces.insert({ name: NS, labels: {}, createdAt: now, createdBy: "user:bench" });
    store.deployRequests.insert({
      jti, requester: "user:bench", operation: "create", namespace: NS, name: DEPLOYMENT, digest, jws: "bench.not.signed", jwsSha256: "00",
      signerCertificatePem: "", receivedAt: now, expiresAt: now + 60_000, result: null,
    });
    store.deployments.insertRevision({
      namespace: NS, name: DEPLOYMENT, revision: 1, manifest: JSON.stringify(parsed.manifest), digest, imageId, runtime: "runc", jti, requester: "user:bench", createdAt: now,
    });
    store.deployments.insert(NS, DEPLOYMENT, 1, 1, now);
    store.deployments.insertReplica({ containerName, namespace: NS, name: DEPLOYMENT, revision: 1, ordinal: 0, node: LOCAL_NODE }, now);
    const containerId = await engine.create(
      containerSpecFor(parsed.spec, {
        containerName, gatewayId: GATEWAY_ID, revision: 1, ordinal: 0, jti, manifestDigest: digest, imageId, user: `${UID}:${UID}`,
        publishHost: "127.0.0.1", allowPublicBind: false,
      }),
    );
    await engine.start(containerId);
    store.deployments.replicaSeen(containerName, containerId, "runc", Date.now());

    const emit = (count: number) => call<BurstResult>(client, { op: "burst", container: containerId, count, inFlight: IN_FLIGHT }, DRAIN_BUDGET_MS);
    const isExec = (type: string, action: string, actor: string) => type === "container" && actor === containerId && action.startsWith("exec_create");

    // Baseline: a bare stream of the engine's events, no handling.
    const bare = newSide();
    let bareResult: BurstResult | undefined;
    let bareCpu = 0;
    {
      const stream = await engine.events({});
      const reading = (async () => {
        for await (const e of stream) {
          const execId = e.Actor.Attributes.execID;
          if (execId !== undefined && isExec(e.Type, e.Action, e.Actor.ID)) observe(bare, execId, e.timeNano);
        }
      })().catch(() => undefined);
      try {
        const warm = await emit(WARMUP);
        await until(() => warm.execIds.every((id) => bare.seen.has(id)), DRAIN_BUDGET_MS, "the bare stream's warm-up events");
        const cpu0 = cpuMs();
        const r = await emit(EVENTS);
        bareResult = r;
        await until(() => r.execIds.every((id) => bare.seen.has(id)), DRAIN_BUDGET_MS, "the bare stream's burst events");
        bareCpu = cpuMs() - cpu0;
      } finally {
        stream.close();
        await reading;
      }
    }

    // The gateway's monitoring, composed as the gateway composes it (composeMonitoring).
    const { service: svc, alerts, audit: a } = benchMonitoring(store, engine, GATEWAY_ID, DEFAULT_MONITORING_CONFIG);
    audit = a;
    service = svc;
    const gw = newSide();
    let handled = 0;
    const handle = svc.monitor.handleEngineEvent.bind(svc.monitor);
    svc.monitor.handleEngineEvent = async (node: string, ev: MonitorEvent): Promise<number> => {
      const n = await handle(node, ev);
      handled++;
      const execId = ev.attributes.execID;
      if (execId !== undefined && isExec(ev.type, ev.action, ev.actor)) observe(gw, execId, ev.timeNano);
      return n;
    };
    svc.start();
    if (!(await svc.streams.settle(Date.now(), 30_000))) throw new Error("the event stream did not come up");
    const warm = await emit(WARMUP);
    await until(() => warm.execIds.every((id) => gw.seen.has(id)), DRAIN_BUDGET_MS, "the gateway's warm-up events");
    const handledBefore = handled;
    const gwCpu0 = cpuMs();
    const gwResult = await emit(EVENTS);
    await until(() => gwResult.execIds.every((id) => gw.seen.has(id)), DRAIN_BUDGET_MS, "the gateway's burst events");
    const gwCpu = cpuMs() - gwCpu0;
    // A moment for a late duplicate to show.
    await new Promise((r) => setTimeout(r, 500));
    const handledInBurst = handled - handledBefore;
    await svc.stop();
    service = undefined;

    // Checks: each exec handled exactly once; the store agrees; one alert, about the deployment.
    const once = gwResult.execIds.filter((id) => gw.seen.get(id) === 1).length;
    const recorded = store.monitorEvents.list({ node: LOCAL_NODE, type: "container", limit: 10_000 }).filter((e) => isExec(e.type, e.action, e.actor)).length;
    const execAlerts = alerts.list({ rule: RULE });
    const alert = execAlerts[0];
    const expected = WARMUP + EVENTS;
    const actions = alert !== undefined ? store.monitorActions.ofAlert(alert.id) : [];
    const checks = [
      { ok: once === EVENTS, text: `burst execs handled exactly once: ${once}/${EVENTS}` },
      { ok: recorded === expected, text: `exec_create events recorded: ${recorded} (expected ${WARMUP} warm-up + ${EVENTS})` },
      { ok: execAlerts.length === 1 && alert?.count === expected, text: `alerts of ${RULE}: ${execAlerts.length}, count ${alert?.count ?? 0} (expected 1 alert, count ${expected})` },
      { ok: alert?.namespace === NS && alert.deployment === DEPLOYMENT && alert.container === containerName, text: `alert about ${alert?.namespace ?? "?"}/${alert?.deployment ?? "?"} ${alert?.container ?? "?"} (managed)` },
      { ok: actions.length === 0, text: `response actions written: ${actions.length}` },
    ];
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0) throw new Error(`the burst was not handled as expected: ${failed.map((c) => c.text).join("; ")}`);
    await a.close();
    audit = undefined;

    const g = measured(gw, gwResult);
    if (bareResult === undefined) throw new Error("the baseline burst did not run");
    const b = measured(bare, bareResult);
    const p99 = percentile(g.lat, 0.99);
    const bareP99 = percentile(b.lat, 0.99);
    const pass = p99 <= TARGET_P99_MS;
    const pin = canPin() ? "taskset: monitoring on CPU 0, exec client on CPU 1" : "not pinned";
    const title = `Benchmark 13: runtime monitoring, event-to-alert latency, a burst of ${EVENTS.toLocaleString("en-US")} exec_create events into one managed container (${pin}; ${IN_FLIGHT} execs in flight)`;
    const row = (label: string, m: Measured) =>
      `  ${label.padEnd(38)}  ${ms(percentile(m.lat, 0.5)).padStart(9)}  ${ms(percentile(m.lat, 0.95)).padStart(9)}  ${ms(percentile(m.lat, 0.99)).padStart(9)}  ${ms(Math.max(...m.lat)).padStart(9)}  ${`${(m.emitMs / 1000).toFixed(2)} s (${Math.round(m.emitRate)}/s)`.padStart(16)}  ${`${(m.drainMs / 1000).toFixed(2)} s`.padStart(8)}  ${`${(Math.abs(m.tailMs) < 5 ? 0 : m.tailMs / 1000).toFixed(2)} s`.padStart(8)}`;
    const head = `  ${"case".padEnd(38)}  ${"p50".padStart(9)}  ${"p95".padStart(9)}  ${"p99".padStart(9)}  ${"max".padStart(9)}  ${"emitted in".padStart(16)}  ${"drained".padStart(8)}  ${"tail".padStart(8)}`;
    const lines = [
      title,
      head,
      `  ${"-".repeat(head.length - 2)}`,
      row("gateway: event -> alert committed", g),
      row("baseline: bare stream, event -> read", b),
      `  (drained: first exec sent to last event handled; tail: last exec answered to last event handled)`,
      `  ratio gateway / bare stream: p50 ${fmtRatio(percentile(g.lat, 0.5) / percentile(b.lat, 0.5))}, p99 ${fmtRatio(p99 / bareP99)}`,
      `  events handled per second, first to last of the burst: gateway ${Math.round(g.handleRate)}/s, bare stream ${Math.round(b.handleRate)}/s`,
      `  CPU of this process from the first exec sent to the last event seen: gateway ${gwCpu.toFixed(0)} ms (${((gwCpu * 1000) / EVENTS).toFixed(0)} µs per event), bare stream ${bareCpu.toFixed(0)} ms (${((bareCpu * 1000) / EVENTS).toFixed(0)} µs per event)`,
      `  checks: ${checks.map((c) => c.text).join("; ")}; engine events handled during the burst ${handledInBurst}`,
      `  target event-to-alert p99 <= ${TARGET_P99_MS} ms: ${ms(p99)}  ${pass ? "PASS" : "FAIL"}`,
    ];
    return {
      id: "monitor-latency",
      title,
      table: lines.join("\n"),
      summary: `monitor-latency: ${EVENTS} exec events, event-to-alert p50 ${ms(percentile(g.lat, 0.5))}, p99 ${ms(p99)} (bare stream p99 ${ms(bareP99)}, ${fmtRatio(p99 / bareP99)}); target p99 <= ${TARGET_P99_MS} ms ${pass ? "PASS" : "FAIL"}`,
      pass,
    };
  } finally {
    await service?.stop().catch(() => undefined);
    await audit?.close().catch(() => undefined);
    await stopChild(client);
    await engine.removeByLabel(`${GATEWAY_LABEL}=${GATEWAY_ID}`).catch(() => undefined);
    await engine.removeByLabel(run.selector).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
    store.close();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.env[CLIENT_ENV] === "1") serveRequests(async (msg) => burst(msg as unknown as BurstRequest));
else runBenchmark(main);
