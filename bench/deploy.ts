/**
 * Benchmark 7: deploying one replica, raw dockerode create + start against a signed
 * deploy through the gateway, with runc and with runsc, at concurrency 1 and 8.
 *
 * Both sides create the same container: the raw side builds its create options with
 * `containerSpecFor` (the function the gateway uses) from the same DeploymentSpec and the
 * same image id, then times `DockerEngine.create` + `start`. The gateway side times a
 * signed `create` of a 1-replica deployment (a new name each time) from sending
 * POST /v1/namespaces/:ns/deployments over mutual TLS (keep-alive connections, opened in
 * the warm-up) to its 200 answer, which the gateway sends once the replica runs and is
 * ready. The gateway runs in this process with rollout `settleMs: 0` (no healthcheck in
 * the manifest: ready = seen running) and `pollMs: 10`; the reconciler's interval is
 * one hour so that its passes do not land inside a measurement. Requests are signed
 * before the clock starts (signing is the client's cost, reported apart). After each
 * measurement, outside the timing, the containers are removed by label and each
 * deployment is deleted with a signed delete. A replica asks for 0.1 CPU, so that a batch
 * of BATCH fits the placement's capacity check on a 2-CPU node.
 *
 * Concurrency 1: rounds alternate raw and gateway (the order flips every round) for each
 * runtime, after one warm-up round. Concurrency 8: batches of BATCH containers with 8 in
 * flight, again alternating, after one warm-up batch; throughput = containers / batch time.
 *
 * Time outside Docker: the engine the gateway's node registry hands out is wrapped in
 * this process (no product change): every Engine API call the gateway makes is timed, and
 * per concurrency-1 request, share outside Docker = 1 - (union of its Docker call time /
 * request time).
 *
 * Targets: gateway p50 <= 1.10x raw (concurrency 1); gateway throughput at concurrency 8
 * >= 0.9x raw.
 */
import { randomBytes } from "node:crypto";
import { Agent, request } from "node:https";
import { loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseHostPort } from "../src/core/index.js";
import { manifestDigest, signDeployRequest, validateManifest, type Manifest } from "../src/deploy/index.js";
import { DockerEngine, containerSpecFor, effectiveUser, resolveImage, type RuntimeName } from "../src/runtime/index.js";
import { buildBusyboxImage, newTestRun } from "../test/support/docker.js";
import { startTestGateway, type TestGateway } from "../test/support/gateway.js";
import { canPin, runBenchmark } from "./lib/proc.js";
import { fmtRatio, median, type BenchResult } from "./lib/stats.js";

const ROUNDS = Number(process.env.BENCH_DEPLOY_ROUNDS ?? 25);
const BATCHES = Number(process.env.BENCH_DEPLOY_BATCHES ?? 3);
const BATCH = 16;
const IN_FLIGHT = 8;
const P50_TARGET = 1.1;
const THROUGHPUT_TARGET = 0.9;
const RUN_LABEL = "portcullis-bench/run";
const RAW_GATEWAY_ID = "bench-raw";
const RUNTIMES: readonly { runtime: RuntimeName; cls: "standard" | "sandboxed" }[] = [
  { runtime: "runc", cls: "standard" },
  { runtime: "runsc", cls: "sandboxed" },
];



function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "n/a");

/** Every Engine API call made through one engine instance: its method, start and end. */
interface Call {
  readonly op: string;
  readonly start: number;
  readonly end: number;
}

const ENGINE_METHODS = [
  "ping", "version", "info", "runtimes", "create", "remove", "listByLabel", "removeByLabel", "start", "stopAndRemove",
  "inspectContainer", "listContainers", "logs", "inspectImage", "inspectContainerConfig", "listNetworks", "inspectNetwork",
  "createBridgeNetwork", "removeNetwork", "containersOnNetwork",
] as const;

/** Wraps the engine instance's methods so that each call is timed (the instance stays the same object). */
function observe(engine: DockerEngine, calls: Call[]): void {
  const target = engine as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const m of ENGINE_METHODS) {
    const orig = target[m];
    if (typeof orig !== "function") continue;
    target[m] = async (...args: unknown[]) => {
      const start = performance.now();
      try {
        return await orig.apply(engine, args);
      } finally {
        calls.push({ op: m, start, end: performance.now() });
      }
    };
  }
}

