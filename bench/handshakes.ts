/**
 * Benchmark 2: full mutual-TLS handshakes per second, ECDSA P-256 chain vs RSA-2048 chain.
 *
 * Each chain is made the same way: CertificateAuthority.create(..., alg), then a server
 * certificate (profile "server", IP SAN 127.0.0.1) and a client certificate (profile
 * "client", an identity) issued by its intermediate, for keys of the same algorithm.
 * Server: node:tls, TLS 1.3 only, requestCert + rejectUnauthorized, ca = root +
 * intermediate; it answers each verified connection with one byte and closes. Client:
 * a separate process, new connections only (no session resumption), bounded concurrency.
 * Server and client are pinned to different CPUs when taskset is available. The chains
 * alternate run by run. Also shown: the same with the root and leaf CRLs loaded, as the
 * gateway's API port does.
 *
 * Target: ECDSA >= 3x RSA.
 */
import { randomBytes, sign as cryptoSign, verify as cryptoVerify } from "node:crypto";
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { AddressInfo, Socket } from "node:net";
import { DEFAULT_LIFETIMES, parseIdentity, systemClock } from "../src/core/index.js";
import { CertificateAuthority, generateKeyPair, privateKeyPem, spkiDer, type CaKeyAlgorithm } from "../src/pki/index.js";
import type { HandshakeRun } from "./handshake-client.js";
import { call, canPin, cpuMs, runBenchmark, spawnBench, stopChild } from "./lib/proc.js";
import { fmtRate, fmtRatio, median, table, judge, timedLoop, verdict, type BenchResult } from "./lib/stats.js";

const TRUST_DOMAIN = "portcullis.local";
const REPS = 3;
const REP_MS = Number(process.env.BENCH_HANDSHAKE_MS ?? 2500);
const WARM_MS = 800;
const CONCURRENCY = 32;
const MAX_OPS = 100_000;
const TARGET_RATIO = 3;

interface Chain {
  readonly key: string;
  readonly name: string;
  readonly server: Server;
  readonly port: number;
  readonly client: { ca: string; cert: string; key: string };
  stats: { secure: number; refused: number };
}

async function makeChain(alg: CaKeyAlgorithm, withCrl: boolean): Promise<Chain> {
  const ca = CertificateAuthority.create(TRUST_DOMAIN, systemClock, DEFAULT_LIFETIMES, alg);
  const serverKey = generateKeyPair(alg);
  const serverLeaf = ca.issueLeaf({
    spki: spkiDer(serverKey.publicKey),
    profile: "server",
    names: [{ ip: "127.0.0.1" }],
    lifetimeMs: DEFAULT_LIFETIMES.server,
  });
  const clientKey = generateKeyPair(alg);
  const clientLeaf = ca.issueLeaf({
    spki: spkiDer(clientKey.publicKey),
    profile: "client",
    identity: parseIdentity("service:bench-client"),
    lifetimeMs: DEFAULT_LIFETIMES.service,
  });
  const stats = { secure: 0, refused: 0 };
  const server = createServer(
    {
      key: privateKeyPem(serverKey.privateKey),
      cert: serverLeaf.pem + ca.intermediatePem,
      ca: ca.bundlePem,
      ...(withCrl ? { crl: [ca.rootCrl(86_400_000).pem, ca.leafCrl(1, [], 86_400_000).pem] } : {}),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
    },
    (s: TLSSocket) => {
      stats.secure++;
      s.on("error", () => undefined);
      s.end("k");
    },
  );
  server.on("connection", (sock: Socket) => sock.setNoDelay(true));
  server.on("tlsClientError", () => stats.refused++);
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  const port = (server.address() as AddressInfo).port;
  const label = alg === "ec-p256" ? "ECDSA P-256 chain" : "RSA-2048 chain";
  return {
    key: `${alg}${withCrl ? "+crl" : ""}`,
    name: `${label}${withCrl ? " + CRLs (as the API port)" : ""}`,
    server,
    port,
    client: { ca: ca.bundlePem, cert: clientLeaf.pem + ca.intermediatePem, key: privateKeyPem(clientKey.privateKey) },
    stats,
  };
}

/**
 * The signature work of one side of a mutual TLS 1.3 handshake, measured here with
 * node:crypto (the same OpenSSL): one CertificateVerify signature, and three
 * verifications (the peer's CertificateVerify, its leaf, the intermediate). It bounds
 * the ratio the handshakes can reach whatever else they cost.
 */
function signatureFloor(): { lines: string[] } {
  const data = randomBytes(64);
  const per = (alg: CaKeyAlgorithm) => {
    const { privateKey, publicKey } = generateKeyPair(alg);
    const sig = cryptoSign("sha256", data, privateKey);
    const s = timedLoop(400, 100_000, () => cryptoSign("sha256", data, privateKey));
    const v = timedLoop(400, 100_000, () => cryptoVerify("sha256", data, publicKey, sig));
    // CPU time, not wall clock: other load on the machine does not inflate it.
    return { signUs: (s.cpuMs * 1000) / s.ops, verifyUs: (v.cpuMs * 1000) / v.ops };
  };
  const ec = per("ec-p256");
  const rsa = per("rsa-2048");
  const side = (x: { signUs: number; verifyUs: number }) => x.signUs + 3 * x.verifyUs;
  const us = (n: number) => `${n.toFixed(0)} µs`;
  return {
    lines: [
      `signatures (CPU time, node:crypto): P-256 sign ${us(ec.signUs)}, verify ${us(ec.verifyUs)}; RSA-2048 sign ${us(rsa.signUs)}, verify ${us(rsa.verifyUs)}`,
      `signature work per side (1 sign + 3 verify): ECDSA ${us(side(ec))}, RSA ${us(side(rsa))} -> at most ${fmtRatio(side(rsa) / side(ec))} from signatures alone`,
    ],
  };
}

