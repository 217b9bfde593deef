/**
 * Benchmark: offline verification and export of the audit log, on one core.
 *
 * Data (seeded, generated here): N realistic entries (API requests and decisions; 15%
 * denied), a checkpoint every 1,000 entries signed with an audit key certified by a CA
 * made for the run.
 *
 * Append baseline, measured in the same run on the same entries:
 *   - "seal": `sealEntry` chaining in-process (canonical JSON, body digest, hash), the
 *     CPU cost of the chain alone;
 *   - "seal + WAL insert": the same (body serialised once, as the log does) plus an INSERT of the row into a table of the
 *     audit_log's shape (its indexes included) in a fresh SQLite file, WAL,
 *     synchronous=NORMAL, 100 rows per transaction (group commit), through better-sqlite3
 *     directly. This stands for the log's append rate.
 * Verify: `verifyBundleFile` over the exported bundle with every entry shown in full (the
 * costliest case: each body digest is recomputed too) and over a filtered bundle
 * (outcome=denied: 85% of the entries sealed).
 * Export: `exportBundle` of the whole log from an in-memory source to a file.
 *
 * Targets: verify >= 10x the append rate (seal + WAL insert); export >= 50,000 entries/s.
 */
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { finished } from "node:stream/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { sealEntry, sealEntryWithBodyJson, ZERO_HASH, type AuditEntry, type EntryBody, type EntryHead } from "../src/audit/format.js";
import { exportBundle } from "../src/audit/export.js";
import { MemoryAuditSource } from "../src/audit/memory-source.js";
import { verifyBundleFile } from "../src/audit/verify.js";
import { derToPem } from "../src/pki/index.js";
import { auditSigner, entryFor, makePki, signCheckpoint, START, TD } from "../test/audit/support.js";
import { prng } from "../test/support/prng.js";
import { canPin, cpuMs, runBenchmark } from "./lib/proc.js";
import { cpuRate, fmtRate, fmtRatio, judge, median, rate, table, verdict, type BenchResult, type Sample } from "./lib/stats.js";

const N = Number(process.env.BENCH_AUDIT_ENTRIES ?? 50_000);
const REPS = 3;
const TARGET_VERIFY_VS_APPEND = 10;
const TARGET_EXPORT = 50_000;

type Input = { head: EntryHead; body: EntryBody };

function generate(): Input[] {
  const rand = prng(41);
  const out: Input[] = [];
  for (let seq = 0; seq < N; seq++) {
    const { head, body } = entryFor(rand, new Date(START + seq * 50).toISOString());
    out.push({ head: { ...head, v: 1, seq }, body });
  }
  return out;
}

async function timed(fn: () => Promise<number> | number): Promise<Sample> {
  const c0 = cpuMs();
  const t0 = performance.now();
  const ops = await fn();
  return { ops, ms: performance.now() - t0, cpuMs: cpuMs() - c0 };
}

function sealOnly(inputs: readonly Input[]): number {
  let prev = ZERO_HASH;
  for (const x of inputs) prev = sealEntry(x.head, x.body, prev).hash;
  return inputs.length;
}

function sealAndInsert(inputs: readonly Input[], dir: string, run: number): number {
  const db = new Database(join(dir, `append-${run}.db`));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec(`CREATE TABLE audit_log (
      seq INTEGER PRIMARY KEY, time TEXT NOT NULL, type TEXT NOT NULL,
      outcome TEXT NOT NULL CHECK (outcome IN ('allowed','denied','error')), actor TEXT NOT NULL,
      action TEXT, resource TEXT, namespace TEXT, body TEXT NOT NULL, body_digest TEXT NOT NULL,
      prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
      CREATE INDEX audit_log_time ON audit_log(time);`);
    const ins = db.prepare(
      "INSERT INTO audit_log (seq, time, type, outcome, actor, action, resource, namespace, body, body_digest, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
    );
    const batch = db.transaction((rows: readonly { entry: AuditEntry; bodyJson: string }[]) => {
      for (const { entry: e, bodyJson } of rows) {
        const h = e.head;
        ins.run(h.seq, h.time, h.type, h.outcome, h.actor, h.action ?? null, h.resource ?? null, h.namespace ?? null, bodyJson, e.bodyDigest, e.prevHash, e.hash);
      }
    });
    let prev = ZERO_HASH;
    let pending: { entry: AuditEntry; bodyJson: string }[] = [];
    for (const x of inputs) {
      const e = sealEntryWithBodyJson(x.head, x.body, prev);
      prev = e.entry.hash;
      pending.push(e);
      if (pending.length === 100) {
        batch(pending);
        pending = [];
      }
    }
    if (pending.length > 0) batch(pending);
    return inputs.length;
  } finally {
    db.close();
  }
}

