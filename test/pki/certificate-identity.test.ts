import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig, parseIdentity } from "../../src/core/index.js";
import {
  CertificateAuthority,
  certificateInfo,
  derToPem,
  generateKeyPair,
  identityOfCertificate,
  privateKeyPem,
  spkiDer,
  uriSans,
  type SanEntry,
} from "../../src/pki/index.js";
import { expectRefusal, openssl, pkiFixture, TD, type PkiFixture } from "./fixture.js";

/** The identity of a certificate comes from its one URI SAN, never from its subject. */

let f: PkiFixture;
const spki = () => spkiDer(generateKeyPair().publicKey);
const leaf = (o: { identity?: string; names?: SanEntry[]; commonName?: string; ca?: CertificateAuthority }) =>
  (o.ca ?? f.ca).issueLeaf({
    spki: spki(),
    profile: "client",
    lifetimeMs: 3_600_000,
    ...(o.identity ? { identity: parseIdentity(o.identity) } : {}),
    ...(o.names ? { names: o.names } : {}),
    ...(o.commonName ? { commonName: o.commonName } : {}),
  }).der;

beforeAll(() => {
  f = pkiFixture();
});
afterAll(() => f.close());

describe("identityOfCertificate", () => {
  it("reads the URI SAN and ignores a CN that names someone else", () => {
    const der = leaf({ identity: "user:bob", commonName: "user:admin" });
    expect(new X509Certificate(der).subject).toBe("CN=user:admin");
    expect(identityOfCertificate(der, TD)).toEqual(parseIdentity("user:bob"));
  });

  it("reads the URI SAN of a certificate the real openssl signed with CN=user:admin", async () => {
    const key = generateKeyPair();
    const keyFile = f.file("bob.key", privateKeyPem(key.privateKey));
    const csr = f.file("bob.csr", "");
    const r1 = await openssl(["req", "-new", "-key", keyFile, "-subj", "/CN=user:admin", "-out", csr]);
    expect(r1.code, r1.stderr).toBe(0);
    const ext = f.file("ext.cnf", `subjectAltName=URI:spiffe://${TD}/user/bob\nextendedKeyUsage=clientAuth\n`);
    const caCert = f.file("int.pem", f.ca.intermediatePem);
    const caKey = f.file("int.key", privateKeyPem(f.ca.material.intermediateKey));
    const out = f.file("bob.pem", "");
    const r2 = await openssl(["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", out]);
    expect(r2.code, r2.stderr).toBe(0);
    const der = new X509Certificate(readFileSync(out)).raw;
    expect(new X509Certificate(der).subject).toBe("CN=user:admin");
    expect(identityOfCertificate(der, TD)).toEqual(parseIdentity("user:bob"));
  });

  it("does not need a CN at all, and ignores DNS and IP SANs beside the URI", () => {
    const der = leaf({ identity: "node:worker-1", names: [{ dns: "user.admin.example" }, { ip: "127.0.0.1" }], commonName: "x" });
    expect(identityOfCertificate(der, TD)).toEqual(parseIdentity("node:worker-1"));
  });

  it.each([
    ["no URI SAN (a server certificate)", () => leaf({ names: [{ dns: "localhost" }], commonName: "user:admin" }), "certificate must carry exactly one URI SAN"],
    ["no SAN at all", () => leaf({ commonName: "user:admin" }), "certificate must carry exactly one URI SAN"],
    [
      "two URI SANs",
      () => leaf({ identity: "user:bob", names: [{ uri: `spiffe://${TD}/user/admin` }] }),
      "certificate must carry exactly one URI SAN",
    ],
    [
      "two identical URI SANs",
      () => leaf({ identity: "user:bob", names: [{ uri: `spiffe://${TD}/user/bob` }] }),
      "certificate must carry exactly one URI SAN",
    ],
    ["a URI of another trust domain", () => leaf({ identity: "user:bob", ca: CertificateAuthority.create("other.example", f.clock, defaultConfig().lifetimes) }), "not of this trust domain"],
    ["a URI of a look-alike trust domain", () => leaf({ names: [{ uri: `spiffe://${TD}.evil/user/admin` }] }), "not of this trust domain"],
    ["an https URI", () => leaf({ names: [{ uri: `https://${TD}/user/admin` }] }), "not of this trust domain"],
    ["a SPIFFE ID with an extra segment", () => leaf({ names: [{ uri: `spiffe://${TD}/user/admin/x` }] }), "malformed SPIFFE ID"],
    ["a SPIFFE ID of an unknown kind", () => leaf({ names: [{ uri: `spiffe://${TD}/admin/root` }] }), /^identity must be/],
    ["a SPIFFE ID with an upper-case name", () => leaf({ names: [{ uri: `spiffe://${TD}/user/Admin` }] }), /^identity must be/],
  ])("refuses a certificate with %s (PC_PKI_IDENTITY_INVALID)", (_name, make, detail) => {
    expectRefusal(() => identityOfCertificate(make(), TD), "PC_PKI_IDENTITY_INVALID", detail);
  });

  it("refuses the CA certificates, which carry no URI", () => {
    expectRefusal(() => identityOfCertificate(f.ca.material.rootDer, TD), "PC_PKI_IDENTITY_INVALID");
    expectRefusal(() => identityOfCertificate(f.ca.material.intermediateDer, TD), "PC_PKI_IDENTITY_INVALID");
  });

  it("refuses bytes that are not a certificate with PC_PKI_CERT_INVALID", () => {
    expectRefusal(() => uriSans(Buffer.from("3003020101", "hex")), "PC_PKI_CERT_INVALID");
    expectRefusal(() => identityOfCertificate(Buffer.from("not a certificate"), TD), "PC_PKI_CERT_INVALID");
    expectRefusal(() => certificateInfo(Buffer.from("not a certificate")), "PC_PKI_CERT_INVALID");
  });

  it("certificateInfo reports what the certificate says", () => {
    const der = leaf({ identity: "user:bob" });
    const info = certificateInfo(der);
    const x = new X509Certificate(der);
    expect(info.uris).toEqual([`spiffe://${TD}/user/bob`]);
    expect(info.isCa).toBe(false);
    expect(info.notBefore.getTime()).toBe(Date.parse(x.validFrom));
    expect(certificateInfo(f.ca.material.rootDer).isCa).toBe(true);
    expect(derToPem(der, "CERTIFICATE")).toBe(x.toString());
  });
});
