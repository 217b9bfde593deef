/**
 * Benchmark 14: runtime monitoring, the CPU the gateway spends watching idle managed
 * containers.
 *
 * CONTAINERS idle managed containers, PER_DEPLOYMENT replicas per deployment: busybox
 * `sleep` loops made with `containerSpecFor` (the gateway's labels, runc, a memory limit)
 * and the revision, deployment and replica records that name them, created and started
 * outside the measurement, CREATE_IN_FLIGHT at a time. The monitoring the gateway runs,
 * built as `src/app.ts` builds it: the shipped rules (MonitoringRulesService,
 * RuleEngine), AlertService, ResponseActions (its worker polls for pending actions),
 * GatewayMetrics observing every sample, and MonitoringService with one node (`local`):
 * the node's event stream, and the stats sampler every INTERVAL_MS (each pass: list the
 * containers by the gateway's label, one one-shot stats read per running container, 16
 * at once, each sample judged by the rules).
 *
 * Measured: this process's CPU (`process.cpuUsage()`) over PASSES sampling intervals with
 * the monitoring running, from the start of one pass to the start of the pass PASSES later,
 * after a warm-up pass; then the same length of time with the monitoring stopped (the
 * idle baseline of the same process). Each pass's wall time and sample count are
 * recorded: a pass must end within its interval and sample every container. For scale,
 * dockerd's own CPU in both windows (/proc; other work on the machine moves it).
 * Target: the monitoring window's CPU <= 5% of one core.
 */
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog } from "../src/audit/index.js";
import { DEFAULT_MONITORING_CONFIG } from "../src/core/index.js";
import { manifestDigest, validateManifest, type DeploymentSpec } from "../src/deploy/index.js";
import type { MonitoringService, MonitorEvent } from "../src/monitoring/index.js";
import { DockerEngine, GATEWAY_LABEL, LOCAL_NODE, containerSpecFor, resolveImage } from "../src/runtime/index.js";
import { createDataDir, Store } from "../src/store/index.js";
import { buildBusyboxImage, newTestRun } from "../test/support/docker.js";
import { benchMonitoring } from "./lib/monitoring.js";
import { canPin, cpuMs, runBenchmark } from "./lib/proc.js";
import { fmtRatio, median, type BenchResult } from "./lib/stats.js";

const CONTAINERS = Number(process.env.BENCH_MONITOR_CONTAINERS ?? 100);
const PASSES = Number(process.env.BENCH_MONITOR_PASSES ?? 6);
const INTERVAL_MS = Number(process.env.BENCH_MONITOR_INTERVAL_MS ?? 10_000);
const CREATE_IN_FLIGHT = 4;
const REMOVE_IN_FLIGHT = 8;
const TARGET_PERCENT = 5;
const NS = "bench";
/** Replicas per deployment (a manifest allows at most 64). */
const PER_DEPLOYMENT = 25;
const GATEWAY_ID = "benchmoncpu";
const UID = 10001;
const TD = "portcullis.local";
const CLK_TCK = 100;

async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** dockerd's CPU time so far in ms (user + system), or undefined when it cannot be read. */
function dockerdCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

