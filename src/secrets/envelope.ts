/**
 * Envelope encryption of one secret version.
 *
 * The value is sealed under a fresh 32-byte data key as a compact JWE (`dir`, A256GCM);
 * the data key is wrapped under a key-encryption key (KEK) as a second compact JWE
 * (A256KW, A256GCM). Both protected headers (the GCM additional data) name the version
 * they belong to — `pns`, `pname`, `pver` — and the wrapped key's names its KEK (`kid`),
 * so neither part opens in another row, another version or under another KEK.
 *
 * Opening checks, in this order: the compact form, each protected header (exactly the
 * expected members and values), the KEK (the row's, present in the keyring), then jose
 * decrypts with only these algorithms allowed. Every failure is one error,
 * PC_SECRETS_DECRYPT_FAILED, whose detail names the version and nothing else; the cause
 * is kept as `internal` for the log. Data keys are zeroed after use.
 */
import { randomBytes, webcrypto } from "node:crypto";
import { CompactEncrypt, compactDecrypt, type CryptoKey } from "jose";
import { PortcullisError, parseStrictJson } from "../core/index.js";
import { SECRET_VALUE_TYP, WRAPPED_KEY_TYP, type Kek } from "./types.js";

/** Which version a sealed value belongs to: bound into both protected headers. */
export interface VersionBinding {
  readonly namespace: string;
  readonly name: string;
  readonly version: number;
}

/** The two stored parts of a version. */
export interface SealedVersion {
  readonly valueJwe: string;
  readonly wrappedKey: string;
  readonly kekId: string;
}

/** Finds a KEK by id; the keyring implements it. */
export interface KekLookup {
  get(id: string): Kek | undefined;
}

const DATA_KEY_BYTES = 32;
const VALUE_HEADER_KEYS = ["alg", "enc", "pname", "pns", "pver", "typ"];
const WRAPPED_HEADER_KEYS = ["alg", "enc", "kid", "pname", "pns", "pver", "typ"];
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/**
 * Each KEK imported once as a non-extractable AES-KW key (per Kek object: a retired or
 * replaced KEK's entry goes with it).
 */
const kekKeys = new WeakMap<Kek, Promise<CryptoKey>>();

function kekKey(kek: Kek): Promise<CryptoKey> {
  let k = kekKeys.get(kek);
  if (k === undefined) {
    k = webcrypto.subtle.importKey("raw", kek.key, "AES-KW", false, ["wrapKey", "unwrapKey"]) as unknown as Promise<CryptoKey>;
    kekKeys.set(kek, k);
  }
  return k;
}

/** The one error of a version that does not open; the detail names only the version. */
export function decryptFailed(b: VersionBinding, cause: string | unknown): PortcullisError {
  return new PortcullisError("PC_SECRETS_DECRYPT_FAILED", {
    detail: `${b.namespace}/${b.name} version ${b.version}`,
    internal: typeof cause === "string" ? cause : { cause: causeText(cause) },
  });
}

/** The class and code of a failure, never its message (jose messages may quote input). */
function causeText(e: unknown): string {
  if (e instanceof PortcullisError) return e.code;
  if (e instanceof Error) return `${e.name}${(e as { code?: unknown }).code ? ` ${String((e as { code?: unknown }).code)}` : ""}`;
  return typeof e;
}

function valueHeader(b: VersionBinding): Record<string, unknown> {
  return { alg: "dir", enc: "A256GCM", typ: SECRET_VALUE_TYP, pns: b.namespace, pname: b.name, pver: b.version };
}

function wrappedHeader(b: VersionBinding, kekId: string): Record<string, unknown> {
  return { alg: "A256KW", enc: "A256GCM", typ: WRAPPED_KEY_TYP, kid: kekId, pns: b.namespace, pname: b.name, pver: b.version };
}

/**
 * Checks the compact form and that the protected header is exactly `expected` (the same
 * members, each with the same value); the encrypted-key part must be empty for `dir`.
 */
