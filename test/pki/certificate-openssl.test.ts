import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseIdentity } from "../../src/core/index.js";
import { BACKDATE_MS, derToPem, generateKeyPair, spkiDer } from "../../src/pki/index.js";
import { DAY, HOUR, openssl, pkiFixture, TD, type PkiFixture } from "./fixture.js";

/**
 * The certificates the CA issues, as the real openssl reads them. Times come from a
 * manual clock at a whole second, so validity is compared exactly.
 */

interface Parsed {
  text: string;
  notBefore: number;
  notAfter: number;
  issuer: string;
  subject: string;
}

/** The lines that follow an extension's header in `openssl x509 -text`, up to the next one. */
function extension(text: string, name: string): { critical: boolean; value: string } | undefined {
  const lines = text.split("\n");
  const i = lines.findIndex((l) => l.trim().startsWith(`${name}:`));
  if (i < 0) return undefined;
  const header = (lines[i] as string).trim();
  const value: string[] = [];
  for (let j = i + 1; j < lines.length; j++) {
    const l = lines[j] as string;
    if (/^\s+X509v3 |^\s+Signature Algorithm|^\s+Authority Information/.test(l)) break;
    value.push(l.trim());
  }
  return { critical: header.endsWith("critical"), value: value.join("\n").trim() };
}

async function x509(path: string): Promise<Parsed> {
  const r = await openssl(["x509", "-in", path, "-noout", "-text", "-dateopt", "iso_8601"]);
  expect(r.code, r.stderr).toBe(0);
  const dates = await openssl(["x509", "-in", path, "-noout", "-startdate", "-enddate", "-dateopt", "iso_8601"]);
  const nb = /notBefore=(.+)/.exec(dates.stdout)?.[1]?.trim() as string;
  const na = /notAfter=(.+)/.exec(dates.stdout)?.[1]?.trim() as string;
  const names = await openssl(["x509", "-in", path, "-noout", "-issuer", "-subject", "-nameopt", "RFC2253"]);
  return {
    text: r.stdout,
    notBefore: Date.parse(nb.replace(" ", "T")),
    notAfter: Date.parse(na.replace(" ", "T")),
    issuer: /issuer=(.*)/.exec(names.stdout)?.[1]?.trim() as string,
    subject: /subject=(.*)/.exec(names.stdout)?.[1]?.trim() as string,
  };
}

let f: PkiFixture;
let rootPem: string;
let intPem: string;
let leafPem: string;
let serverPem: string;
let nodePem: string;
let now: number;

beforeAll(() => {
  f = pkiFixture();
  now = f.clock.now().getTime();
  rootPem = f.file("root.pem", derToPem(f.ca.material.rootDer, "CERTIFICATE"));
  intPem = f.file("intermediate.pem", f.ca.intermediatePem);
  const alice = f.pki.issueClient(parseIdentity("user:alice"), spkiDer(generateKeyPair().publicKey), { identity: "user:admin" });
  leafPem = f.file("alice.pem", alice.certificate);
  const node = f.pki.issueClient(parseIdentity("node:worker-1"), spkiDer(generateKeyPair().publicKey), { identity: "user:admin" });
  nodePem = f.file("node.pem", node.certificate);
  const server = f.pki.issueServer(spkiDer(generateKeyPair().publicKey), { identity: "service:portcullis-init" });
  serverPem = f.file("server.pem", server.pem);
});
afterAll(() => f.close());

