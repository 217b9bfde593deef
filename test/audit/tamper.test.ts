import { beforeAll, describe, expect, it } from "vitest";
import { bodyDigestOf, entryHash, ZERO_HASH, type EntryBody, type EntryHead } from "../../src/audit/format.js";
import { formatVerifyReport, verifyBundle, type VerifyReport } from "../../src/audit/verify.js";
import { derToPem } from "../../src/pki/index.js";
import { auditSigner, buildLog, exportLines, lineOfSeq, makePki, parse, rogueKeyWithChain, signCheckpoint, TD, type Line, type TestLog } from "./support.js";

/**
 * The six tampers, each caught by offline verification naming the first bad seq,
 * on a 3,000-entry log with checkpoints at seq 999, 1999 and 2999.
 */

let log: TestLog;
let lines: string[];

beforeAll(async () => {
  log = await buildLog({ entries: 3000, checkpointEvery: 1000, seed: 11 });
  lines = await exportLines(log.source);
});

const verify = (ls: readonly string[], caFingerprint?: string): Promise<VerifyReport> =>
  verifyBundle(ls, caFingerprint !== undefined ? { caFingerprint } : {});

function edit(ls: readonly string[], i: number, f: (o: Line) => void): string[] {
  const out = [...ls];
  const o = parse(out[i] as string);
  f(o);
  out[i] = JSON.stringify(o);
  return out;
}

/** Recomputes every hash from `fromSeq` on, as someone without the audit key could. */
function rebuild(ls: readonly string[], fromSeq: number, change: (head: Record<string, unknown>, body: Record<string, unknown> | undefined) => void): string[] {
  let prev: string | undefined = fromSeq === 0 ? ZERO_HASH : undefined;
  return ls.map((l) => {
    const o = parse(l);
    if ((o.kind !== "entry" && o.kind !== "sealed") || !o.entry) return l;
    const e = o.entry as Record<string, unknown> & { head: Record<string, unknown> };
    const seq = e.head.seq as number;
    if (seq < fromSeq) {
      prev = e.hash as string;
      return l;
    }
    const body = e.body as Record<string, unknown> | undefined;
    if (seq === fromSeq) change(e.head, body);
    if (body) e.bodyDigest = bodyDigestOf(body as EntryBody);
    e.prevHash = prev;
    e.hash = entryHash(e.head as unknown as EntryHead, e.bodyDigest as string, prev as string);
    prev = e.hash as string;
    return JSON.stringify(o);
  });
}

const checkpointLines = (ls: readonly string[]) => ls.map((l, i) => [i, parse(l)] as const).filter(([, o]) => o.kind === "checkpoint");

async function resign(ls: readonly string[], signer: Parameters<typeof signCheckpoint>[0]): Promise<string[]> {
  const out = [...ls];
  const hashes = new Map<number, string>();
  for (const l of ls) {
    const o = parse(l);
    if (o.entry) hashes.set(o.entry.head.seq as number, o.entry.hash as string);
  }
  for (const [i, o] of checkpointLines(ls)) {
    const p = JSON.parse(Buffer.from((o.jws as string).split(".")[1] as string, "base64url").toString()) as { seq: number; time: string; trustDomain: string };
    out[i] = JSON.stringify({ kind: "checkpoint", jws: await signCheckpoint(signer, { ...p, hash: hashes.get(p.seq) as string }) });
  }
  return out;
}

