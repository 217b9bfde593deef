import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync, statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Clock } from "../../src/core/index.js";
import { ensureGatewayClientCredentials, pkiPaths } from "../../src/pki/index.js";
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

  it("is issued at init: service:gateway, clientAuth only, chained to our CA, key 0600", () => {
    const p = pkiPaths(t.dataDir);
    expect(statSync(p.gatewayClientKey).mode & 0o777).toBe(0o600);
    const leaf = leafOf(t);
    expect(leaf.subjectAltName).toBe(`URI:spiffe://${t.gw.config.trustDomain}/service/gateway`);
    expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(leaf.verify(new X509Certificate(t.gw.pki.ca.material.intermediateDer).publicKey)).toBe(true);
    expect(t.gw.pki.list("service:gateway").filter((c) => c.profile === "client").map((c) => c.pem.trim())).toContain(leaf.toString().trim());
  });

  it("is renewed once two thirds of its life have passed, and kept before", () => {
    const before = leafOf(t).serialNumber;
    expect(ensureGatewayClientCredentials(t.gw.pki, t.dataDir, at(new Date())).certPem).toBe(readFileSync(pkiPaths(t.dataDir).gatewayClientCert, "utf8"));
    expect(leafOf(t).serialNumber).toBe(before);
    const later = new Date(Date.now() + (t.gw.config.lifetimes.service * 3) / 4);
    ensureGatewayClientCredentials(t.gw.pki, t.dataDir, at(later));
    expect(leafOf(t).serialNumber).not.toBe(before);
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
