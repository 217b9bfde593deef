import { createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig, ManualClock } from "../../src/core/index.js";
import { algorithmIdentifier } from "../../src/pki/certificate.js";
import { bitString, fromDer, firstElementBytes, seq, toDer, toPem } from "../../src/pki/der.js";
import { buildCsr, CertificateAuthority, derToPem, generateKeyPair, MAX_CSR_BYTES, parseCsr, spkiDer } from "../../src/pki/index.js";
import { expectRefusal, openssl, TD } from "./fixture.js";
import { tempDir } from "../support/gateway.js";

/**
 * parseCsr checks, in a fixed order: size, structure, key policy, signature algorithm,
 * signature, then the requested names. Each refusal is a coded error with a reason.
 */

const ALICE = `spiffe://${TD}/user/alice`;
type Pair = { privateKey: KeyObject; publicKey: KeyObject };

function csr(key: Pair, opts: { cn?: string; san?: { uri: string }[] } = {}): { der: Buffer; pem: string } {
  return buildCsr({ key: key.privateKey, publicKey: key.publicKey, commonName: opts.cn ?? "user:alice", san: opts.san ?? [{ uri: ALICE }] });
}

/** The same request info, signed again under another algorithm (or another key). */
function resign(der: Buffer, sigOid: string, hash: string, key: KeyObject, rsa: boolean): Buffer {
  const info = firstElementBytes(der);
  const sig = cryptoSign(hash, info, key);
  return toDer(seq([fromDer(info), algorithmIdentifier(sigOid, rsa), bitString(sig)]));
}

const OIDS = {
  sha1WithRsa: "1.2.840.113549.1.1.5",
  md5WithRsa: "1.2.840.113549.1.1.4",
  sha512WithRsa: "1.2.840.113549.1.1.13",
  rsassaPss: "1.2.840.113549.1.1.10",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  ecdsaWithSha1: "1.2.840.10045.4.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
};

let t: ReturnType<typeof tempDir>;
const keys: Record<string, Pair> = {};
const files: Record<string, string> = {};

async function run(args: string[]): Promise<void> {
  const r = await openssl(args, t.dir);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

beforeAll(async () => {
  t = tempDir("portcullis-csr-");
  keys.p256 = generateKeyPair("ec-p256");
  keys.p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  keys.rsa2048 = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 65537 });
  keys.rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024, publicExponent: 65537 });
  keys.rsa2048e3 = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 3 });
  keys.p192 = generateKeyPairSync("ec", { namedCurve: "prime192v1" });
  keys.p224 = generateKeyPairSync("ec", { namedCurve: "secp224r1" });
  keys.p521 = generateKeyPairSync("ec", { namedCurve: "secp521r1" });
  keys.k256 = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
  keys.brainpool = generateKeyPairSync("ec", { namedCurve: "brainpoolP256r1" });

  // Requests only the real openssl makes here: keys and signature schemes node:crypto
  // cannot put into a PKCS#10 through buildCsr.
  const subj = ["-subj", "/CN=user:alice", "-addext", `subjectAltName=URI:${ALICE}`];
  await run(["genpkey", "-algorithm", "ed25519", "-out", "ed25519.key"]);
  await run(["req", "-new", "-key", "ed25519.key", ...subj, "-out", "ed25519.csr"]);
  await run(["genpkey", "-algorithm", "ed448", "-out", "ed448.key"]);
  await run(["req", "-new", "-key", "ed448.key", ...subj, "-out", "ed448.csr"]);
  await run(["genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsapss.key"]);
  await run(["req", "-new", "-key", "rsapss.key", ...subj, "-out", "rsapss-key.csr"]);
  await run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key"]);
  await run(["req", "-new", "-key", "rsa.key", ...subj, "-sigopt", "rsa_padding_mode:pss", "-out", "pss-sig.csr"]);
  await run(["req", "-new", "-key", "rsa.key", ...subj, "-sha1", "-out", "sha1.csr"]);
  await run(["req", "-new", "-key", "rsa.key", ...subj, "-sha512", "-out", "sha512.csr"]);
  await run(["req", "-new", "-key", "rsa.key", ...subj, "-out", "rsa.csr"]);
  await run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "p256.key"]);
  await run(["req", "-new", "-key", "p256.key", ...subj, "-out", "p256.csr"]);
  await run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.key"]);
  await run(["req", "-new", "-key", "p384.key", ...subj, "-out", "p384.csr"]);
  await run(["req", "-new", "-key", "p256.key", "-subj", "/CN=user:alice", "-out", "no-san.csr"]);
  await run(["req", "-new", "-key", "p256.key", "-subj", "/CN=user:admin", "-addext", `subjectAltName=URI:spiffe://${TD}/user/bob,DNS:bob.example`, "-out", "mixed.csr"]);
  for (const n of ["ed25519", "ed448", "rsapss-key", "pss-sig", "sha1", "sha512", "rsa", "p256", "p384", "no-san", "mixed"]) {
    files[n] = readFileSync(join(t.dir, `${n}.csr`), "utf8");
  }
}, 60_000);
afterAll(() => t.cleanup());