describe("offline verify catches tampering", () => {
  it("accepts the untouched bundle", async () => {
    const r = await verify(lines, log.pki.ca.rootFingerprint);
    expect(r).toMatchObject({ ok: true, entries: 3000, sealed: 0, from: 0, to: 2999, lastCheckpoint: 2999, checkpoints: 3 });
    expect(formatVerifyReport(r).split("\n")[0]).toBe("ok: 3000 entries, seq 0..2999, last checkpoint at seq 2999, 0 signed requests");
  });

  it("one field edited: hash mismatch at that seq", async () => {
    const head = edit(lines, lineOfSeq(lines, 1234), (o) => {
      o.entry!.head.actor = "user:someone-else";
    });
    expect((await verify(head)).error).toMatchObject({ seq: 1234, kind: "hash mismatch" });
    const body = edit(lines, lineOfSeq(lines, 1234), (o) => {
      (o.entry!.body as Record<string, unknown>).status = 200 + 1;
    });
    const r = await verify(body);
    expect(r.error).toMatchObject({ seq: 1234, kind: "hash mismatch", message: "the body does not match its digest" });
    expect(formatVerifyReport(r).split("\n")[0]).toBe("FAIL at seq 1234: hash mismatch: the body does not match its digest");
  });

  it("one entry deleted from the middle: gap at that seq", async () => {
    const out = [...lines];
    out.splice(lineOfSeq(lines, 1500), 1);
    const r = await verify(out);
    expect(r.error).toMatchObject({ seq: 1500, kind: "gap" });
    expect(formatVerifyReport(r)).toMatch(/^FAIL at seq 1500: gap: entry 1500 is missing/);
  });

  it("one entry deleted and the following renumbered: hash mismatch", async () => {
    const out = [...lines];
    out.splice(lineOfSeq(lines, 1500), 1);
    const renumbered = out.map((l) => {
      const o = parse(l);
      if (o.entry && (o.entry.head.seq as number) > 1500) {
        o.entry.head.seq = (o.entry.head.seq as number) - 1;
        return JSON.stringify(o);
      }
      return l;
    });
    expect((await verify(renumbered)).error).toMatchObject({ seq: 1500, kind: "hash mismatch" });
  });

  it("two entries swapped: reorder at the first", async () => {
    const out = [...lines];
    const i = lineOfSeq(lines, 1500);
    [out[i], out[i + 1]] = [out[i + 1] as string, out[i] as string];
    const r = await verify(out);
    expect(r.error).toMatchObject({ seq: 1500, kind: "reorder" });
    // Swapped far apart, too.
    const far = [...lines];
    const j = lineOfSeq(lines, 2100);
    [far[i], far[j]] = [far[j] as string, far[i] as string];
    expect((await verify(far)).error).toMatchObject({ seq: 1500, kind: "reorder" });
  });

  it("a duplicated entry", async () => {
    const out = [...lines];
    const i = lineOfSeq(lines, 700);
    out.splice(i + 1, 0, out[i] as string);
    expect((await verify(out)).error).toMatchObject({ seq: 700, kind: "duplicate" });
  });

  it("the tail truncated past a checkpoint: truncated at the first missing seq", async () => {
    const first = lineOfSeq(lines, 2500);
    const last = lineOfSeq(lines, 2999);
    // Entries 2500..2999 cut, the checkpoints left in place.
    const cut = [...lines.slice(0, first), ...lines.slice(last + 1)];
    expect((await verify(cut)).error).toMatchObject({ seq: 2500, kind: "truncated" });
    // The same with the header's range edited to match: the checkpoint at 2999 still points past the end.
    const headerEdited = edit(cut, 0, (o) => {
      (o.range as Record<string, number>).to = 2499;
    });
    const r = await verify(headerEdited);
    expect(r.error).toMatchObject({ seq: 2500, kind: "truncated" });
    expect(r.error?.message).toContain("covers seq 2999");
    // And with that checkpoint removed too: entries 2000..2499 are covered by no checkpoint.
    const cps = checkpointLines(headerEdited);
    const noCp = headerEdited.filter((_, i) => i !== cps[cps.length - 1]![0]);
    const fixedEnd = edit(noCp, noCp.length - 1, (o) => {
      o.checkpoints = 2;
      o.entries = 2500;
    });
    const r2 = await verify(fixedEnd);
    expect(r2.error).toMatchObject({ seq: 2000, kind: "uncovered" });
    expect(formatVerifyReport(r2)).toMatch(/^FAIL at seq 2000: uncovered: entries after the last checkpoint that no checkpoint covers \(seq 2000\.\.2499\)/);
  });

  it("a checkpoint signature forged with a key not certified by our CA", async () => {
    const [i, o] = checkpointLines(lines)[1]!;
    const p = JSON.parse(Buffer.from((o.jws as string).split(".")[1] as string, "base64url").toString()) as { seq: number; hash: string; time: string; trustDomain: string };
    // A rogue key presenting our real audit certificate chain: the signature fails.
    const withRealChain = [...lines];
    withRealChain[i] = JSON.stringify({ kind: "checkpoint", jws: await signCheckpoint(rogueKeyWithChain(log.signer), p) });
    expect((await verify(withRealChain)).error).toMatchObject({ seq: 1999, kind: "bad signature" });
    // A key certified by another CA: the signer does not chain to our root.
    const otherCa = auditSigner(makePki());
    const withOtherChain = [...lines];
    withOtherChain[i] = JSON.stringify({ kind: "checkpoint", jws: await signCheckpoint(otherCa, p) });
    expect((await verify(withOtherChain)).error).toMatchObject({ seq: 1999, kind: "untrusted signer" });
    // A certificate from our CA, but for another identity than service:audit.
    const notAudit = auditSigner(log.pki, "gateway");
    const withWrongIdentity = [...lines];
    withWrongIdentity[i] = JSON.stringify({ kind: "checkpoint", jws: await signCheckpoint(notAudit, p) });
    expect((await verify(withWrongIdentity)).error).toMatchObject({ seq: 1999, kind: "untrusted signer" });
    // A signature byte flipped.
    const flipped = [...lines];
    const jws = o.jws as string;
    const sig = Buffer.from(jws.split(".")[2] as string, "base64url");
    sig[5] = (sig[5] as number) ^ 1;
    flipped[i] = JSON.stringify({ kind: "checkpoint", jws: `${jws.split(".").slice(0, 2).join(".")}.${sig.toString("base64url")}` });
    expect((await verify(flipped)).error).toMatchObject({ seq: 1999, kind: "bad signature" });
  });

  it("a whole chain rebuilt with new hashes, without the audit key", async () => {
    const rebuilt = rebuild(lines, 1500, (h) => {
      h.outcome = h.outcome === "denied" ? "allowed" : "denied";
    });
    // Links and hashes are consistent again; the signed checkpoint at 1999 is not.
    const r = await verify(rebuilt);
    expect(r.error).toMatchObject({ seq: 1999, kind: "checkpoint mismatch" });
    expect(r.error?.message).toContain("seq 1000..1999");
    // Re-signed with a key the CA did not certify (presenting the real chain or a rogue one).
    expect((await verify(await resign(rebuilt, rogueKeyWithChain(log.signer)))).error).toMatchObject({ seq: 999, kind: "bad signature" });
    expect((await verify(await resign(rebuilt, auditSigner(makePki())))).error).toMatchObject({ seq: 999, kind: "untrusted signer" });
  });

  it("a whole chain rebuilt under a different CA: caught only when the auditor pins the CA fingerprint", async () => {
    const other = makePki();
    const signer = auditSigner(other);
    let out = rebuild(lines, 0, (_h, body) => {
      (body as Record<string, unknown>).genesis = { trustDomain: TD, caFingerprint: other.ca.rootFingerprint };
    });
    out = await resign(out, signer);
    out = edit(out, 0, (o) => {
      o.caFingerprint = other.ca.rootFingerprint;
    });
    out = edit(out, 1, (o) => {
      o.certificates = [derToPem(other.ca.material.rootDer, "CERTIFICATE"), other.ca.intermediatePem, signer.leafPem];
    });
    const unpinned = await verify(out);
    expect(unpinned.ok).toBe(true);
    expect(unpinned.rootFingerprint).toBe(other.ca.rootFingerprint);
    expect(formatVerifyReport(unpinned)).toContain(`root CA: SHA256:${other.ca.rootFingerprint} (not pinned`);
    const pinned = await verify(out, `SHA256:${log.pki.ca.rootFingerprint}`);
    expect(pinned.ok).toBe(false);
    expect(pinned.error).toMatchObject({ seq: null, kind: "untrusted CA" });
    expect(formatVerifyReport(pinned)).toMatch(/^FAIL at line 2: untrusted CA: /);
  });
});

