/**
 * Envelope encryption of one version: a value opens only in its own row (namespace, name,
 * version), under its own KEK, with exactly the expected protected headers and algorithms.
 * Every tampering gives PC_SECRETS_DECRYPT_FAILED with a detail naming only the version.
 */
import { randomBytes } from "node:crypto";
import { CompactEncrypt } from "jose";
import { describe, expect, it } from "vitest";
import { openVersion, rewrapVersion, sealVersion, SECRET_VALUE_TYP, WRAPPED_KEY_TYP, type Kek, type KekLookup, type SealedVersion } from "../../src/secrets/index.js";
import { rejection } from "../support/refusal.js";

const kekA: Kek = { id: "kek-20260101-aaaaaaaa", key: randomBytes(32), createdAt: "2026-01-01T00:00:00.000Z" };
const kekB: Kek = { id: "kek-20260102-bbbbbbbb", key: randomBytes(32), createdAt: "2026-01-02T00:00:00.000Z" };
const ring = (...keks: Kek[]): KekLookup => ({ get: (id) => keks.find((k) => k.id === id) });
const both = ring(kekA, kekB);

const B = { namespace: "team-a", name: "db-password", version: 1 };
const VALUE = Buffer.from("correct horse battery staple");

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const header = (jwe: string): Record<string, unknown> => JSON.parse(Buffer.from(jwe.split(".")[0] as string, "base64url").toString()) as Record<string, unknown>;

/** Flips one bit of the decoded bytes of part `i` of a compact JWE. */
function flip(jwe: string, i: number, bit = 0): string {
  const parts = jwe.split(".");
  const bytes = Buffer.from(parts[i] as string, "base64url");
  const at = Math.floor(bytes.length / 2);
  bytes[at] = (bytes[at] as number) ^ (1 << bit);
  parts[i] = bytes.toString("base64url");
  return parts.join(".");
}

async function expectDecryptFailed(p: Promise<unknown>, b = B): Promise<void> {
  const e = await rejection(p);
  expect(e.code).toBe("PC_SECRETS_DECRYPT_FAILED");
  expect(e.detail).toBe(`${b.namespace}/${b.name} version ${b.version}`);
  expect(e.message).not.toMatch(/aes|gcm|jwe|jose|key|decryption operation/i);
}

describe("seal and open", () => {
  it("round-trips a value, with both protected headers exactly as specified", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    expect(s.kekId).toBe(kekA.id);
    expect(header(s.valueJwe)).toEqual({ alg: "dir", enc: "A256GCM", typ: SECRET_VALUE_TYP, pns: "team-a", pname: "db-password", pver: 1 });
    expect(header(s.wrappedKey)).toEqual({ alg: "A256KW", enc: "A256GCM", typ: WRAPPED_KEY_TYP, kid: kekA.id, pns: "team-a", pname: "db-password", pver: 1 });
    expect(s.valueJwe.split(".")[1]).toBe(""); // dir: no encrypted key
    expect((await openVersion(B, s, ring(kekA))).equals(VALUE)).toBe(true);
  });

  it("uses a fresh data key per version (same value, different ciphertexts and wrapped keys)", async () => {
    const [x, y] = [await sealVersion(B, VALUE, kekA), await sealVersion(B, VALUE, kekA)];
    expect(x.valueJwe).not.toBe(y.valueJwe);
    expect(x.wrappedKey.split(".")[3]).not.toBe(y.wrappedKey.split(".")[3]);
    // The data key of one does not open the other's value: swapping wrapped keys fails.
    await expectDecryptFailed(openVersion(B, { ...x, wrappedKey: y.wrappedKey }, both));
  });
});

describe("one bit flipped in any part of either JWE", () => {
  const valueParts = [
    ["protected header", 0],
    ["iv", 2],
    ["ciphertext", 3],
    ["tag", 4],
  ] as const;
  const wrappedParts = [["protected header", 0], ["encrypted key", 1], ["iv", 2], ["ciphertext", 3], ["tag", 4]] as const;

  it.each(valueParts)("value JWE: %s", async (_, i) => {
    const s = await sealVersion(B, VALUE, kekA);
    for (const bit of [0, 7]) await expectDecryptFailed(openVersion(B, { ...s, valueJwe: flip(s.valueJwe, i, bit) }, both));
  });

  it.each(wrappedParts)("wrapped key: %s", async (_, i) => {
    const s = await sealVersion(B, VALUE, kekA);
    for (const bit of [0, 7]) await expectDecryptFailed(openVersion(B, { ...s, wrappedKey: flip(s.wrappedKey, i, bit) }, both));
  });

  it("the untouched parts still open (the flips above were the cause)", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    expect((await openVersion(B, s, both)).toString()).toBe(VALUE.toString());
  });
});

describe("parts moved to another row or version", () => {
  const other = { namespace: "team-a", name: "api-token", version: 1 };

  it.each([
    ["another secret's row", { namespace: "team-a", name: "api-token", version: 1 }],
    ["another version of the same secret", { namespace: "team-a", name: "db-password", version: 2 }],
    ["the same name in another namespace", { namespace: "team-b", name: "db-password", version: 1 }],
  ])("the whole sealed version opened as %s", async (_, to) => {
    const s = await sealVersion(B, VALUE, kekA);
    await expectDecryptFailed(openVersion(to, s, both), to);
  });

  it("the value JWE of A with the wrapped key of B (and the reverse)", async () => {
    const a = await sealVersion(B, VALUE, kekA);
    const b = await sealVersion(other, Buffer.from("another value"), kekA);
    await expectDecryptFailed(openVersion(other, { ...b, valueJwe: a.valueJwe }, both), other);
    await expectDecryptFailed(openVersion(B, { ...a, wrappedKey: b.wrappedKey }, both));
  });

  it("a header rewritten to the target row does not open (the header is the GCM AAD)", async () => {
    const a = await sealVersion(B, VALUE, kekA);
    const parts = a.valueJwe.split(".");
    parts[0] = b64({ ...header(a.valueJwe), pname: other.name });
    await expectDecryptFailed(openVersion(other, { ...a, valueJwe: parts.join(".") }, both), other);
  });
});

