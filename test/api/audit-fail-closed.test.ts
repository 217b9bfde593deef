/**
 * Fail closed on the audit log: while audit writes fail (the table renamed away from a
 * second connection to the same SQLite file), no answer leaves but 503
 * PC_AUDIT_WRITE_FAILED: not a read, not a mutation (which takes no effect), not an
 * enrollment on the bootstrap port (whose token stays unused). Once the table is back,
 * service resumes and the chain verifies.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifySource } from "../../src/audit/index.js";
import { hashToken } from "../../src/pki/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { bootPost, createToken, csrFor, spiffe } from "./api-support.js";
import { call, expectCode } from "./rbac-support.js";

describe("audit writes fail: every answer is 503, nothing takes effect", () => {
  let t: TestGateway;
  let db: Database.Database;

  beforeAll(async () => {
    t = await startTestGateway();
    db = new Database(join(t.dataDir, "portcullis.db"), { fileMustExist: true });
    db.pragma("busy_timeout = 5000");
  });
  afterAll(async () => {
    db?.close();
    await t?.close();
  });

  const breakLog = () => db.exec("ALTER TABLE audit_log RENAME TO audit_log_gone");
  const restoreLog = () => db.exec("ALTER TABLE audit_log_gone RENAME TO audit_log");

  it("reads, a mutation and an enrollment get 503 PC_AUDIT_WRITE_FAILED; after restoring, service resumes and the chain verifies", async () => {
    const ok = await call(t, t.admin, "GET", "/v1/whoami");
    expect(ok.status, ok.text).toBe(200);
    const token = await createToken(t, "user:late");
    const csr = csrFor(spiffe(t, "user:late"));
    const enrollBody = JSON.stringify({ token, csr: csr.pem });
    const certsBefore = (db.prepare("SELECT count(*) AS n FROM certificates").get() as { n: number }).n;
    const headBefore = t.gw.audit.head().seq;

    breakLog();
    let restored = false;
    try {
      const [who, list, made, enrolled] = await Promise.all([
        call(t, t.admin, "GET", "/v1/whoami"),
        call(t, t.admin, "GET", "/v1/namespaces"),
        call(t, t.admin, "POST", "/v1/namespaces", { name: "while-broken" }),
        bootPost(t, "/v1/enroll", enrollBody),
      ]);
      for (const a of [who, list, made]) {
        expectCode(a, 503, "PC_AUDIT_WRITE_FAILED");
        expect(a.text).not.toContain("user:admin");
      }
      expect(enrolled.status, enrolled.body).toBe(503);
      expect(JSON.parse(enrolled.body ?? "{}")).toMatchObject({ code: "PC_AUDIT_WRITE_FAILED" });
      expect(enrolled.body).not.toContain("BEGIN CERTIFICATE");

      // Nothing happened, seen from outside the gateway.
      expect(db.prepare("SELECT count(*) AS n FROM namespaces WHERE name = 'while-broken'").get()).toEqual({ n: 0 });
      expect(db.prepare("SELECT used_at FROM enroll_tokens WHERE token_hash = ?").get(hashToken(token))).toEqual({ used_at: null });
      expect((db.prepare("SELECT count(*) AS n FROM certificates").get() as { n: number }).n).toBe(certsBefore);

      restoreLog();
      restored = true;
    } finally {
      if (!restored) restoreLog();
    }

    // Service resumes; the mutation that was refused did not happen; the token still works.
    const back = await call(t, t.admin, "GET", "/v1/whoami");
    expect(back.status, back.text).toBe(200);
    const absent = await call(t, t.admin, "GET", "/v1/namespaces/while-broken");
    expect(absent.status, absent.text).toBe(404);
    const list = await call(t, t.admin, "GET", "/v1/namespaces");
    expect(list.status).toBe(200);
    expect(list.text).not.toContain("while-broken");
    const again = await bootPost(t, "/v1/enroll", enrollBody);
    expect(again.status, again.body).toBe(201);

    // The chain has no hole where the writes failed, and verifies end to end.
    t.gw.audit.flush();
    const entries = [...t.gw.audit.entries(headBefore + 1, t.gw.audit.head().seq)];
    expect(entries.some((e) => e.head.action === "POST /v1/namespaces" && e.body.status === 201)).toBe(false);
    const report = await verifySource(t.gw.audit, { caFingerprint: t.rootFingerprint, ensureCheckpoint: async () => void (await t.gw.audit.checkpointNow()) });
    expect(report.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.to).toBe(t.gw.audit.head().seq);
  });
});
