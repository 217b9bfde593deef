/**
 * Benchmark 5: audit log append rate on one core, hash-chained with group commit.
 *
 * portcullis: AuditLog.append for ENTRIES events, awaited in batches of BATCH (each
 * batch is one group commit: one transaction, the chain head read once, every entry
 * redacted by construction, sealed, SHA-256 chained and inserted into audit_log).
 * Baseline in the same run: a plain WAL insert of the same rows into a table of the same
 * shape (same columns and indexes) with no hashing and no canonical JSON:
 * one prepared statement, one transaction per BATCH rows, one event-loop turn between
 * batches like the group commit. Each run uses a fresh database file.
 *
 * Targets: >= 20,000 entries/s, and >= 0.5x the plain insert.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { AuditLog } from "../src/audit/index.js";
import { systemClock, type AuditEvent } from "../src/core/index.js";
import { Store } from "../src/store/index.js";
import { canPin, cpuMs, runBenchmark } from "./lib/proc.js";
import { cpuRate, rate, rateVsPlainInsert, type BenchResult, type Sample } from "./lib/stats.js";

const REPS = 3;
const ENTRIES = Number(process.env.BENCH_AUDIT_ENTRIES ?? 100_000);
const BATCH = Number(process.env.BENCH_AUDIT_BATCH ?? 1000);
const WARM = 10_000;
const TARGET_RATE = 20_000;
const TARGET_RATIO = 0.5;
const TD = "portcullis.local";

const ROUTES = ["/v1/whoami", "/v1/certificates", "/v1/certificates/:serial/revoke", "/v1/rbac/policy", "/v1/enroll"];

/** Events like the API records: a request with its caller, route, status and request id. */
function events(n: number): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (let i = 0; i < n; i++) {
    const denied = i % 7 === 0;
    out.push({
      type: "api.request",
      outcome: denied ? "denied" : "allowed",
      actor: `user:u${i % 97}`,
      actorSerial: (0x1000_0000 + (i % 97)).toString(16),
      sourceAddress: `10.0.${(i >> 8) & 255}.${i & 255}`,
      method: i % 3 === 0 ? "POST" : "GET",
      route: ROUTES[i % ROUTES.length] as string,
      status: denied ? 403 : 200,
      requestId: `req-${i.toString(36)}`,
      ...(denied ? { reason: "PC_API_FORBIDDEN" } : {}),
    });
  }
  return out;
}

const turn = () => new Promise<void>((r) => setImmediate(r));

async function measure(fn: () => Promise<number>): Promise<Sample> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const ops = await fn();
  return { ops, ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-audit-"));
  const store = Store.open(dir);
  return fn(store).finally(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

/** portcullis: AuditLog.append with hash chaining and group commit. */
function ours(evs: readonly AuditEvent[], n: number): Promise<Sample> {
  return withStore(async (store) => {
    const log = new AuditLog(store, systemClock, { trustDomain: TD, hmacKey: randomBytes(32) });
    log.genesis(TD, "00".repeat(32));
    const s = await measure(async () => {
      for (let i = 0; i < n; i += BATCH) {
        const ps: Promise<{ seq: number }>[] = [];
        for (let j = i; j < Math.min(n, i + BATCH); j++) ps.push(log.append(evs[j % evs.length] as AuditEvent));
        await Promise.all(ps);
      }
      return n;
    });
    if (store.auditLog.count() !== n + 1) throw new Error(`expected ${n + 1} entries, found ${store.auditLog.count()}`);
    await log.close();
    return s;
  });
}

/**
 * Baseline: the same rows into a table of the same shape (columns, CHECK, indexes), no
 * hashing, no canonical JSON. The digest and hash columns hold 64-hex values spread like
 * SHA-256 output, as the log's rows do (precomputed, outside the timing). With
 * `sequentialHashes` they are counters instead (shown for reference, not judged).
 */
function plain(evs: readonly AuditEvent[], n: number, sequentialHashes = false): Promise<Sample> {
  return withStore(async (store) => {
    store.db.exec(`
      CREATE TABLE plain_log (
        seq INTEGER PRIMARY KEY, time TEXT NOT NULL, type TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('allowed','denied','error')), actor TEXT NOT NULL,
        action TEXT, resource TEXT, namespace TEXT, body TEXT NOT NULL, body_digest TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
      CREATE INDEX plain_log_time ON plain_log(time);`);
    const ins = store.db.prepare(
      `INSERT INTO plain_log (seq, time, type, outcome, actor, action, resource, namespace, body, body_digest, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const hex: string[] = [];
    for (let k = 0; k <= n; k++) hex.push(sequentialHashes ? k.toString(16).padStart(64, "0") : createHash("sha256").update(`row ${k}`).digest("hex"));
    const s = await measure(async () => {
      for (let i = 0; i < n; i += BATCH) {
        store.transaction(() => {
          for (let j = i; j < Math.min(n, i + BATCH); j++) {
            const e = evs[j % evs.length] as AuditEvent;
            const h = hex[j + 1] as string;
            ins.run(
              j,
              systemClock.now().toISOString(),
              e.type,
              e.outcome,
              e.actor,
              `${e.method} ${e.route}`,
              null,
              null,
              JSON.stringify({ actorSerial: e.actorSerial, source: e.sourceAddress, status: e.status, reasons: e.reason ? [e.reason] : undefined, requestId: e.requestId }),
              h,
              hex[j] as string,
              h,
            );
          }
        });
        await turn();
      }
      return n;
    });
    return s;
  });
}

async function main(): Promise<BenchResult> {
  const evs = events(Math.min(ENTRIES, 50_000));
  await ours(evs, WARM);
  await plain(evs, WARM);
  const runs: Record<"ours" | "plain" | "seqHash", number[]> = { ours: [], plain: [], seqHash: [] };
  const perCpu: Record<"ours" | "plain" | "seqHash", number[]> = { ours: [], plain: [], seqHash: [] };
  const shares: number[] = [];
  const plainSeq = (e: readonly AuditEvent[], n: number) => plain(e, n, true);
  for (let r = 0; r < REPS; r++) {
    for (const [k, fn] of [["ours", ours], ["plain", plain], ["seqHash", plainSeq]] as const) {
      const s = await fn(evs, ENTRIES);
      runs[k].push(rate(s));
      perCpu[k].push(cpuRate(s));
      if (k === "ours") shares.push(s.cpuMs / s.ms);
    }
  }
  return rateVsPlainInsert({
    id: "audit-append",
    title: `Benchmark 5: audit append, ${ENTRIES.toLocaleString("en-US")} entries per run in group commits of ${BATCH}, one core (${canPin() ? "taskset -c 0" : "not pinned"}; ${REPS} runs, median)`,
    unit: "entries",
    rows: {
      ours: { name: "portcullis AuditLog.append (redact, seal, SHA-256 chain, group commit)", runs: runs.ours, perCpu: perCpu.ours },
      plain: { name: "baseline: plain WAL insert, same rows and table shape, no hashing", runs: runs.plain, perCpu: perCpu.plain },
      reference: { name: "reference: the same with counter values in the hash columns (not judged)", runs: runs.seqHash, perCpu: perCpu.seqHash },
    },
    shares,
    targetRate: TARGET_RATE,
    targetRatio: TARGET_RATIO,
  });
}

runBenchmark(main);