async function main(): Promise<BenchResult> {
  const floor = signatureFloor();
  const chains = [
    await makeChain("ec-p256", false),
    await makeChain("rsa-2048", false),
    await makeChain("ec-p256", true),
    await makeChain("rsa-2048", true),
  ];
  const client = spawnBench("handshake-client.ts", canPin() ? 1 : undefined);
  const runs = new Map<string, number[]>(chains.map((c) => [c.key, []]));
  const perCpu = new Map<string, number[]>(chains.map((c) => [c.key, []]));
  const serverCpu = new Map<string, number[]>(chains.map((c) => [c.key, []]));
  const clientCpu = new Map<string, number[]>(chains.map((c) => [c.key, []]));
  let errors = 0;
  let resumed = 0;
  let firstError: string | undefined;
  const once = async (c: Chain, durationMs: number): Promise<HandshakeRun & { serverCpuMs: number }> => {
    const s0 = cpuMs();
    const r = await call<HandshakeRun>(
      client,
      { ...c.client, port: c.port, durationMs, maxOps: MAX_OPS, concurrency: CONCURRENCY },
      durationMs + 30_000,
    );
    errors += r.errors;
    resumed += r.resumed;
    firstError ??= r.firstError;
    return { ...r, serverCpuMs: cpuMs() - s0 };
  };
  try {
    for (const c of chains) await once(c, WARM_MS);
    for (let rep = 0; rep < REPS; rep++) {
      for (const c of chains) {
        const r = await once(c, REP_MS);
        runs.get(c.key)?.push((r.ok * 1000) / r.ms);
        perCpu.get(c.key)?.push((r.ok * 1000) / Math.max(r.serverCpuMs, 1));
        serverCpu.get(c.key)?.push((r.serverCpuMs * 100) / r.ms);
        clientCpu.get(c.key)?.push((r.cpuMs * 100) / r.ms);
      }
    }
  } finally {
    await stopChild(client);
    for (const c of chains) c.server.close();
  }
  if (errors > 0) throw new Error(`${errors} handshake(s) failed: ${firstError ?? "?"}`);
  const refused = chains.reduce((n, c) => n + c.stats.refused, 0);
  if (refused > 0) throw new Error(`the servers refused ${refused} handshake(s)`);
  if (resumed > 0) throw new Error(`${resumed} session(s) were resumed; the benchmark needs full handshakes`);
  const m = (k: string) => median(runs.get(k) ?? []);
  const mc = (k: string) => median(perCpu.get(k) ?? []);
  const ratio = m("ec-p256") / m("rsa-2048");
  const ratioCrl = m("ec-p256+crl") / m("rsa-2048+crl");
  const j = judge(ratio, mc("ec-p256") / mc("rsa-2048"), [...serverCpu.values()].flat().map((p) => p / 100));
  const pin = canPin() ? "server taskset -c 0, client taskset -c 1" : "not pinned";
  const title = `Benchmark 2: full mTLS handshakes/s, TLS 1.3, new connections, concurrency ${CONCURRENCY} (${pin}; ${REPS} x ${REP_MS} ms, median)`;
  const tbl = table(
    title,
    chains.map((c) => ({
      name: c.name,
      runs: runs.get(c.key) ?? [],
      perCpu: perCpu.get(c.key) ?? [],
      note: `CPU server ${median(serverCpu.get(c.key) ?? []).toFixed(0)}% / client ${median(clientCpu.get(c.key) ?? []).toFixed(0)}%`,
    })),
    [
      `ratio ECDSA / RSA:               ${fmtRatio(ratio)}   (per server CPU-s: ${fmtRatio(mc("ec-p256") / mc("rsa-2048"))})`,
      `ratio ECDSA / RSA, with CRLs:    ${fmtRatio(ratioCrl)}   (per server CPU-s: ${fmtRatio(mc("ec-p256+crl") / mc("rsa-2048+crl"))})`,
      ...floor.lines,
      `target ECDSA >= ${TARGET_RATIO}x RSA: ${fmtRatio(j.value)} (${j.basis})  ${verdict(j.value, TARGET_RATIO)}`,
      ...j.notes,
    ],
  );
  return {
    id: "handshakes",
    title,
    table: tbl,
    summary: `mTLS handshakes: ECDSA ${fmtRate(m("ec-p256"))}/s vs RSA ${fmtRate(m("rsa-2048"))}/s = ${fmtRatio(ratio)}; target >= ${TARGET_RATIO}x ${verdict(j.value, TARGET_RATIO)} (${j.basis})`,
    pass: j.value >= TARGET_RATIO,
  };
}

runBenchmark(main);
