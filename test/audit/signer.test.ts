import { X509Certificate } from "node:crypto";
import { statSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import {
  AUDIT_SIGNER,
  auditPaths,
  AuditSigner,
  auditSignerFrom,
  CHECKPOINT_TYP,
  issueAuditCredentials,
  loadAuditCredentials,
  loadOrCreateHmacKey,
  renewAuditCredentialsIfDue,
} from "../../src/audit/index.js";
import { generateKeyPair, privateKeyPem } from "../../src/pki/index.js";
import { decodeProtectedHeader } from "jose";
import { DAY, pkiFixture, type PkiFixture } from "../pki/fixture.js";
import { verifyCheckpoint } from "./audit-fixture.js";

let f: PkiFixture;
afterEach(() => f?.close());
const payload = (seq: number) => ({ seq, hash: "ab".repeat(32), time: "2026-01-01T00:00:00.000Z", trustDomain: "portcullis.local" });

describe("audit credentials", () => {
  it("issues a P-256 key and a service:audit certificate from our CA, key 0600, for the service lifetime", () => {
    f = pkiFixture();
    const c = issueAuditCredentials(f.pki, f.dir);
    const p = auditPaths(f.dir);
    expect(statSync(p.key).mode & 0o777).toBe(0o600);
    const leaf = new X509Certificate(c.certChainPem[0]);
    expect(leaf.subjectAltName).toBe(`URI:spiffe://portcullis.local/service/audit`);
    expect(leaf.verify(new X509Certificate(f.ca.intermediatePem).publicKey)).toBe(true);
    expect(c.notAfter.getTime() - c.notBefore.getTime()).toBe(f.config.lifetimes.service + 30_000);
    expect(f.pki.list(AUDIT_SIGNER)).toHaveLength(1);
    expect(loadAuditCredentials(f.dir)).toEqual(c);
  });

  it("renews when two thirds of the certificate's life have passed, not before; old checkpoints still verify", async () => {
    f = pkiFixture();
    expect(renewAuditCredentialsIfDue(f.pki, f.dir, f.clock)).toBeDefined(); // none yet
    const first = loadAuditCredentials(f.dir);
    const oldSigner = auditSignerFrom(first, f.config.trustDomain);
    const old = await oldSigner.sign(payload(1));
    f.clock.advance(4 * DAY);
    expect(renewAuditCredentialsIfDue(f.pki, f.dir, f.clock)).toBeUndefined();
    f.clock.advance(1 * DAY);
    const renewed = renewAuditCredentialsIfDue(f.pki, f.dir, f.clock);
    expect(renewed?.certChainPem[0]).not.toBe(first.certChainPem[0]);
    const fresh = await auditSignerFrom(renewed!, f.config.trustDomain).sign(payload(2));
    const rootPem = f.ca.bundlePem;
    const a = await verifyCheckpoint(old, rootPem);
    const b = await verifyCheckpoint(fresh, rootPem);
    expect(a.payload.seq).toBe(1);
    expect(b.payload.seq).toBe(2);
    expect(a.leaf.serialNumber).not.toBe(b.leaf.serialNumber);
  });

  it("creates the HMAC key once, 32 bytes, 0600", () => {
    f = pkiFixture();
    const k = loadOrCreateHmacKey(f.dir);
    expect(k).toHaveLength(32);
    expect(loadOrCreateHmacKey(f.dir).equals(k)).toBe(true);
    expect(statSync(auditPaths(f.dir).hmacKey).mode & 0o777).toBe(0o600);
  });
});

describe("AuditSigner", () => {
  it("signs a compact ES256 JWS with typ and x5c [audit certificate, issuing CA]", async () => {
    f = pkiFixture();
    const s = auditSignerFrom(issueAuditCredentials(f.pki, f.dir), f.config.trustDomain);
    const jws = await s.sign(payload(7));
    const h = decodeProtectedHeader(jws);
    expect(h).toEqual({ alg: "ES256", typ: CHECKPOINT_TYP, x5c: [...s.x5c] });
    expect(Buffer.from(s.x5c[1], "base64").equals(new X509Certificate(f.ca.intermediatePem).raw)).toBe(true);
    const { payload: p } = await verifyCheckpoint(jws, f.ca.bundlePem);
    expect(p).toEqual(payload(7));
  });

  it("refuses a key that does not match the certificate, a chain of the wrong length, a certificate for another identity", () => {
    f = pkiFixture();
    const c = issueAuditCredentials(f.pki, f.dir);
    const td = f.config.trustDomain;
    expect(() => new AuditSigner({ key: privateKeyPem(generateKeyPair().privateKey), certChainPem: c.certChainPem, trustDomain: td })).toThrow(/does not match/);
    expect(() => new AuditSigner({ key: c.keyPem, certChainPem: [c.certChainPem[0]], trustDomain: td })).toThrow(/chain/);
    expect(() => new AuditSigner({ key: privateKeyPem(generateKeyPair("rsa-2048").privateKey), certChainPem: c.certChainPem, trustDomain: td })).toThrow(/P-256/);
    expect(() => new AuditSigner({ key: c.keyPem, certChainPem: c.certChainPem, trustDomain: "other.example" })).toThrow(/service:audit/);
  });
});
