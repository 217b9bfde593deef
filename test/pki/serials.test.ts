import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { defaultConfig, ManualClock, parseIdentity } from "../../src/core/index.js";
import { CertificateAuthority, certificateInfo, generateKeyPair, spkiDer } from "../../src/pki/index.js";

/** One DER TLV: tag, where its content starts, and its length. Independent of forge. */
function tlv(buf: Buffer, at: number): { tag: number; start: number; len: number; end: number } {
  const tag = buf[at] as number;
  const first = buf[at + 1] as number;
  let len = first;
  let start = at + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(4);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[at + 2 + i] as number);
    start = at + 2 + n;
  }
  return { tag, start, len, end: start + len };
}

/** The content octets of a certificate's serialNumber INTEGER. */
function serialOctets(der: Buffer): Buffer {
  const cert = tlv(der, 0);
  expect(cert.tag).toBe(0x30);
  const tbs = tlv(der, cert.start);
  expect(tbs.tag).toBe(0x30);
  let at = tbs.start;
  const first = tlv(der, at);
  if (first.tag === 0xa0) at = first.end; // [0] EXPLICIT version
  const serial = tlv(der, at);
  expect(serial.tag).toBe(0x02);
  return der.subarray(serial.start, serial.end);
}

describe("certificate serial numbers", () => {
  it("are unique, positive, minimally encoded and at most 20 octets over 10,000 leaves; serialHex is node's serialNumber", () => {
    const clock = new ManualClock();
    const ca = CertificateAuthority.create("portcullis.local", clock, defaultConfig().lifetimes);
    const spki = spkiDer(generateKeyPair("ec-p256").publicKey);
    const alice = parseIdentity("user:alice");
    const seen = new Set<string>();
    let leadingZeroNibble = 0;
    let highBitPadded = 0;
    const problems: string[] = [];

    for (let i = 0; i < 10_000; i++) {
      const leaf = ca.issueLeaf({ spki, profile: "client", identity: alice, lifetimeMs: 3_600_000 });
      const octets = serialOctets(leaf.der);
      const hex = octets.toString("hex");
      if (octets.length < 1 || octets.length > 20) problems.push(`${hex}: ${octets.length} octets`);
      if (((octets[0] as number) & 0x80) !== 0) problems.push(`${hex}: negative`);
      if (octets.every((b) => b === 0)) problems.push(`${hex}: zero`);
      // DER: a leading 0x00 only where the next octet's high bit needs it.
      if (octets[0] === 0) {
        if (octets.length < 2 || ((octets[1] as number) & 0x80) === 0) problems.push(`${hex}: not minimal`);
        highBitPadded++;
      }
      if (seen.has(hex)) problems.push(`${hex}: duplicate`);
      seen.add(hex);

      const node = new X509Certificate(leaf.der).serialNumber.toLowerCase();
      const unpadded = hex.replace(/^(?:00)+(?=[0-9a-f]{2})/, "");
      if (leaf.serialHex !== unpadded || leaf.serialHex !== node.replace(/^(?:00)+(?=[0-9a-f]{2})/, "")) {
        problems.push(`${hex}: serialHex ${leaf.serialHex}, node ${node}`);
      }
      if (leaf.serialHex.length % 2 !== 0) problems.push(`${leaf.serialHex}: odd number of hex digits`);
      if (leaf.serialHex.startsWith("0")) leadingZeroNibble++;
    }

    expect(problems).toEqual([]);
    expect(seen.size).toBe(10_000);
    // The sample covers the awkward encodings: padded high bits, and a first octet < 0x10.
    expect(highBitPadded).toBeGreaterThan(1000);
    expect(leadingZeroNibble).toBeGreaterThan(100);
  }, 60_000);

  it("certificateInfo reports the same serial as the issuer", () => {
    const clock = new ManualClock();
    const ca = CertificateAuthority.create("portcullis.local", clock, defaultConfig().lifetimes);
    const spki = spkiDer(generateKeyPair("ec-p256").publicKey);
    for (let i = 0; i < 200; i++) {
      const leaf = ca.issueLeaf({ spki, profile: "client", identity: parseIdentity("user:alice"), lifetimeMs: 3_600_000 });
      expect(certificateInfo(leaf.der).serialHex).toBe(leaf.serialHex);
    }
    expect(certificateInfo(ca.material.rootDer).serialHex).toBe(serialOctets(ca.material.rootDer).toString("hex").replace(/^(?:00)+(?=[0-9a-f]{2})/, ""));
  });
});
