import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  AuditLog,
  bodyDigestOf,
  entryHash,
  GENESIS_TYPE,
  ZERO_HASH,
  type AuditEntry,
} from "../../src/audit/index.js";
import { isPortcullisError, type AuditEvent } from "../../src/core/index.js";
import { DB_FILE } from "../../src/store/index.js";
import { auditFixture, verifyCheckpoint, type AuditFixture } from "./audit-fixture.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let f: AuditFixture;
afterEach(() => f?.close());

const ev = (i: number, over: Partial<AuditEvent> = {}): AuditEvent => ({
  type: "api.request",
  outcome: i % 3 === 0 ? "denied" : "allowed",
  actor: `user:u${i % 5}`,
  method: "GET",
  route: "/v1/whoami",
  status: 200,
  requestId: `req-${i}`,
  ...over,
});

const all = (l: AuditLog): AuditEntry[] => [...l.entries(0, l.head().seq)];

function expectChain(entries: readonly AuditEntry[]): void {
  let prev = ZERO_HASH;
  entries.forEach((e, i) => {
    expect(e.head.seq).toBe(i);
    expect(e.prevHash).toBe(prev);
    expect(e.bodyDigest).toBe(bodyDigestOf(e.body));
    expect(e.hash).toBe(entryHash(e.head, e.bodyDigest, e.prevHash));
    prev = e.hash;
  });
}

const checkpointCount = (fx: AuditFixture) => [...fx.log.checkpoints(0)].length;

describe("the chain", () => {
  it("starts with a genesis entry naming the trust domain and the CA fingerprint", () => {
    f = auditFixture({ sign: false });
    const [g] = all(f.log);
    expect(g?.head).toMatchObject({ seq: 0, type: GENESIS_TYPE, actor: "service:portcullis-init", outcome: "allowed" });
    expect(g?.body.genesis).toEqual({ trustDomain: "portcullis.local", caFingerprint: f.ca.rootFingerprint });
    expect(g?.prevHash).toBe(ZERO_HASH);
    f.log.genesis("portcullis.local", f.ca.rootFingerprint); // once only
    expect(f.store.auditLog.count()).toBe(1);
    expect(f.log.caFingerprint).toBe(f.ca.rootFingerprint);
  });

  it("links every entry to the one before, written by record, append and recordAfter alike", async () => {
    f = auditFixture({ sign: false });
    for (let i = 0; i < 10; i++) f.log.record(ev(i));
    await Promise.all(Array.from({ length: 20 }, (_, i) => f.log.append(ev(100 + i))));
    for (let i = 0; i < 10; i++) f.log.recordAfter(ev(200 + i));
    f.log.flush();
    const entries = all(f.log);
    expect(entries).toHaveLength(41);
    expectChain(entries);
    expect(f.log.head()).toEqual({ seq: 40, hash: entries[40]?.hash });
  });

  it("reads back through the access_events view with every field of the event", () => {
    f = auditFixture({ sign: false });
    const e: AuditEvent = {
      type: "api.request",
      outcome: "denied",
      actor: "user:alice",
      actorSerial: "0a1b2c",
      sourceAddress: "10.0.0.7",
      method: "POST",
      route: "/v1/certificates/:serial/revoke",
      status: 403,
      requestId: "req-42",
      reason: "PC_API_FORBIDDEN",
      target: "0a1b2c",
      namespace: "prod",
      resource: "certificates",
    };
    f.log.record(e);
    const [back] = f.store.accessEvents.latest(1);
    expect(back).toEqual({ ...e, id: 1, at: f.clock.now().getTime() });
    f.log.record({ type: "authz.decision", outcome: "allowed", actor: "user:bob", route: "certificates:revoke" });
    expect(f.store.accessEvents.latest(1)[0]).toMatchObject({ route: "certificates:revoke", method: undefined });
  });
});

