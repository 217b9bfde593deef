import { createHash, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseIdentity } from "../../src/core/index.js";
import { BACKDATE_MS, generateKeyPair, hashToken, identityOfCertificate, spiffeIdOfToken, spkiDer, TOKEN_RE } from "../../src/pki/index.js";
import { DB_FILE } from "../../src/store/index.js";
import { csrFor, DAY, expectRefusal, HOUR, openssl, pkiFixture, realAuditLog, TD, type PkiFixture } from "./fixture.js";

const ADMIN = { identity: "user:admin" };
const MINUTE = 60_000;

let f: PkiFixture;
afterEach(() => f?.close());

/** The validity of an issued PEM certificate, as node reads it. */
function validity(pem: string): { notBefore: number; notAfter: number; lifetime: number } {
  const x = new X509Certificate(pem);
  const notBefore = Date.parse(x.validFrom);
  const notAfter = Date.parse(x.validTo);
  return { notBefore, notAfter, lifetime: notAfter - notBefore - BACKDATE_MS };
}

describe("enrollment tokens", () => {
  it("enroll once: the certificate names the token's identity and the CSR's key", () => {
    f = pkiFixture();
    const tok = f.pki.createEnrollToken("user:alice", undefined, ADMIN);
    expect(tok.token).toMatch(TOKEN_RE);
    expect(tok.identity).toBe("user:alice");
    expect(spiffeIdOfToken(tok.token)).toBe(`spiffe://${TD}/user/alice`);
    expect(Date.parse(tok.expiresAt)).toBe(f.clock.now().getTime() + 15 * MINUTE);
    const c = csrFor("user:alice");
    const b = f.pki.enroll(tok.token, c.pem, { sourceAddress: "127.0.0.1" });
    expect(b.identity).toBe("user:alice");
    const x = new X509Certificate(b.certificate);
    expect(identityOfCertificate(x.raw, TD)).toEqual(parseIdentity("user:alice"));
    expect(x.publicKey.export({ format: "der", type: "spki" }).equals(spkiDer(c.key.publicKey))).toBe(true);
    expect(x.checkIssued(new X509Certificate(b.chain))).toBe(true);
    expect(f.pki.get(b.serial)).toMatchObject({ identity: "user:alice", kind: "user", profile: "client", revokedAt: null });
  });

  it("is single-use: a second enrollment gives PC_PKI_TOKEN_USED and issues nothing", () => {
    f = pkiFixture();
    const tok = f.pki.createEnrollToken("user:alice", undefined, ADMIN);
    f.pki.enroll(tok.token, csrFor("user:alice").pem, {});
    const count = f.pki.list().length;
    expectRefusal(() => f.pki.enroll(tok.token, csrFor("user:alice").pem, {}), "PC_PKI_TOKEN_USED");
    // The token is checked before the CSR: even a garbage CSR gets the token's verdict.
    expectRefusal(() => f.pki.enroll(tok.token, "garbage", {}), "PC_PKI_TOKEN_USED");
    expect(f.pki.list().length).toBe(count);
  });

  it.each([
    ["default lifetime, 1 ms before the end", undefined, 15 * MINUTE - 1, null],
    ["default lifetime, at the end", undefined, 15 * MINUTE, "PC_PKI_TOKEN_EXPIRED"],
    ["default lifetime, a day later", undefined, DAY, "PC_PKI_TOKEN_EXPIRED"],
    ["one minute, just before", MINUTE, MINUTE - 1, null],
    ["one minute, just after", MINUTE, MINUTE + 1, "PC_PKI_TOKEN_EXPIRED"],
    ["seven days, six days later", 7 * DAY, 6 * DAY, null],
    ["seven days, eight days later", 7 * DAY, 8 * DAY, "PC_PKI_TOKEN_EXPIRED"],
  ])("expires: %s", (_name, ttl, advance, code) => {
    f = pkiFixture();
    const tok = f.pki.createEnrollToken("user:alice", ttl, ADMIN);
    f.clock.advance(advance);
    if (code) {
      expectRefusal(() => f.pki.enroll(tok.token, csrFor("user:alice").pem, {}), code);
      expect(f.pki.list()).toEqual([]);
      // The refusal consumed nothing: expiry is a matter of time, not a state change.
      f.clock.advance(-advance);
      expect(f.pki.enroll(tok.token, csrFor("user:alice").pem, {}).identity).toBe("user:alice");
    } else {
      expect(f.pki.enroll(tok.token, csrFor("user:alice").pem, {}).identity).toBe("user:alice");
    }
  });

  it("revoking an identity invalidates its unused tokens (PC_PKI_TOKEN_REVOKED), not others'", () => {
    f = pkiFixture();
    const a1 = f.pki.createEnrollToken("user:alice", undefined, ADMIN);
    const a2 = f.pki.createEnrollToken("user:alice", HOUR, ADMIN);
    const used = f.pki.createEnrollToken("user:alice", undefined, ADMIN);
    const bob = f.pki.createEnrollToken("user:bob", undefined, ADMIN);
    f.pki.enroll(used.token, csrFor("user:alice").pem, {});
    const r = f.pki.revokeIdentity("user:alice", "keyCompromise", ADMIN);
    expect(r.tokensRevoked).toBe(2);
    expect(r.revoked).toHaveLength(1);
    expectRefusal(() => f.pki.enroll(a1.token, csrFor("user:alice").pem, {}), "PC_PKI_TOKEN_REVOKED");
    expectRefusal(() => f.pki.enroll(a2.token, csrFor("user:alice").pem, {}), "PC_PKI_TOKEN_REVOKED");
    expectRefusal(() => f.pki.enroll(used.token, csrFor("user:alice").pem, {}), "PC_PKI_TOKEN_USED");
    expect(f.pki.enroll(bob.token, csrFor("user:bob").pem, {}).identity).toBe("user:bob");
    // A token created after the revocation works: revocation is not a ban.
    const later = f.pki.createEnrollToken("user:alice", undefined, ADMIN);
    expect(f.pki.enroll(later.token, csrFor("user:alice").pem, {}).identity).toBe("user:alice");
  });

  it.each([
    ["an unknown well-formed token", () => `pct_${Buffer.from(`spiffe://${TD}/user/alice`).toString("base64url")}.${"A".repeat(43)}`],
    ["an empty string", () => ""],
    ["a word", () => "hunter2"],
    ["no random part", () => `pct_${Buffer.from(`spiffe://${TD}/user/alice`).toString("base64url")}.`],
    ["a short random part", () => `pct_${Buffer.from(`spiffe://${TD}/user/alice`).toString("base64url")}.abc`],
    ["a real token with one character changed", () => "CHANGE"],
    ["a real token naming another identity", () => "REBIND"],
    ["a real token with a trailing newline", () => "NEWLINE"],
  ])("refuses %s with PC_PKI_TOKEN_INVALID", (_name, make) => {
    f = pkiFixture();
    const real = f.pki.createEnrollToken("user:alice", undefined, ADMIN).token;
    let token = make();
    if (token === "CHANGE") token = real.slice(0, -1) + (real.endsWith("A") ? "B" : "A");
    if (token === "REBIND") token = `pct_${Buffer.from(`spiffe://${TD}/user/bob`).toString("base64url")}${real.slice(real.indexOf("."))}`;
    if (token === "NEWLINE") token = `${real}\n`;
    expectRefusal(() => f.pki.enroll(token, csrFor("user:alice").pem, {}), "PC_PKI_TOKEN_INVALID");
    expect(f.pki.enroll(real, csrFor("user:alice").pem, {}).identity).toBe("user:alice");
  });

  it.each([
    ["a CSR for another identity", () => csrFor("user:bob").pem, "the request must name exactly user:alice"],
    ["a CSR for another kind", () => csrFor("node:alice", { commonName: "user:alice" }).pem, "the request must name exactly user:alice"],
    ["a CSR of another trust domain", () => csrFor("user:alice", { td: "example.org" }).pem, "the request must name exactly user:alice"],
    ["a CSR with no SAN", () => csrFor("user:alice", { san: [] }).pem, "the request must name exactly user:alice"],
    ["a CSR with two URIs", () => csrFor("user:alice", { san: [{ uri: `spiffe://${TD}/user/alice` }, { uri: `spiffe://${TD}/user/admin` }] }).pem, "the request must name exactly user:alice"],
    ["a CSR with an extra DNS name", () => csrFor("user:alice", { san: [{ uri: `spiffe://${TD}/user/alice` }, { dns: "evil.example" }] }).pem, "the request must name exactly user:alice"],
    ["a CSR whose CN names another identity", () => csrFor("user:alice", { commonName: "user:admin" }).pem, "the subject common name must be absent or the identity"],
  ])("refuses %s with PC_PKI_IDENTITY_MISMATCH and leaves the token usable", (_name, make, detail) => {
    f = pkiFixture();
    const tok = f.pki.createEnrollToken("user:alice", undefined, ADMIN);
    const e = expectRefusal(() => f.pki.enroll(tok.token, make(), {}), "PC_PKI_IDENTITY_MISMATCH", detail);
    expect(e.status).toBe(403);
    expect(f.pki.list()).toEqual([]);
    expect(f.store.enrollTokens.findByHash(hashToken(tok.token))).toMatchObject({ usedAt: null, usedSerial: null, revokedAt: null });
    expect(f.pki.enroll(tok.token, csrFor("user:alice").pem, {}).identity).toBe("user:alice");
  });

  it("a refused CSR (weak key, bad signature) consumes nothing either", () => {
    f = pkiFixture();
    const tok = f.pki.createEnrollToken("user:alice", undefined, ADMIN);
    expectRefusal(() => f.pki.enroll(tok.token, "not a csr", {}), "PC_PKI_PEM_MALFORMED");
    expectRefusal(() => f.pki.enroll(tok.token, csrFor("user:alice").der.subarray(0, 50).toString("base64"), {}), "PC_PKI_PEM_MALFORMED");
    expect(f.pki.enroll(tok.token, csrFor("user:alice").pem, {}).identity).toBe("user:alice");
  });

  it("stores only the token's hash: the token appears nowhere in the database files", () => {
    f = pkiFixture({ audit: (store, clock) => realAuditLog(store, clock) });
    const tokens = [f.pki.createEnrollToken("user:alice", undefined, ADMIN), f.pki.createEnrollToken("user:bob", HOUR, ADMIN)];
    f.pki.enroll(tokens[0]!.token, csrFor("user:alice").pem, { sourceAddress: "127.0.0.1" });
    const dbPath = join(f.dir, DB_FILE);
    const files = () => [dbPath, `${dbPath}-wal`, `${dbPath}-shm`].filter((p) => existsSync(p)).map((p) => readFileSync(p));
    const check = () => {
      for (const bytes of files()) {
        for (const { token } of tokens) {
          const secret = token.slice(token.indexOf(".") + 1);
          expect(bytes.includes(Buffer.from(token))).toBe(false);
          expect(bytes.includes(Buffer.from(secret))).toBe(false);
          expect(bytes.includes(Buffer.from(secret, "base64url"))).toBe(false);
        }
      }
    };
    check(); // while open, WAL included
    for (const { token, id } of tokens) {
      const rec = f.store.enrollTokens.findByHash(createHash("sha256").update(token).digest("hex"));
      expect(rec?.id).toBe(id);
    }
    // The audit log names tokens by id only.
    const audit = f.store.accessEvents.latest(100);
    expect(audit.map((e) => e.target)).toEqual(expect.arrayContaining([expect.stringMatching(/^token:[0-9a-f]{16}/)]));
    expect(JSON.stringify(audit)).not.toContain(tokens[0]!.token.slice(-43));
    f.store.close(); // checkpoint: everything in the main file
    expect(existsSync(`${dbPath}-wal`)).toBe(false);
    check();
  });

  it.each([
    ["59 s", 59_000, undefined],
    ["zero", 0, undefined],
    ["negative", -MINUTE, undefined],
    ["beyond the maximum", 7 * DAY + 1, undefined],
    ["not a number", Number.NaN, undefined],
    ["fractional", MINUTE + 0.5, undefined],
    ["infinite", Number.POSITIVE_INFINITY, undefined],
    ["certificate lifetime beyond userMax", undefined, 7 * DAY + 1],
    ["certificate lifetime of zero", undefined, 0],
    ["negative certificate lifetime", undefined, -HOUR],
    ["certificate lifetime under a minute", undefined, 59_999],
    ["fractional certificate lifetime", undefined, HOUR + 0.5],
    ["certificate lifetime NaN", undefined, Number.NaN],
  ])("refuses a token with %s (PC_PKI_TTL_INVALID), storing nothing", (_name, ttl, certTtl) => {
    f = pkiFixture();
    expectRefusal(() => f.pki.createEnrollToken("user:alice", ttl, ADMIN, certTtl), "PC_PKI_TTL_INVALID");
    expect(f.store.db.prepare(`SELECT count(*) FROM enroll_tokens`).pluck().get()).toBe(0);
  });

  it.each(["node:engine-1", "service:audit"])("refuses a certificate lifetime for %s, whose lifetime is fixed", (identity) => {
    f = pkiFixture();
    expectRefusal(() => f.pki.createEnrollToken(identity, undefined, ADMIN, HOUR), "PC_PKI_TTL_INVALID", /certificates have a fixed lifetime$/);
    expect(f.store.db.prepare(`SELECT count(*) FROM enroll_tokens`).pluck().get()).toBe(0);
  });

  it("accepts the bounds: one minute, the configured maximum, and a certificate of userMax", () => {
    f = pkiFixture();
    expect(() => f.pki.createEnrollToken("user:alice", MINUTE, ADMIN)).not.toThrow();
    expect(() => f.pki.createEnrollToken("user:alice", 7 * DAY, ADMIN)).not.toThrow();
    expect(() => f.pki.createEnrollToken("user:alice", undefined, ADMIN, 7 * DAY)).not.toThrow();
    expectRefusal(() => f.pki.createEnrollToken("User:Alice", undefined, ADMIN), "PC_PKI_IDENTITY_INVALID");
  });
});

describe("certificate lifetimes per kind", () => {
  it.each([
    ["user, default", "user:alice", undefined, 24 * HOUR],
    ["user, asked for 2 h", "user:alice", 2 * HOUR, 2 * HOUR],
    ["user, asked for the maximum", "user:alice", 7 * DAY, 7 * DAY],
    ["node", "node:worker-1", undefined, 7 * DAY],
    ["service", "service:builder", undefined, 7 * DAY],
  ])("%s: enrolled certificate lasts as configured", (_name, identity, certTtl, lifetime) => {
    f = pkiFixture();
    const tok = f.pki.createEnrollToken(identity, undefined, ADMIN, certTtl);
    const b = f.pki.enroll(tok.token, csrFor(identity).pem, {});
    const v = validity(b.certificate);
    const now = f.clock.now().getTime();
    expect(v.notBefore).toBe(now - BACKDATE_MS);
    expect(v.notAfter).toBe(now + lifetime);
    expect(Date.parse(b.notAfter)).toBe(now + lifetime);
  });

  it("a server certificate lasts 30 days and is for serverAuth", async () => {
    f = pkiFixture();
    const leaf = f.pki.issueServer(spkiDer(generateKeyPair().publicKey), { identity: "service:portcullis-init" });
    const v = validity(leaf.pem);
    expect(v.notAfter).toBe(f.clock.now().getTime() + 30 * DAY);
    const r = await openssl(["x509", "-noout", "-ext", "extendedKeyUsage", "-in", f.file("server.pem", leaf.pem)]);
    expect(r.stdout).toMatch(/TLS Web Server Authentication/);
    expect(r.stdout).not.toMatch(/Client/);
  });

  it("follows configured lifetimes and enforces the user maximum", () => {
    f = pkiFixture({ lifetimes: { userDefault: 2 * HOUR, userMax: 8 * HOUR, node: DAY } });
    const spki = spkiDer(generateKeyPair().publicKey);
    expect(validity(f.pki.issueClient(parseIdentity("user:alice"), spki, ADMIN).certificate).lifetime).toBe(2 * HOUR);
    expect(validity(f.pki.issueClient(parseIdentity("node:n1"), spki, ADMIN).certificate).lifetime).toBe(DAY);
    expect(f.pki.lifetimeFor(parseIdentity("user:alice"), 8 * HOUR)).toBe(8 * HOUR);
    expectRefusal(() => f.pki.lifetimeFor(parseIdentity("user:alice"), 8 * HOUR + 1), "PC_PKI_TTL_INVALID", "user certificates last at most 8h");
    expectRefusal(() => f.pki.createEnrollToken("user:alice", undefined, ADMIN, 9 * HOUR), "PC_PKI_TTL_INVALID");
  });
});

describe("renewal", () => {
  it("issues a fresh certificate for the caller's own identity and a new key", () => {
    f = pkiFixture();
    const c = csrFor("user:alice");
    const b = f.pki.renew(parseIdentity("user:alice"), c.pem, { identity: "user:alice" });
    expect(b.identity).toBe("user:alice");
    expect(new X509Certificate(b.certificate).publicKey.export({ format: "der", type: "spki" }).equals(spkiDer(c.key.publicKey))).toBe(true);
  });

  it("refuses a CSR for another identity with PC_PKI_IDENTITY_MISMATCH", () => {
    f = pkiFixture();
    expectRefusal(() => f.pki.renew(parseIdentity("user:alice"), csrFor("user:admin").pem, { identity: "user:alice" }), "PC_PKI_IDENTITY_MISMATCH");
    expect(f.pki.list()).toEqual([]);
  });
});
