/**
 * The API port refuses, at the TLS handshake, every client that does not hold a valid,
 * unrevoked client certificate from this gateway's CA. A refused client never reaches a
 * handler: no `api.request` is recorded for it, and the refusal is recorded as
 * `tls.handshake_refused`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock, parseIdentity, systemClock } from "../../src/core/index.js";
import { buildCertificate, generateKeyPair, intermediateName, newSerial, privateKeyPem, spkiDer, uriSans } from "../../src/pki/index.js";
import { foreignCa, startTestGateway, type TestGateway } from "../support/gateway.js";
import { mtlsGet, type HandshakeResult } from "../support/tls-client.js";
import { creds, eventsSince, json, mark, spiffe, waitFor } from "./api-support.js";

const HOUR = 3_600_000;
/** A chain that does not lead to our root: OpenSSL names the first check that fails. */
const UNTRUSTED = /^(UNABLE_TO_GET_CRL|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)$/;

describe("API handshake refusals", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Connects with `cert`/`key`, asserts the refusal and what the access log says about it. */
  async function expectRefused(cert: string | undefined, key: string | undefined, reason: RegExp): Promise<HandshakeResult> {
    const before = mark(t);
    const r = await mtlsGet(t.api, "/v1/whoami", { ca: t.caPem, ...(cert ? { cert, key } : {}) });
    expect(r.ok, `expected a refused handshake, got HTTP ${r.status ?? ""} ${r.body ?? ""}`).toBe(false);
    expect(r.status).toBeUndefined();
    const refused = await waitFor(
      () => eventsSince(t, before).find((e) => e.type === "tls.handshake_refused"),
      2000,
      "a tls.handshake_refused event",
    );
    expect(refused).toMatchObject({ outcome: "denied", actor: "anonymous", route: "api", sourceAddress: "127.0.0.1" });
    expect(refused.reason).toMatch(reason);
    // The request never reached the router.
    expect(eventsSince(t, before).filter((e) => e.type === "api.request")).toEqual([]);
    return r;
  }

  it("accepts the administrator (the control case)", async () => {
    const before = mark(t);
    const r = await mtlsGet(t.api, "/v1/whoami", creds(t, t.admin));
    expect(r.status).toBe(200);
    expect(json(r).identity).toBe("user:admin");
    await waitFor(() => eventsSince(t, before).find((e) => e.type === "api.request"));
  });

  it("refuses a client without a certificate", async () => {
    await expectRefused(undefined, undefined, /^ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE$/);
  });

  it("refuses a certificate from another CA, even one naming the administrator", async () => {
    const other = foreignCa(systemClock);
    const kp = generateKeyPair();
    const leaf = other.issueLeaf({ spki: spkiDer(kp.publicKey), profile: "client", identity: parseIdentity("user:admin"), lifetimeMs: HOUR });
    // Same trust domain: the URI SAN is exactly the administrator's.
    expect(uriSans(leaf.der)).toEqual([spiffe(t, "user:admin")]);
    await expectRefused(leaf.pem + other.intermediatePem, privateKeyPem(kp.privateKey), UNTRUSTED);
  });

  it("refuses a self-signed certificate with the administrator's subject and URI SAN", async () => {
    const kp = generateKeyPair();
    const spki = spkiDer(kp.publicKey);
    const now = Date.now();
    const self = buildCertificate(
      {
        serial: newSerial(),
        subject: { commonName: "user:admin" },
        issuer: { commonName: "user:admin" },
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + HOUR),
        spki,
        issuerSpki: spki,
        extKeyUsage: ["clientAuth"],
        san: [{ uri: spiffe(t, "user:admin") }],
      },
      kp.privateKey,
    );
    await expectRefused(self.pem, privateKeyPem(kp.privateKey), UNTRUSTED);
  });

  it("refuses a forged leaf that names our issuing CA (issuer DN and key identifier) but is signed by another key", async () => {
    const kp = generateKeyPair();
    const now = Date.now();
    const forged = buildCertificate(
      {
        serial: newSerial(),
        subject: { commonName: "user:admin" },
        issuer: intermediateName(t.gw.config.trustDomain),
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + HOUR),
        spki: spkiDer(kp.publicKey),
        issuerSpki: t.gw.pki.ca.intermediateSpki,
        extKeyUsage: ["clientAuth"],
        san: [{ uri: spiffe(t, "user:admin") }],
      },
      kp.privateKey,
    );
    await expectRefused(forged.pem + t.gw.pki.ca.intermediatePem, privateKeyPem(kp.privateKey), /^CERT_SIGNATURE_FAILURE$/);
  });

  it("refuses an expired certificate from our CA", async () => {
    const c = t.issueClient("user:expired", { clock: new ManualClock(Date.now() - 2 * HOUR), lifetimeMs: HOUR });
    await expectRefused(c.certPem, c.keyPem, /^CERT_HAS_EXPIRED$/);
  });

  it("refuses a not-yet-valid certificate from our CA", async () => {
    const c = t.issueClient("user:future", { clock: new ManualClock(Date.now() + 2 * HOUR), lifetimeMs: HOUR });
    await expectRefused(c.certPem, c.keyPem, /^CERT_NOT_YET_VALID$/);
  });

  it("refuses a revoked certificate that worked before its revocation", async () => {
    const c = t.issueClient("user:revoked");
    expect((await mtlsGet(t.api, "/v1/whoami", creds(t, c))).status).toBe(200);
    t.gw.pki.revokeSerial(c.serial, "keyCompromise", { identity: "service:test" });
    t.gw.enforcer.check();
    await expectRefused(c.certPem, c.keyPem, /^CERT_REVOKED$/);
  });

  it("refuses the gateway's own server certificate used as a client certificate (EKU serverAuth)", async () => {
    const cert = readFileSync(join(t.dataDir, "server", "server.crt"), "utf8");
    const key = readFileSync(join(t.dataDir, "server", "server.key"), "utf8");
    await expectRefused(cert, key, /^INVALID_PURPOSE$/);
  });

  it("refuses the gateway's engine-client certificate (issued by the engine-client CA, for engines only)", async () => {
    const cert = readFileSync(join(t.dataDir, "server", "gateway-client.crt"), "utf8");
    const key = readFileSync(join(t.dataDir, "server", "gateway-client.key"), "utf8");
    // The chain leads to our root through the engine-client CA, which the API does not
    // trust for callers: it publishes no CRL there, so the handshake cannot pass.
    await expectRefused(cert, key, /^UNABLE_TO_GET_CRL$/);
  });

  it("refuses the issuing CA certificate used as a client certificate", async () => {
    const cert = readFileSync(join(t.dataDir, "ca", "intermediate.crt"), "utf8");
    const key = readFileSync(join(t.dataDir, "ca", "intermediate.key"), "utf8");
    await expectRefused(cert, key, /^INVALID_PURPOSE$/);
  });

  it("refuses the root CA certificate used as a client certificate", async () => {
    const cert = readFileSync(join(t.dataDir, "ca", "root.crt"), "utf8");
    const key = readFileSync(join(t.dataDir, "ca", "root.key"), "utf8");
    await expectRefused(cert, key, /^INVALID_PURPOSE$/);
  });

  it("still serves the administrator after all the refusals", async () => {
    const r = await mtlsGet(t.api, "/v1/whoami", creds(t, t.admin));
    expect(r.status).toBe(200);
  });
});