describe("group commit", () => {
  it("writes many appends in one transaction; the promises resolve after it, with consecutive seqs", async () => {
    f = auditFixture({ sign: false });
    const tx = vi.spyOn(f.store, "transaction");
    const ps = Array.from({ length: 300 }, (_, i) => f.log.append(ev(i)));
    expect(f.store.auditLog.count()).toBe(1); // nothing written yet: buffered to the end of the turn
    const seqs = (await Promise.all(ps)).map((r) => r.seq);
    expect(tx).toHaveBeenCalledTimes(1);
    expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(f.store.auditLog.count()).toBe(301);
    expectChain(all(f.log));
  });

  it("rejects every pending append with PC_AUDIT_WRITE_FAILED when the table is gone, and reports lost recordAfter events", async () => {
    const lost: number[] = [];
    f = auditFixture({ sign: false, onFlushError: (_e, n) => lost.push(n) });
    await f.log.append(ev(1));
    const other = new Database(join(f.dir, DB_FILE));
    other.exec(`DROP TABLE audit_log`);
    other.close();
    const ps = [f.log.append(ev(2)), f.log.append(ev(3))];
    f.log.recordAfter(ev(4));
    for (const p of ps) {
      const e = await p.then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(isPortcullisError(e) && e.code).toBe("PC_AUDIT_WRITE_FAILED");
      expect(isPortcullisError(e) && e.status).toBe(503);
    }
    expect(lost).toEqual([1]);
    expect(() => f.log.record(ev(5))).toThrow(expect.objectContaining({ code: "PC_AUDIT_WRITE_FAILED" }));
  });
});

describe("record inside the caller's transaction", () => {
  it("rolls back with it, and the next entry links to the committed head", async () => {
    f = auditFixture({ sign: false });
    f.log.record(ev(1));
    const committed = f.log.head();
    expect(() =>
      f.store.transaction(() => {
        f.log.record(ev(2));
        f.log.record(ev(3));
        throw new Error("the domain change fails");
      }),
    ).toThrow("the domain change fails");
    expect(f.log.head()).toEqual(committed);
    const { seq } = await f.log.append(ev(4));
    expect(seq).toBe(committed.seq + 1);
    expect(all(f.log)[seq]?.prevHash).toBe(committed.hash);
    expectChain(all(f.log));
  });

  it("fails the caller's transaction with PC_AUDIT_WRITE_FAILED when the write fails", () => {
    f = auditFixture({ sign: false });
    f.store.db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    expect(() => f.store.transaction(() => f.log.record(ev(1)))).toThrow(expect.objectContaining({ code: "PC_AUDIT_WRITE_FAILED" }));
  });
});

describe("checkpoints", () => {
  it("every N entries, signed by the audit key, chaining to our root", async () => {
    f = auditFixture({ checkpointEvery: 10, checkpointIntervalMs: 3_600_000 });
    // The audit certificate's issuance is itself entry 1.
    for (let i = 0; i < 25; i++) await f.log.append(ev(i));
    await vi.waitFor(() => expect(checkpointCount(f)).toBeGreaterThanOrEqual(2));
    await new Promise((r) => setTimeout(r, 50));
    const cps = [...f.log.checkpoints(0)];
    // A checkpoint signs the committed head once N entries have come since the last one.
    expect(cps[0]?.seq).toBeGreaterThanOrEqual(9); // entries 0..9 are the first ten
    for (let i = 1; i < cps.length; i++) expect((cps[i]?.seq ?? 0) - (cps[i - 1]?.seq ?? 0)).toBeGreaterThanOrEqual(10);
    expect(f.log.head().seq - (cps.at(-1)?.seq ?? 0)).toBeLessThan(10);
    const entries = all(f.log);
    for (const c of cps) {
      const { payload, leaf } = await verifyCheckpoint(c.jws, f.ca.bundlePem);
      expect(payload).toEqual({ seq: c.seq, hash: entries[c.seq]?.hash, time: f.clock.now().toISOString(), trustDomain: "portcullis.local" });
      expect(leaf.subjectAltName).toBe("URI:spiffe://portcullis.local/service/audit");
    }
    // The source names every certificate an auditor needs.
    const chain = f.log.caChainPem();
    expect(chain).toHaveLength(3);
    expect(chain.join("")).toContain(f.ca.intermediatePem.trim());
  });

  it("after T when new entries exist, and not without new entries", async () => {
    f = auditFixture({ checkpointEvery: 1000, checkpointIntervalMs: 1000, checkpointTickMs: 5 });
    await f.log.append(ev(1));
    await new Promise((r) => setTimeout(r, 30));
    expect(checkpointCount(f)).toBe(0); // T has not passed on the log's clock
    f.clock.advance(1000);
    await vi.waitFor(() => expect(checkpointCount(f)).toBe(1));
    f.clock.advance(5000);
    await new Promise((r) => setTimeout(r, 30));
    expect(checkpointCount(f)).toBe(1); // nothing new
    await f.log.append(ev(2));
    await vi.waitFor(() => expect(checkpointCount(f)).toBe(2));
    expect([...f.log.checkpoints(0)].map((c) => c.seq)).toEqual([2, 3]);
  });

  it("never over an entry that a rollback removed", async () => {
    f = auditFixture({ checkpointEvery: 2, checkpointIntervalMs: 3_600_000 });
    await f.log.checkpointNow(); // covers genesis and the certificate's issuance
    expect(() =>
      f.store.transaction(() => {
        for (let i = 0; i < 5; i++) f.log.record(ev(i));
        throw new Error("rolled back");
      }),
    ).toThrow();
    await new Promise((r) => setTimeout(r, 20));
    for (const c of f.log.checkpoints(0)) expect(c.seq).toBeLessThanOrEqual(f.log.head().seq);
    expect(checkpointCount(f)).toBe(1);
  });

  it("checkpointNow covers the tail; close signs a last one; a failure to store one does not fail requests", async () => {
    const errors: unknown[] = [];
    f = auditFixture({ checkpointEvery: 1000, checkpointIntervalMs: 3_600_000, onCheckpointError: (e) => errors.push(e) });
    await f.log.append(ev(1));
    expect(await f.log.checkpointNow()).toEqual({ seq: f.log.head().seq });
    expect(await f.log.checkpointNow()).toBeUndefined(); // nothing new
    f.store.db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON audit_checkpoints BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    f.log.record(ev(2));
    await expect(f.log.checkpointNow()).rejects.toThrow(/disk full/);
    f.store.db.exec(`DROP TRIGGER refuse`);
    f.log.recordAfter(ev(3));
    await f.log.close();
    const last = [...f.log.checkpoints(0)].pop();
    expect(last?.seq).toBe(f.log.head().seq);
  });
});