/** Total time covered by the calls that fall within [t0, t1] (overlaps counted once). */
function coveredMs(calls: readonly Call[], t0: number, t1: number): number {
  const iv = calls.filter((c) => c.start >= t0 && c.end <= t1).sort((a, b) => a.start - b.start);
  let total = 0;
  let curS = -1;
  let curE = -1;
  for (const c of iv) {
    if (c.start > curE) {
      if (curE > curS) total += curE - curS;
      curS = c.start;
      curE = c.end;
    } else if (c.end > curE) curE = c.end;
  }
  if (curE > curS) total += curE - curS;
  return total;
}

/** A mutual-TLS JSON client over keep-alive connections. */
class Client {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(addr: string, tls: { ca: string; cert: string; key: string }) {
    const hp = parseHostPort(addr);
    this.host = hp.host;
    this.port = hp.port;
    this.agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT, ...tls });
  }

  post(path: string, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.host, port: this.port, path, method: "POST", agent: this.agent, timeout: 120_000,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on("timeout", () => req.destroy(new Error("request timed out")));
      req.on("error", reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

interface Sample {
  readonly ms: number;
  /** Gateway only: time inside Engine API calls. */
  readonly dockerMs?: number;
  /** Gateway only: time of its create and start calls (what the raw side times). */
  readonly createStartMs?: number;
}

async function main(): Promise<BenchResult> {
  const run = newTestRun();
  const runSelector = `${RUN_LABEL}=${run.id}`;
  const engine = new DockerEngine();
  const runtimesHere = await engine.runtimes();
  for (const r of RUNTIMES) if (!runtimesHere.includes(r.runtime)) throw new Error(`the engine lacks runtime ${r.runtime}`);
  const image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
  let tg: TestGateway | undefined;
  let client: Client | undefined;
  try {
    const resolved = await resolveImage(engine, image);
    if (resolved === undefined) throw new Error("the benchmark image did not resolve");
    const imageId = resolved.id;
    const imageRef = `portcullis-test/busybox@${imageId}`;

    tg = await startTestGateway({ start: { rollout: { pollMs: 10, settleMs: 0 }, reconcileIntervalMs: 3_600_000 } });
    const gw = tg.gw;
    const ns = `bench-${run.id}`;
    gw.namespaces.create(ns, {}, { identity: "user:admin" });
    const dev = tg.issueClient("user:dev1");
    gw.policy.bind("user:dev1", "developer", ns, { identity: "user:admin" });
    client = new Client(tg.api, { ca: tg.caPem, cert: dev.certPem, key: dev.keyPem });
    const path = `/v1/namespaces/${ns}/deployments`;
    const calls: Call[] = [];
    observe(gw.nodes.engine("local"), calls);

    const manifestFor = (name: string, cls: "standard" | "sandboxed"): Manifest =>
      ({
        apiVersion: "portcullis/v1",
        kind: "Deployment",
        metadata: { name, namespace: ns, labels: { [RUN_LABEL]: run.id } },
        spec: {
          image: imageRef,
          command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
          user: "10001:10001",
          replicas: 1,
          resources: { cpus: 0.1, memory: "64Mi", pids: 64 },
          runtime: cls,
        },
      }) as unknown as Manifest;
    const signMs: number[] = [];
    const sign = async (op: "create" | "delete", m: Manifest): Promise<string> => {
      const t0 = performance.now();
      const jws = await signDeployRequest({ op, manifest: m, trustDomain: gw.config.trustDomain, privateKeyPem: dev.keyPem, certificatePem: dev.certPem });
      if (op === "create") signMs.push(performance.now() - t0);
      return jws;
    };
    let seq = 0;
    const nextName = (rt: string) => `b-${rt}-${(seq++).toString(36)}`;

    // Raw: the create options the gateway would build for the same spec and image.
    const rawOptions = (rt: (typeof RUNTIMES)[number]) => {
      const m = manifestFor(nextName(`raw-${rt.runtime}`), rt.cls);
      const spec = validateManifest(m).spec;
      return containerSpecFor(spec, {
        containerName: `pc-${RAW_GATEWAY_ID}-${ns}-${spec.name}-r1-0`,
        gatewayId: RAW_GATEWAY_ID,
        revision: 1,
        ordinal: 0,
        jti: randomBytes(16).toString("base64url"),
        manifestDigest: manifestDigest(m),
        imageId,
        user: effectiveUser(spec.user, resolved.user),
        publishHost: "127.0.0.1",
        allowPublicBind: false,
      });
    };
    const rawOnce = async (opts: ReturnType<typeof rawOptions>): Promise<Sample> => {
      const t0 = performance.now();
      const id = await engine.create(opts);
      await engine.start(id);
      return { ms: performance.now() - t0 };
    };
    const expectRunning = async (rt: RuntimeName, n: number) => {
      const list = await engine.listContainers(runSelector);
      const running = list.filter((c) => c.state === "running" && c.labels["io.portcullis.runtime"] === rt);
      if (running.length !== n) throw new Error(`expected ${n} running ${rt} container(s), found ${running.length} of ${list.length}`);
    };

    const gatewayOnce = async (jws: string, rt: RuntimeName): Promise<Sample> => {
      const body = JSON.stringify({ request: jws });
      const t0 = performance.now();
      const res = await client!.post(path, body);
      const t1 = performance.now();
      if (res.status !== 200) throw new Error(`deploy answered ${res.status}: ${res.body.slice(0, 300)}`);
      const d = JSON.parse(res.body) as { outcome: string; runtime: { actual: string[] } };
      if (d.outcome !== "deployed" || d.runtime.actual.join(",") !== rt) throw new Error(`unexpected decision: ${res.body.slice(0, 300)}`);
      const cs = calls.filter((c) => c.start >= t0 && c.end <= t1 && (c.op === "create" || c.op === "start"));
      return { ms: t1 - t0, dockerMs: coveredMs(calls, t0, t1), createStartMs: cs.reduce((a, c) => a + c.end - c.start, 0) };
    };
    // Cleanup, outside the timing: containers by label, then a signed delete of each deployment.
    const deployed: Manifest[] = [];
    const cleanup = async () => {
      const ids = await engine.listByLabel(runSelector);
      await Promise.all(ids.map((id) => engine.remove(id)));
      const gone = deployed.splice(0);
      const deletes = await Promise.all(gone.map((m) => sign("delete", m)));
      await Promise.all(
        deletes.map(async (jws) => {
          const res = await client!.post(path, JSON.stringify({ request: jws }));
          if (res.status !== 200) throw new Error(`delete answered ${res.status}: ${res.body.slice(0, 300)}`);
        }),
      );
    };

    const c1 = new Map<string, Sample[]>();
    const push = (k: string, s: Sample) => c1.set(k, [...(c1.get(k) ?? []), s]);
    const callsPerDeploy = new Map<string, number[]>();
    let countedDeploys = 0;

    const raw1 = async (rt: (typeof RUNTIMES)[number], keep: boolean) => {
      const opts = rawOptions(rt);
      const s = await rawOnce(opts);
      await expectRunning(rt.runtime, 1);
      await cleanup();
      if (keep) push(`${rt.runtime}/raw`, s);
    };
    const gw1 = async (rt: (typeof RUNTIMES)[number], keep: boolean) => {
      const m = manifestFor(nextName(rt.runtime), rt.cls);
      const jws = await sign("create", m);
      deployed.push(m);
      const before = calls.length;
      const s = await gatewayOnce(jws, rt.runtime);
      const mine = calls.slice(before);
      await expectRunning(rt.runtime, 1);
      await cleanup();
      if (keep) {
        push(`${rt.runtime}/gateway`, s);
        countedDeploys++;
        for (const c of mine) callsPerDeploy.set(c.op, [...(callsPerDeploy.get(c.op) ?? []), c.end - c.start]);
      }
    };

    // How late this process's timers fire: the scheduling delay every Engine API answer also waits for.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const tStart = performance.now();
    for (let round = 0; round <= ROUNDS; round++) {
      const keep = round > 0; // round 0 warms up
      for (const rt of RUNTIMES) {
        if (round % 2 === 0) {
          await raw1(rt, keep);
          await gw1(rt, keep);
        } else {
          await gw1(rt, keep);
          await raw1(rt, keep);
        }
      }
    }
    const c1Ms = performance.now() - tStart;
    loopDelay.disable();

    // Concurrency 8: BATCH containers, IN_FLIGHT at a time.
    const pool = async <T>(jobs: readonly (() => Promise<T>)[]): Promise<{ results: T[]; ms: number }> => {
      const results: T[] = new Array<T>(jobs.length);
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          for (let i = next++; i < jobs.length; i = next++) results[i] = await (jobs[i] as () => Promise<T>)();
        }),
      );
      return { results, ms: performance.now() - t0 };
    };
    const c8 = new Map<string, { rates: number[]; lat: number[] }>();
    const push8 = (k: string, ms8: number, lat: number[]) => {
      const e = c8.get(k) ?? { rates: [], lat: [] };
      e.rates.push((BATCH * 1000) / ms8);
      e.lat.push(...lat);
      c8.set(k, e);
    };
    const rawBatch = async (rt: (typeof RUNTIMES)[number], keep: boolean) => {
      const opts = Array.from({ length: BATCH }, () => rawOptions(rt));
      const { results, ms: t } = await pool(opts.map((o) => () => rawOnce(o)));
      await expectRunning(rt.runtime, BATCH);
      await cleanup();
      if (keep) push8(`${rt.runtime}/raw`, t, results.map((r) => r.ms));
    };
    const gwBatch = async (rt: (typeof RUNTIMES)[number], keep: boolean) => {
      const ms8 = Array.from({ length: BATCH }, () => manifestFor(nextName(rt.runtime), rt.cls));
      const jws: string[] = [];
      for (const m of ms8) jws.push(await sign("create", m));
      deployed.push(...ms8);
      const { results, ms: t } = await pool(jws.map((j) => () => gatewayOnce(j, rt.runtime)));
      await expectRunning(rt.runtime, BATCH);
      await cleanup();
      if (keep) push8(`${rt.runtime}/gateway`, t, results.map((r) => r.ms));
    };
    const t8 = performance.now();
    for (let b = 0; b <= BATCHES; b++) {
      const keep = b > 0;
      for (const rt of RUNTIMES) {
        if (b % 2 === 0) {
          await rawBatch(rt, keep);
          await gwBatch(rt, keep);
        } else {
          await gwBatch(rt, keep);
          await rawBatch(rt, keep);
        }
      }
    }
    const c8Ms = performance.now() - t8;

    // Report.
    const lines: string[] = [];
    const pin = canPin() ? "gateway and raw client in one process, taskset -c 0; dockerd unpinned" : "not pinned";
    const title = `Benchmark 7: deploy 1 replica, raw dockerode create+start vs signed deploy through the gateway (${pin}; ${ROUNDS} rounds at concurrency 1, ${BATCHES} batches of ${BATCH} at concurrency ${IN_FLIGHT})`;
    lines.push(title);
    const head = `  ${"case".padEnd(34)}  ${"p50 ms".padStart(7)}  ${"p95 ms".padStart(7)}  ${"n".padStart(3)}  note`;
    lines.push(head, `  ${"-".repeat(head.length + 20)}`);
    const verdicts: { label: string; pass: boolean; text: string }[] = [];
    const summaryParts: string[] = [];
    for (const rt of RUNTIMES) {
      const raw = (c1.get(`${rt.runtime}/raw`) ?? []).map((s) => s.ms);
      const gws = c1.get(`${rt.runtime}/gateway`) ?? [];
      const gms = gws.map((s) => s.ms);
      const outside = gws.map((s) => 1 - (s.dockerMs ?? 0) / s.ms);
      const outsideMs = gws.map((s) => s.ms - (s.dockerMs ?? 0));
      const otherDockerMs = gws.map((s) => (s.dockerMs ?? 0) - (s.createStartMs ?? 0));
      const paired = gms.map((g, i) => g - (raw[i] ?? Number.NaN)).filter(Number.isFinite);
      lines.push(`  ${`${rt.runtime}, concurrency 1, raw dockerode`.padEnd(34)}  ${ms(median(raw)).padStart(7)}  ${ms(percentile(raw, 0.95)).padStart(7)}  ${String(raw.length).padStart(3)}  create + start`);
      lines.push(
        `  ${`${rt.runtime}, concurrency 1, gateway`.padEnd(34)}  ${ms(median(gms)).padStart(7)}  ${ms(percentile(gms, 0.95)).padStart(7)}  ${String(gms.length).padStart(3)}  outside Docker: median ${(median(outside) * 100).toFixed(1)}% (${median(outsideMs).toFixed(1)} ms)`,
      );
      lines.push(
        `  ${"".padEnd(34)}  ${"".padStart(7)}  ${"".padStart(7)}  ${"".padStart(3)}  of which create + start p50 ${ms(median(gws.map((s) => s.createStartMs ?? 0)))} ms, other Engine calls p50 ${median(otherDockerMs).toFixed(1)} ms; gateway - raw, same round: median ${median(paired).toFixed(0)} ms`,
      );
      const r8 = c8.get(`${rt.runtime}/raw`) ?? { rates: [], lat: [] };
      const g8 = c8.get(`${rt.runtime}/gateway`) ?? { rates: [], lat: [] };
      lines.push(`  ${`${rt.runtime}, concurrency ${IN_FLIGHT}, raw dockerode`.padEnd(34)}  ${ms(median(r8.lat)).padStart(7)}  ${ms(percentile(r8.lat, 0.95)).padStart(7)}  ${String(r8.lat.length).padStart(3)}  ${median(r8.rates).toFixed(2)} containers/s (batches ${r8.rates.map((x) => x.toFixed(2)).join("  ")})`);
      lines.push(`  ${`${rt.runtime}, concurrency ${IN_FLIGHT}, gateway`.padEnd(34)}  ${ms(median(g8.lat)).padStart(7)}  ${ms(percentile(g8.lat, 0.95)).padStart(7)}  ${String(g8.lat.length).padStart(3)}  ${median(g8.rates).toFixed(2)} containers/s (batches ${g8.rates.map((x) => x.toFixed(2)).join("  ")})`);
      const p50Ratio = median(gms) / median(raw);
      const p95Ratio = percentile(gms, 0.95) / percentile(raw, 0.95);
      const tputRatio = median(g8.rates) / median(r8.rates);
      verdicts.push({
        label: `${rt.runtime} p50`,
        pass: p50Ratio <= P50_TARGET,
        text: `${rt.runtime}: gateway p50 / raw p50 = ${fmtRatio(p50Ratio)} (p95: ${fmtRatio(p95Ratio)}); target <= ${P50_TARGET}x  ${p50Ratio <= P50_TARGET ? "PASS" : "FAIL"}`,
      });
      verdicts.push({
        label: `${rt.runtime} throughput`,
        pass: tputRatio >= THROUGHPUT_TARGET,
        text: `${rt.runtime}: gateway / raw throughput at concurrency ${IN_FLIGHT} = ${fmtRatio(tputRatio)}; target >= ${THROUGHPUT_TARGET}x  ${tputRatio >= THROUGHPUT_TARGET ? "PASS" : "FAIL"}`,
      });
      summaryParts.push(`${rt.runtime} p50 ${ms(median(gms))}/${ms(median(raw))} ms = ${fmtRatio(p50Ratio)}, c${IN_FLIGHT} ${fmtRatio(tputRatio)}`);
    }
    const perDeploy = [...callsPerDeploy.entries()]
      .sort((a, b) => b[1].length - a[1].length)
      .map(([op, t]) => {
        const n = t.length / Math.max(countedDeploys, 1);
        return `${op} ${Number.isInteger(n) ? n : n.toFixed(1)} x ${median(t).toFixed(1)} ms`;
      })
      .join(", ");
    lines.push(`  Engine API calls per gateway deploy (concurrency 1; count x median time): ${perDeploy}`);
    lines.push(`  signing a request (client side, not timed above): p50 ${median(signMs).toFixed(2)} ms`);
    lines.push(
      `  scheduling delay of this process at concurrency 1 (a 10 ms timer fired late by): p50 ${(loopDelay.percentile(50) / 1e6 - 10).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6 - 10).toFixed(1)} ms`,
    );
    for (const v of verdicts) lines.push(`  ${v.text}`);
    lines.push(`  time: concurrency 1 ${(c1Ms / 1000).toFixed(0)} s, concurrency ${IN_FLIGHT} ${(c8Ms / 1000).toFixed(0)} s; load average at end ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
    const pass = verdicts.every((v) => v.pass);
    return {
      id: "deploy",
      title,
      table: lines.join("\n"),
      summary: `deploy: ${summaryParts.join("; ")}; targets p50 <= ${P50_TARGET}x, c${IN_FLIGHT} >= ${THROUGHPUT_TARGET}x: ${verdicts.map((v) => `${v.label} ${v.pass ? "PASS" : "FAIL"}`).join(", ")}`,
      pass,
    };
  } finally {
    client?.close();
    await engine.removeByLabel(runSelector).catch(() => undefined);
    if (tg) {
      const gatewayId = tg.gw.deployments.gatewayId;
      await tg.close();
      await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`).catch(() => undefined);
    }
    await engine.removeByLabel(run.selector).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);

  }
}

runBenchmark(main);
