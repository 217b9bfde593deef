import { createWriteStream, mkdtempSync, readFileSync, rmSync, type WriteStream } from "node:fs";
import { finished } from "node:stream/promises";
import { Writable } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPortcullisError } from "../../src/core/index.js";
import { sealEntry, ZERO_HASH, type AuditEntry, type AuditSource, type EntryBody, type EntryHead } from "../../src/audit/format.js";
import { CSV_COLUMNS, CSV_NOT_VERIFIABLE, csvCell, exportBundle, exportCsv } from "../../src/audit/export.js";
import { MemoryAuditSource } from "../../src/audit/memory-source.js";
import { verifyBundle, verifyBundleFile } from "../../src/audit/verify.js";
import { derToPem } from "../../src/pki/index.js";
import { auditSigner, buildLog, exportLines, makePki, parse, signCheckpoint, START, TD, type TestLog } from "./support.js";

let log: TestLog;
const dir = mkdtempSync(join(tmpdir(), "portcullis-export-"));

beforeAll(async () => {
  log = await buildLog({ entries: 5000, checkpointEvery: 1000, seed: 3 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isPortcullisError(e) ? e.code : String(e);
  }
  return "resolved";
}

describe("exportBundle", () => {
  it("writes header, ca, entries in seq order, checkpoints, end", async () => {
    const lines = await exportLines(log.source);
    const kinds = lines.map((l) => parse(l).kind);
    expect(kinds[0]).toBe("header");
    expect(kinds[1]).toBe("ca");
    expect(kinds.slice(2, 5002).every((k) => k === "entry")).toBe(true);
    expect(kinds.slice(5002)).toEqual(["checkpoint", "checkpoint", "checkpoint", "checkpoint", "checkpoint", "end"]);
    const header = parse(lines[0] as string);
    expect(header).toMatchObject({ format: "portcullis-audit-export/1", trustDomain: TD, caFingerprint: log.pki.ca.rootFingerprint, range: { from: 0, to: 4999 }, anchor: { seq: -1, hash: ZERO_HASH } });
    expect(parse(lines[1] as string).certificates).toEqual(log.source.caChainPem());
    expect(parse(lines.at(-1) as string)).toEqual({ kind: "end", entries: 5000, sealed: 0, checkpoints: 5, signedRequests: 0 });
  });

  it("covers the last hour of denied requests from the first entry since to the checkpoint after until", async () => {
    // Entries are 1.2 s apart: seq 2000 is at +40 min, seq 3500 at +70 min.
    const filter = { outcome: "denied" as const, since: log.timeOf(2000), until: log.timeOf(3500) };
    const lines = await exportLines(log.source, filter);
    const header = parse(lines[0] as string);
    expect(header.range).toEqual({ from: 2000, to: 3999 });
    const e1999 = [...log.source.entries(1999, 1999)][0] as AuditEntry;
    expect(header.anchor).toEqual({ seq: 1999, hash: e1999.hash });
    const shown = lines.map(parse).filter((o) => o.kind === "entry");
    const sealed = lines.map(parse).filter((o) => o.kind === "sealed");
    expect(shown.length + sealed.length).toBe(2000);
    expect(shown.every((o) => o.entry!.head.outcome === "denied" && (o.entry!.head.seq as number) < 3500)).toBe(true);
    expect(sealed.every((o) => o.entry!.body === undefined)).toBe(true);
    const expected = [...log.source.entries(2000, 3499)].filter((e) => e.head.outcome === "denied").length;
    expect(shown.length).toBe(expected);
    expect(lines.map(parse).filter((o) => o.kind === "checkpoint")).toHaveLength(2);
    const r = await verifyBundle(lines, { caFingerprint: log.pki.ca.rootFingerprint });
    expect(r).toMatchObject({ ok: true, entries: expected, sealed: 2000 - expected, from: 2000, to: 3999, lastCheckpoint: 3999 });
  });

  it("accepts other time notations and refuses bad ones", async () => {
    const lines = await exportLines(log.source, { since: log.timeOf(2000).replace("Z", "+00:00") });
    expect(parse(lines[0] as string).filter).toEqual({ since: log.timeOf(2000) });
    expect(await code(exportLines(log.source, { since: "yesterday" }))).toBe("PC_AUDIT_FILTER_INVALID");
    expect(await code(exportLines(log.source, { since: log.timeOf(10), until: log.timeOf(5) }))).toBe("PC_AUDIT_FILTER_INVALID");
  });

  it("needs a checkpoint over the range's end: fails clearly, or asks for one first", async () => {
    const l = await buildLog({ entries: 1500, checkpointEvery: 1000, checkpointEnd: false });
    expect(await code(exportLines(l.source))).toBe("PC_AUDIT_NOT_CHECKPOINTED");
    // A range that ends before the last checkpoint needs none.
    expect(parse((await exportLines(l.source, { until: l.timeOf(500) }))[0] as string).range).toEqual({ from: 0, to: 999 });
    let calls = 0;
    const lines: string[] = [];
    const s = await exportBundle(l.source, {}, (x) => void lines.push(x), {
      ensureCheckpoint: async () => {
        calls++;
        const h = l.source.head();
        l.source.addCheckpoint(h.seq, await signCheckpoint(l.signer, { seq: h.seq, hash: h.hash, time: l.timeOf(h.seq), trustDomain: TD }));
      },
    });
    expect(calls).toBe(1);
    expect(s).toMatchObject({ from: 0, to: 1499, entries: 1500, sealed: 0, checkpoints: 2 });
    expect((await verifyBundle(lines)).ok).toBe(true);
  });

  it("refuses an empty log", async () => {
    const pki = makePki();
    const empty = new MemoryAuditSource(TD, pki.ca.rootFingerprint, []);
    expect(await code(exportLines(empty))).toBe("PC_AUDIT_EMPTY");
  });

  it("writes to a file stream that verifies", async () => {
    const file = join(dir, "all.jsonl");
    const out = createWriteStream(file);
    const s = await exportBundle(log.source, { actor: "user:u7" }, out);
    out.end();
    await finished(out);
    expect(s.entries).toBeGreaterThan(0);
    expect(await verifyBundleFile(file)).toMatchObject({ ok: true, entries: s.entries, sealed: s.sealed });
  });
});

/**
 * A log generated on demand: entries are built when the iterator asks for them, so the
 * test can see how far ahead of the writer the export reads.
 */
class LazySource implements AuditSource {
  readonly trustDomain = TD;
  readonly hashes: Buffer;
  yielded = 0;
  constructor(
    readonly n: number,
    readonly caFingerprint: string,
    private readonly chain: string[],
    private readonly cps: { seq: number; jws: string }[],
  ) {
    this.hashes = Buffer.alloc(32 * n);
  }
  static time = (seq: number) => new Date(START + seq * 100).toISOString();
  static make(seq: number, prevHash: string): AuditEntry {
    const head: EntryHead = { v: 1, seq, time: LazySource.time(seq), type: "api.request", outcome: seq % 10 === 0 ? "denied" : "allowed", actor: `user:u${seq % 50}`, action: "GET /v1/whoami", namespace: `team-${seq % 5}` };
    const body: EntryBody = { status: seq % 10 === 0 ? 403 : 200, requestId: `req-${seq}`, source: "10.0.0.1:40000" };
    return sealEntry(head, body, prevHash);
  }
  hashAt(seq: number): string {
    return seq < 0 ? ZERO_HASH : this.hashes.toString("hex", seq * 32, seq * 32 + 32);
  }
  build(): void {
    let prev = ZERO_HASH;
    for (let s = 0; s < this.n; s++) {
      prev = LazySource.make(s, prev).hash;
      this.hashes.write(prev, s * 32, "hex");
    }
  }
  caChainPem(): string[] {
    return this.chain;
  }
  head() {
    return { seq: this.n - 1, hash: this.hashAt(this.n - 1) };
  }
  *entries(from: number, to: number): Iterable<AuditEntry> {
    for (let s = from; s <= to && s < this.n; s++) {
      this.yielded++;
      yield LazySource.make(s, this.hashAt(s - 1));
    }
  }
  *checkpoints(from: number) {
    for (const c of this.cps) if (c.seq >= from) yield c;
  }
  firstSeqAtOrAfter(time: string): number | undefined {
    const s = Math.ceil((Date.parse(time) - Date.parse(LazySource.time(0))) / 100);
    return s < this.n ? Math.max(0, s) : undefined;
  }
}

describe("export streams", () => {
  it("exports 200,000 entries to a slow file stream, reading only a bounded distance ahead of the writer", async () => {
    const n = 200_000;
    const pki = makePki();
    const signer = auditSigner(pki);
    const cps: { seq: number; jws: string }[] = [];
    const src = new LazySource(n, pki.ca.rootFingerprint, [derToPem(pki.ca.material.rootDer, "CERTIFICATE"), pki.ca.intermediatePem, signer.leafPem], cps);
    src.build();
    for (let seq = 9999; seq < n; seq += 10_000) {
      cps.push({ seq, jws: await signCheckpoint(signer, { seq, hash: src.hashAt(seq), time: LazySource.time(seq), trustDomain: TD }) });
    }
    const file = join(dir, "big.jsonl");
    const fileOut: WriteStream = createWriteStream(file);
    let received = 0;
    let maxAhead = 0;
    // A writer slower than the reader: each chunk is acknowledged on a later turn of the event loop.
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        received += chunk.toString("utf8").split("\n").length - 1;
        maxAhead = Math.max(maxAhead, src.yielded - received);
        fileOut.write(chunk, () => setImmediate(cb));
      },
    });
    const heap0 = process.memoryUsage().heapUsed;
    const s = await exportBundle(src, { outcome: "denied" }, slow);
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    slow.end();
    await finished(slow);
    fileOut.end();
    await finished(fileOut);
    expect(s).toMatchObject({ from: 0, to: n - 1, entries: n / 10, sealed: n - n / 10, checkpoints: 20 });
    expect(src.yielded).toBe(n);
    // The export never ran more than a few write chunks ahead of what the stream accepted.
    expect(maxAhead).toBeLessThan(2000);
    // 200,000 entries held at once would take well over 100 MB of heap.
    expect(heapGrowth).toBeLessThan(64 * 1024 * 1024);
    const r = await verifyBundleFile(file, { caFingerprint: pki.ca.rootFingerprint });
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ ok: true, entries: n / 10, sealed: n - n / 10, lastCheckpoint: n - 1 });
  });
});

