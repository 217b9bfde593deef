/**
 * The keyring and its sources: a 0600 regular file in a 0700 directory (never a symbolic
 * link), or an environment variable read once and removed. Each fault has its code, and
 * no message carries key material.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/index.js";
import { createKeyringFile, EnvKekSource, FileKekSource, Keyring, parseKeyring, serializeKeyring } from "../../src/secrets/index.js";
import { tempDir } from "../support/gateway.js";
import { expectRefusal } from "../support/refusal.js";

const tmp = tempDir("portcullis-keyring-");
afterAll(() => tmp.cleanup());
const clock = new ManualClock(Date.parse("2026-03-04T05:06:07Z"));
let n = 0;

/** A fresh keys directory (0700) with `keyring.json` written as given. */
function keyringFile(content?: string, mode = 0o600): string {
  const dir = join(tmp.dir, `k${n++}`);
  mkdirSync(dir, { mode: 0o700 });
  const path = join(dir, "keyring.json");
  if (content !== undefined) {
    writeFileSync(path, content, { mode });
    chmodSync(path, mode);
  }
  return path;
}

const KEY = randomBytes(32).toString("base64url");
const doc = (o: Record<string, unknown> = {}) => JSON.stringify({ format: 1, active: "kek-1", keys: [{ id: "kek-1", key: KEY, createdAt: "2026-01-01T00:00:00Z" }], ...o });

