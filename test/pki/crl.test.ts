import { afterEach, describe, expect, it } from "vitest";
import { parseIdentity } from "../../src/core/index.js";
import { BACKDATE_MS, derToPem, generateKeyPair, LEAF_CRL_VALIDITY_MS, normaliseSerial, REVOCATION_REASONS, spkiDer, type IssuedBundle } from "../../src/pki/index.js";
import { expectRefusal, openssl, pkiFixture, type PkiFixture } from "./fixture.js";

const ADMIN = { identity: "user:admin" };

/** How `openssl crl -text` names each RFC 5280 reason. */
const OPENSSL_REASON: Record<keyof typeof REVOCATION_REASONS, string> = {
  unspecified: "Unspecified",
  keyCompromise: "Key Compromise",
  cACompromise: "CA Compromise",
  affiliationChanged: "Affiliation Changed",
  superseded: "Superseded",
  cessationOfOperation: "Cessation Of Operation",
  privilegeWithdrawn: "Privilege Withdrawn",
};

interface CrlText {
  verified: boolean;
  crlNumber: number;
  issuer: string;
  entries: Map<string, string>;
  raw: string;
}

/** `openssl crl -in crl.pem -CAfile bundle -noout -text`, read back. */
async function readCrl(f: PkiFixture, crlPem: string, caPem: string, name = "crl"): Promise<CrlText> {
  const crl = f.file(`${name}.pem`, crlPem);
  const ca = f.file(`${name}-ca.pem`, caPem);
  const r = await openssl(["crl", "-in", crl, "-CAfile", ca, "-noout", "-text"]);
  expect(r.code, r.stderr).toBe(0);
  // An entry without a reason code means "unspecified" (RFC 5280 §5.3.1 leaves it out).
  const entries = new Map<string, string>();
  for (const block of r.stdout.split(/\n\s+Serial Number: /).slice(1)) {
    const serial = (/^([0-9A-F]+)/.exec(block)?.[1] as string).toLowerCase();
    const reason = /X509v3 CRL Reason Code: \n\s+([^\n]+)/.exec(block)?.[1]?.trim() ?? "Unspecified";
    entries.set(serial, reason);
  }
  const revokedCount = (r.stdout.match(/Serial Number:/g) ?? []).length;
  expect(entries.size, "every listed serial is read").toBe(revokedCount);
  return {
    verified: /^verify OK$/m.test(r.stderr),
    crlNumber: Number(/X509v3 CRL Number: \n\s+(\d+)/.exec(r.stdout)?.[1]),
    issuer: /Issuer: ([^\n]+)/.exec(r.stdout)?.[1]?.trim() ?? "",
    entries,
    raw: r.stdout,
  };
}

function issue(f: PkiFixture, identity: string): IssuedBundle {
  return f.pki.issueClient(parseIdentity(identity), spkiDer(generateKeyPair().publicKey), ADMIN);
}

/** Issues certificates until one has a serial whose first octet is below 0x10. */
function issueWithLeadingZeroNibble(f: PkiFixture, identity: string): IssuedBundle {
  for (let i = 0; i < 2000; i++) {
    const b = issue(f, identity);
    if (b.serial.startsWith("0")) return b;
  }
  throw new Error("no serial below 0x10 in 2000 tries");
}

let f: PkiFixture;
afterEach(() => f?.close());

