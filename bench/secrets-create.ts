/**
 * Benchmark 9: secret create throughput on one core.
 *
 * portcullis: SecretService.create for CREATES secrets of VALUE_BYTES random bytes, one
 * after another (each awaited, as the API does per request), on a real data directory: a
 * keyring file, SQLite in WAL, and the hash-chained audit log. Each create draws a fresh
 * data key, seals the value (JWE dir + A256GCM), wraps the data key under the KEK (JWE
 * A256KW + A256GCM), and inserts the secret, its version and the audit entry in one
 * transaction.
 * Baseline in the same run: the same rows (a `secrets` row and a `secret_versions` row
 * whose two text columns have the lengths of the JWEs, prepared outside the timing) in
 * the same tables, one IMMEDIATE transaction per create, no encryption and no audit entry.
 * Reference (not judged): AES-256-GCM of the value alone with node:crypto.
 * Each run uses a fresh data directory.
 *
 * Targets: >= 1,000 creates/s, and >= 0.05x the plain insert. Two WebCrypto JWEs (through
 * jose) cost about 0.4 ms of CPU per create here, some ten times the two inserts, so the
 * ratio says how much the envelope costs over the storage rather than a goal near 1.
 */
import { createCipheriv, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditLog } from "../src/audit/index.js";
import { silentLogger, systemClock } from "../src/core/index.js";
import { createKeyringFile, FileKekSource, Keyring, keyringPath, SecretService } from "../src/secrets/index.js";
import { Store } from "../src/store/index.js";
import { canPin, cpuMs, runBenchmark } from "./lib/proc.js";
import { cpuRate, rate, rateVsPlainInsert, type BenchResult, type Sample } from "./lib/stats.js";

const REPS = 3;
const CREATES = Number(process.env.BENCH_SECRETS_CREATES ?? 5_000);
const VALUE_BYTES = Number(process.env.BENCH_SECRETS_VALUE_BYTES ?? 256);
const WARM = 500;
const TARGET_RATE = 1_000;
const TARGET_RATIO = 0.05;
const TD = "portcullis.local";
const NS = "bench";