describe("exportCsv", () => {
  it("says it is not verifiable, quotes properly and defuses formulas", async () => {
    const pki = makePki();
    const src = new MemoryAuditSource(TD, pki.ca.rootFingerprint, []);
    const t = (s: number) => new Date(Date.parse("2026-03-01T10:00:00.000Z") + s * 1000).toISOString();
    src.append({ time: t(0), type: "audit.genesis", outcome: "allowed", actor: "service:gateway" }, { genesis: { trustDomain: TD, caFingerprint: pki.ca.rootFingerprint } });
    src.append(
      { time: t(1), type: "api.request", outcome: "denied", actor: "user:alice", action: "POST /v1/deploys", resource: "deployments", namespace: "team-a" },
      { status: 403, source: "10.0.0.1:5000", requestId: "r1", reasons: ["rbac: no rule, \"deploy\"", "=HYPERLINK(\"http://x\")"], target: "+cmd" },
    );
    src.append({ time: t(2), type: "api.request", outcome: "allowed", actor: "user:bob", action: "GET /v1/whoami" }, { status: 200, requestId: "-r2\nx", target: "@SUM(A1)" });
    const chunks: string[] = [];
    const r = await exportCsv(src, { since: t(1) }, (l) => void chunks.push(l));
    expect(r.rows).toBe(2);
    expect(chunks[0]).toBe(CSV_NOT_VERIFIABLE);
    expect(chunks[0]).toMatch(/^# .*NOT VERIFIABLE/);
    expect(chunks[1]).toBe(CSV_COLUMNS.join(","));
    expect(chunks[1]).toBe("seq,time,type,outcome,actor,action,resource,namespace,status,source,requestId,reasons,target,deploy");
    expect(chunks[2]).toBe(`1,${t(1)},api.request,denied,user:alice,POST /v1/deploys,deployments,team-a,403,10.0.0.1:5000,r1,"rbac: no rule, ""deploy""; =HYPERLINK(""http://x"")",'+cmd,`);
    expect(chunks[3]).toBe(`2,${t(2)},api.request,allowed,user:bob,GET /v1/whoami,,,200,,"'-r2\nx",,'@SUM(A1),`);
    const denied: string[] = [];
    expect((await exportCsv(src, { outcome: "denied" }, (l) => void denied.push(l))).rows).toBe(1);
    // A stream gets newline-terminated lines.
    const file = join(dir, "x.csv");
    const out = createWriteStream(file);
    await exportCsv(src, {}, out);
    out.end();
    await finished(out);
    // Two header lines and three rows, one of them with a quoted newline, then the final newline.
    expect(readFileSync(file, "utf8").split("\n")).toHaveLength(2 + 3 + 1 + 1);
  });

  it.each([
    ["plain", "plain"],
    ["=1+2", "'=1+2"],
    ["+1", "'+1"],
    ["-1", "'-1"],
    ["@x", "'@x"],
    ["\tx", "'\tx"],
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ["=a,b", `"'=a,b"`],
    ["", ""],
  ])("csvCell(%j) = %j", (input, want) => {
    expect(csvCell(input)).toBe(want);
  });
});
