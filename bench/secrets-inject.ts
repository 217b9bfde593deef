/**
 * Benchmark 10: what secret injection adds to starting a container, with runc and runsc.
 *
 * Both sides create and start the same hardened container from the same image id with
 * `containerSpecFor` (the function the gateway uses), through `DockerEngine.create` +
 * `start`. The secrets side first does what a replica with secrets costs the gateway at
 * placement: remove a leftover directory, open SECRETS pinned versions of VALUE_BYTES
 * each with the real SecretService (unwrap each data key under the KEK, decrypt the
 * value: two JWEs per secret, on a real data directory with SQLite in WAL), write them
 * with SecretFiles (a tmpfs directory, 0400 files chowned to the container's uid), then
 * creates the container with its secret directory mounted read-only at /run/secrets.
 *
 * Rounds run the sides in turn (which goes first rotates every round) for each runtime, after
 * one warm-up round; containers and directories are removed outside the timing.
 *
 * Judged: the added p50, i.e. the p50 of the decrypt + inject step (measured inside the
 * secrets side: remove, open, write), as a share of the p50 of create + start without
 * secrets. Target: <= 5%.
 *
 * Cross-checks, not judged: the end-to-end difference, as the median over rounds of (with
 * secrets - without) within one round (pairing keeps a load that changes during the run
 * out of it; other work on a 2-CPU machine moves create + start by tens of ms) and as the
 * difference of the two p50s; and the same container with its secret directory written
 * before the clock starts: what the read-only bind mount itself adds to create + start.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog } from "../src/audit/index.js";
import { silentLogger, systemClock } from "../src/core/index.js";
import { validateManifest, type DeploymentSpec } from "../src/deploy/index.js";
import { DockerEngine, SecretFiles, containerSpecFor, resolveImage, writeReplicaSecrets, type ReplicaContext, type RuntimeName } from "../src/runtime/index.js";
import { createKeyringFile, FileKekSource, Keyring, keyringPath, SecretService, type PinnedSecret } from "../src/secrets/index.js";
import { Store } from "../src/store/index.js";
import { buildBusyboxImage, newTestRun } from "../test/support/docker.js";
import { canPin, runBenchmark } from "./lib/proc.js";
import { median, type BenchResult } from "./lib/stats.js";

const ROUNDS = Number(process.env.BENCH_SECRETS_INJECT_ROUNDS ?? 30);
const SECRETS = 10;
const VALUE_BYTES = 4 * 1024;
const TARGET = 0.05;
const NS = "bench";
const GATEWAY_ID = "benchinject";
const UID = 10001;
const TD = "portcullis.local";
const RUNTIMES: readonly { runtime: RuntimeName; cls: "standard" | "sandboxed" }[] = [
  { runtime: "runc", cls: "standard" },
  { runtime: "runsc", cls: "sandboxed" },
];

function percentile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

const ms = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");

function manifest(image: string, cls: string, secrets: boolean): DeploymentSpec {
  return validateManifest({
    apiVersion: "portcullis/v1",
    kind: "Deployment",
    metadata: { name: "inject", namespace: NS },
    spec: {
      image,
      command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
      user: `${UID}:${UID}`,
      replicas: 1,
      resources: { cpus: 0.25, memory: "64Mi", pids: 64 },
      runtime: cls,
      ...(secrets ? { secrets: Array.from({ length: SECRETS }, (_, i) => ({ name: `s${i}`, path: i % 2 === 0 ? `/run/secrets/s${i}` : `/run/secrets/nested/s${i}` })) } : {}),
    },
  }).spec;
}

async function main(): Promise<BenchResult> {
  const engine = new DockerEngine();
  const run = newTestRun();
  const work = mkdtempSync(join(tmpdir(), "portcullis-bench-inject-"));
  const dataDir = join(work, "data");
  mkdirSync(dataDir, { mode: 0o700 });
  // An in-memory filesystem already (what the gateway mounts at its tmpfsRoot).
  const tmpfsRoot = mkdtempSync("/dev/shm/portcullis-bench-inject-");
  const store = Store.open(dataDir);
  const image = await buildBusyboxImage(engine, run, { user: `${UID}:${UID}` });
  try {
    const imageId = (await resolveImage(engine, image))?.id;
    if (imageId === undefined) throw new Error("the bench image is missing");
    store.namespaces.insert({ name: NS, labels: {}, createdAt: Date.now(), createdBy: "user:bench" });
    createKeyringFile(keyringPath(dataDir), systemClock);
    const keyring = Keyring.open(new FileKekSource(keyringPath(dataDir)));
    const audit = new AuditLog(store, systemClock, { trustDomain: TD, hmacKey: randomBytes(32) });
    audit.genesis(TD, "00".repeat(32));
    const secrets = new SecretService(store, keyring, audit, systemClock, silentLogger);
    for (let i = 0; i < SECRETS; i++) await secrets.create(NS, `s${i}`, randomBytes(VALUE_BYTES), { id: "user:bench" });
    const files = new SecretFiles({ tmpfsRoot, gatewayId: GATEWAY_ID });
    await files.ensureReady();

    const ctx = (containerName: string): ReplicaContext => ({
      containerName, gatewayId: GATEWAY_ID, revision: 1, ordinal: 0, jti: "bench-inject", manifestDigest: `sha256:${"0".repeat(64)}`,
      imageId, user: `${UID}:${UID}`, publishHost: "127.0.0.1", allowPublicBind: false,
    });
    const cleanup = async () => {
      await engine.removeByLabel(`io.portcullis.gateway=${GATEWAY_ID}`);
      for (const d of await files.list()) await files.remove(d);
    };

    const results = new Map<RuntimeName, { plain: number[]; withSecrets: number[]; inject: number[]; mountOnly: number[] }>();
    for (const rt of RUNTIMES) {
      const plainSpec = manifest(image, rt.cls, false);
      const secretSpec = manifest(image, rt.cls, true);
      const pins: PinnedSecret[] = secrets.pin(NS, secretSpec.secrets.map((m) => ({ name: m.name, path: m.path })));
      const out = { plain: [] as number[], withSecrets: [] as number[], inject: [] as number[], mountOnly: [] as number[] };
      const plain = async (name: string): Promise<number> => {
        const t0 = performance.now();
        const id = await engine.create(containerSpecFor(plainSpec, ctx(name)));
        await engine.start(id);
        return performance.now() - t0;
      };
      const withSecrets = async (name: string): Promise<{ total: number; inject: number }> => {
        const t0 = performance.now();
        // What a replica's start does (replica-ops.ts): remove a leftover, open the pins, write them.
        const dir = await writeReplicaSecrets({ resolver: secrets, files }, NS, name, `${UID}:${UID}`, pins);
        const t1 = performance.now();
        const id = await engine.create(containerSpecFor(secretSpec, { ...ctx(name), secretsDir: dir }));
        await engine.start(id);
        return { total: performance.now() - t0, inject: t1 - t0 };
      };
      // Reference: the same container with its secret directory written outside the timing.
      const mountOnly = async (name: string): Promise<number> => {
        const dir = await writeReplicaSecrets({ resolver: secrets, files }, NS, name, `${UID}:${UID}`, pins);
        const t0 = performance.now();
        const id = await engine.create(containerSpecFor(secretSpec, { ...ctx(name), secretsDir: dir }));
        await engine.start(id);
        return performance.now() - t0;
      };
      for (let r = -1; r < ROUNDS; r++) {
        const a = `pc-${GATEWAY_ID}-${rt.runtime}-plain-${r + 1}`;
        const b = `pc-${GATEWAY_ID}-${rt.runtime}-secrets-${r + 1}`;
        const c = `pc-${GATEWAY_ID}-${rt.runtime}-mount-${r + 1}`;
        let p = 0;
        let m = 0;
        let s: { total: number; inject: number } = { total: 0, inject: 0 };
        // The three sides take turns at going first, second and third.
        const sides = [async () => void (p = await plain(a)), async () => void (s = await withSecrets(b)), async () => void (m = await mountOnly(c))];
        for (let k = 0; k < 3; k++) await (sides[(k + r + 3) % 3] as () => Promise<void>)();
        if (r === -1 && readdirSync(files.dirOf(b)).length !== SECRETS / 2 + 1) throw new Error("the secret directory is not as expected");
        await cleanup();
        if (r < 0) continue;
        out.plain.push(p);
        out.withSecrets.push(s.total);
        out.inject.push(s.inject);
        out.mountOnly.push(m);
      }
      results.set(rt.runtime, out);
    }
    await audit.close();

    const lines: string[] = [];
    const pin = canPin() ? "taskset -c 0" : "not pinned";
    const title = `Benchmark 10: secret injection, ${SECRETS} secrets of ${VALUE_BYTES / 1024} KiB per container: create+start with vs without (${pin}; ${ROUNDS} rounds, interleaved)`;
    lines.push(title);
    const head = `  ${"case".padEnd(40)}  ${"p50 ms".padStart(7)}  ${"p95 ms".padStart(7)}  ${"n".padStart(3)}`;
    lines.push(head, `  ${"-".repeat(head.length + 10)}`);
    const verdicts: string[] = [];
    const summary: string[] = [];
    let pass = true;
    for (const rt of RUNTIMES) {
      const r = results.get(rt.runtime) as { plain: number[]; withSecrets: number[]; inject: number[]; mountOnly: number[] };
      const row = (label: string, xs: readonly number[], digits = 0) =>
        `  ${label.padEnd(40)}  ${ms(median(xs), digits).padStart(7)}  ${ms(percentile(xs, 0.95), digits).padStart(7)}  ${String(xs.length).padStart(3)}`;
      lines.push(row(`${rt.runtime}, create + start, no secrets`, r.plain));
      lines.push(row(`${rt.runtime}, decrypt + inject + create + start`, r.withSecrets));
      lines.push(row(`${rt.runtime},   of which decrypt + inject`, r.inject, 1));
      lines.push(row(`${rt.runtime}, reference: dir written beforehand`, r.mountOnly));
      const added = median(r.withSecrets.map((w, i) => w - (r.plain[i] as number)));
      const p50Diff = median(r.withSecrets) - median(r.plain);
      const mountPaired = median(r.mountOnly.map((w, i) => w - (r.plain[i] as number)));
      const share = added / median(r.plain);
      const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
      const injectShare = median(r.inject) / median(r.plain);
      const ok = injectShare <= TARGET;
      pass &&= ok;
      verdicts.push(
        `${rt.runtime}: added p50 (decrypt + inject) ${ms(median(r.inject), 1)} ms = ${pct(injectShare)} of create + start p50 ${ms(median(r.plain))} ms; target <= ${TARGET * 100}%  ${ok ? "PASS" : "FAIL"}`,
        `${"".padEnd(rt.runtime.length)}  end to end: paired median ${ms(added, 1)} ms (${pct(share)}), p50 with - p50 without ${ms(p50Diff, 1)} ms (${pct(p50Diff / median(r.plain))}); the mount alone (dir written beforehand, paired) ${ms(mountPaired, 1)} ms`,
      );
      summary.push(`${rt.runtime} ${pct(injectShare)} (end to end, paired: ${pct(share)})`);
    }
    lines.push("", ...verdicts.map((v) => `  ${v}`));
    return {
      id: "secrets-inject",
      title,
      table: lines.join("\n"),
      summary: `secrets-inject: added p50 ${summary.join(", ")}; target <= ${TARGET * 100}% ${pass ? "PASS" : "FAIL"}`,
      pass,
    };
  } finally {
    await engine.removeByLabel(`io.portcullis.gateway=${GATEWAY_ID}`).catch(() => undefined);
    await engine.removeByLabel(run.selector).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
    store.close();
    rmSync(tmpfsRoot, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

runBenchmark(main);