async function measure(fn: () => Promise<number>): Promise<Sample> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const ops = await fn();
  return { ops, ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

async function withDataDir<T>(fn: (dir: string, store: Store) => Promise<T>): Promise<T> {
  const root = mkdtempSync(join(tmpdir(), "portcullis-bench-secrets-"));
  const dir = join(root, "data");
  mkdirSync(dir, { mode: 0o700 });
  const store = Store.open(dir);
  store.namespaces.insert({ name: NS, labels: {}, createdAt: Date.now(), createdBy: "user:bench" });
  try {
    return await fn(dir, store);
  } finally {
    store.close();
    rmSync(root, { recursive: true, force: true });
  }
}

const values = (n: number): Buffer[] => Array.from({ length: n }, () => randomBytes(VALUE_BYTES));

/** portcullis: SecretService.create, envelope-encrypted and audited. */
function ours(vals: readonly Buffer[], n: number): Promise<{ sample: Sample; valueJweChars: number; wrappedKeyChars: number }> {
  return withDataDir(async (dir, store) => {
    createKeyringFile(keyringPath(dir), systemClock);
    const keyring = Keyring.open(new FileKekSource(keyringPath(dir)));
    const audit = new AuditLog(store, systemClock, { trustDomain: TD, hmacKey: randomBytes(32) });
    audit.genesis(TD, "00".repeat(32));
    const secrets = new SecretService(store, keyring, audit, systemClock, silentLogger);
    const actor = { id: "user:bench", requestId: "req-bench" };
    const sample = await measure(async () => {
      for (let i = 0; i < n; i++) await secrets.create(NS, `s-${i}`, vals[i % vals.length] as Buffer, actor);
      return n;
    });
    if (secrets.countInNamespace(NS) !== n) throw new Error(`expected ${n} secrets, found ${secrets.countInNamespace(NS)}`);
    const row = store.secrets.getVersion(NS, "s-0", 1);
    await audit.close();
    return { sample, valueJweChars: row?.valueJwe.length ?? 0, wrappedKeyChars: row?.wrappedKey.length ?? 0 };
  });
}

/** Baseline: the same two rows per create, same sizes, one transaction each, no crypto, no audit. */
function plain(n: number, valueJweChars: number, wrappedKeyChars: number): Promise<Sample> {
  return withDataDir(async (_dir, store) => {
    const insSecret = store.db.prepare(`INSERT INTO secrets (namespace, name, created_at, created_by) VALUES (?, ?, ?, ?)`);
    const insVersion = store.db.prepare(
      `INSERT INTO secret_versions (namespace, name, version, value_jwe, wrapped_key, kek_id, size, created_at, created_by) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)`,
    );
    const rows = Array.from({ length: Math.min(n, 2_000) }, () => ({
      v: randomBytes(Math.ceil((valueJweChars * 3) / 4)).toString("base64url").slice(0, valueJweChars),
      w: randomBytes(Math.ceil((wrappedKeyChars * 3) / 4)).toString("base64url").slice(0, wrappedKeyChars),
    }));
    const tx = store.db.transaction((i: number) => {
      const r = rows[i % rows.length] as { v: string; w: string };
      const at = Date.now();
      insSecret.run(NS, `s-${i}`, at, "user:bench");
      insVersion.run(NS, `s-${i}`, r.v, r.w, "kek-bench", VALUE_BYTES, at, "user:bench");
    });
    return measure(async () => {
      for (let i = 0; i < n; i++) {
        tx.immediate(i);
        await Promise.resolve();
      }
      return n;
    });
  });
}

/** Reference: AES-256-GCM of the value alone, a fresh key and IV each time. */
async function gcmOnly(vals: readonly Buffer[], n: number): Promise<Sample> {
  return measure(async () => {
    for (let i = 0; i < n; i++) {
      const key = randomBytes(32);
      const c = createCipheriv("aes-256-gcm", key, randomBytes(12));
      c.update(vals[i % vals.length] as Buffer);
      c.final();
      c.getAuthTag();
      key.fill(0);
    }
    return n;
  });
}

async function main(): Promise<BenchResult> {
  const vals = values(1_000);
  const warm = await ours(vals, WARM);
  await plain(WARM, warm.valueJweChars, warm.wrappedKeyChars);
  type K = "ours" | "plain" | "gcm";
  const runs: Record<K, number[]> = { ours: [], plain: [], gcm: [] };
  const perCpu: Record<K, number[]> = { ours: [], plain: [], gcm: [] };
  const shares: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const o = await ours(vals, CREATES);
    runs.ours.push(rate(o.sample));
    perCpu.ours.push(cpuRate(o.sample));
    shares.push(o.sample.cpuMs / o.sample.ms);
    const p = await plain(CREATES, o.valueJweChars, o.wrappedKeyChars);
    runs.plain.push(rate(p));
    perCpu.plain.push(cpuRate(p));
    const g = await gcmOnly(vals, CREATES);
    runs.gcm.push(rate(g));
    perCpu.gcm.push(cpuRate(g));
  }
  return rateVsPlainInsert({
    id: "secrets-create",
    title: `Benchmark 9: secret create, ${CREATES.toLocaleString("en-US")} secrets of ${VALUE_BYTES} bytes per run, one at a time, one core (${canPin() ? "taskset -c 0" : "not pinned"}; ${REPS} runs, median)`,
    unit: "creates",
    rows: {
      ours: { name: "portcullis SecretService.create (data key, two JWEs, audited, one transaction)", runs: runs.ours, perCpu: perCpu.ours },
      plain: { name: "baseline: plain insert of the same rows and sizes, one transaction each", runs: runs.plain, perCpu: perCpu.plain },
      reference: { name: "reference: AES-256-GCM of the value alone, node:crypto (not judged)", runs: runs.gcm, perCpu: perCpu.gcm },
    },
    shares,
    targetRate: TARGET_RATE,
    targetRatio: TARGET_RATIO,
  });
}

runBenchmark(main);