describe("leaf CRL (openssl crl -text)", () => {
  it("verifies against the CA bundle and lists every revoked serial with its reason", async () => {
    f = pkiFixture();
    const alice = issue(f, "user:alice");
    const bob1 = issue(f, "user:bob");
    const bob2 = issue(f, "user:bob");
    const carol = issue(f, "user:carol");
    const keep = issue(f, "user:dave");
    const expected = new Map<string, string>();

    f.pki.revokeSerial(alice.serial, "keyCompromise", ADMIN);
    expected.set(alice.serial, "Key Compromise");
    const byId = f.pki.revokeIdentity("user:bob", "affiliationChanged", ADMIN);
    expect(byId.revoked.sort()).toEqual([bob1.serial, bob2.serial].sort());
    expected.set(bob1.serial, "Affiliation Changed").set(bob2.serial, "Affiliation Changed");
    f.pki.revokeSerial(carol.serial.toUpperCase(), "cessationOfOperation", ADMIN);
    expected.set(carol.serial, "Cessation Of Operation");

    const set = f.pki.crls();
    const c = await readCrl(f, set.leafPem, f.ca.bundlePem);
    expect(c.verified).toBe(true);
    expect(c.issuer).toMatch(/CN = portcullis issuing CA/);
    expect(c.entries).toEqual(expected);
    expect(c.entries.has(keep.serial)).toBe(false);
    expect(set.leafDer.equals(Buffer.from(set.leafPem.split("\n").filter((l) => l && !l.startsWith("-----")).join(""), "base64"))).toBe(true);
  });

  it.each(Object.keys(REVOCATION_REASONS) as (keyof typeof REVOCATION_REASONS)[])("writes the reason %s as openssl names it", async (reason) => {
    f = pkiFixture();
    const b = issue(f, "user:alice");
    f.pki.revokeSerial(b.serial, reason, ADMIN);
    const c = await readCrl(f, f.pki.crls().leafPem, f.ca.bundlePem);
    expect(c.verified).toBe(true);
    expect(c.entries).toEqual(new Map([[b.serial, OPENSSL_REASON[reason]]]));
    // "unspecified" is written by leaving the reason code out.
    expect(c.raw.includes("CRL Reason Code")).toBe(reason !== "unspecified");
  });

  it("numbers CRLs upwards with each revocation, and only then", async () => {
    f = pkiFixture();
    const certs = [issue(f, "user:a1"), issue(f, "user:a2"), issue(f, "user:a3")];
    const numbers: number[] = [];
    const current = async () => (await readCrl(f, f.pki.crls().leafPem, f.ca.bundlePem, `crl-${numbers.length}`)).crlNumber;
    numbers.push(await current());
    for (const c of certs) {
      f.pki.revokeSerial(c.serial, "superseded", ADMIN);
      numbers.push(await current());
    }
    expect(numbers).toEqual([1, 2, 3, 4]);
    // Nothing changed: the same CRL. Revoking again changes nothing either.
    expect(await current()).toBe(4);
    expect(f.pki.revokeSerial(certs[0]!.serial, "keyCompromise", ADMIN).revoked).toEqual([]);
    expect(await current()).toBe(4);
    // An identity with nothing to revoke does not move the number.
    f.pki.revokeIdentity("user:nobody", "superseded", ADMIN);
    expect(await current()).toBe(4);
    f.pki.revokeIdentity("user:a1", "superseded", ADMIN);
    expect(await current()).toBe(4);
  });

  it("is valid from just before now for a week", async () => {
    f = pkiFixture();
    const pem = f.pki.crls().leafPem;
    const r = await openssl(["crl", "-in", f.file("c.pem", pem), "-noout", "-lastupdate", "-nextupdate", "-dateopt", "iso_8601"]);
    const last = Date.parse((/lastUpdate=(.+)/.exec(r.stdout)?.[1] as string).replace(" ", "T"));
    const next = Date.parse((/nextUpdate=(.+)/.exec(r.stdout)?.[1] as string).replace(" ", "T"));
    const now = f.clock.now().getTime();
    expect(last).toBe(now - BACKDATE_MS);
    expect(next).toBe(now + LEAF_CRL_VALIDITY_MS);
  });

  it("makes openssl verify -crl_check refuse the revoked certificate and accept the others", async () => {
    f = pkiFixture();
    const bad = issue(f, "user:alice");
    const good = issue(f, "user:bob");
    f.pki.revokeSerial(bad.serial, "keyCompromise", ADMIN);
    const set = f.pki.crls();
    const root = f.file("root.pem", derToPem(f.ca.material.rootDer, "CERTIFICATE"));
    const int = f.file("int.pem", f.ca.intermediatePem);
    const crls = f.file("crls.pem", set.tls.join(""));
    const verify = (leaf: string) => openssl(["verify", "-crl_check_all", "-CAfile", root, "-untrusted", int, "-CRLfile", crls, leaf]);
    const refused = await verify(f.file("bad.pem", bad.certificate));
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/certificate revoked/);
    const accepted = await verify(f.file("good.pem", good.certificate));
    expect(accepted.stdout.trim()).toMatch(/good\.pem: OK$/);
  });

  it("revokes a serial whose first octet is below 0x10, however it is written", async () => {
    f = pkiFixture();
    const spellings = (s: string) => [
      s, // as stored: 0a1b...
      s.toUpperCase(),
      (s.match(/../g) as string[]).join(":").toUpperCase(), // as openssl x509 -text prints it
      s.replace(/^0/, ""), // with the leading zero digit dropped
      `00${s}`,
    ];
    const SPELLINGS = 5;
    for (let i = 0; i < SPELLINGS; i++) {
      const b = issueWithLeadingZeroNibble(f, `user:z${i}`);
      const text = spellings(b.serial)[i] as string;
      expect(normaliseSerial(text), text).toBe(b.serial);
      expect(f.pki.get(text)?.serial, text).toBe(b.serial);
      expect(f.pki.revokeSerial(text, "keyCompromise", ADMIN).revoked, text).toEqual([b.serial]);
    }
    const c = await readCrl(f, f.pki.crls().leafPem, f.ca.bundlePem);
    expect(c.verified).toBe(true);
    expect(c.entries.size).toBe(SPELLINGS);
    for (const serial of c.entries.keys()) expect(serial).toMatch(/^0[1-9a-f]/);
  });

  it.each([
    ["an unknown serial", "0123456789abcdef", "superseded", "PC_PKI_CERT_NOT_FOUND"],
    ["a serial that is not hex", "xyz", "superseded", "PC_PKI_CERT_NOT_FOUND"],
    ["a serial that is too long", "a".repeat(41), "superseded", "PC_PKI_CERT_NOT_FOUND"],
    ["an unknown reason", "SERIAL", "because", "PC_PKI_REVOKE_REASON_INVALID"],
    ["a reason number", "SERIAL", "1", "PC_PKI_REVOKE_REASON_INVALID"],
    ["an inherited name as reason", "SERIAL", "toString", "PC_PKI_REVOKE_REASON_INVALID"],
    ["removeFromCRL", "SERIAL", "removeFromCRL", "PC_PKI_REVOKE_REASON_INVALID"],
  ])("refuses %s and leaves the CRL as it was", (_name, serial, reason, code) => {
    f = pkiFixture();
    const b = issue(f, "user:alice");
    const before = f.pki.crls().leafDer;
    expectRefusal(() => f.pki.revokeSerial(serial === "SERIAL" ? b.serial : serial, reason, ADMIN), code);
    expect(f.pki.revocationGeneration()).toBe(0);
    expect(f.pki.crls().leafDer.equals(before)).toBe(true);
  });
});

describe("root CRL", () => {
  it("is signed by the root, lists nothing, and verifies with the root alone", async () => {
    f = pkiFixture();
    issue(f, "user:alice");
    f.pki.revokeIdentity("user:alice", "superseded", ADMIN);
    const set = f.pki.crls();
    expect(set.tls).toHaveLength(2);
    const c = await readCrl(f, set.tls[0] as string, derToPem(f.ca.material.rootDer, "CERTIFICATE"), "root-crl");
    expect(c.verified).toBe(true);
    expect(c.issuer).toMatch(/CN = portcullis root CA/);
    expect(c.entries.size).toBe(0);
    expect(c.raw).toMatch(/No Revoked Certificates/);
  });
});