async function main(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-audit-"));
  try {
    const inputs = generate();
    const pki = makePki();
    const signer = auditSigner(pki);
    const source = new MemoryAuditSource(TD, pki.ca.rootFingerprint, [derToPem(pki.ca.material.rootDer, "CERTIFICATE"), pki.ca.intermediatePem, signer.leafPem]);
    for (const x of inputs) {
      const { v: _v, seq: _s, ...head } = x.head;
      const e = source.append(head, x.body);
      if ((e.head.seq + 1) % 1000 === 0 || e.head.seq === N - 1) {
        source.addCheckpoint(e.head.seq, await signCheckpoint(signer, { seq: e.head.seq, hash: e.hash, time: new Date(Date.parse(e.head.time) + 1).toISOString(), trustDomain: TD }));
      }
    }

    const seal: Sample[] = [];
    const wal: Sample[] = [];
    const exp: Sample[] = [];
    const verFull: Sample[] = [];
    const verFiltered: Sample[] = [];
    const full = join(dir, "full.jsonl");
    const filtered = join(dir, "denied.jsonl");
    const exportTo = async (file: string, filter: { outcome?: "denied" }) => {
      const out = createWriteStream(file);
      const s = await exportBundle(source, filter, out);
      out.end();
      await finished(out);
      return s.entries + s.sealed;
    };
    const verify = async (file: string) => {
      const r = await verifyBundleFile(file, { caFingerprint: pki.ca.rootFingerprint });
      if (!r.ok) throw new Error(`bundle did not verify: ${JSON.stringify(r.error)}`);
      return r.entries + r.sealed;
    };
    await exportTo(filtered, { outcome: "denied" });
    for (let run = 0; run < REPS; run++) {
      seal.push(await timed(() => sealOnly(inputs)));
      wal.push(await timed(() => sealAndInsert(inputs, dir, run)));
      exp.push(await timed(() => exportTo(full, {})));
      verFull.push(await timed(() => verify(full)));
      verFiltered.push(await timed(() => verify(filtered)));
    }

    const all = [seal, wal, exp, verFull, verFiltered];
    const shares = all.flat().map((x) => (x.ms > 0 ? x.cpuMs / x.ms : 1));
    const j = (xs: readonly Sample[]) => judge(median(xs.map(rate)), median(xs.map(cpuRate)), shares);
    const [jSeal, jWal, jExp, jFull, jFiltered] = all.map(j) as [ReturnType<typeof j>, ReturnType<typeof j>, ReturnType<typeof j>, ReturnType<typeof j>, ReturnType<typeof j>];
    const vsAppend = jFull.value / jWal.value;
    const vsSeal = jFull.value / jSeal.value;
    const pass = vsAppend >= TARGET_VERIFY_VS_APPEND && jExp.value >= TARGET_EXPORT;

    const row = (name: string, xs: readonly Sample[], note?: string) => ({ name, runs: xs.map(rate), perCpu: xs.map(cpuRate), ...(note ? { note } : {}) });
    const pin = canPin() && process.send ? "taskset -c 0" : "one thread, not pinned";
    const title = `Benchmark: audit verify and export, ${N.toLocaleString("en-US")} entries, checkpoint every 1,000 (${pin}; ${REPS} runs, median; entries/s)`;
    const footer = [
      `ratio verify (all shown) / append (seal + WAL insert): ${fmtRatio(vsAppend)}; / seal alone: ${fmtRatio(vsSeal)}; filtered verify / append: ${fmtRatio(jFiltered.value / jWal.value)}`,
      `target verify >= ${TARGET_VERIFY_VS_APPEND}x append: ${fmtRatio(vsAppend)} (${jFull.basis})  ${verdict(vsAppend, TARGET_VERIFY_VS_APPEND)}`,
      `target export >= ${TARGET_EXPORT.toLocaleString("en-US")}/s: ${fmtRate(jExp.value)}/s (${jExp.basis})  ${verdict(jExp.value, TARGET_EXPORT)}`,
      ...jFull.notes,
    ];
    return {
      id: "audit-verify",
      title,
      table: table(
        title,
        [
          row("baseline: append, sealEntry chaining", seal),
          row("baseline: append, sealEntry + WAL insert (100/txn)", wal, "the log's append path"),
          row("exportBundle to a file, all shown", exp),
          row("verifyBundleFile, all shown", verFull, "body digests recomputed"),
          row("verifyBundleFile, outcome=denied", verFiltered, "85% sealed"),
        ],
        footer,
      ),
      summary:
        `audit-verify: verify ${fmtRate(jFull.value)}/s = ${fmtRatio(vsAppend)} append (${fmtRate(jWal.value)}/s); export ${fmtRate(jExp.value)}/s; ` +
        `targets >= ${TARGET_VERIFY_VS_APPEND}x, >= ${TARGET_EXPORT.toLocaleString("en-US")}/s ${pass ? "PASS" : "FAIL"}`,
      pass,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runBenchmark(main);
