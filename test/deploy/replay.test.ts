import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/index.js";
import {
  certificateThumbprint,
  DEPLOY_JWS_TYPE,
  DeployRequestVerifier,
  ReplayGuard,
  signDeployRequest,
  verifyDeployRequest,
  type AuthenticatedDeployRequest,
} from "../../src/deploy/index.js";
import { Store } from "../../src/store/index.js";
import { refusal, rejection } from "../support/refusal.js";
import { claimsFor, deployFixture, goodManifest, handSigned, TD, type Caller, type DeployFixture } from "./fixture.js";

let fx: DeployFixture;
let alice: Caller;
let store: Store;
let clock: ManualClock;

beforeEach(() => {
  fx = deployFixture();
  alice = fx.issue("user:alice");
  store = fx.pki.store;
  clock = fx.pki.clock;
});
afterEach(() => {
  store.close();
  fx.close();
});

const sign = (jti = "replay-test-jti-0001", manifest = goodManifest()) =>
  signDeployRequest({ op: "create", manifest, trustDomain: TD, privateKeyPem: alice.keyPem, certificatePem: alice.certPem, now: clock.now(), jti });
const verifier = () => new DeployRequestVerifier({ trustDomain: TD, clock, replay: new ReplayGuard(store, clock) });
const caller = () => ({ certificateDer: alice.certDer });

describe("ReplayGuard", () => {
  it("a fresh jti passes; once recorded, a different request with it is refused and a byte-identical retry is recognised", async () => {
    const guard = new ReplayGuard(store, clock);
    const jws = await sign();
    const first = await verifier().verify(jws, caller());
    expect(first.retryOf).toBeUndefined();
    const row = guard.record(first);
    expect(row).toMatchObject({ jti: "replay-test-jti-0001", requester: "user:alice", operation: "create", namespace: "payments", name: "web", result: null });

    const again = await verifier().verify(jws, caller());
    expect(again.retryOf).toEqual(row);

    // Same claims, signed again: ECDSA signatures differ, so the JWS differs.
    const other = await sign();
    expect(other).not.toBe(jws);
    expect((await rejection(verifier().verify(other, caller()))).code).toBe("PC_DEPLOY_REPLAYED");
  });

  it("refuses the same bytes from another requester", async () => {
    const guard = new ReplayGuard(store, clock);
    const v = await verifyDeployRequest(await sign(), { callerCertificateDer: alice.certDer, trustDomain: TD, now: clock.now() });
    guard.record(v);
    const asBob: AuthenticatedDeployRequest = { ...v, requester: "user:bob" };
    expect(refusal(() => guard.check(asBob)).code).toBe("PC_DEPLOY_REPLAYED");
    expect(guard.check(v)).not.toBe("fresh");
  });

  it("refuses to record a jti twice", async () => {
    const guard = new ReplayGuard(store, clock);
    const v = await verifyDeployRequest(await sign(), { callerCertificateDer: alice.certDer, trustDomain: TD, now: clock.now() });
    guard.record(v);
    expect(refusal(() => guard.record(v)).code).toBe("PC_DEPLOY_REPLAYED");
  });

  it("keeps the answer for retries", async () => {
    const guard = new ReplayGuard(store, clock);
    const jws = await sign();
    guard.record(await verifier().verify(jws, caller()));
    expect(guard.setResult("replay-test-jti-0001", '{"revision":1}')).toBe(true);
    expect(guard.setResult("no-such-jti-000000", "{}")).toBe(false);
    expect((await verifier().verify(jws, caller())).retryOf?.result).toBe('{"revision":1}');
    expect(guard.get("replay-test-jti-0001")?.result).toBe('{"revision":1}');
  });

  it("remembers used jtis after the store is reopened", async () => {
    const jws = await sign();
    const v = await verifier().verify(jws, caller());
    store.transaction(() => new ReplayGuard(store, clock).record(v));
    store.close();

    store = Store.open(fx.pki.dir);
    const other = await sign();
    expect((await rejection(verifier().verify(other, caller()))).code).toBe("PC_DEPLOY_REPLAYED");
    const retry = await verifier().verify(jws, caller());
    expect(retry.retryOf?.jwsSha256).toBe(v.jwsSha256);
    expect(retry.retryOf?.signerCertificatePem).toBe(v.signerCertificatePem);
  });

  it("does not remember a request whose manifest fails its digest", async () => {
    const m = goodManifest();
    const stale = { ...claimsFor(m, clock.now(), { jti: "digest-test-jti-0001" }), manifest: { ...m, spec: { ...m.spec, replicas: 7 } } };
    const jws = handSigned({ alg: "ES256", typ: DEPLOY_JWS_TYPE, "x5t#S256": certificateThumbprint(alice.certDer) }, stale, alice.key);
    expect((await rejection(verifier().verify(jws, caller()))).code).toBe("PC_DEPLOY_DIGEST_MISMATCH");
    expect(new ReplayGuard(store, clock).get("digest-test-jti-0001")).toBeUndefined();
  });
});
