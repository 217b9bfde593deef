/**
 * Approvals as signed tokens: an approval verifies only over the connection of the
 * certificate that signed it, with its own typ, for exactly the pending request it names
 * (request id, jti, digest, namespace), and only while it is fresh.
 */
import { afterAll, describe, expect, it } from "vitest";
import { APPROVAL_JWS_TYPE, signApproval, signDeployRequest, verifyApproval, type ApprovalExpectations } from "../../src/deploy/index.js";
import { deployFixture, goodManifest, handSigned, TD } from "./fixture.js";

const fx = deployFixture();
const ann = fx.issue("user:ann");
const bob = fx.issue("user:bob", "ed25519");
afterAll(() => fx.close());

const EXPECT: ApprovalExpectations = {
  requestId: "3b2f1c6e-1f0a-4a57-9a57-2b1d4f1e9c11",
  jti: "jti-0123456789abcdef",
  manifestDigest: `sha256:${"b".repeat(64)}`,
  namespace: "payments",
};

const sign = (who = ann, over: Partial<ApprovalExpectations> = {}, lifetimeSeconds?: number) =>
  signApproval({ ...EXPECT, ...over, trustDomain: TD, privateKeyPem: who.keyPem, certificatePem: who.certPem, now: fx.now(), ...(lifetimeSeconds ? { lifetimeSeconds } : {}) });

const verify = (jws: string, der = ann.certDer, now = fx.now()) => verifyApproval(jws, { callerCertificateDer: der, trustDomain: TD, now, expect: EXPECT });

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: string; detail?: string };
    return `${err.code}: ${err.detail ?? ""}`;
  }
  return "accepted";
}

describe("approvals", () => {
  it("verifies for the signer's own connection and names the approver (ES256 and EdDSA)", async () => {
    const a = await verify(await sign());
    expect(a.approver).toBe("user:ann");
    expect(a.claims).toMatchObject({ ...EXPECT, aud: TD });
    expect(JSON.parse(Buffer.from((await sign()).split(".")[0]!, "base64url").toString())).toMatchObject({ typ: APPROVAL_JWS_TYPE });
    expect((await verify(await sign(bob), bob.certDer)).approver).toBe("user:bob");
  });

  it("is refused over another caller's connection", async () => {
    expect(await refusal(verify(await sign(ann), bob.certDer))).toMatch(/^PC_ADMISSION_APPROVAL_INVALID: x5t#S256/);
  });

  it.each([
    ["requestId", { requestId: "another-request" }, /requestId/],
    ["jti", { jti: "jti-another-request-0" }, /jti/],
    ["manifestDigest", { manifestDigest: `sha256:${"c".repeat(64)}` }, /manifestDigest/],
    ["namespace", { namespace: "billing" }, /namespace/],
  ] as const)("is refused when its %s names another request", async (_n, over, why) => {
    expect(await refusal(verify(await sign(ann, over)))).toMatch(new RegExp(`^PC_ADMISSION_APPROVAL_INVALID: .*${why.source}`));
  });

  it("is refused once expired", async () => {
    const later = new Date(fx.now().getTime() + 61_000);
    expect(await refusal(verify(await sign(ann, {}, 60), ann.certDer, later))).toMatch(/^PC_ADMISSION_APPROVAL_INVALID: exp/);
  });

  it("a signed deploy request is not an approval (typ)", async () => {
    const m = goodManifest();
    const deploy = await signDeployRequest({ op: "create", manifest: m, trustDomain: TD, privateKeyPem: ann.keyPem, certificatePem: ann.certPem, now: fx.now() });
    expect(await refusal(verify(deploy))).toMatch(/^PC_ADMISSION_APPROVAL_INVALID: typ must be portcullis-approval\+jws/);
  });

  it("refuses a bad signature, extra claims, a key source in the header, and a malformed token", async () => {
    const good = await sign();
    const [h, p] = good.split(".");
    expect(await refusal(verify(`${h}.${p}.${"A".repeat(86)}`))).toMatch(/signature does not verify/);
    const header = JSON.parse(Buffer.from(h!, "base64url").toString()) as Record<string, unknown>;
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
    expect(await refusal(verify(handSigned(header, { ...claims, extra: 1 }, ann.key)))).toMatch(/extra: unknown claim/);
    expect(await refusal(verify(handSigned({ ...header, kid: "k" }, claims, ann.key)))).toMatch(/kid/);
    expect(await refusal(verify("not-a-jws"))).toMatch(/^PC_ADMISSION_APPROVAL_INVALID/);
    expect(await refusal(verify(""))).toMatch(/^PC_ADMISSION_APPROVAL_INVALID/);
  });
});