describe("the audit source", () => {
  it("streams entries in ranges, finds the first seq at a time", async () => {
    f = auditFixture({ sign: false });
    const t0 = f.clock.now().toISOString();
    f.clock.advance(1000);
    const { seq } = await f.log.append(ev(1));
    f.clock.advance(1000);
    await f.log.append(ev(2));
    expect(f.log.firstSeqAtOrAfter(t0)).toBe(0);
    expect(f.log.firstSeqAtOrAfter(new Date(Date.parse(t0) + 1).toISOString())).toBe(seq);
    expect(f.log.firstSeqAtOrAfter("9999-01-01T00:00:00.000Z")).toBeUndefined();
    expect([...f.log.entries(1, 2)].map((e) => e.head.seq)).toEqual([1, 2]);
  });
});

/** Every .ts file under a directory. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

describe("no code path changes or removes an entry", () => {
  it("src/store and src/audit hold no UPDATE, DELETE, REPLACE, upsert or DROP of the audit tables", () => {
    const t = String.raw`["'\x60[]?(?:audit_log|audit_checkpoints)\b`;
    const res = [
      new RegExp(String.raw`\bUPDATE\s+(?:OR\s+\w+\s+)?${t}`, "i"),
      new RegExp(String.raw`\bDELETE\s+FROM\s+${t}`, "i"),
      new RegExp(String.raw`\b(?:REPLACE|INSERT\s+OR\s+\w+)\s+INTO\s+${t}`, "i"),
      new RegExp(String.raw`\bINSERT\s+INTO\s+${t}[^;]*?\bON\s+CONFLICT\b`, "i"),
      /\b(?:DROP|ALTER|TRUNCATE)\s+(?:TABLE|TRIGGER)?[^;]*?\b(?:audit_log|audit_checkpoints)\b/i,
    ];
    const files = [...sources(join(ROOT, "src/store")), ...sources(join(ROOT, "src/audit"))];
    expect(files.some((p) => p.endsWith("src/audit/log.ts"))).toBe(true);
    const found = files.flatMap((p) => {
      const text = readFileSync(p, "utf8");
      return res.flatMap((re) => (re.test(text) ? [`${relative(ROOT, p)}: ${re.source}`] : []));
    });
    expect(found).toEqual([]);
  });
});
