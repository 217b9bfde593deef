/**
 * Untrusted input on both ports: every bad request gets a 4xx answer shaped
 * `{ code, message, requestId }`, changes nothing, and the gateway keeps serving (each
 * test is followed by good requests on both ports).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/index.js";
import { buildCsr, derToPem, generateKeyPair, hashToken } from "../../src/pki/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mtlsGet, mtlsJson } from "../support/tls-client.js";
import {
  adminPost,
  bootGet,
  bootPost,
  createToken,
  creds,
  csrFor,
  enrollNew,
  eventsSince,
  expectError,
  json,
  mark,
  spiffe,
  weakKey,
  whoami,
  type Enrolled,
} from "./api-support.js";

describe("bad input on the API and bootstrap ports", () => {
  let t: TestGateway;
  let alice: Enrolled;
  beforeAll(async () => {
    t = await startTestGateway();
    alice = await enrollNew(t, "user:alice");
  });
  afterAll(async () => {
    await t?.close();
  });
  // The process keeps running and serving after every refusal.
  afterEach(async () => {
    expect((await bootGet(t, "/v1/ca.pem")).status).toBe(200);
    expect((await whoami(t, t.admin)).status).toBe(200);
  });

  const certCount = () => t.gw.pki.list().length;
  const tokenRecord = (token: string) => t.gw.store.enrollTokens.findByHash(hashToken(token));
  const enroll = (token: string, csr: string) => bootPost(t, "/v1/enroll", JSON.stringify({ token, csr }));

  describe("enrollment with a bad CSR leaves the token usable", () => {
    let token: string;
    const uri = () => spiffe(t, "user:eve");
    beforeAll(async () => {
      token = await createToken(t, "user:eve");
    });

    const goodDer = () => csrFor(uri()).der;
    const cases: { name: string; csr: () => string; status: number; code: string }[] = [
      { name: "an RSA 1024 key", csr: () => csrFor(uri(), weakKey("rsa1024")).pem, status: 400, code: "PC_PKI_KEY_TOO_WEAK" },
      { name: "an RSA key with exponent 3", csr: () => csrFor(uri(), weakKey("rsa-e3")).pem, status: 400, code: "PC_PKI_KEY_TOO_WEAK" },
      { name: "a P-192 key", csr: () => csrFor(uri(), weakKey("p192")).pem, status: 400, code: "PC_PKI_KEY_TOO_WEAK" },
      { name: "garbage instead of PEM", csr: () => "hello, I am a certificate request", status: 400, code: "PC_PKI_PEM_MALFORMED" },
      {
        name: "a PEM block with characters outside base64",
        csr: () => "-----BEGIN CERTIFICATE REQUEST-----\n@@@@not*base64@@@@\n-----END CERTIFICATE REQUEST-----\n",
        status: 400,
        code: "PC_PKI_PEM_MALFORMED",
      },
      {
        name: "two CSR blocks",
        csr: () => csrFor(uri()).pem + csrFor(uri()).pem,
        status: 400,
        code: "PC_PKI_PEM_MALFORMED",
      },
      { name: "random bytes in a PEM block", csr: () => derToPem(Buffer.from("0123456789abcdef0123456789abcdef"), "CERTIFICATE REQUEST"), status: 400, code: "PC_PKI_CSR_MALFORMED" },
      {
        name: "a truncated DER",
        csr: () => {
          const der = goodDer();
          return derToPem(der.subarray(0, Math.floor(der.length / 2)), "CERTIFICATE REQUEST");
        },
        status: 400,
        code: "PC_PKI_CSR_MALFORMED",
      },
      {
        name: "a DER with trailing bytes",
        csr: () => derToPem(Buffer.concat([goodDer(), Buffer.from([0x05, 0x00])]), "CERTIFICATE REQUEST"),
        status: 400,
        code: "PC_PKI_CSR_MALFORMED",
      },
      {
        name: "a tampered signature",
        csr: () => {
          const der = Buffer.from(goodDer());
          der[der.length - 3] = (der[der.length - 3] as number) ^ 0x01;
          return derToPem(der, "CERTIFICATE REQUEST");
        },
        status: 400,
        code: "PC_PKI_CSR_SIGNATURE",
      },
      { name: "another identity than its token's", csr: () => csrFor(spiffe(t, "user:admin")).pem, status: 403, code: "PC_PKI_IDENTITY_MISMATCH" },
      {
        name: "the token's identity in another trust domain",
        csr: () => csrFor("spiffe://evil.example/user/eve", undefined, "user:eve").pem,
        status: 403,
        code: "PC_PKI_IDENTITY_MISMATCH",
      },
      {
        name: "the right URI SAN plus a second one",
        csr: () => {
          const kp = generateKeyPair();
          return buildCsr({ key: kp.privateKey, publicKey: kp.publicKey, commonName: "user:eve", san: [{ uri: uri() }, { uri: spiffe(t, "user:admin") }] }).pem;
        },
        status: 403,
        code: "PC_PKI_IDENTITY_MISMATCH",
      },
      {
        name: "the right URI SAN plus a DNS name",
        csr: () => {
          const kp = generateKeyPair();
          return buildCsr({ key: kp.privateKey, publicKey: kp.publicKey, commonName: "user:eve", san: [{ uri: uri() }, { dns: "localhost" }] }).pem;
        },
        status: 403,
        code: "PC_PKI_IDENTITY_MISMATCH",
      },
      { name: "the right URI SAN but the administrator's common name", csr: () => csrFor(uri(), undefined, "user:admin").pem, status: 403, code: "PC_PKI_IDENTITY_MISMATCH" },
    ];

    for (const c of cases) {
      it(`refuses a CSR with ${c.name}`, async () => {
        const n = certCount();
        const r = await enroll(token, c.csr());
        expectError(r, c.status, c.code);
        expect(certCount()).toBe(n);
        expect(tokenRecord(token)).toMatchObject({ usedAt: null, revokedAt: null });
      });
    }

    it("then enrolls with the same token and a good CSR, once", async () => {
      const n = certCount();
      const csr = csrFor(uri());
      const r = await enroll(token, csr.pem);
      expect(r.status, r.body).toBe(201);
      const issued = json<{ identity: string; serial: string }>(r);
      expect(issued.identity).toBe("user:eve");
      expect(certCount()).toBe(n + 1);
      expect(tokenRecord(token)?.usedSerial).toBe(issued.serial);

      const again = await enroll(token, csrFor(uri()).pem);
      expectError(again, 401, "PC_PKI_TOKEN_USED");
      expect(certCount()).toBe(n + 1);
    });
  });

  describe("tokens", () => {
    it("refuses an unknown token of the right shape", async () => {
      const real = await createToken(t, "user:frank");
      const forged = `${real.slice(0, real.indexOf(".") + 1)}${"A".repeat(43)}`;
      const n = certCount();
      expectError(await enroll(forged, csrFor(spiffe(t, "user:frank")).pem), 401, "PC_PKI_TOKEN_INVALID");
      expect(certCount()).toBe(n);
      expect(tokenRecord(real)?.usedAt).toBeNull();
    });

    it("refuses a token of the wrong shape", async () => {
      expectError(await enroll("pct_not-a-token", csrFor(spiffe(t, "user:frank")).pem), 401, "PC_PKI_TOKEN_INVALID");
    });

    it("refuses to create a token for a certificate lifetime above the maximum", async () => {
      expectError(await adminPost(t, "/v1/enroll-tokens", { identity: "user:greedy", certTtl: "999d" }), 400, "PC_PKI_TTL_INVALID");
    });

    it("refuses a token lifetime that is not a duration", async () => {
      expectError(await adminPost(t, "/v1/enroll-tokens", { identity: "user:x", ttl: "0s" }), 400, "PC_API_INVALID_BODY");
      expectError(await adminPost(t, "/v1/enroll-tokens", { identity: "user:x", ttl: 60 }), 400, "PC_API_INVALID_BODY");
    });

    it("refuses a token for an invalid identity", async () => {
      expectError(await adminPost(t, "/v1/enroll-tokens", { identity: "root:admin" }), 400, "PC_API_INVALID_BODY");
      expectError(await adminPost(t, "/v1/enroll-tokens", { identity: "user:../admin" }), 400, "PC_API_INVALID_BODY");
    });
  });

  describe("the HTTP edge", () => {
    it("refuses an oversized body with 413 on both ports", async () => {
      const big = JSON.stringify({ token: "x", csr: "A".repeat(20 * 1024) });
      const n = certCount();
      expectError(await bootPost(t, "/v1/enroll", big), 413, "PC_API_BODY_TOO_LARGE");
      expectError(await mtlsJson(t.api, "POST", "/v1/certificates/renew", creds(t, alice), big), 413, "PC_API_BODY_TOO_LARGE");
      expect(certCount()).toBe(n);
    });

    it("refuses duplicate JSON keys, at any depth", async () => {
      const token = await createToken(t, "user:dup");
      const csr = csrFor(spiffe(t, "user:dup")).pem;
      const body = `{"token":${JSON.stringify(token)},"csr":${JSON.stringify(csr)},"csr":${JSON.stringify(csr)}}`;
      expectError(await bootPost(t, "/v1/enroll", body), 400, "PC_API_DUPLICATE_KEY");
      expect(tokenRecord(token)?.usedAt).toBeNull();
      const r = await mtlsJson(t.api, "POST", "/v1/certificates/revoke", creds(t, t.admin), `{"serial":"01","serial":${JSON.stringify(alice.serial)}}`);
      expectError(r, 400, "PC_API_DUPLICATE_KEY");
      expect(t.gw.pki.get(alice.serial)?.revokedAt).toBeNull();
      const nested = await mtlsJson(t.api, "POST", "/v1/enroll-tokens", creds(t, t.admin), '{"identity":"user:x","x":{"a":1,"a":2}}');
      expectError(nested, 400, "PC_API_DUPLICATE_KEY");
    });

    it("refuses malformed and over-deep JSON", async () => {
      expectError(await bootPost(t, "/v1/enroll", '{"token": "x", "csr": '), 400, "PC_API_MALFORMED_JSON");
      expectError(await bootPost(t, "/v1/enroll", "{'token': 'x'}"), 400, "PC_API_MALFORMED_JSON");
      expectError(await bootPost(t, "/v1/enroll", `${"[".repeat(200)}${"]".repeat(200)}`), 400, "PC_API_MALFORMED_JSON");
      expectError(await bootPost(t, "/v1/enroll", ""), 400, "PC_API_MALFORMED_JSON");
    });

    it("refuses unknown fields, including __proto__, without using them", async () => {
      const token = await createToken(t, "user:unknown-field");
      const csr = csrFor(spiffe(t, "user:unknown-field")).pem;
      const n = certCount();
      expectError(await bootPost(t, "/v1/enroll", JSON.stringify({ token, csr, identity: "user:admin" })), 400, "PC_API_INVALID_BODY");
      const e = expectError(await bootPost(t, "/v1/enroll", JSON.stringify({ token, csr, certTtl: "999d" })), 400, "PC_API_INVALID_BODY");
      expect(e.message).toContain("certTtl");
      const proto = await bootPost(t, "/v1/enroll", `{"token":${JSON.stringify(token)},"csr":${JSON.stringify(csr)},"__proto__":{"admin":true}}`);
      expectError(proto, 400, "PC_API_INVALID_BODY");
      expect(({} as Record<string, unknown>).admin).toBeUndefined();
      expectError(await adminPost(t, "/v1/enroll-tokens", { identity: "user:x", admin: true }), 400, "PC_API_INVALID_BODY");
      expect(certCount()).toBe(n);
      expect(tokenRecord(token)?.usedAt).toBeNull();
      // The same token, with only the declared fields, works.
      expect((await enroll(token, csr)).status).toBe(201);
    });

    it("refuses a wrong content type with 415", async () => {
      const token = await createToken(t, "user:ctype");
      const body = JSON.stringify({ token, csr: csrFor(spiffe(t, "user:ctype")).pem });
      expectError(await bootPost(t, "/v1/enroll", body, "text/plain"), 415, "PC_API_UNSUPPORTED_MEDIA_TYPE");
      expectError(await bootPost(t, "/v1/enroll", body, "application/x-www-form-urlencoded"), 415, "PC_API_UNSUPPORTED_MEDIA_TYPE");
      expectError(await mtlsJson(t.api, "POST", "/v1/enroll-tokens", creds(t, t.admin), '{"identity":"user:x"}', "text/json"), 415, "PC_API_UNSUPPORTED_MEDIA_TYPE");
      expect(tokenRecord(token)?.usedAt).toBeNull();
    });

    it("answers 404 for unknown routes and methods on both ports", async () => {
      expectError(await mtlsGet(t.api, "/v1/nope", creds(t, t.admin)), 404, "PC_API_NOT_FOUND");
      expectError(await mtlsGet(t.api, "/v1/enroll", creds(t, t.admin)), 404, "PC_API_NOT_FOUND");
      expectError(await mtlsJson(t.api, "DELETE", "/v1/whoami", creds(t, t.admin), "{}"), 404, "PC_API_NOT_FOUND");
      expectError(await mtlsJson(t.api, "POST", "/v1/whoami", creds(t, t.admin), "{}"), 404, "PC_API_NOT_FOUND");
      expectError(await bootGet(t, "/v1/whoami"), 404, "PC_API_NOT_FOUND");
      expectError(await bootGet(t, "/v1/enroll-tokens"), 404, "PC_API_NOT_FOUND");
      expectError(await bootGet(t, "/../../etc/passwd"), 404, "PC_API_NOT_FOUND");
    });

    it("refuses unknown query parameters", async () => {
      expectError(await mtlsGet(t.api, "/v1/certificates?identity=user:alice&all=1", creds(t, t.admin)), 400, "PC_API_INVALID_BODY");
      expectError(await mtlsGet(t.api, "/v1/certificates?identity=nobody", creds(t, t.admin)), 400, "PC_API_INVALID_BODY");
    });
  });

  describe("authorization", () => {
    it("answers 403 to a non-administrator on every administrative route, and changes nothing", async () => {
      const before = mark(t);
      const n = certCount();
      const asAlice = creds(t, alice);
      expectError(await mtlsJson(t.api, "POST", "/v1/enroll-tokens", asAlice, JSON.stringify({ identity: "user:admin" })), 403, "PC_API_FORBIDDEN");
      expectError(await mtlsJson(t.api, "POST", "/v1/certificates/revoke", asAlice, JSON.stringify({ identity: "user:admin" })), 403, "PC_API_FORBIDDEN");
      expectError(await mtlsGet(t.api, "/v1/certificates", asAlice), 403, "PC_API_FORBIDDEN");
      // Authorization comes before the body is read: no parse or size errors for her.
      expectError(await mtlsJson(t.api, "POST", "/v1/enroll-tokens", asAlice, JSON.stringify({ identity: "user:admin", pad: "A".repeat(20 * 1024) })), 403, "PC_API_FORBIDDEN");
      expectError(await mtlsJson(t.api, "POST", "/v1/enroll-tokens", asAlice, '{"identity":"user:x","identity":"user:y"}'), 403, "PC_API_FORBIDDEN");
      const events = eventsSince(t, before);
      expect(events.filter((e) => e.type === "authz.decision").map((e) => [e.actor, e.outcome, e.route])).toEqual([
        ["user:alice", "denied", "enroll-tokens:create"],
        ["user:alice", "denied", "certificates:delete"],
        ["user:alice", "denied", "certificates:read"],
        ["user:alice", "denied", "enroll-tokens:create"],
        ["user:alice", "denied", "enroll-tokens:create"],
      ]);
      expect(events.filter((e) => e.type.startsWith("pki."))).toEqual([]);
      expect(certCount()).toBe(n);
      expect(t.gw.pki.list("user:admin").every((c) => c.revokedAt === null)).toBe(true);
      // alice may still do what any authenticated identity may.
      expect(json(await whoami(t, alice)).identity).toBe("user:alice");
    });

    it("refuses a renewal that names another identity (no escalation through renew)", async () => {
      const n = certCount();
      const r = await mtlsJson(t.api, "POST", "/v1/certificates/renew", creds(t, alice), JSON.stringify({ csr: csrFor(spiffe(t, "user:admin")).pem }));
      expectError(r, 403, "PC_PKI_IDENTITY_MISMATCH");
      expect(certCount()).toBe(n);
      // Its own renewal works, and yields a certificate for alice only.
      const ok = await mtlsJson(t.api, "POST", "/v1/certificates/renew", creds(t, alice), JSON.stringify({ csr: csrFor(spiffe(t, "user:alice")).pem }));
      expect(ok.status, ok.body).toBe(201);
      expect(json(ok).identity).toBe("user:alice");
      expect(certCount()).toBe(n + 1);
    });

    it("refuses malformed revocations", async () => {
      expectError(await adminPost(t, "/v1/certificates/revoke", { serial: "00ff", identity: "user:alice" }), 400, "PC_API_INVALID_BODY");
      expectError(await adminPost(t, "/v1/certificates/revoke", {}), 400, "PC_API_INVALID_BODY");
      expectError(await adminPost(t, "/v1/certificates/revoke", { serial: alice.serial, reason: "because" }), 400, "PC_API_INVALID_BODY");
      expectError(await adminPost(t, "/v1/certificates/revoke", { serial: "abcdef0123" }), 404, "PC_PKI_CERT_NOT_FOUND");
      expect(t.gw.pki.get(alice.serial)?.revokedAt).toBeNull();
    });
  });
});

describe("an expired enrollment token", () => {
  let t: TestGateway;
  const clock = new ManualClock(Date.now());
  beforeAll(async () => {
    // Only the gateway's own decisions follow this clock; TLS checks use real time.
    t = await startTestGateway({ start: { clock } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("is refused with PC_PKI_TOKEN_EXPIRED, and nothing is issued", async () => {
    const token = await createToken(t, "user:late", { ttl: "2m" });
    clock.advance(2 * 60_000 + 1);
    const n = t.gw.pki.list().length;
    const r = await bootPost(t, "/v1/enroll", JSON.stringify({ token, csr: csrFor(spiffe(t, "user:late")).pem }));
    expectError(r, 401, "PC_PKI_TOKEN_EXPIRED");
    expect(t.gw.pki.list().length).toBe(n);
    expect(t.gw.store.enrollTokens.findByHash(hashToken(token))?.usedAt).toBeNull();
    // A token created now, on the same clock, still works.
    const fresh = await createToken(t, "user:late", { ttl: "2m" });
    const ok = await bootPost(t, "/v1/enroll", JSON.stringify({ token: fresh, csr: csrFor(spiffe(t, "user:late")).pem }));
    expect(ok.status, ok.body).toBe(201);
    expect((await bootGet(t, "/v1/ca.pem")).status).toBe(200);
  });
});