describe("a filtered export cannot hide a matching entry", () => {
  it("verifies, and catches a shown entry turned into a sealed one", async () => {
    const filtered = await exportLines(log.source, { outcome: "denied", since: log.timeOf(2000) });
    const r = await verify(filtered, log.pki.ca.rootFingerprint);
    expect(r.ok).toBe(true);
    expect(r.entries).toBeGreaterThan(50);
    const shown = filtered.map(parse).filter((o) => o.kind === "entry");
    const victim = shown[3]!.entry!;
    const seq = victim.head.seq as number;
    const i = lineOfSeq(filtered, seq);
    const hidden = [...filtered];
    hidden[i] = JSON.stringify({ kind: "sealed", entry: { head: victim.head, bodyDigest: victim.bodyDigest, prevHash: victim.prevHash, hash: victim.hash } });
    const r2 = await verify(hidden);
    expect(r2.error).toMatchObject({ seq, kind: "hidden entry" });
    expect(formatVerifyReport(r2)).toBe(
      [`FAIL at seq ${seq}: hidden entry: a sealed (hidden) entry matches the filter`, `  filter: outcome=denied since=${log.timeOf(2000)}`, `  root CA: SHA256:${log.pki.ca.rootFingerprint} (not pinned: compare it with the fingerprint you trust, or pass --ca-fingerprint)`].join("\n"),
    );
    // Editing the hidden entry's head so it no longer matches breaks its hash.
    const disguised = edit(hidden, i, (o) => {
      o.entry!.head.outcome = "allowed";
    });
    expect((await verify(disguised)).error).toMatchObject({ seq, kind: "hash mismatch" });
    // Deleting it instead leaves a gap.
    const deleted = [...filtered];
    deleted.splice(i, 1);
    expect((await verify(deleted)).error).toMatchObject({ seq, kind: "gap" });
  });
});
