import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Clock } from "../../src/core/index.js";
import { parseIdentity } from "../../src/core/index.js";
import { certificatesFromPem, derToPem, ensureGatewayClientCredentials, generateKeyPair, pkiPaths, privateKeyPem, spkiDer } from "../../src/pki/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";

const at = (d: Date): Clock => ({ now: () => d });
const leafOf = (t: TestGateway) => new X509Certificate(readFileSync(pkiPaths(t.dataDir).gatewayClientCert));

describe("the gateway's client certificate for TCP engines", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("is issued at init by the engine-client CA: service:gateway, clientAuth only, key 0600", () => {
    const p = pkiPaths(t.dataDir);
    expect(statSync(p.gatewayClientKey).mode & 0o777).toBe(0o600);
    expect(statSync(p.engineClientCaKey).mode & 0o777).toBe(0o600);
    const leaf = leafOf(t);
    expect(leaf.subjectAltName).toBe(`URI:spiffe://${t.gw.config.trustDomain}/service/gateway`);
    expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(leaf.verify(new X509Certificate(t.gw.pki.engineClients.material.certDer).publicKey)).toBe(true);
    expect(leaf.verify(new X509Certificate(t.gw.pki.ca.material.intermediateDer).publicKey)).toBe(false);
    // The file holds the certificate, then the engine-client CA: what the registry presents to engines.
    expect(certificatesFromPem(readFileSync(p.gatewayClientCert, "utf8")).map((d) => derToPem(d, "CERTIFICATE"))).toEqual([leaf.toString(), t.gw.pki.engineClients.certPem]);
    expect(t.gw.pki.list("service:gateway").filter((c) => c.profile === "engine-client").map((c) => c.pem.trim())).toContain(leaf.toString().trim());
  });

  it("is renewed once two thirds of its life have passed, and kept before", () => {
    const before = leafOf(t).serialNumber;
    expect(ensureGatewayClientCredentials(t.gw.pki, t.dataDir, at(new Date())).certPem).toBe(readFileSync(pkiPaths(t.dataDir).gatewayClientCert, "utf8"));
    expect(leafOf(t).serialNumber).toBe(before);
    const later = new Date(Date.now() + (t.gw.config.lifetimes.service * 3) / 4);
    ensureGatewayClientCredentials(t.gw.pki, t.dataDir, at(later));
    expect(leafOf(t).serialNumber).not.toBe(before);
  });

  it("a data directory from before the engine-client CA gets it at start, and a gateway certificate from it", async () => {
    const p = pkiPaths(t.dataDir);
    // A gateway certificate of that time: from the issuing CA, valid and not yet due for renewal.
    const kp = generateKeyPair("ec-p256");
    const old = t.gw.pki.issueClient(parseIdentity("service:gateway"), spkiDer(kp.publicKey), { identity: "service:test" });
    const before = t.gw.pki.engineClients.fingerprint;
    await t.stop();
    rmSync(p.engineClientCaCert);
    rmSync(p.engineClientCaKey);
    writeFileSync(p.gatewayClientKey, privateKeyPem(kp.privateKey), { mode: 0o600 });
    writeFileSync(p.gatewayClientCert, old.certificate + old.chain);
    t = await t.restart();
    expect(statSync(p.engineClientCaKey).mode & 0o777).toBe(0o600);
    const ca = t.gw.pki.engineClients;
    expect(ca.fingerprint).not.toBe(before);
    expect(readFileSync(p.engineClientCaCert, "utf8")).toBe(ca.certPem);
    const leaf = leafOf(t);
    expect(leaf.serialNumber.toLowerCase()).not.toBe(old.serial);
    expect(leaf.verify(new X509Certificate(ca.material.certDer).publicKey)).toBe(true);
    expect(t.gw.store.certificates.list("ca:engine-client").map((r) => r.fingerprint).sort()).toEqual([before, ca.fingerprint].sort());
  });

  it("is issued at start when a data directory has none", async () => {
    const p = pkiPaths(t.dataDir);
    const before = leafOf(t).serialNumber;
    await t.stop();
    rmSync(p.gatewayClientCert);
    rmSync(p.gatewayClientKey);
    t = await t.restart();
    expect(statSync(p.gatewayClientKey).mode & 0o777).toBe(0o600);
    expect(leafOf(t).serialNumber).not.toBe(before);
  });
});