function checkCompact(jwe: string, expected: Record<string, unknown>, keys: readonly string[], what: string): void {
  if (typeof jwe !== "string") throw new Error(`${what}: not a string`);
  const parts = jwe.split(".");
  if (parts.length !== 5 || !parts.every((p) => B64URL_RE.test(p))) throw new Error(`${what}: not a compact JWE`);
  const [h, ek, iv, ct, tag] = parts as [string, string, string, string, string];
  if (h === "" || iv === "" || ct === "" || tag === "") throw new Error(`${what}: empty part`);
  if ((expected.alg === "dir") !== (ek === "")) throw new Error(`${what}: encrypted key part does not fit alg`);
  let header: unknown;
  try {
    header = parseStrictJson(Buffer.from(h, "base64url").toString("utf8"));
  } catch {
    throw new Error(`${what}: protected header is not JSON`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new Error(`${what}: protected header is not an object`);
  const got = Object.keys(header).sort();
  if (got.length !== keys.length || got.some((k, i) => k !== keys[i])) throw new Error(`${what}: protected header members differ`);
  for (const k of keys) {
    if ((header as Record<string, unknown>)[k] !== expected[k]) throw new Error(`${what}: protected header member ${k} differs`);
  }
}

async function encrypt(plaintext: Uint8Array, header: Record<string, unknown>, key: Uint8Array | CryptoKey): Promise<string> {
  return new CompactEncrypt(plaintext).setProtectedHeader(header as { alg: string; enc: string }).encrypt(key);
}

/** Wraps a data key under a KEK, bound to the version and the KEK id. */
async function wrapDataKey(b: VersionBinding, dataKey: Uint8Array, kek: Kek): Promise<string> {
  return encrypt(dataKey, wrappedHeader(b, kek.id), await kekKey(kek));
}

/** Opens a wrapped data key; the caller zeroes the result. Throws PC_SECRETS_DECRYPT_FAILED. */
async function unwrapDataKey(b: VersionBinding, wrappedKey: string, kekId: string, keks: KekLookup): Promise<Uint8Array> {
  try {
    checkCompact(wrappedKey, wrappedHeader(b, kekId), WRAPPED_HEADER_KEYS, "wrapped key");
  } catch (e) {
    throw decryptFailed(b, (e as Error).message);
  }
  const kek = keks.get(kekId);
  if (kek === undefined) throw decryptFailed(b, `KEK ${kekId} is not in the keyring`);
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await compactDecrypt(wrappedKey, await kekKey(kek), {
      keyManagementAlgorithms: ["A256KW"],
      contentEncryptionAlgorithms: ["A256GCM"],
    }));
  } catch (e) {
    throw decryptFailed(b, e);
  }
  if (plaintext.length !== DATA_KEY_BYTES) {
    plaintext.fill(0);
    throw decryptFailed(b, "wrapped key does not hold a 32-byte data key");
  }
  return plaintext;
}

/** Seals a value for one version under a fresh data key, wrapped by `kek`. */
export async function sealVersion(b: VersionBinding, value: Uint8Array, kek: Kek): Promise<SealedVersion> {
  const dataKey = randomBytes(DATA_KEY_BYTES);
  try {
    const valueJwe = await encrypt(value, valueHeader(b), dataKey);
    const wrappedKey = await wrapDataKey(b, dataKey, kek);
    return { valueJwe, wrappedKey, kekId: kek.id };
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Opens one version: unwraps its data key with the row's KEK, then the value. The
 * result belongs to the caller (who zeroes it when done). Throws PC_SECRETS_DECRYPT_FAILED.
 */
export async function openVersion(b: VersionBinding, sealed: SealedVersion, keks: KekLookup): Promise<Buffer> {
  try {
    checkCompact(sealed.valueJwe, valueHeader(b), VALUE_HEADER_KEYS, "value");
  } catch (e) {
    throw decryptFailed(b, (e as Error).message);
  }
  const dataKey = await unwrapDataKey(b, sealed.wrappedKey, sealed.kekId, keks);
  try {
    const { plaintext } = await compactDecrypt(sealed.valueJwe, dataKey, {
      keyManagementAlgorithms: ["dir"],
      contentEncryptionAlgorithms: ["A256GCM"],
    });
    return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  } catch (e) {
    throw decryptFailed(b, e);
  } finally {
    dataKey.fill(0);
  }
}

/**
 * Rewraps a version's data key under `to`: opens it with the row's KEK and wraps it
 * again (new kid). The value JWE does not change. Throws PC_SECRETS_DECRYPT_FAILED.
 */
export async function rewrapVersion(b: VersionBinding, wrappedKey: string, kekId: string, keks: KekLookup, to: Kek): Promise<{ wrappedKey: string; kekId: string }> {
  const dataKey = await unwrapDataKey(b, wrappedKey, kekId, keks);
  try {
    return { wrappedKey: await wrapDataKey(b, dataKey, to), kekId: to.id };
  } finally {
    dataKey.fill(0);
  }
}
