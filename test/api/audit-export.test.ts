/**
 * GET /v1/audit/export over real mTLS: the JSONL bundle verifies offline, the export is
 * itself in the log (inside the very bundle it produced), a developer is refused, a
 * filtered export shows every matching entry in full and seals the rest, CSV says it is
 * not verifiable, a bad filter is a 400, and a slow reader holds no connection that
 * other requests need.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CSV_NOT_VERIFIABLE, verifyBundle, type AuditEntry, type EntryHead } from "../../src/audit/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { adminPost } from "./api-support.js";
import { getText, linesOf, openGet, setUpAuditWorld, type AuditWorld } from "./audit-support.js";
import { call, expectCode } from "./rbac-support.js";

type Line = { kind: string; entry?: AuditEntry & { head: EntryHead }; range?: { from: number; to: number } };
const parse = (text: string): Line[] => linesOf(text).map((l) => JSON.parse(l) as Line);

describe("audit export over the API", () => {
  let t: TestGateway;
  let w: AuditWorld;

  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpAuditWorld(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  for (const who of ["admin", "auditor"] as const) {
    it(`as ${who}: a JSONL bundle that verifies and contains its own audit.export entry`, async () => {
      const c = who === "admin" ? t.admin : w.aud;
      const identity = who === "admin" ? "user:admin" : "user:aud";
      const r = await getText(t, c, "/v1/audit/export?action=api.request");
      expect(r.status, r.text).toBe(200);
      expect(r.headers["content-type"]).toMatch(/^application\/x-ndjson/);
      const requestId = r.headers["x-request-id"];
      const lines = linesOf(r.text);
      const report = await verifyBundle(lines, { caFingerprint: t.rootFingerprint });
      expect(report.error).toBeUndefined();
      expect(report.ok).toBe(true);
      expect(report.rootPinned).toBe(true);
      expect(report.from).toBe(0);
      expect(report.to).toBe(report.lastCheckpoint);
      const parsed = parse(r.text);
      const full = parsed.filter((l) => l.kind === "entry").map((l) => l.entry as AuditEntry);
      const sealed = parsed.filter((l) => l.kind === "sealed");
      expect(report.entries).toBe(full.length);
      expect(report.sealed).toBe(sealed.length);
      expect(full.length).toBeGreaterThanOrEqual(5); // the set-up's API requests
      expect(full.every((e) => e.head.type === "api.request")).toBe(true);
      // Exactly the log's range: every seq once, in order, up to the signed end.
      expect(full.length + sealed.length).toBe((report.to as number) + 1);

      // The export was recorded before it was read, by the exporter, with its filter.
      const mine = t.gw.audit.entries(0, t.gw.audit.head().seq);
      const exports = [...mine].filter((e) => e.head.type === "audit.export" && e.body.requestId === requestId);
      expect(exports).toHaveLength(1);
      const ex = exports[0] as AuditEntry;
      expect(ex.head).toMatchObject({ actor: identity, outcome: "allowed", resource: "audit", action: "audit:export" });
      expect(ex.body.target).toBe("action=api.request");
      expect(ex.body.reasons).toEqual(["jsonl"]);
      expect(ex.head.seq).toBeLessThanOrEqual(report.to as number);
      // ...and the bundle carries it (sealed: it is not an api.request), with the same hash.
      const inBundle = sealed.find((l) => l.entry?.head.seq === ex.head.seq);
      expect(inBundle?.entry?.hash).toBe(ex.hash);
    });
  }

  it("a developer gets 403 and no bundle; the refusal is in the log as denied", async () => {
    const before = t.gw.audit.head().seq;
    const r = await call(t, w.dev, "GET", "/v1/audit/export");
    expectCode(r, 403, "PC_API_FORBIDDEN");
    expect(r.text).not.toContain('"kind":"header"');
    t.gw.audit.flush();
    const after = [...t.gw.audit.entries(before + 1, t.gw.audit.head().seq)];
    expect(after.some((e) => e.head.type === "audit.export")).toBe(false);
    expect(after.some((e) => e.head.type === "api.request" && e.head.actor === "user:dev" && e.head.outcome === "denied" && e.body.status === 403)).toBe(true);
  });

  it("a filtered export (outcome=denied, since 1h ago) shows every denied entry in full, seals the others, and verifies", async () => {
    // Some denials first: the developer reaching the export and another namespace.
    const denied = await Promise.all([call(t, w.dev, "GET", "/v1/audit/export"), call(t, w.dev, "GET", "/v1/namespaces/billing"), call(t, w.dev, "POST", "/v1/namespaces", { name: "nope" })]);
    for (const d of denied) expect(d.status).toBeGreaterThanOrEqual(400);
    const since = new Date(Date.now() - 3_600_000).toISOString();
    const r = await getText(t, w.aud, `/v1/audit/export?outcome=denied&since=${encodeURIComponent(since)}`);
    expect(r.status, r.text).toBe(200);
    const report = await verifyBundle(linesOf(r.text), { caFingerprint: t.rootFingerprint });
    expect(report.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.filter).toMatchObject({ outcome: "denied", since });

    const parsed = parse(r.text);
    const header = parsed[0] as Line;
    const { from, to } = header.range as { from: number; to: number };
    const shown = new Map(parsed.filter((l) => l.kind === "entry").map((l) => [l.entry?.head.seq, l.entry]));
    const sealedSeqs = new Set(parsed.filter((l) => l.kind === "sealed").map((l) => l.entry?.head.seq));
    let deniedInLog = 0;
    for (const e of t.gw.audit.entries(from, to)) {
      if (e.head.outcome === "denied") {
        deniedInLog++;
        expect(shown.get(e.head.seq), `denied seq ${e.head.seq} shown in full`).toEqual(e);
      } else {
        expect(sealedSeqs.has(e.head.seq), `seq ${e.head.seq} sealed`).toBe(true);
      }
    }
    // At least each refused request and its RBAC decision.
    expect(deniedInLog).toBeGreaterThanOrEqual(6);
    expect(report.entries).toBe(deniedInLog);
    expect(shown.size).toBe(deniedInLog);
    expect(report.sealed).toBe(to - from + 1 - deniedInLog);
    // The sealed lines carry no body.
    expect(parsed.filter((l) => l.kind === "sealed").every((l) => (l.entry as unknown as Record<string, unknown>).body === undefined)).toBe(true);
  });

  it("CSV has the not-verifiable header, and verify refuses it", async () => {
    const r = await getText(t, w.aud, "/v1/audit/export?format=csv&outcome=denied");
    expect(r.status, r.text).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/csv/);
    const lines = linesOf(r.text);
    expect(lines[0]).toBe(CSV_NOT_VERIFIABLE);
    expect(lines[0]).toContain("NOT VERIFIABLE");
    expect(lines[1]).toBe("seq,time,type,outcome,actor,action,resource,namespace,status,source,requestId,reasons,target,deploy");
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines.slice(2)) expect(l.split(",")[3]).toBe("denied");
    const report = await verifyBundle(lines);
    expect(report.ok).toBe(false);
  });

  it("a bad filter is 400 PC_AUDIT_FILTER_INVALID, and nothing is exported or recorded as an export", async () => {
    const before = t.gw.audit.head().seq;
    for (const q of ["since=yesterday", "until=not-a-time", "since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z"]) {
      const r = await call(t, w.aud, "GET", `/v1/audit/export?${q}`);
      expectCode(r, 400, "PC_AUDIT_FILTER_INVALID");
    }
    const bad = await call(t, w.aud, "GET", "/v1/audit/export?outcome=maybe");
    expect(bad.status).toBe(400);
    t.gw.audit.flush();
    expect([...t.gw.audit.entries(before + 1, t.gw.audit.head().seq)].some((e) => e.head.type === "audit.export")).toBe(false);
  });

  it("while a large export is read slowly, other requests (reads and writes) still succeed", async () => {
    // ~16 MB of entries: far more than the socket buffers between the two ends hold.
    const target = "x".repeat(2000);
    for (let i = 0; i < 8000; i++) t.gw.audit.recordAfter({ type: "test.filler", outcome: "allowed", actor: "service:test", target });
    t.gw.audit.flush();

    const { res } = await openGet(t, w.aud, "/v1/audit/export");
    expect(res.statusCode).toBe(200);
    let received = 0;
    let ended = false;
    const chunks: Buffer[] = [];
    // The client reads the first chunk, then stops reading.
    res.on("data", (c: Buffer) => {
      if (received === 0) res.pause();
      received += c.length;
      chunks.push(c);
    });
    res.on("end", () => (ended = true));
    await new Promise((r) => setTimeout(r, 300));
    const pausedAt = received;

    // The export's read snapshot is still open on its own connection: a passive WAL
    // checkpoint from outside cannot get past it once more has been written.
    const [who, list, made] = await Promise.all([
      call(t, t.admin, "GET", "/v1/whoami"),
      call(t, w.aud, "GET", "/v1/namespaces"),
      adminPost(t, "/v1/namespaces", { name: "made-while-exporting" }),
    ]);
    expect(who.status, who.text).toBe(200);
    expect(list.status, list.text).toBe(200);
    expect(made.status, made.body).toBe(201);
    const got = await call(t, t.admin, "GET", "/v1/namespaces/made-while-exporting");
    expect(got.status, got.text).toBe(200);
    expect(ended).toBe(false);
    expect(received).toBe(pausedAt);
    const db = new Database(join(t.dataDir, "portcullis.db"), { fileMustExist: true });
    try {
      const [cp] = db.pragma("wal_checkpoint(PASSIVE)") as { busy: number; log: number; checkpointed: number }[];
      expect(cp && cp.checkpointed < cp.log, `an open reader holds back the WAL: ${JSON.stringify(cp)}`).toBe(true);
    } finally {
      db.close();
    }

    res.resume();
    await new Promise<void>((resolve, reject) => {
      if (ended) resolve();
      res.on("end", resolve);
      res.on("error", reject);
    });
    const text = Buffer.concat(chunks).toString("utf8");
    expect(text.length).toBeGreaterThan(16_000_000);
    expect(pausedAt).toBeLessThan(text.length / 2);
    const report = await verifyBundle(linesOf(text), { caFingerprint: t.rootFingerprint });
    expect(report.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.entries).toBeGreaterThan(8000);
  });
});
