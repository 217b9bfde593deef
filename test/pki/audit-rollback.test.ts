import { afterEach, describe, expect, it } from "vitest";
import { parseIdentity } from "../../src/core/index.js";
import { generateKeyPair, hashToken, spkiDer } from "../../src/pki/index.js";
import { csrFor, expectRefusal, pkiFixture, realAuditLog, SwitchableAuditSink, type PkiFixture } from "./fixture.js";

/**
 * Every state change of the PKI and its audit event commit together: when the audit
 * write fails, the operation fails and nothing changes.
 */

const ADMIN = { identity: "user:admin" };
let f: PkiFixture;
afterEach(() => f?.close());

/** Everything the PKI keeps, read straight from the tables. */
function state(fx: PkiFixture) {
  const all = (sql: string) => fx.store.db.prepare(sql).all();
  return {
    certificates: all(`SELECT * FROM certificates ORDER BY serial`),
    tokens: all(`SELECT * FROM enroll_tokens ORDER BY id`),
    crl: all(`SELECT * FROM crl_state`),
    events: all(`SELECT * FROM audit_log ORDER BY seq`),
  };
}

interface Setup {
  aliceSerial: string;
  aliceToken: string;
  bobToken: string;
}

function setup(fx: PkiFixture): Setup {
  const alice = fx.pki.issueClient(parseIdentity("user:alice"), spkiDer(generateKeyPair().publicKey), ADMIN);
  fx.pki.issueClient(parseIdentity("user:bob"), spkiDer(generateKeyPair().publicKey), ADMIN);
  const aliceToken = fx.pki.createEnrollToken("user:alice", undefined, ADMIN).token;
  const bobToken = fx.pki.createEnrollToken("user:bob", undefined, ADMIN).token;
  return { aliceSerial: alice.serial, aliceToken, bobToken };
}

const operations: [string, (fx: PkiFixture, s: Setup) => unknown][] = [
  ["issueClient", (fx) => fx.pki.issueClient(parseIdentity("user:carol"), spkiDer(generateKeyPair().publicKey), ADMIN)],
  ["issueServer", (fx) => fx.pki.issueServer(spkiDer(generateKeyPair().publicKey), ADMIN)],
  ["createEnrollToken", (fx) => fx.pki.createEnrollToken("user:carol", undefined, ADMIN)],
  ["enroll", (fx, s) => fx.pki.enroll(s.aliceToken, csrFor("user:alice").pem, {})],
  ["renew", (fx) => fx.pki.renew(parseIdentity("user:alice"), csrFor("user:alice").pem, { identity: "user:alice" })],
  ["revokeSerial", (fx, s) => fx.pki.revokeSerial(s.aliceSerial, "keyCompromise", ADMIN)],
  ["revokeIdentity", (fx) => fx.pki.revokeIdentity("user:bob", "keyCompromise", ADMIN)],
];

describe("a failing audit sink rolls the operation back", () => {
  it.each(operations)("%s fails with PC_AUDIT_WRITE_FAILED and changes nothing", (_name, op) => {
    const sink = new SwitchableAuditSink();
    f = pkiFixture({ audit: sink });
    const s = setup(f);
    const crlBefore = f.pki.crls().leafDer;
    const before = state(f);
    const eventsBefore = sink.events.length;

    sink.failing = true;
    expectRefusal(() => op(f, s), "PC_AUDIT_WRITE_FAILED");
    expect(state(f)).toEqual(before);
    expect(sink.events.length).toBe(eventsBefore);
    expect(f.pki.crls().leafDer.equals(crlBefore)).toBe(true);

    // Once the audit log is back, the same operation succeeds: nothing was half-done
    // (the token was not consumed, the certificate not revoked).
    sink.failing = false;
    expect(() => op(f, s)).not.toThrow();
    expect(state(f)).not.toEqual(before);
  });

  it("enroll keeps the token usable when the audit write fails", () => {
    const sink = new SwitchableAuditSink();
    f = pkiFixture({ audit: sink });
    const s = setup(f);
    sink.failing = true;
    expectRefusal(() => f.pki.enroll(s.aliceToken, csrFor("user:alice").pem, {}), "PC_AUDIT_WRITE_FAILED");
    expect(f.store.enrollTokens.findByHash(hashToken(s.aliceToken))).toMatchObject({ usedAt: null, usedSerial: null });
    expect(f.pki.list("user:alice")).toHaveLength(1);
    sink.failing = false;
    expect(f.pki.enroll(s.aliceToken, csrFor("user:alice").pem, {}).identity).toBe("user:alice");
    expect(f.pki.list("user:alice")).toHaveLength(2);
  });

  it("revokeIdentity leaves certificates, tokens and the CRL as they were", () => {
    const sink = new SwitchableAuditSink();
    f = pkiFixture({ audit: sink });
    const s = setup(f);
    sink.failing = true;
    expectRefusal(() => f.pki.revokeIdentity("user:bob", "keyCompromise", ADMIN), "PC_AUDIT_WRITE_FAILED");
    expect(f.pki.revokedSerials().size).toBe(0);
    expect(f.pki.revocationGeneration()).toBe(0);
    sink.failing = false;
    expect(f.pki.enroll(s.bobToken, csrFor("user:bob").pem, {}).identity).toBe("user:bob");
  });
});

describe("with the real access log", () => {
  it.each(operations)("%s rolls back when the audit_log insert fails", (_name, op) => {
    f = pkiFixture({ audit: (store, clock) => realAuditLog(store, clock) });
    const s = setup(f);
    const before = state(f);
    // The store refuses new audit rows, as a full disk or a broken file would.
    f.store.db.exec(`CREATE TRIGGER refuse_insert BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    const e = expectRefusal(() => op(f, s), "PC_AUDIT_WRITE_FAILED");
    expect(e.status).toBe(503);
    expect(e.publicMessage).not.toMatch(/disk full/);
    expect(state(f)).toEqual(before);
    f.store.db.exec(`DROP TRIGGER refuse_insert`);
    expect(() => op(f, s)).not.toThrow();
  });
});
