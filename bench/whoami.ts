/**
 * Benchmark 3: keep-alive GET /v1/whoami over mutual TLS, the real gateway vs a bare
 * fastify route with the same TLS settings.
 *
 * The gateway is started as the tests start it (test/support/gateway.ts): a fresh data
 * directory, its own CA, the admin's client certificate. Every request goes through the
 * identity hook, the revocation check, the route's schema and the access-log row written
 * to SQLite. The bare server uses the same key, certificate chain, CA bundle and CRLs
 * (apiTlsOptions), requestCert + rejectUnauthorized, TLS 1.3, and answers a constant
 * JSON body of the same shape. The load generator runs in its own process; servers and
 * load generator are pinned to different CPUs when taskset is available; the two
 * servers alternate run by run.
 *
 * Target: gateway >= 0.5x bare.
 */
import { readFileSync } from "node:fs";
import Fastify from "fastify";
import { apiTlsOptions } from "../src/api/index.js";
import { pkiPaths } from "../src/pki/index.js";
import { readKeyFile } from "../src/store/index.js";
import { parseHostPort } from "../src/core/index.js";
import { startTestGateway } from "../test/support/gateway.js";
import { mtlsGet } from "../test/support/tls-client.js";
import type { HttpRun } from "./http-client.js";
import { call, canPin, cpuMs, runBenchmark, spawnBench, stopChild } from "./lib/proc.js";
import { fmtRate, fmtRatio, judge, median, table, verdict, type BenchResult } from "./lib/stats.js";

const REPS = 3;
const REP_MS = Number(process.env.BENCH_WHOAMI_MS ?? 3000);
const WARM_MS = 1000;
const CONNECTIONS = 32;
const MAX_REQUESTS = 1_000_000;
const TARGET_RATIO = 0.5;
const PATH = "/v1/whoami";

async function main(): Promise<BenchResult> {
  const tg = await startTestGateway();
  const client = spawnBench("http-client.ts", canPin() ? 1 : undefined);
  try {
    const p = pkiPaths(tg.dataDir);
    const creds = { keyPem: readKeyFile(p.serverKey), certPem: readFileSync(p.serverCert, "utf8") };
    const tls = { https: { ...apiTlsOptions(creds, tg.gw.pki), requestCert: true, rejectUnauthorized: true } };
    const auth = { ca: tg.caPem, cert: tg.admin.certPem, key: tg.admin.keyPem };
    // The bare route answers what the gateway answers for this caller, as a constant.
    const first = await mtlsGet(tg.api, PATH, auth);
    if (!first.ok || first.status !== 200 || !first.body) throw new Error(`gateway whoami failed: ${first.error ?? first.status}`);
    const constant = JSON.parse(first.body) as Record<string, string>;
    const bareApp = Fastify({ ...tls, logger: false });
    bareApp.get(PATH, async () => constant);
    await bareApp.listen({ host: "127.0.0.1", port: 0 });
    const bareAddr = bareApp.server.address();
    if (!bareAddr || typeof bareAddr === "string") throw new Error("bare server has no port");

    const targets = [
      { key: "gateway", name: "portcullis gateway GET /v1/whoami (access log on)", port: parseHostPort(tg.api).port },
      { key: "bare", name: "bare fastify GET /v1/whoami, same TLS settings", port: bareAddr.port },
    ];
    const runs = new Map<string, number[]>(targets.map((t) => [t.key, []]));
    const perCpu = new Map<string, number[]>(targets.map((t) => [t.key, []]));
    const serverCpu = new Map<string, number[]>(targets.map((t) => [t.key, []]));
    const clientCpu = new Map<string, number[]>(targets.map((t) => [t.key, []]));
    let gatewayRequests = 0;
    const rows0 = tg.gw.store.accessEvents.count();
    const once = async (t: (typeof targets)[number], durationMs: number) => {
      const s0 = cpuMs();
      const r = await call<HttpRun>(
        client,
        { ...auth, port: t.port, path: PATH, connections: CONNECTIONS, durationMs, maxRequests: MAX_REQUESTS },
        durationMs + 30_000,
      );
      if (r.errors > 0) throw new Error(`${t.key}: ${r.errors} failed request(s): ${r.firstError ?? "?"}`);
      if (t.key === "gateway") gatewayRequests += r.ok;
      return { ...r, serverCpuMs: cpuMs() - s0 };
    };
    try {
      for (const t of targets) await once(t, WARM_MS);
      for (let rep = 0; rep < REPS; rep++) {
        for (const t of targets) {
          const r = await once(t, REP_MS);
          runs.get(t.key)?.push((r.ok * 1000) / r.ms);
          perCpu.get(t.key)?.push((r.ok * 1000) / Math.max(r.serverCpuMs, 1));
          serverCpu.get(t.key)?.push((r.serverCpuMs * 100) / r.ms);
          clientCpu.get(t.key)?.push((r.cpuMs * 100) / r.ms);
        }
      }
    } finally {
      await bareApp.close();
    }
    const rows = tg.gw.store.accessEvents.count() - rows0;
    const m = (k: string) => median(runs.get(k) ?? []);
    const mc = (k: string) => median(perCpu.get(k) ?? []);
    const ratio = m("gateway") / m("bare");
    const j = judge(ratio, mc("gateway") / mc("bare"), [...serverCpu.values()].flat().map((p) => p / 100));
    const pin = canPin() ? "servers taskset -c 0, load generator taskset -c 1" : "not pinned";
    const title = `Benchmark 3: keep-alive GET ${PATH} over mTLS, ${CONNECTIONS} connections (${pin}; ${REPS} x ${REP_MS} ms, median)`;
    const tbl = table(
      title,
      targets.map((t) => ({
        name: t.name,
        runs: runs.get(t.key) ?? [],
        perCpu: perCpu.get(t.key) ?? [],
        note: `CPU server ${median(serverCpu.get(t.key) ?? []).toFixed(0)}% / client ${median(clientCpu.get(t.key) ?? []).toFixed(0)}%`,
      })),
      [
        `ratio gateway / bare:  ${fmtRatio(ratio)}   (per server CPU-s: ${fmtRatio(mc("gateway") / mc("bare"))})`,
        `access-log rows written by the gateway: ${rows.toLocaleString("en-US")} for ${gatewayRequests.toLocaleString("en-US")} requests`,
        `target gateway >= ${TARGET_RATIO}x bare: ${fmtRatio(j.value)} (${j.basis})  ${verdict(j.value, TARGET_RATIO)}`,
        ...j.notes,
      ],
    );
    return {
      id: "whoami",
      title,
      table: tbl,
      summary: `whoami: gateway ${fmtRate(m("gateway"))}/s vs bare ${fmtRate(m("bare"))}/s = ${fmtRatio(ratio)}; target >= ${TARGET_RATIO}x ${verdict(j.value, TARGET_RATIO)} (${j.basis})`,
      pass: j.value >= TARGET_RATIO,
    };
  } finally {
    await stopChild(client);
    await tg.close();
  }
}

runBenchmark(main);
