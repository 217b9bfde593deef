import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryAuditSink, parseIdentity, type Identity } from "../../src/core/index.js";
import {
  derToPem,
  EngineClientAuthority,
  generateKeyPair,
  loadEngineClientAuthority,
  pkiPaths,
  spkiDer,
  type EngineClientAuthority as Authority,
  type LeafRequest,
} from "../../src/pki/index.js";
import { expectRefusal, HOUR, openssl, pkiFixture, TD, type PkiFixture } from "./fixture.js";

/**
 * The engine-client CA: a second intermediate under our root that issues the gateway's
 * `service:gateway` client certificate and refuses everything else.
 */
describe("the engine-client CA", () => {
  let fx: PkiFixture;
  let ca: Authority;
  const actor = { identity: "service:portcullis-init" };

  beforeAll(() => {
    fx = pkiFixture();
    ca = fx.pki.ensureEngineClientAuthority(fx.dir, actor);
  });
  afterAll(() => fx?.close());

  const spki = () => spkiDer(generateKeyPair("ec-p256").publicKey);
  const gateway = parseIdentity("service:gateway");

  it("is a P-256 CA with pathLen 0, signed by our root, apart from the issuing CA", async () => {
    const x = new X509Certificate(ca.material.certDer);
    const root = new X509Certificate(fx.ca.material.rootDer);
    expect(x.ca).toBe(true);
    expect(x.subject).toBe(`O=${TD}\nCN=portcullis engine clients`);
    expect(x.checkIssued(root) && x.verify(root.publicKey)).toBe(true);
    expect(x.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(x.raw.equals(fx.ca.material.intermediateDer)).toBe(false);
    expect(Date.parse(x.validTo) - Date.parse(x.validFrom)).toBe(fx.config.lifetimes.intermediate + 30_000);
    const text = await openssl(["x509", "-in", fx.file("engine-ca.pem", ca.certPem), "-noout", "-text"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(text.stdout).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  });

  it("is written with its key 0600, recorded and audited, and loaded back as the same CA", () => {
    const p = pkiPaths(fx.dir);
    expect(statSync(p.engineClientCaKey).mode & 0o777).toBe(0o600);
    expect(existsSync(p.engineClientCaCert)).toBe(true);
    const loaded = loadEngineClientAuthority(fx.dir, TD, fx.clock);
    expect(loaded?.fingerprint).toBe(ca.fingerprint);
    expect(fx.pki.ensureEngineClientAuthority(fx.dir, actor).fingerprint).toBe(ca.fingerprint);
    const serial = new X509Certificate(ca.material.certDer).serialNumber.toLowerCase().replace(/^(?:00)+(?=[0-9a-f])/, "");
    expect(fx.pki.get(serial)).toMatchObject({ identity: "ca:engine-client", kind: "ca", profile: "ca", pem: ca.certPem });
    expect((fx.audit as MemoryAuditSink).events.filter((e) => e.type === "pki.certificate_issued").map((e) => e.target)).toEqual([serial]);
  });

  it("issues the gateway's client certificate: service:gateway, clientAuth only, chained to our root through it", async () => {
    const b = fx.pki.issueEngineClient(spki(), actor);
    expect(b.identity).toBe("service:gateway");
    expect(b.chain).toBe(ca.certPem);
    const leaf = new X509Certificate(b.certificate);
    expect(leaf.subjectAltName).toBe(`URI:spiffe://${TD}/service/gateway`);
    expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(leaf.ca).toBe(false);
    expect(leaf.verify(new X509Certificate(ca.material.certDer).publicKey)).toBe(true);
    expect(leaf.verify(new X509Certificate(fx.ca.material.intermediateDer).publicKey)).toBe(false);
    expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).toBe(fx.config.lifetimes.service + 30_000);
    expect(fx.pki.get(b.serial)).toMatchObject({ identity: "service:gateway", kind: "service", profile: "engine-client" });
    expect(ca.issued(b.certificate)).toBe(true);

    // openssl: the chain to the root holds; with the engine-client CA alone as the trust
    // anchor (as dockerd is given it) the gateway's certificate verifies, a user's does not.
    const rootFile = fx.file("root.pem", derToPem(fx.ca.material.rootDer, "CERTIFICATE"));
    const caFile = fx.file("engine-ca.pem", ca.certPem);
    const leafFile = fx.file("gateway.pem", b.certificate);
    const full = await openssl(["verify", "-purpose", "sslclient", "-CAfile", rootFile, "-untrusted", caFile, leafFile]);
    expect(full.code, full.stderr).toBe(0);
    const anchored = await openssl(["verify", "-purpose", "sslclient", "-partial_chain", "-CAfile", caFile, leafFile]);
    expect(anchored.code, anchored.stderr).toBe(0);
    const user = fx.pki.issueClient(parseIdentity("user:admin"), spki(), actor);
    expect(ca.issued(user.certificate)).toBe(false);
    const userFile = fx.file("user.pem", user.certificate);
    const intFile = fx.file("int.pem", user.chain);
    const refused = await openssl(["verify", "-purpose", "sslclient", "-partial_chain", "-CAfile", caFile, "-untrusted", intFile, userFile]);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/unable to get (local )?issuer certificate/);
  });

  const refused: [string, Partial<LeafRequest> & { identity?: Identity }][] = [
    ["a user", { identity: parseIdentity("user:admin") }],
    ["a node", { identity: parseIdentity("node:engine-2") }],
    ["another service", { identity: parseIdentity("service:audit") }],
    ["no identity", { identity: undefined }],
    ["a server profile", { profile: "server" }],
    ["DNS or IP names", { names: [{ dns: "localhost" }] }],
    ["another common name", { commonName: "user:admin" }],
  ];
  it.each(refused)("refuses %s", (_what, change) => {
    const req = { spki: spki(), profile: "client", identity: gateway, lifetimeMs: HOUR, ...change } as LeafRequest;
    expectRefusal(() => ca.issueLeaf(req), "PC_PKI_PROFILE_REFUSED");
  });

  it("re-checks the key and the lifetime of what it issues", () => {
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    expectRefusal(() => ca.issueLeaf({ spki: spkiDer(weak), profile: "client", identity: gateway, lifetimeMs: HOUR }), "PC_PKI_KEY_TOO_WEAK");
    expectRefusal(() => ca.issueLeaf({ spki: spki(), profile: "client", identity: gateway, lifetimeMs: 1_000 }), "PC_PKI_TTL_INVALID");
    expect(ca.issueLeaf({ spki: spki(), profile: "client", identity: gateway, lifetimeMs: HOUR }).pem).toContain("BEGIN CERTIFICATE");
  });

  it("PkiService issues nothing from it before it exists", () => {
    const other = pkiFixture();
    try {
      expectRefusal(() => other.pki.issueEngineClient(spki(), actor), "PC_STORE_CORRUPT");
      expect(other.pki.list("service:gateway")).toEqual([]);
    } finally {
      other.close();
    }
  });

  it("tells its own certificates from those of another engine-client CA", () => {
    const other = EngineClientAuthority.create(fx.ca, fx.clock, HOUR);
    expect(other.fingerprint).not.toBe(ca.fingerprint);
    expect(ca.issued(other.issueLeaf({ spki: spki(), profile: "client", identity: gateway, lifetimeMs: HOUR }).pem)).toBe(false);
  });
});