describe("createKeyringFile", () => {
  it("writes one KEK, kek-<yyyymmdd>-<8 hex>, active, in a 0600 file of a 0700 directory", () => {
    const dir = join(tmp.dir, "fresh", "keys");
    const path = join(dir, "keyring.json");
    const kek = createKeyringFile(path, clock);
    expect(kek.id).toMatch(/^kek-20260304-[0-9a-f]{8}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const ring = Keyring.open(new FileKekSource(path));
    expect(ring.active().id).toBe(kek.id);
    expect(Buffer.from(ring.active().key).equals(Buffer.from(kek.key))).toBe(true);
    expect(ring.ids()).toEqual([kek.id]);
    expectRefusal(() => createKeyringFile(path, clock), "PC_SECRETS_KEYRING_INVALID", /already exists/);
  });
});

describe("FileKekSource refuses", () => {
  it("a missing file: PC_SECRETS_KEYRING_MISSING naming the file", () => {
    const path = keyringFile();
    expectRefusal(() => new FileKekSource(path).load(), "PC_SECRETS_KEYRING_MISSING", `file ${path}`);
  });

  const tooShort = randomBytes(16).toString("base64url");
  it.each([
    ["bad JSON", "{format: 1", /not valid JSON/],
    ["a duplicate member", doc().replace("{", '{"active":"x",'), /not valid JSON/],
    ["an array", "[]", /not a JSON object/],
    ["an unknown member", doc({ extra: true }), /unknown member/],
    ["another format", doc({ format: 2 }), /format must be 1/],
    ["no keys", doc({ keys: [] }), /non-empty list/],
    ["a 16-byte key", doc({ keys: [{ id: "kek-1", key: tooShort, createdAt: "2026-01-01T00:00:00Z" }] }), /keys\[0\]\.key is not 32 bytes/],
    ["a key in base64 with padding", doc({ keys: [{ id: "kek-1", key: `${KEY}=`, createdAt: "2026-01-01T00:00:00Z" }] }), /not base64url/],
    ["an active KEK that is not listed", doc({ active: "kek-2" }), /active names no key/],
    ["an id listed twice", doc({ keys: [{ id: "kek-1", key: KEY, createdAt: "2026-01-01T00:00:00Z" }, { id: "kek-1", key: KEY, createdAt: "2026-01-01T00:00:00Z" }] }), /listed twice/],
    ["a key without createdAt", doc({ keys: [{ id: "kek-1", key: KEY }] }), /createdAt/],
  ])("%s: PC_SECRETS_KEYRING_INVALID", (_, content, detail) => {
    const path = keyringFile(content);
    const e = expectRefusal(() => new FileKekSource(path).load(), "PC_SECRETS_KEYRING_INVALID", detail);
    expect(e.detail).toContain(path);
    expect(e.message).not.toContain(KEY);
    expect(e.message).not.toContain(tooShort);
  });

  it.each([0o644, 0o640, 0o604, 0o400, 0o700])("mode %o: PC_SECRETS_KEYRING_INVALID", (mode) => {
    const path = keyringFile(doc(), mode);
    expectRefusal(() => new FileKekSource(path).load(), "PC_SECRETS_KEYRING_INVALID", /must be 0600/);
  });

  it("a directory open to others", () => {
    const path = keyringFile(doc());
    chmodSync(join(path, ".."), 0o755);
    expectRefusal(() => new FileKekSource(path).load(), "PC_SECRETS_KEYRING_INVALID", /directory mode is 0755/);
  });

  it("a symbolic link to a good keyring file", () => {
    const target = keyringFile(doc());
    const link = join(keyringFile(), "..", "keyring-link.json");
    symlinkSync(target, link);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(Keyring.open(new FileKekSource(target)).active().id).toBe("kek-1"); // the target itself is fine
    expectRefusal(() => new FileKekSource(link).load(), "PC_SECRETS_KEYRING_INVALID", /symbolic link/);
  });

  it("a directory in place of the file", () => {
    const path = keyringFile();
    mkdirSync(path, { mode: 0o700 });
    expectRefusal(() => new FileKekSource(path).load(), "PC_SECRETS_KEYRING_INVALID", /not a regular file/);
  });
});

describe("Keyring", () => {
  it("adds a KEK (active, persisted before use) and retires an old one", () => {
    const path = keyringFile();
    const first = createKeyringFile(path, clock);
    const ring = Keyring.open(new FileKekSource(path));
    clock.advance(86_400_000);
    const seen: string[] = [];
    const second = ring.add(clock, (k) => seen.push(readFileSync(path, "utf8").includes(k.id) ? "persisted" : "not yet"));
    expect(seen).toEqual(["not yet"]);
    expect(second.id).toMatch(/^kek-20260305-[0-9a-f]{8}$/);
    expect(ring.active().id).toBe(second.id);
    const reread = Keyring.open(new FileKekSource(path));
    expect(reread.active().id).toBe(second.id);
    expect(reread.ids()).toEqual([first.id, second.id]);
    expect(statSync(path).mode & 0o777).toBe(0o600);

    expectRefusal(() => ring.retire(second.id), "PC_SECRETS_KEK_IN_USE");
    expectRefusal(() => ring.retire("kek-nope"), "PC_SECRETS_KEK_NOT_FOUND");
    ring.retire(first.id);
    expect(ring.get(first.id)).toBeUndefined();
    expect(Keyring.open(new FileKekSource(path)).ids()).toEqual([second.id]);
  });

  it("changes nothing when the hook before saving throws", () => {
    const path = keyringFile();
    const first = createKeyringFile(path, clock);
    const ring = Keyring.open(new FileKekSource(path));
    const before = readFileSync(path, "utf8");
    expect(() =>
      ring.add(clock, () => {
        throw new Error("audit down");
      }),
    ).toThrow("audit down");
    expect(ring.active().id).toBe(first.id);
    expect(readFileSync(path, "utf8")).toBe(before);
  });

  it("serializes to what it parses", () => {
    const d = parseKeyring(doc(), "test");
    expect(parseKeyring(serializeKeyring(d), "test")).toEqual(d);
  });
});

describe("EnvKekSource", () => {
  it("reads the variable once and removes it from the environment", () => {
    const env: NodeJS.ProcessEnv = { PORTCULLIS_KEYRING: doc(), OTHER: "x" };
    const src = new EnvKekSource("PORTCULLIS_KEYRING", env);
    expect(env).toEqual({ OTHER: "x" });
    expect("PORTCULLIS_KEYRING" in env).toBe(false);
    const ring = Keyring.open(src);
    expect(ring.active().id).toBe("kek-1");
    expect(Buffer.from(ring.active().key).toString("base64url")).toBe(KEY);
    expect(src.description).toBe("environment variable PORTCULLIS_KEYRING");
  });

  it("removes it from process.env by default", () => {
    process.env.PORTCULLIS_KEYRING = doc();
    Keyring.open(new EnvKekSource());
    expect(process.env.PORTCULLIS_KEYRING).toBeUndefined();
  });

  it("is read-only: add, retire and save refuse with PC_SECRETS_KEYRING_READONLY", () => {
    const src = new EnvKekSource("K", { K: doc() });
    const ring = Keyring.open(src);
    expect(src.writable).toBe(false);
    expectRefusal(() => ring.add(clock), "PC_SECRETS_KEYRING_READONLY");
    expectRefusal(() => src.save({ active: "kek-1", keys: [] }), "PC_SECRETS_KEYRING_READONLY");
    expect(ring.active().id).toBe("kek-1");
  });

  it("an unset variable is missing; a bad document is invalid", () => {
    expectRefusal(() => new EnvKekSource("K", {}).load(), "PC_SECRETS_KEYRING_MISSING", "environment variable K");
    expectRefusal(() => new EnvKekSource("K", { K: "{" }).load(), "PC_SECRETS_KEYRING_INVALID", /^environment variable K: not valid JSON$/);
  });
});
