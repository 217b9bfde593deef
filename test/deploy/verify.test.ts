import { generateKeyPairSync } from "node:crypto";
import { CompactSign, decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  certificateThumbprint,
  checkManifest,
  DEPLOY_JWS_TYPE,
  signDeployRequest,
  verifyDeployRequest,
  type VerifyContext,
} from "../../src/deploy/index.js";
import { rejection } from "../support/refusal.js";
import { claimsFor, deployFixture, goodManifest, handSigned, TD, type Caller, type DeployFixture } from "./fixture.js";

let fx: DeployFixture;
let alice: Caller;
let bob: Caller;
let carol: Caller; // Ed25519
let now: Date;
let nowS: number;

beforeAll(() => {
  fx = deployFixture();
  alice = fx.issue("user:alice");
  bob = fx.issue("user:bob");
  carol = fx.issue("user:carol", "ed25519");
  now = fx.now();
  nowS = Math.floor(now.getTime() / 1000);
});
afterAll(() => fx.close());

const ctx = (over: Partial<VerifyContext> = {}): VerifyContext => ({ callerCertificateDer: alice.certDer, trustDomain: TD, now, ...over });
const header = (over: Record<string, unknown> = {}, who: Caller = alice): Record<string, unknown> => ({
  alg: "ES256",
  typ: DEPLOY_JWS_TYPE,
  "x5t#S256": certificateThumbprint(who.certDer),
  ...over,
});
const without = (o: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
const claims = (over: Parameters<typeof claimsFor>[2] = {}) => claimsFor(goodManifest(), now, over);
/** A token signed by alice over `payload` with `hdr`. */
const byAlice = (hdr: Record<string, unknown> | string, payload: unknown = claims()) => handSigned(hdr, payload, alice.key);

describe("signDeployRequest and verifyDeployRequest", () => {
  it("sign then verify with a certificate from our CA (ES256)", async () => {
    const jws = await signDeployRequest({ op: "create", manifest: goodManifest(), trustDomain: TD, privateKeyPem: alice.keyPem, certificatePem: alice.certPem, now });
    expect(decodeProtectedHeader(jws)).toEqual({ alg: "ES256", typ: DEPLOY_JWS_TYPE, "x5t#S256": certificateThumbprint(alice.certDer) });
    const v = await verifyDeployRequest(jws, ctx({ expect: { op: "create", namespace: "payments", name: "web" } }));
    expect(v.requester).toBe("user:alice");
    expect(v.claims).toMatchObject({ op: "create", namespace: "payments", name: "web", aud: TD, iat: nowS, exp: nowS + 120 });
    expect(v.claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(v.signerCertificatePem).toBe(alice.certPem.slice(0, alice.certPem.indexOf("-----END CERTIFICATE-----") + 26));
    expect(v.jwsSha256).toMatch(/^[0-9a-f]{64}$/);
    const checked = checkManifest(v);
    expect(checked.spec.resources.nanoCpus).toBe(500_000_000);
  });

  it("sign then verify with an Ed25519 key (EdDSA)", async () => {
    const jws = await signDeployRequest({ op: "scale", manifest: goodManifest(), trustDomain: TD, privateKeyPem: carol.keyPem, certificatePem: carol.certPem, now, lifetimeSeconds: 300, jti: "carol-request-0001" });
    expect(decodeProtectedHeader(jws).alg).toBe("EdDSA");
    const v = await verifyDeployRequest(jws, ctx({ callerCertificateDer: carol.certDer }));
    expect([v.requester, v.claims.jti, v.claims.exp - v.claims.iat]).toEqual(["user:carol", "carol-request-0001", 300]);
  });

  it("refuses to sign with an RSA key, a key of another certificate, or too long a lifetime", async () => {
    const rsa = fx.issue("user:rita", "rsa-2048");
    const base = { op: "create" as const, manifest: goodManifest(), trustDomain: TD, now };
    expect((await rejection(signDeployRequest({ ...base, privateKeyPem: rsa.keyPem, certificatePem: rsa.certPem }))).code).toBe("PC_DEPLOY_ALG_NOT_ALLOWED");
    expect((await rejection(signDeployRequest({ ...base, privateKeyPem: bob.keyPem, certificatePem: alice.certPem }))).code).toBe("PC_DEPLOY_SIGNER_MISMATCH");
    expect((await rejection(signDeployRequest({ ...base, privateKeyPem: alice.keyPem, certificatePem: alice.certPem, lifetimeSeconds: 301 }))).code).toBe("PC_DEPLOY_CLAIMS_INVALID");
  });
});

type Case = [name: string, token: () => string | Promise<string>, code: string, detail?: RegExp, context?: () => Partial<VerifyContext>];

const REFUSALS: Case[] = [
  // 1 form
  ["non-JWS garbage", () => "this is not a token", "PC_DEPLOY_REQUEST_MALFORMED"],
  ["four segments", () => `${byAlice(header())}.AAAA`, "PC_DEPLOY_REQUEST_MALFORMED", /three parts/],
  ["a header with a duplicate key", () => byAlice(`{"alg":"ES256","typ":"${DEPLOY_JWS_TYPE}","alg":"ES256"}`), "PC_DEPLOY_REQUEST_MALFORMED", /^header has a duplicate key$/],
  ["a payload that is not JSON", () => byAlice(header(), "op=create"), "PC_DEPLOY_REQUEST_MALFORMED", /^payload is not JSON$/],
  ["a payload that is a list", () => byAlice(header(), [claims()]), "PC_DEPLOY_REQUEST_MALFORMED", /^payload is not a JSON object$/],
  ["padded base64", () => byAlice(header()).replace(".", "=."), "PC_DEPLOY_REQUEST_MALFORMED", /not base64url/],
  ["more than 256 KiB", () => byAlice(header(), { ...claims(), pad: "x".repeat(256 * 1024) }), "PC_DEPLOY_REQUEST_MALFORMED", /larger than/],
  // 2 header: algorithm and key source
  ["alg none (unsigned)", () => handSigned(header({ alg: "none" }), claims()), "PC_DEPLOY_ALG_NOT_ALLOWED"],
  [
    "HS256",
    () => new CompactSign(new TextEncoder().encode(JSON.stringify(claims()))).setProtectedHeader(header({ alg: "HS256" }) as never).sign(new TextEncoder().encode("k".repeat(32))),
    "PC_DEPLOY_ALG_NOT_ALLOWED",
  ],
  [
    "RS256",
    () => new CompactSign(new TextEncoder().encode(JSON.stringify(claims()))).setProtectedHeader(header({ alg: "RS256" }) as never).sign(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey),
    "PC_DEPLOY_ALG_NOT_ALLOWED",
  ],
  ["ES384", () => byAlice(header({ alg: "ES384" })), "PC_DEPLOY_ALG_NOT_ALLOWED"],
  ["no alg", () => byAlice(without(header(), "alg")), "PC_DEPLOY_ALG_NOT_ALLOWED"],
  ["an embedded jwk", () => byAlice(header({ jwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" } })), "PC_DEPLOY_ALG_NOT_ALLOWED", /jwk/],
  ["jku", () => byAlice(header({ jku: "https://evil.example/keys" })), "PC_DEPLOY_ALG_NOT_ALLOWED", /jku/],
  ["x5u", () => byAlice(header({ x5u: "https://evil.example/cert" })), "PC_DEPLOY_ALG_NOT_ALLOWED", /x5u/],
  ["x5c", () => byAlice(header({ x5c: [alice.certDer.toString("base64")] })), "PC_DEPLOY_ALG_NOT_ALLOWED", /x5c/],
  ["kid", () => byAlice(header({ kid: "alice" })), "PC_DEPLOY_ALG_NOT_ALLOWED", /kid/],
  // 2 header: the rest
  ["crit", () => byAlice(header({ crit: ["exp"], exp: 1 })), "PC_DEPLOY_HEADER_INVALID", /crit/],
  ["b64", () => byAlice(header({ b64: true })), "PC_DEPLOY_HEADER_INVALID", /b64/],
  ["an unknown header parameter", () => byAlice(header({ cty: "json" })), "PC_DEPLOY_HEADER_INVALID", /cty/],
  ["missing typ", () => byAlice(without(header(), "typ")), "PC_DEPLOY_HEADER_INVALID", /^typ/],
  ["wrong typ", () => byAlice(header({ typ: "JWT" })), "PC_DEPLOY_HEADER_INVALID", /^typ/],
  ["missing x5t#S256", () => byAlice(without(header(), "x5t#S256")), "PC_DEPLOY_HEADER_INVALID", /^x5t#S256/],
  ["short x5t#S256", () => byAlice(header({ "x5t#S256": "abc" })), "PC_DEPLOY_HEADER_INVALID", /^x5t#S256/],
  // 3 signer
  ["someone else's certificate (bob signs, alice's connection)", () => handSigned(header({}, bob), claims(), bob.key), "PC_DEPLOY_SIGNER_MISMATCH", /thumbprint/],
  [
    "an Ed25519 certificate with alg ES256",
    () => handSigned(header({}, carol), claims(), alice.key),
    "PC_DEPLOY_SIGNER_MISMATCH",
    /does not fit ES256/,
    () => ({ callerCertificateDer: carol.certDer }),
  ],
  ["a certificate of another trust domain", () => byAlice(header()), "PC_DEPLOY_SIGNER_MISMATCH", /identity/, () => ({ trustDomain: "other.example" })],
  // 4 signature
  ["alice's x5t but bob's signature", () => handSigned(header(), claims(), bob.key), "PC_DEPLOY_SIGNATURE_INVALID"],
  [
    "a tampered payload",
    () => {
      const [h, , s] = byAlice(header()).split(".");
      return `${h}.${Buffer.from(JSON.stringify(claims({ op: "delete" }))).toString("base64url")}.${s}`;
    },
    "PC_DEPLOY_SIGNATURE_INVALID",
  ],
  ["an empty signature", () => handSigned(header(), claims()), "PC_DEPLOY_SIGNATURE_INVALID"],
  // 5 claims
  ["wrong aud", () => byAlice(header(), claims({ aud: "other.example" })), "PC_DEPLOY_CLAIMS_INVALID", /^aud:/],
  ["exp too far after iat", () => byAlice(header(), claims({ exp: nowS + 301 })), "PC_DEPLOY_CLAIMS_INVALID", /^exp: must be at most 300/],
  ["exp before iat", () => byAlice(header(), claims({ exp: nowS - 1 })), "PC_DEPLOY_CLAIMS_INVALID", /^exp: must be after iat/],
  ["iat in the future", () => byAlice(header(), claims({ iat: nowS + 120, exp: nowS + 180 })), "PC_DEPLOY_CLAIMS_INVALID", /^iat: is in the future/],
  ["iat not a number", () => byAlice(header(), claims({ iat: String(nowS) })), "PC_DEPLOY_CLAIMS_INVALID", /^iat:/],
  ["a short jti", () => byAlice(header(), claims({ jti: "abc" })), "PC_DEPLOY_CLAIMS_INVALID", /^jti:/],
  ["a jti with a dot", () => byAlice(header(), claims({ jti: "abcdefgh.ijklmnop" })), "PC_DEPLOY_CLAIMS_INVALID", /^jti:/],
  ["an extra claim", () => byAlice(header(), { ...claims(), sub: "user:alice" }), "PC_DEPLOY_CLAIMS_INVALID", /^sub: unknown claim$/],
  ["a missing claim", () => byAlice(header(), without(claims(), "jti")), "PC_DEPLOY_CLAIMS_INVALID", /^jti: is required$/],
  ["an unknown op", () => byAlice(header(), claims({ op: "restart" })), "PC_DEPLOY_CLAIMS_INVALID", /^op:/],
  ["namespace unlike the manifest's", () => byAlice(header(), claims({ namespace: "other" })), "PC_DEPLOY_CLAIMS_INVALID", /^namespace: must equal manifest/],
  ["name unlike the manifest's", () => byAlice(header(), claims({ name: "other" })), "PC_DEPLOY_CLAIMS_INVALID", /^name: must equal manifest/],
  ["namespace mismatch vs expect", () => byAlice(header()), "PC_DEPLOY_CLAIMS_INVALID", /^namespace: does not match/, () => ({ expect: { namespace: "billing" } })],
  ["op mismatch vs expect", () => byAlice(header()), "PC_DEPLOY_CLAIMS_INVALID", /^op: must be update/, () => ({ expect: { op: "update" } })],
  ["a digest that is not sha256", () => byAlice(header(), claims({ manifestDigest: "md5:abc" })), "PC_DEPLOY_CLAIMS_INVALID", /^manifestDigest:/],
  ["expired", () => byAlice(header(), claims({ iat: nowS - 200, exp: nowS - 10 })), "PC_DEPLOY_EXPIRED"],
  ["expiring this second", () => byAlice(header(), claims({ iat: nowS - 100, exp: nowS })), "PC_DEPLOY_EXPIRED"],
];

describe("verifyDeployRequest refuses, each with its own code", () => {
  it.each(REFUSALS)("%s", async (_name, token, code, detail, context) => {
    const e = await rejection(verifyDeployRequest(await token(), ctx(context?.() ?? {})));
    expect(e.code).toBe(code);
    if (detail) expect(e.detail).toMatch(detail);
    if (code === "PC_DEPLOY_SIGNATURE_INVALID") {
      expect(e.detail).toBeUndefined();
      expect(e.message).toBe("signature verification failed");
    }
  });

  it("a signature that passes at the exact moment before exp is still good", async () => {
    const v = await verifyDeployRequest(byAlice(header(), claims({ iat: nowS - 100, exp: nowS + 1 })), ctx());
    expect(v.claims.exp).toBe(nowS + 1);
  });
});

describe("the checks run in their order", () => {
  const ORDER: Case[] = [
    ["bad JSON header and alg none → form", () => handSigned(`{"alg":"none","alg":"none"}`, claims()), "PC_DEPLOY_REQUEST_MALFORMED"],
    ["alg none and bad claims → algorithm", () => handSigned(header({ alg: "none" }), claims({ aud: "x", jti: "bad" })), "PC_DEPLOY_ALG_NOT_ALLOWED"],
    ["alg HS256 and a wrong typ → algorithm", () => byAlice(header({ alg: "HS256", typ: "JWT" })), "PC_DEPLOY_ALG_NOT_ALLOWED"],
    ["wrong typ and someone else's x5t → header", () => handSigned(header({ typ: "JWT" }, bob), claims(), bob.key), "PC_DEPLOY_HEADER_INVALID"],
    ["someone else's x5t, a bad signature and expired → signer", () => handSigned(header({}, bob), claims({ iat: nowS - 200, exp: nowS - 10 }), alice.key), "PC_DEPLOY_SIGNER_MISMATCH"],
    ["expired and badly signed → signature", () => handSigned(header(), claims({ iat: nowS - 200, exp: nowS - 10 }), bob.key), "PC_DEPLOY_SIGNATURE_INVALID"],
    ["wrong aud and expired → claims", () => byAlice(header(), claims({ aud: "x", iat: nowS - 200, exp: nowS - 10 })), "PC_DEPLOY_CLAIMS_INVALID"],
  ];
  it.each(ORDER)("%s", async (_name, token, code) => {
    expect((await rejection(verifyDeployRequest(await token(), ctx()))).code).toBe(code);
  });
});

describe("checkManifest (step 7)", () => {
  it("refuses a manifest changed and re-signed with the old digest", async () => {
    const old = claims();
    const changed = { ...goodManifest(), spec: { ...goodManifest().spec, replicas: 9 } };
    const v = await verifyDeployRequest(byAlice(header(), { ...old, manifest: changed }), ctx());
    const e = (() => {
      try {
        checkManifest(v);
      } catch (err) {
        return err as { code: string };
      }
      return undefined;
    })();
    expect(e?.code).toBe("PC_DEPLOY_DIGEST_MISMATCH");
  });

  it("checks the digest before the schema, and then the schema", async () => {
    const bad = { ...goodManifest(), spec: { ...goodManifest().spec, privileged: true } };
    const stale = await verifyDeployRequest(byAlice(header(), { ...claims(), manifest: bad }), ctx());
    expect(() => checkManifest(stale)).toThrow(expect.objectContaining({ code: "PC_DEPLOY_DIGEST_MISMATCH" }));
    const fresh = await verifyDeployRequest(byAlice(header(), claimsFor(bad as never, now)), ctx());
    expect(() => checkManifest(fresh)).toThrow(
      expect.objectContaining({ code: "PC_DEPLOY_MANIFEST_INVALID", detail: "spec.privileged: unknown field (privileged containers are never allowed)" }),
    );
  });
});