function dockerdPid(): number | undefined {
  try {
    const pid = Number(execFileSync("pidof", ["dockerd"], { encoding: "utf8" }).trim().split(/\s+/)[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const pct = (cpu: number, wall: number) => (cpu / wall) * 100;

interface Pass {
  readonly startMs: number;
  wallMs?: number;
  cpuMs?: number;
  samples?: number;
}

async function main(): Promise<BenchResult> {
  const engine = new DockerEngine();
  const run = newTestRun();
  const work = mkdtempSync(join(tmpdir(), "portcullis-bench-moncpu-"));
  const dataDir = join(work, "data");
  createDataDir(dataDir, { createdAt: new Date().toISOString(), trustDomain: TD });
  const store = Store.open(dataDir);
  const image = await buildBusyboxImage(engine, run, { user: `${UID}:${UID}` });
  const selector = `${GATEWAY_LABEL}=${GATEWAY_ID}`;
  let service: MonitoringService | undefined;
  let audit: AuditLog | undefined;
  try {
    const imageId = (await resolveImage(engine, image))?.id;
    if (imageId === undefined) throw new Error("the bench image is missing");

    // The managed containers, PER_DEPLOYMENT replicas per deployment, and the records the
    // deployment controller would have written for them.
    const now = Date.now();
    store.namespaces.insert({ name: NS, labels: {}, createdAt: now, createdBy: "user:bench" });
    const replicas: { name: string; deployment: string; ordinal: number; jti: string; digest: string; spec: DeploymentSpec }[] = [];
    for (let d = 0; d * PER_DEPLOYMENT < CONTAINERS; d++) {
      const deployment = `idle${d}`;
      const count = Math.min(PER_DEPLOYMENT, CONTAINERS - d * PER_DEPLOYMENT);
      const parsed = validateManifest({
        apiVersion: "portcullis/v1",
        kind: "Deployment",
        metadata: { name: deployment, namespace: NS },
        spec: {
          image,
          command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
          user: `${UID}:${UID}`,
          replicas: count,
          resources: { cpus: 0.1, memory: "16Mi", pids: 16 },
          runtime: "standard",
        },
      });
      const digest = manifestDigest(parsed.manifest);
      const jti = `bench-${randomBytes(8).toString("hex")}`;
      store.deployRequests.insert({
        jti, requester: "user:bench", operation: "create", namespace: NS, name: deployment, digest, jws: "bench.not.signed", jwsSha256: "00",
        signerCertificatePem: "", receivedAt: now, expiresAt: now + 60_000, result: null,
      });
      store.deployments.insertRevision({
        namespace: NS, name: deployment, revision: 1, manifest: JSON.stringify(parsed.manifest), digest, imageId, runtime: "runc", jti, requester: "user:bench", createdAt: now,
      });
      store.deployments.insert(NS, deployment, 1, count, now);
      for (let ordinal = 0; ordinal < count; ordinal++) {
        replicas.push({ name: `pc-${GATEWAY_ID}-${NS}-${deployment}-r1-${ordinal}`, deployment, ordinal, jti, digest, spec: parsed.spec });
      }
    }
    const names = replicas.map((r) => r.name);
    const c0 = performance.now();
    await eachLimited(replicas, CREATE_IN_FLIGHT, async (r) => {
      store.deployments.insertReplica({ containerName: r.name, namespace: NS, name: r.deployment, revision: 1, ordinal: r.ordinal, node: LOCAL_NODE }, Date.now());
      const id = await engine.create(
        containerSpecFor(r.spec, {
          containerName: r.name, gatewayId: GATEWAY_ID, revision: 1, ordinal: r.ordinal, jti: r.jti, manifestDigest: r.digest, imageId, user: `${UID}:${UID}`,
          publishHost: "127.0.0.1", allowPublicBind: false,
        }),
      );
      await engine.start(id);
      store.deployments.replicaSeen(r.name, id, "runc", Date.now());
    });
    const createdMs = performance.now() - c0;
    const listed = await engine.listContainers(selector);
    const running = listed.filter((c) => c.state === "running").length;
    if (running !== CONTAINERS) throw new Error(`${running} of ${CONTAINERS} containers are running`);

    // The gateway's monitoring, composed as the gateway composes it (composeMonitoring).
    const { service: svc, alerts, audit: a } = benchMonitoring(store, engine, GATEWAY_ID, { ...DEFAULT_MONITORING_CONFIG, statsIntervalMs: INTERVAL_MS });
    audit = a;
    service = svc;

    // Each pass: when it started, its wall time, CPU and samples.
    const passes: Pass[] = [];
    let onPass: (() => void) | undefined;
    const sampleOnce = svc.sampler.sampleOnce.bind(svc.sampler);
    svc.sampler.sampleOnce = (): Promise<number> => {
      const p: Pass = { startMs: performance.now() };
      const cpu0 = cpuMs();
      passes.push(p);
      onPass?.();
      return sampleOnce().then((n) => {
        p.wallMs = performance.now() - p.startMs;
        p.cpuMs = cpuMs() - cpu0;
        p.samples = n;
        return n;
      });
    };
    let events = 0;
    const handle = svc.monitor.handleEngineEvent.bind(svc.monitor);
    svc.monitor.handleEngineEvent = async (node: string, ev: MonitorEvent): Promise<number> => {
      events++;
      return handle(node, ev);
    };
    const dpid = dockerdPid();

    svc.start();
    // Warm-up: the first pass (every container's first sample), then the window from the
    // start of the second pass to the start of the pass PASSES later.
    // Waiting for a pass costs nothing while it waits (no polling inside the window).
    const passStarted = (k: number): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        if (passes.length >= k) return resolve();
        const timer = setTimeout(() => reject(new Error(`the sampler did not start pass ${k}`)), (k + 2) * INTERVAL_MS + 30_000);
        onPass = () => {
          if (passes.length < k) return;
          clearTimeout(timer);
          onPass = undefined;
          resolve();
        };
      });
    await passStarted(2);
    const mCpu0 = cpuMs();
    const mWall0 = performance.now();
    const mDockerd0 = dockerdCpuMs(dpid);
    const events0 = events;
    await passStarted(2 + PASSES);
    const monCpu = cpuMs() - mCpu0;
    const monWall = performance.now() - mWall0;
    const monDockerd = dockerdCpuMs(dpid);
    const eventsInWindow = events - events0;
    await svc.stop();
    service = undefined;

    // Checks: every pass of the window sampled every container, within its interval; the
    // containers counted as managed; idle containers raised nothing.
    const windowPasses = passes.slice(1, 1 + PASSES);
    const warmup = passes[0] as Pass;
    const managed = listed.filter((c) => svc.monitor.contextOf(LOCAL_NODE, c.id, { ...c.labels, name: c.name })?.managed === true).length;
    // Alerts about these containers (another workload on the same engine may raise its own).
    const raised = alerts.list({}).filter((x) => x.namespace === NS || (x.container !== null && names.includes(x.container)));
    const checks = [
      { ok: windowPasses.length === PASSES && windowPasses.every((p) => p.samples === CONTAINERS), text: `samples per pass: ${windowPasses.map((p) => p.samples ?? "-").join(" ")} (expected ${CONTAINERS})` },
      { ok: windowPasses.every((p) => (p.wallMs ?? Infinity) < INTERVAL_MS), text: `every pass ended within its ${INTERVAL_MS / 1000} s interval` },
      { ok: managed === CONTAINERS, text: `managed: ${managed}/${CONTAINERS}` },
      { ok: raised.length === 0, text: `alerts about them: ${raised.length}` },
    ];
    const failed = checks.filter((c) => !c.ok);
    if (failed.length > 0) throw new Error(`the monitoring did not run as expected: ${failed.map((c) => c.text).join("; ")}`);

    // Baseline: the same length of time, monitoring stopped.
    const iCpu0 = cpuMs();
    const iWall0 = performance.now();
    const iDockerd0 = dockerdCpuMs(dpid);
    await new Promise((r) => setTimeout(r, monWall));
    const idleCpu = cpuMs() - iCpu0;
    const idleWall = performance.now() - iWall0;
    const idleDockerd = dockerdCpuMs(dpid);
    await a.close();
    audit = undefined;

    const monPct = pct(monCpu, monWall);
    const idlePct = pct(idleCpu, idleWall);
    const pass = monPct <= TARGET_PERCENT;
    /** The window's CPU less what the idle process spends in the same time. */
    const aboveIdle = monCpu - (idleCpu / idleWall) * monWall;
    const passWall = windowPasses.map((p) => p.wallMs as number);
    const passCpu = windowPasses.map((p) => p.cpuMs as number);
    const dockerd =
      mDockerd0 !== undefined && monDockerd !== undefined && iDockerd0 !== undefined && idleDockerd !== undefined
        ? `for scale, dockerd's CPU (other work on the machine included): ${pct(monDockerd - mDockerd0, monWall).toFixed(1)}% of a core with monitoring, ${pct(idleDockerd - iDockerd0, idleWall).toFixed(1)}% without`
        : "dockerd's CPU: not readable";
    const title = `Benchmark 14: runtime monitoring, CPU of the gateway watching ${CONTAINERS} idle managed containers, stats every ${INTERVAL_MS / 1000} s (${canPin() ? "taskset -c 0" : "not pinned"}; windows of ${PASSES} passes)`;
    const lines = [
      title,
      `  setup: ${CONTAINERS} containers created and started in ${(createdMs / 1000).toFixed(1)} s (${CREATE_IN_FLIGHT} at a time, not measured); warm-up pass ${((warmup.wallMs ?? Number.NaN) / 1000).toFixed(2)} s`,
      `  monitoring running (streams + sampler + metrics + workers): ${monCpu.toFixed(0)} ms CPU in ${(monWall / 1000).toFixed(1)} s = ${monPct.toFixed(2)}% of one core; ${eventsInWindow} engine events handled`,
      `  baseline: the same process, monitoring stopped:           ${idleCpu.toFixed(0)} ms CPU in ${(idleWall / 1000).toFixed(1)} s = ${idlePct.toFixed(2)}% of one core`,
      `  difference: ${(monPct - idlePct).toFixed(2)} percentage points; ratio monitoring / idle ${fmtRatio(monCpu / monWall / (idleCpu / idleWall))}`,
      `  per pass (${CONTAINERS} samples): CPU ${median(passCpu).toFixed(0)} ms median (${passCpu.map((x) => x.toFixed(0)).join(" ")} ms), window CPU / passes ${(monCpu / PASSES).toFixed(0)} ms; above idle ${(aboveIdle / PASSES).toFixed(0)} ms per pass, ${(aboveIdle / PASSES / CONTAINERS).toFixed(2)} ms per sample`,
      `  pass wall time: ${(median(passWall) / 1000).toFixed(2)} s median, max ${(Math.max(...passWall) / 1000).toFixed(2)} s (${passWall.map((x) => (x / 1000).toFixed(2)).join(" ")} s) of the ${INTERVAL_MS / 1000} s interval`,
      `  ${dockerd}`,
      `  checks: ${checks.map((c) => c.text).join("; ")}`,
      `  target monitoring CPU <= ${TARGET_PERCENT}% of one core: ${monPct.toFixed(2)}% (above idle: ${(monPct - idlePct).toFixed(2)}%)  ${pass ? "PASS" : "FAIL"}`,
    ];
    return {
      id: "monitor-cpu",
      title,
      table: lines.join("\n"),
      summary: `monitor-cpu: ${CONTAINERS} idle containers, stats every ${INTERVAL_MS / 1000} s: ${monPct.toFixed(2)}% of one core (idle ${idlePct.toFixed(2)}%, +${(monPct - idlePct).toFixed(2)} points), pass ${(median(passWall) / 1000).toFixed(1)} s; target <= ${TARGET_PERCENT}% ${pass ? "PASS" : "FAIL"}`,
      pass,
    };
  } finally {
    await service?.stop().catch(() => undefined);
    await audit?.close().catch(() => undefined);
    const ids = await engine.listByLabel(selector).catch(() => [] as string[]);
    await eachLimited(ids, REMOVE_IN_FLIGHT, (id) => engine.remove(id).catch(() => undefined));
    await engine.removeByLabel(selector).catch(() => undefined);
    await engine.removeByLabel(run.selector).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
    store.close();
    rmSync(work, { recursive: true, force: true });
  }
}

runBenchmark(main);