describe("KEKs", () => {
  it("refuses a KEK missing from the keyring", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    await expectDecryptFailed(openVersion(B, s, ring(kekB)));
  });

  it("refuses a row whose kek_id is another KEK than the header's kid", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    await expectDecryptFailed(openVersion(B, { ...s, kekId: kekB.id }, both));
  });

  it("refuses the right kid with the wrong key material", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    await expectDecryptFailed(openVersion(B, s, ring({ ...kekA, key: randomBytes(32) })));
  });

  it("rewraps under another KEK: new kid, same value JWE, opens with the new KEK alone", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    const r = await rewrapVersion(B, s.wrappedKey, s.kekId, ring(kekA), kekB);
    expect(r.kekId).toBe(kekB.id);
    expect(header(r.wrappedKey).kid).toBe(kekB.id);
    const moved: SealedVersion = { valueJwe: s.valueJwe, ...r };
    expect((await openVersion(B, moved, ring(kekB))).equals(VALUE)).toBe(true);
    await expectDecryptFailed(openVersion(B, moved, ring(kekA)));
    await expectDecryptFailed(openVersion(B, { ...moved, kekId: kekA.id }, both));
  });

  it("rewrap of a tampered wrapped key fails the same way", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    await expectDecryptFailed(rewrapVersion(B, flip(s.wrappedKey, 3), s.kekId, both, kekB));
  });
});

describe("protected headers with other members or algorithms", () => {
  const dataKey = () => randomBytes(32);
  const valueHeader = { alg: "dir", enc: "A256GCM", typ: SECRET_VALUE_TYP, pns: B.namespace, pname: B.name, pver: B.version };
  const wrapHeader = { alg: "A256KW", enc: "A256GCM", typ: WRAPPED_KEY_TYP, kid: kekA.id, pns: B.namespace, pname: B.name, pver: B.version };

  /** A sealed version made by hand: `vh` and `wh` are the two protected headers. */
  async function forge(vh: Record<string, unknown>, wh: Record<string, unknown>, wrapKey: Uint8Array = kekA.key): Promise<SealedVersion> {
    const dk = dataKey();
    const valueJwe = await new CompactEncrypt(VALUE).setProtectedHeader(vh as { alg: string; enc: string }).encrypt(vh.enc === "A128GCM" ? dk.subarray(0, 16) : dk);
    const wrappedKey = await new CompactEncrypt(dk).setProtectedHeader(wh as { alg: string; enc: string }).encrypt(wrapKey);
    return { valueJwe, wrappedKey, kekId: kekA.id };
  }

  it("a hand-made version with exactly the expected headers opens (the forge is sound)", async () => {
    expect((await openVersion(B, await forge(valueHeader, wrapHeader), both)).equals(VALUE)).toBe(true);
  });

  const { typ: _t, ...valueNoTyp } = valueHeader;
  const { kid: _k, ...wrapNoKid } = wrapHeader;
  const { pver: _p, ...wrapNoPver } = wrapHeader;
  it.each([
    ["value: an extra member", { ...valueHeader, x: 1 }, wrapHeader],
    ["value: typ missing", valueNoTyp, wrapHeader],
    ["value: another typ", { ...valueHeader, typ: WRAPPED_KEY_TYP }, wrapHeader],
    ["value: pver as a string", { ...valueHeader, pver: "1" }, wrapHeader],
    ["value: enc A128GCM", { ...valueHeader, enc: "A128GCM" }, wrapHeader],
    ["wrapped: an extra member", valueHeader, { ...wrapHeader, zip: "DEF" }],
    ["wrapped: kid missing", valueHeader, wrapNoKid],
    ["wrapped: pver missing", valueHeader, wrapNoPver],
    ["wrapped: alg A256GCMKW", valueHeader, { ...wrapHeader, alg: "A256GCMKW" }],
    ["wrapped: typ of a value", valueHeader, { ...wrapHeader, typ: SECRET_VALUE_TYP }],
  ])("%s", async (_, vh, wh) => {
    await expectDecryptFailed(openVersion(B, await forge(vh, wh), both));
  });

  it("wrapped key as dir (the KEK used directly as content key)", async () => {
    await expectDecryptFailed(openVersion(B, await forge(valueHeader, { ...wrapHeader, alg: "dir" }), both));
  });

  it("a value JWE carrying an encrypted key part, or not five parts", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    const p = s.valueJwe.split(".");
    await expectDecryptFailed(openVersion(B, { ...s, valueJwe: [p[0], "AAAA", p[2], p[3], p[4]].join(".") }, both));
    await expectDecryptFailed(openVersion(B, { ...s, valueJwe: p.slice(0, 4).join(".") }, both));
    await expectDecryptFailed(openVersion(B, { ...s, valueJwe: `${s.valueJwe}.` }, both));
  });

  it("a header with a duplicate member", async () => {
    const s = await sealVersion(B, VALUE, kekA);
    const p = s.valueJwe.split(".");
    const json = JSON.stringify(valueHeader).replace("{", '{"pver":2,');
    p[0] = Buffer.from(json).toString("base64url");
    await expectDecryptFailed(openVersion(B, { ...s, valueJwe: p.join(".") }, both));
  });
});
