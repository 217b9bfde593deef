import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalize } from "../../src/core/index.js";
import { canonicalBody, canonicalSealed, sealedForm, type EntryBody, type EntryHead } from "../../src/audit/format.js";
import { formatVerifyReport, verifyBundle, verifyBundleFile, verifySource } from "../../src/audit/verify.js";
import { prng } from "../support/prng.js";
import { auditSigner, buildLog, entryFor, exportLines, lineOfSeq, parse, signCheckpoint, TD, type TestLog } from "./support.js";

let log: TestLog;
let lines: string[];
const dir = mkdtempSync(join(tmpdir(), "portcullis-verify-"));

beforeAll(async () => {
  log = await buildLog({ entries: 1500, checkpointEvery: 500, seed: 5 });
  lines = await exportLines(log.source);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const edit = (ls: readonly string[], i: number, f: (o: Record<string, unknown>) => void): string[] => {
  const out = [...ls];
  const o = JSON.parse(out[i] as string) as Record<string, unknown>;
  f(o);
  out[i] = JSON.stringify(o);
  return out;
};

describe("the fast canonical forms (format.ts, shared by append and verify)", () => {
  it("equal format.ts's canonical JSON, byte for byte", () => {
    const rand = prng(99);
    const odd = ["ünïcødé", "quote\" back\\slash", "tab\tnew\nline", "\u2028", "emoji 🚀", "\u0001", ""];
    for (let i = 0; i < 2000; i++) {
      const { head, body } = entryFor(rand, new Date(1_700_000_000_000 + i).toISOString());
      const h: EntryHead = { ...head, v: 1, seq: i, ...(i % 7 === 0 ? { actor: odd[i % odd.length] as string, resource: odd[(i + 1) % odd.length] as string } : {}) };
      const deploy = {
        revision: i,
        jti: odd[i % odd.length] as string,
        digest: `sha256:${"f".repeat(64)}`,
        runtime: "runsc",
        actualRuntimes: i % 2 === 0 ? ["runsc", "runc"] : [],
        nodes: odd.slice(0, i % 4),
        containers: ["web-0", "web-1"],
        replicas: i % 5,
        imageId: `sha256:${"a".repeat(64)}`,
        decisionSha256: "b".repeat(64),
      };
      const b: EntryBody =
        i % 11 === 0
          ? { ...body, reasons: odd, genesis: { trustDomain: TD, caFingerprint: "ab".repeat(32) } }
          : i % 3 === 0
            ? { ...body, deploy }
            : i % 3 === 1
              ? { ...body, deploy: { digest: deploy.digest, revision: undefined, replicas: 0 } }
              : body;
      expect(canonicalSealed(h, "c".repeat(64), "d".repeat(64))).toBe(canonicalize(sealedForm(h, "c".repeat(64), "d".repeat(64))));
      expect(canonicalBody(b)).toBe(canonicalize(b));
    }
  });

  it("fall back to the generic canonical JSON for fields that do not have their declared types", () => {
    const declared = (o: Record<string, unknown>, keys: readonly string[]) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
    const bodyKeys = ["actorSerial", "source", "status", "reasons", "requestId", "bodySha256", "target", "targetHmac", "genesis", "deploy"];
    const bodies: Record<string, unknown>[] = [
      {},
      { status: "200" },
      { status: 1.5, reasons: [] },
      { status: null },
      { reasons: "one" },
      { reasons: ["a", 1, null] },
      { target: 7, extra: "dropped" },
      { genesis: { trustDomain: TD, caFingerprint: "ab", more: 1 } },
      { genesis: { trustDomain: TD } },
      { genesis: [TD] },
      { requestId: { nested: [1, "x"] }, source: "s" },
      { deploy: { revision: "3" } },
      { deploy: { revision: 1.5, jti: "j" } },
      { deploy: { replicas: -1 } },
      { deploy: { actualRuntimes: ["runsc", 1] } },
      { deploy: { nodes: "n1" } },
      { deploy: { jti: "j", manifest: { env: { TOKEN: "x" } } } },
      { deploy: ["runsc"] },
      { deploy: null },
      { deploy: {} },
    ];
    for (const b of bodies) expect(canonicalBody(b as EntryBody), JSON.stringify(b)).toBe(canonicalize(declared(b, bodyKeys)));
    const base = { v: 1, seq: 3, time: "2026-01-01T00:00:00.000Z", type: "api.request", outcome: "allowed", actor: "user:a" };
    const heads: Record<string, unknown>[] = [{ ...base, seq: 2.5 }, { ...base, v: 2 }, { ...base, action: 5 }, { ...base, resource: null }, { ...base, extra: "dropped", namespace: "ns" }];
    for (const h of heads) {
      expect(canonicalSealed(h as unknown as EntryHead, "c".repeat(64), "d".repeat(64))).toBe(canonicalize(sealedForm(h as unknown as EntryHead, "c".repeat(64), "d".repeat(64))));
    }
  });
});

describe("verifyBundle", () => {
  it("accepts a pinned root given as SHA256:hex, colon-separated or bare hex", async () => {
    const fp = log.pki.ca.rootFingerprint;
    for (const pin of [fp, `SHA256:${fp}`, fp.toUpperCase().match(/../g)!.join(":")]) {
      const r = await verifyBundle(lines, { caFingerprint: pin });
      expect(r.ok, pin).toBe(true);
      expect(r.rootPinned).toBe(true);
    }
    expect(formatVerifyReport(await verifyBundle(lines, { caFingerprint: fp }))).toBe(
      ["ok: 1500 entries, seq 0..1499, last checkpoint at seq 1499, 0 signed requests", "  filter: none (every entry shown)", `  root CA: SHA256:${fp} (pinned)`].join("\n"),
    );
  });

  it("refuses a root other than the pinned one", async () => {
    const r = await verifyBundle(lines, { caFingerprint: "ab".repeat(32) });
    expect(r.error).toMatchObject({ kind: "untrusted CA", seq: null, line: 2 });
  });

  it("reads async lines and files", async () => {
    async function* gen() {
      yield* lines;
    }
    expect((await verifyBundle(gen())).ok).toBe(true);
    const file = join(dir, "b.jsonl");
    writeFileSync(file, `${lines.join("\n")}\n`);
    expect((await verifyBundleFile(file)).ok).toBe(true);
    writeFileSync(file, lines.slice(0, 700).join("\n"));
    expect((await verifyBundleFile(file)).error).toMatchObject({ kind: "truncated", seq: 698 });
  });

  it.each([
    ["not JSON", (ls: string[]) => [ls[0] as string, "{oops", ...ls.slice(2)], { kind: "parse", seq: null, line: 2 }],
    ["empty input", () => [], { kind: "truncated", seq: null }],
    ["no header", (ls: string[]) => ls.slice(1), { kind: "format", line: 1 }],
    ["wrong format name", (ls: string[]) => edit(ls, 0, (o) => (o.format = "other/1")), { kind: "format", line: 1 }],
    ["an unknown filter key", (ls: string[]) => edit(ls, 0, (o) => (o.filter = { color: "red" })), { kind: "format", line: 1 }],
    ["a line after the end", (ls: string[]) => [...ls, ls[5] as string], { kind: "format" }],
    ["no end line", (ls: string[]) => ls.slice(0, -1), { kind: "truncated", seq: 1500 }],
    ["wrong end counts", (ls: string[]) => edit(ls, ls.length - 1, (o) => (o.entries = 1)), { kind: "format" }],
    ["an undeclared body field", (ls: string[]) => edit(ls, lineOfSeq(ls, 42), (o) => ((o.entry as { body: Record<string, unknown> }).body.secret = "x")), { kind: "format", seq: 42 }],
    ["an extra key in an entry", (ls: string[]) => edit(ls, lineOfSeq(ls, 42), (o) => ((o.entry as Record<string, unknown>).note = "x")), { kind: "format", seq: 42 }],
    ["an entry after the checkpoints", (ls: string[]) => [...ls.slice(0, -1), ls[5] as string, ls[ls.length - 1] as string], { kind: "format" }],
    ["no checkpoints at all", (ls: string[]) => edit(ls.filter((l) => parse(l).kind !== "checkpoint"), ls.length - 4, (o) => (o.checkpoints = 0)), { kind: "uncovered", seq: 0 }],
    ["the CA line removed", (ls: string[]) => [ls[0] as string, ...ls.slice(2)], { kind: "format", line: 2 }],
    ["a CA chain without a root", (ls: string[]) => edit(ls, 1, (o) => (o.certificates = (o.certificates as string[]).slice(1))), { kind: "untrusted CA" }],
    ["the genesis naming another CA", (ls: string[]) => edit(ls, 0, (o) => (o.caFingerprint = "ab".repeat(32))), { kind: "untrusted CA" }],
  ] as const)("reports %s", async (_name, tamper, want) => {
    const r = await verifyBundle(tamper([...lines]));
    expect(r.ok).toBe(false);
    expect(r.error).toMatchObject(want);
  });

  it("reports an edited anchor", async () => {
    const part = await exportLines(log.source, { since: log.timeOf(600) });
    expect((await verifyBundle(part)).ok).toBe(true);
    const hdr = parse(part[0] as string) as unknown as { range: { from: number; to: number }; anchor: { seq: number } };
    expect(hdr.range).toEqual({ from: 600, to: 1499 });
    expect(hdr.anchor.seq).toBe(599);
    const r = await verifyBundle(edit(part, 0, (o) => ((o.anchor as { hash: string }).hash = "0".repeat(64))));
    expect(r.error).toMatchObject({ kind: "anchor", seq: 600 });
  });

  it("reports an entry shown in full that does not match the filter", async () => {
    const part = await exportLines(log.source, { outcome: "denied" });
    const i = part.findIndex((l) => parse(l).kind === "sealed");
    const seq = parse(part[i] as string).entry!.head.seq as number;
    const full = log.source.entries(seq, seq)[Symbol.iterator]().next().value!;
    const shown = [...part];
    shown[i] = JSON.stringify({ kind: "entry", entry: full });
    expect((await verifyBundle(shown)).error).toMatchObject({ kind: "filter mismatch", seq });
  });

  it("refuses a checkpoint signed outside the audit certificate's validity", async () => {
    const short = await buildLog({ entries: 20, checkpointEvery: 1000, checkpointEnd: false }, log.pki, auditSigner(log.pki, "audit", 60_000));
    const h = short.source.head();
    const jws = await signCheckpoint(auditSigner(log.pki, "audit", 60_000), { seq: h.seq, hash: h.hash, time: short.timeOf(19), trustDomain: TD });
    short.source.addCheckpoint(h.seq, jws);
    expect((await verifyBundle(await exportLines(short.source))).error).toMatchObject({ kind: "untrusted signer", seq: 19 });
  });
});

describe("verifySource (the live log)", () => {
  it("verifies the whole log in place", async () => {
    const r = await verifySource(log.source, { caFingerprint: log.pki.ca.rootFingerprint });
    expect(r).toMatchObject({ ok: true, entries: 1500, from: 0, to: 1499, lastCheckpoint: 1499, checkpoints: 3 });
  });

  it("reports entries that no checkpoint covers yet, unless it may checkpoint first", async () => {
    const l = await buildLog({ entries: 1200, checkpointEvery: 500, checkpointEnd: false });
    const r = await verifySource(l.source);
    expect(r.error).toMatchObject({ kind: "uncovered", seq: 1000 });
    expect(formatVerifyReport(r)).toMatch(/^FAIL at seq 1000: uncovered: entries after the last checkpoint that no checkpoint covers \(seq 1000\.\.1199\)/);
    let called = 0;
    const ok = await verifySource(l.source, {
      ensureCheckpoint: async () => {
        called++;
        const h = l.source.head();
        l.source.addCheckpoint(h.seq, await signCheckpoint(l.signer, { seq: h.seq, hash: h.hash, time: l.timeOf(h.seq), trustDomain: TD }));
      },
    });
    expect(called).toBe(1);
    expect(ok.ok).toBe(true);
  });
});