describe("root CA (openssl x509 -text)", () => {
  it("is a self-signed ECDSA P-256 CA certificate valid for ten years", async () => {
    const c = await x509(rootPem);
    expect(c.subject).toBe(`CN=portcullis root CA,O=${TD}`);
    expect(c.issuer).toBe(c.subject);
    expect(c.text).toMatch(/Version: 3 \(0x2\)/);
    expect(c.text).toMatch(/Public Key Algorithm: id-ecPublicKey/);
    expect(c.text).toMatch(/NIST CURVE: P-256/);
    expect(c.text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(extension(c.text, "X509v3 Basic Constraints")).toEqual({ critical: true, value: "CA:TRUE" });
    expect(extension(c.text, "X509v3 Key Usage")).toEqual({ critical: true, value: "Certificate Sign, CRL Sign" });
    expect(extension(c.text, "X509v3 Extended Key Usage")).toBeUndefined();
    const ski = extension(c.text, "X509v3 Subject Key Identifier")?.value;
    expect(ski).toMatch(/^[0-9A-F:]{59}$/);
    expect(extension(c.text, "X509v3 Authority Key Identifier")?.value.replace(/^keyid:/, "")).toBe(ski);
    expect(c.notBefore).toBe(now - BACKDATE_MS);
    expect(c.notAfter).toBe(now + 3652 * DAY);
    // Ten years: 3652 days covers ten calendar years with two leap days.
    expect(c.notAfter - c.notBefore).toBeGreaterThan(3652 * DAY);
    // Self-signed: it verifies against itself alone.
    const v = await openssl(["verify", "-CAfile", rootPem, rootPem]);
    expect(v.stdout.trim()).toBe(`${rootPem}: OK`);
  });
});

describe("issuing intermediate (openssl x509 -text)", () => {
  it("is a CA with pathlen:0 valid for one year, signed by the root", async () => {
    const c = await x509(intPem);
    expect(c.subject).toBe(`CN=portcullis issuing CA,O=${TD}`);
    expect(c.issuer).toBe(`CN=portcullis root CA,O=${TD}`);
    expect(c.text).toMatch(/NIST CURVE: P-256/);
    expect(c.text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(extension(c.text, "X509v3 Basic Constraints")).toEqual({ critical: true, value: "CA:TRUE, pathlen:0" });
    expect(extension(c.text, "X509v3 Key Usage")).toEqual({ critical: true, value: "Certificate Sign, CRL Sign" });
    const root = await x509(rootPem);
    expect(extension(c.text, "X509v3 Authority Key Identifier")?.value.replace(/^keyid:/, "")).toBe(
      extension(root.text, "X509v3 Subject Key Identifier")?.value,
    );
    expect(c.notBefore).toBe(now - BACKDATE_MS);
    expect(c.notAfter).toBe(now + 365 * DAY);
    const v = await openssl(["verify", "-CAfile", rootPem, intPem]);
    expect(v.stdout.trim()).toBe(`${intPem}: OK`);
  });
});

describe("client leaf (openssl x509 -text)", () => {
  it("is CA:FALSE, Digital Signature (critical), clientAuth only, with exactly one URI SAN", async () => {
    const c = await x509(leafPem);
    expect(c.issuer).toBe(`CN=portcullis issuing CA,O=${TD}`);
    expect(c.subject).toBe("CN=user:alice");
    expect(extension(c.text, "X509v3 Basic Constraints")).toEqual({ critical: true, value: "CA:FALSE" });
    expect(extension(c.text, "X509v3 Key Usage")).toEqual({ critical: true, value: "Digital Signature" });
    expect(extension(c.text, "X509v3 Extended Key Usage")).toEqual({ critical: false, value: "TLS Web Client Authentication" });
    expect(extension(c.text, "X509v3 Subject Alternative Name")).toEqual({ critical: false, value: `URI:spiffe://${TD}/user/alice` });
    const int = await x509(intPem);
    expect(extension(c.text, "X509v3 Authority Key Identifier")?.value.replace(/^keyid:/, "")).toBe(
      extension(int.text, "X509v3 Subject Key Identifier")?.value,
    );
    // A user certificate lasts 24 hours by default.
    expect(c.notBefore).toBe(now - BACKDATE_MS);
    expect(c.notAfter).toBe(now + 24 * HOUR);
  });

  it("verifies against the root through the intermediate, for client use only", async () => {
    const ok = await openssl(["verify", "-CAfile", rootPem, "-untrusted", intPem, leafPem]);
    expect(ok.stdout.trim()).toBe(`${leafPem}: OK`);
    const client = await openssl(["verify", "-purpose", "sslclient", "-CAfile", rootPem, "-untrusted", intPem, leafPem]);
    expect(client.stdout.trim()).toBe(`${leafPem}: OK`);
    const server = await openssl(["verify", "-purpose", "sslserver", "-CAfile", rootPem, "-untrusted", intPem, leafPem]);
    expect(server.code).not.toBe(0);
    expect(server.stdout + server.stderr).toMatch(/error 26 at 0 depth lookup: unsuitable certificate purpose/);
    // Without the intermediate there is no path to the root.
    const alone = await openssl(["verify", "-CAfile", rootPem, leafPem]);
    expect(alone.code).not.toBe(0);
  });

  it("a node certificate carries the node's SPIFFE ID and lasts seven days", async () => {
    const c = await x509(nodePem);
    expect(extension(c.text, "X509v3 Subject Alternative Name")?.value).toBe(`URI:spiffe://${TD}/node/worker-1`);
    expect(extension(c.text, "X509v3 Extended Key Usage")?.value).toBe("TLS Web Client Authentication");
    expect(c.notAfter).toBe(now + 7 * DAY);
  });

  it("node's X509Certificate agrees: not a CA, issued by the intermediate", () => {
    const leaf = new X509Certificate(readFileSync(leafPem));
    const int = new X509Certificate(f.ca.intermediatePem);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(int)).toBe(true);
    expect(leaf.verify(int.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toBe(`URI:spiffe://${TD}/user/alice`);
  });
});

describe("server leaf (openssl x509 -text)", () => {
  it("is CA:FALSE, serverAuth only, with DNS and IP SANs and no URI; 30 days", async () => {
    const c = await x509(serverPem);
    expect(c.subject).toBe("CN=portcullis gateway");
    expect(extension(c.text, "X509v3 Basic Constraints")).toEqual({ critical: true, value: "CA:FALSE" });
    expect(extension(c.text, "X509v3 Key Usage")).toEqual({ critical: true, value: "Digital Signature" });
    expect(extension(c.text, "X509v3 Extended Key Usage")?.value).toBe("TLS Web Server Authentication");
    const san = extension(c.text, "X509v3 Subject Alternative Name")?.value as string;
    expect(san.split(", ").sort()).toEqual(["DNS:localhost", "IP Address:127.0.0.1"]);
    expect(san).not.toMatch(/URI:/);
    expect(c.notAfter).toBe(now + 30 * DAY);
    const v = await openssl(["verify", "-purpose", "sslserver", "-CAfile", rootPem, "-untrusted", intPem, serverPem]);
    expect(v.stdout.trim()).toBe(`${serverPem}: OK`);
    const asClient = await openssl(["verify", "-purpose", "sslclient", "-CAfile", rootPem, "-untrusted", intPem, serverPem]);
    expect(asClient.code).not.toBe(0);
    expect(asClient.stdout + asClient.stderr).toMatch(/error 26 at 0 depth lookup: unsuitable certificate purpose/);
  });
});