describe("parseCsr: refusals", () => {
  const table: [string, () => string | Buffer, string, string | RegExp | undefined][] = [
    // key policy
    ["RSA 1024", () => csr(keys.rsa1024 as Pair).pem, "PC_PKI_KEY_TOO_WEAK", "RSA 1024 bits, need 2048"],
    ["RSA 2048 with exponent 3", () => csr(keys.rsa2048e3 as Pair).pem, "PC_PKI_KEY_TOO_WEAK", "RSA public exponent must be 65537"],
    ["EC P-192", () => csr(keys.p192 as Pair).pem, "PC_PKI_KEY_TOO_WEAK", "EC curve prime192v1"],
    ["EC P-224", () => csr(keys.p224 as Pair).pem, "PC_PKI_KEY_TOO_WEAK", "EC curve secp224r1"],
    ["EC P-521", () => csr(keys.p521 as Pair).pem, "PC_PKI_KEY_UNSUPPORTED", "EC curve secp521r1"],
    ["EC secp256k1", () => csr(keys.k256 as Pair).pem, "PC_PKI_KEY_UNSUPPORTED", "EC curve secp256k1"],
    ["EC brainpoolP256r1", () => csr(keys.brainpool as Pair).pem, "PC_PKI_KEY_UNSUPPORTED", "EC curve brainpoolP256r1"],
    ["Ed25519 (openssl req)", () => files.ed25519 as string, "PC_PKI_KEY_UNSUPPORTED", "ed25519"],
    ["Ed448 (openssl req)", () => files.ed448 as string, "PC_PKI_KEY_UNSUPPORTED", "ed448"],
    ["an RSA-PSS key (openssl req)", () => files["rsapss-key"] as string, "PC_PKI_KEY_UNSUPPORTED", "rsa-pss"],
    // signature algorithm
    ["an RSA-PSS signature (openssl req -sigopt rsa_padding_mode:pss)", () => files["pss-sig"] as string, "PC_PKI_KEY_UNSUPPORTED", "signature algorithm"],
    ["sha1WithRSAEncryption (openssl req -sha1)", () => files.sha1 as string, "PC_PKI_KEY_UNSUPPORTED", "signature algorithm"],
    ["sha512WithRSAEncryption (openssl req -sha512)", () => files.sha512 as string, "PC_PKI_KEY_UNSUPPORTED", "signature algorithm"],
    ["md5WithRSAEncryption", () => resign(csr(keys.rsa2048 as Pair).der, OIDS.md5WithRsa, "md5", (keys.rsa2048 as Pair).privateKey, true), "PC_PKI_KEY_UNSUPPORTED", "signature algorithm"],
    ["sha1WithRSAEncryption (built here)", () => resign(csr(keys.rsa2048 as Pair).der, OIDS.sha1WithRsa, "sha1", (keys.rsa2048 as Pair).privateKey, true), "PC_PKI_KEY_UNSUPPORTED", "signature algorithm"],
    ["ecdsa-with-SHA1", () => resign(csr(keys.p256 as Pair).der, OIDS.ecdsaWithSha1, "sha1", (keys.p256 as Pair).privateKey, false), "PC_PKI_KEY_UNSUPPORTED", "signature algorithm"],
    ["ecdsa-with-SHA512", () => resign(csr(keys.p256 as Pair).der, OIDS.ecdsaWithSha512, "sha512", (keys.p256 as Pair).privateKey, false), "PC_PKI_KEY_UNSUPPORTED", "signature algorithm"],
    ["an RSA signature OID on an EC key", () => resign(csr(keys.p256 as Pair).der, OIDS.sha256WithRsa, "sha256", (keys.p256 as Pair).privateKey, true), "PC_PKI_CSR_SIGNATURE", undefined],
    ["an ECDSA signature OID on an RSA key", () => resign(csr(keys.rsa2048 as Pair).der, OIDS.ecdsaWithSha256, "sha256", (keys.rsa2048 as Pair).privateKey, false), "PC_PKI_CSR_SIGNATURE", undefined],
    // signature
    ["a signature by another key", () => resign(csr(keys.p256 as Pair).der, OIDS.ecdsaWithSha256, "sha256", generateKeyPair().privateKey, false), "PC_PKI_CSR_SIGNATURE", undefined],
    ["a tampered subject", () => tamper(csr(keys.p256 as Pair).der, "user:alice", "user:alicf"), "PC_PKI_CSR_SIGNATURE", undefined],
    ["a tampered SAN", () => tamper(csr(keys.p256 as Pair).der, "/user/alice", "/user/admin"), "PC_PKI_CSR_SIGNATURE", undefined],
    ["a tampered RSA signature", () => flipLast(csr(keys.rsa2048 as Pair).der), "PC_PKI_CSR_SIGNATURE", undefined],
    ["a tampered ECDSA signature", () => flipLast(csr(keys.p256 as Pair).der), "PC_PKI_CSR_SIGNATURE", undefined],
    ["a tampered openssl request", () => tamper(Buffer.from((files.p256 as string).split("\n").filter((l) => !l.startsWith("-----")).join(""), "base64"), "user/alice", "user/alicf"), "PC_PKI_CSR_SIGNATURE", undefined],
    // PEM
    ["garbage text", () => "hello, I am a CSR", "PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block"],
    ["an empty string", () => "", "PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block"],
    ["bad base64 in the block", () => "-----BEGIN CERTIFICATE REQUEST-----\nabc\n-----END CERTIFICATE REQUEST-----\n", "PC_PKI_PEM_MALFORMED", "bad base64"],
    ["base64 padding inside", () => "-----BEGIN CERTIFICATE REQUEST-----\nAA==AAAA\n-----END CERTIFICATE REQUEST-----\n", "PC_PKI_PEM_MALFORMED", "bad base64"],
    ["a non-base64 character", () => "-----BEGIN CERTIFICATE REQUEST-----\nMII*AAAA\n-----END CERTIFICATE REQUEST-----\n", "PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block"],
    ["a mismatched END label", () => csr(keys.p256 as Pair).pem.replace("END CERTIFICATE REQUEST", "END CERTIFICATE"), "PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block"],
    ["a certificate instead", () => derToPem(Buffer.from("3003020101", "hex"), "CERTIFICATE"), "PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block"],
    ["the legacy NEW CERTIFICATE REQUEST label", () => csr(keys.p256 as Pair).pem.replace(/CERTIFICATE REQUEST/g, "NEW CERTIFICATE REQUEST"), "PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block"],
    ["two PEM blocks", () => csr(keys.p256 as Pair).pem + csr(keys.p256 as Pair).pem, "PC_PKI_PEM_MALFORMED", "expected exactly one CERTIFICATE REQUEST block"],
    // DER
    ["an empty DER", () => Buffer.alloc(0), "PC_PKI_CSR_MALFORMED", "size"],
    ["a DER over the size limit", () => Buffer.concat([csr(keys.p256 as Pair).der, Buffer.alloc(MAX_CSR_BYTES)]), "PC_PKI_CSR_MALFORMED", "size"],
    ["truncated DER", () => csr(keys.p256 as Pair).der.subarray(0, 100), "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["DER missing its last byte", () => { const d = csr(keys.p256 as Pair).der; return d.subarray(0, d.length - 1); }, "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["truncated DER in PEM", () => toPem(csr(keys.p256 as Pair).der.subarray(0, 120), "CERTIFICATE REQUEST"), "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["one trailing byte after the DER", () => Buffer.concat([csr(keys.p256 as Pair).der, Buffer.from([0])]), "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["a second request after the DER", () => Buffer.concat([csr(keys.p256 as Pair).der, csr(keys.p256 as Pair).der]), "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["trailing bytes inside the PEM", () => toPem(Buffer.concat([csr(keys.p256 as Pair).der, Buffer.from("0500", "hex")]), "CERTIFICATE REQUEST"), "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["random bytes", () => Buffer.from("deadbeefcafebabe".repeat(8), "hex"), "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["a bare INTEGER", () => Buffer.from("020101", "hex"), "PC_PKI_CSR_MALFORMED", "not a DER certification request"],
    ["a certificate's DER", () => certificateDer(), "PC_PKI_CSR_MALFORMED", "structure"],
    ["version 1 instead of 0", () => setVersion(csr(keys.p256 as Pair).der, 1), "PC_PKI_CSR_MALFORMED", "structure"],
    ["unused bits in the signature", () => unusedBits(csr(keys.p256 as Pair).der), "PC_PKI_CSR_MALFORMED", "structure"],
  ];

  it.each(table)("%s → %s", (_name, make, code, detail) => {
    const e = expectRefusal(() => parseCsr(make()), code, detail);
    expect(e.status).toBe(code === "PC_PKI_IDENTITY_MISMATCH" ? 403 : 400);
    if (code === "PC_PKI_CSR_SIGNATURE") expect(e.publicMessage).toBe("signature verification failed");
  });

  it("checks in a fixed order: structure before key, key before signature", () => {
    // A weak key with a broken signature is refused for the key.
    expectRefusal(() => parseCsr(flipLast(csr(keys.rsa1024 as Pair).der)), "PC_PKI_KEY_TOO_WEAK");
    // An unsupported key with an unsupported signature algorithm: the key first.
    expectRefusal(() => parseCsr(resign(csr(keys.p192 as Pair).der, OIDS.ecdsaWithSha1, "sha1", (keys.p192 as Pair).privateKey, false)), "PC_PKI_KEY_TOO_WEAK");
    // A truncated request with a weak key: the structure first.
    expectRefusal(() => parseCsr(csr(keys.rsa1024 as Pair).der.subarray(0, 200)), "PC_PKI_CSR_MALFORMED");
    // An unsupported signature algorithm before the signature itself.
    expectRefusal(() => parseCsr(flipLast(resign(csr(keys.p256 as Pair).der, OIDS.ecdsaWithSha512, "sha512", (keys.p256 as Pair).privateKey, false))), "PC_PKI_KEY_UNSUPPORTED", "signature algorithm");
  });
});

describe("parseCsr: accepted requests", () => {
  it.each([
    ["EC P-256", "p256"],
    ["EC P-384", "p384"],
    ["RSA 2048, e=65537", "rsa2048"],
  ])("%s (buildCsr), as PEM and as DER", (_name, k) => {
    const key = keys[k] as Pair;
    const c = csr(key);
    for (const input of [c.pem, c.der]) {
      const p = parseCsr(input);
      expect(p.uris).toEqual([ALICE]);
      expect(p.otherSans).toBe(0);
      expect(p.commonName).toBe("user:alice");
      expect(p.spki.equals(spkiDer(key.publicKey))).toBe(true);
      expect(p.publicKey.equals(createPublicKey(key.privateKey))).toBe(true);
    }
  });

  it.each([["p256"], ["p384"], ["rsa"]])("the real openssl's %s request parses with its URI SAN", (n) => {
    const p = parseCsr(files[n] as string);
    expect(p.uris).toEqual([ALICE]);
    expect(p.otherSans).toBe(0);
    expect(p.commonName).toBe("user:alice");
    const key = createPublicKey(readFileSync(join(t.dir, `${n}.key`)));
    expect(p.spki.equals(spkiDer(key))).toBe(true);
  });

  it("reports what an openssl request asks for, without judging it", () => {
    const mixed = parseCsr(files.mixed as string);
    expect(mixed.uris).toEqual([`spiffe://${TD}/user/bob`]);
    expect(mixed.otherSans).toBe(1);
    expect(mixed.commonName).toBe("user:admin");
    const bare = parseCsr(files["no-san"] as string);
    expect(bare.uris).toEqual([]);
    expect(bare.otherSans).toBe(0);
  });

  it("accepts PEM with CRLF line ends and text around the block", () => {
    const c = csr(keys.p256 as Pair);
    expect(parseCsr(`a comment\r\n${c.pem.replace(/\n/g, "\r\n")}trailer\n`).uris).toEqual([ALICE]);
  });

  it.each([["p256"], ["p384"], ["rsa2048"]])("openssl req -verify accepts a %s request from buildCsr", async (k) => {
    const path = join(t.dir, `built-${k}.csr`);
    writeFileSync(path, csr(keys[k] as Pair).pem);
    const r = await openssl(["req", "-in", path, "-noout", "-verify", "-text"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/self-signature verify OK/);
    expect(r.stderr + r.stdout).not.toMatch(/failure/);
    expect(r.stdout).toMatch(/Subject: CN = user:alice/);
    expect(r.stdout).toContain(`URI:${ALICE}`);
  });

  it("openssl req -verify refuses a tampered request too", async () => {
    const path = join(t.dir, "tampered.csr");
    writeFileSync(path, toPem(tamper(csr(keys.p256 as Pair).der, "user:alice", "user:alicf"), "CERTIFICATE REQUEST"));
    const r = await openssl(["req", "-in", path, "-noout", "-verify"]);
    // OpenSSL 3.0 exits 0 either way; the verdict is in the text.
    expect(r.stderr + r.stdout).toMatch(/self-signature verify failure/);
    expect(r.stderr + r.stdout).not.toMatch(/verify OK/);
  });
});

/** Replaces one byte string by another of the same length, once. */
function tamper(der: Buffer, from: string, to: string): Buffer {
  expect(from.length).toBe(to.length);
  const i = der.indexOf(Buffer.from(from));
  expect(i).toBeGreaterThan(0);
  const out = Buffer.from(der);
  Buffer.from(to).copy(out, i);
  return out;
}

function flipLast(der: Buffer): Buffer {
  const out = Buffer.from(der);
  out[out.length - 1] = (out[out.length - 1] as number) ^ 0x01;
  return out;
}

/** CertificationRequestInfo's version INTEGER is the first element of the first element. */
function setVersion(der: Buffer, v: number): Buffer {
  const out = Buffer.from(der);
  const i = out.indexOf(Buffer.from([0x02, 0x01, 0x00]));
  expect(i).toBeGreaterThan(0);
  expect(i).toBeLessThan(12);
  out[i + 2] = v;
  return out;
}

/** Sets the signature BIT STRING's unused-bits octet. */
function unusedBits(der: Buffer): Buffer {
  const info = firstElementBytes(der);
  const rest = der.subarray(der.indexOf(info) + info.length);
  const algLen = (rest[1] as number) + 2;
  const bitsAt = der.indexOf(info) + info.length + algLen;
  const out = Buffer.from(der);
  expect(out[bitsAt]).toBe(0x03);
  const hdr = (out[bitsAt + 1] as number) & 0x80 ? 2 + ((out[bitsAt + 1] as number) & 0x7f) : 2;
  out[bitsAt + hdr] = 0x01;
  return out;
}

/** Any real certificate will do: the self-signed root of a new CA. */
function certificateDer(): Buffer {
  return CertificateAuthority.create(TD, new ManualClock(), defaultConfig().lifetimes).material.rootDer;
}
