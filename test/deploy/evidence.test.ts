import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/index.js";
import { certificateThumbprint, DEPLOY_JWS_TYPE, signDeployRequest, verifySignedRequestEvidence } from "../../src/deploy/index.js";
import { CertificateAuthority } from "../../src/pki/index.js";
import { refusal } from "../support/refusal.js";
import { claimsFor, deployFixture, goodManifest, handSigned, TD, type Caller, type DeployFixture } from "./fixture.js";

let fx: DeployFixture;
let alice: Caller;
let bob: Caller;
let jws: string;
let leafPem: string;

beforeAll(async () => {
  fx = deployFixture();
  alice = fx.issue("user:alice");
  bob = fx.issue("user:bob");
  jws = await signDeployRequest({ op: "update", manifest: goodManifest(), trustDomain: TD, privateKeyPem: alice.keyPem, certificatePem: alice.certPem, now: fx.now(), jti: "evidence-jti-00001" });
  leafPem = alice.certPem.slice(0, alice.certPem.indexOf("-----END CERTIFICATE-----") + 26);
});
afterAll(() => fx.close());

const trust = () => ({ rootCertificatesPem: fx.pki.ca.bundlePem, trustDomain: TD });
const fails = (e: Parameters<typeof verifySignedRequestEvidence>[0], t = trust()) => {
  const err = refusal(() => verifySignedRequestEvidence(e, t));
  expect(err.code).toBe("PC_DEPLOY_EVIDENCE_INVALID");
  return err.detail;
};

describe("verifySignedRequestEvidence", () => {
  it("verifies offline with the CA bundle, the signer's chain or leaf alone", () => {
    for (const signerCertificatePem of [alice.certPem, leafPem]) {
      const r = verifySignedRequestEvidence({ jws, signerCertificatePem }, trust());
      expect(r).toEqual({
        requester: "user:alice",
        jti: "evidence-jti-00001",
        op: "update",
        namespace: "payments",
        name: "web",
        manifestDigest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
        iat: Math.floor(fx.now().getTime() / 1000),
      });
    }
  });

  it("does not care that the request expired long ago", async () => {
    const old = await signDeployRequest({ op: "create", manifest: goodManifest(), trustDomain: TD, privateKeyPem: alice.keyPem, certificatePem: alice.certPem, now: new Date(fx.now().getTime() + 60_000), lifetimeSeconds: 1 });
    expect(verifySignedRequestEvidence({ jws: old, signerCertificatePem: leafPem }, trust()).op).toBe("create");
  });

  it("fails with a foreign CA bundle", () => {
    const foreign = CertificateAuthority.create(TD, new ManualClock(fx.now()), fx.pki.config.lifetimes);
    expect(fails({ jws, signerCertificatePem: alice.certPem }, { rootCertificatesPem: foreign.bundlePem, trustDomain: TD })).toMatch(/does not chain/);
  });

  it("fails when the bundle holds only the intermediate (no self-signed root)", () => {
    expect(fails({ jws, signerCertificatePem: leafPem }, { rootCertificatesPem: fx.pki.ca.intermediatePem, trustDomain: TD })).toMatch(/does not chain/);
  });

  it("fails after the manifest is altered (signature no longer verifies)", () => {
    const [h, p, s] = jws.split(".") as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>;
    const m = goodManifest();
    payload.manifest = { ...m, spec: { ...m.spec, image: "evil:latest" } };
    const altered = `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    expect(fails({ jws: altered, signerCertificatePem: leafPem })).toBe("the signature does not verify");
  });

  it("fails when the manifest was altered and re-signed with the old digest", () => {
    const m = goodManifest();
    const c = { ...claimsFor(m, fx.now()), manifest: { ...m, spec: { ...m.spec, replicas: 9 } } };
    const resigned = handSigned({ alg: "ES256", typ: DEPLOY_JWS_TYPE, "x5t#S256": certificateThumbprint(alice.certDer) }, c, alice.key);
    expect(fails({ jws: resigned, signerCertificatePem: leafPem })).toBe("the manifest digest does not match");
  });

  it("fails when the stored certificate is not the signer's", () => {
    expect(fails({ jws, signerCertificatePem: bob.certPem })).toBe("the signer certificate is not the one the header names");
  });

  it("fails when the signer certificate was not valid at iat", async () => {
    const late = await signDeployRequest({ op: "create", manifest: goodManifest(), trustDomain: TD, privateKeyPem: alice.keyPem, certificatePem: alice.certPem, now: new Date(fx.now().getTime() + 400 * 24 * 3_600_000) });
    expect(fails({ jws: late, signerCertificatePem: leafPem })).toMatch(/at the time of signing/);
  });

  it("fails for another trust domain, garbage and an unreadable certificate", () => {
    expect(fails({ jws, signerCertificatePem: leafPem }, { ...trust(), trustDomain: "other.example" })).toBe("the signed request claims are not valid");
    expect(fails({ jws: "garbage", signerCertificatePem: leafPem })).toBe("the signed request is malformed");
    expect(fails({ jws, signerCertificatePem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" })).toBe("the signer certificate cannot be read");
  });
});
