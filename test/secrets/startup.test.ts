/**
 * The keyring at init and at start-up: init writes it with the other key files; a gateway
 * does not start without a readable keyring (no plaintext fallback, no key made at
 * start-up); the keyring may come from the environment when config.json says so.
 */
import { chmodSync, cpSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initGateway, loadConfig, startGateway } from "../../src/app.js";
import { silentLogger } from "../../src/core/index.js";
import { keyringPath } from "../../src/secrets/index.js";
import { tempDir } from "../support/gateway.js";
import { rejection } from "../support/refusal.js";
import { ACTOR } from "./support.js";

const tmp = tempDir("portcullis-secrets-start-");
const base = join(tmp.dir, "base");
let n = 0;
beforeAll(() => {
  initGateway({ dataDir: base, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
});
afterAll(() => tmp.cleanup());

/** A copy of the initialised data dir, to damage. */
function copy(): string {
  const d = join(tmp.dir, `c${n++}`);
  cpSync(base, d, { recursive: true });
  return d;
}

const start = (dataDir: string) => startGateway({ dataDir, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0", reconcileIntervalMs: 3_600_000 });

describe("init", () => {
  it("writes keys/keyring.json (0600, directory 0700) with one active KEK", () => {
    const p = keyringPath(base);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(statSync(join(base, "keys")).mode & 0o777).toBe(0o700);
    const doc = JSON.parse(readFileSync(p, "utf8")) as { format: number; active: string; keys: { id: string }[] };
    expect(doc.format).toBe(1);
    expect(doc.keys.map((k) => k.id)).toEqual([doc.active]);
  });

  it("removes the keyring with the rest of the directory when a later step fails", () => {
    const dataDir = join(tmp.dir, "failed-init");
    expect(() => initGateway({ dataDir, policyCsv: "p, not a valid policy" })).toThrow();
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe("start-up", () => {
  it("starts with the keyring file and serves the secret store; a namespace holding a secret is not deleted", async () => {
    const gw = await start(copy());
    try {
      gw.namespaces.create("team-a", {}, { identity: "user:admin" });
      await gw.secrets.create("team-a", "db", Buffer.from("v"), ACTOR);
      expect((await gw.secrets.read("team-a", "db", undefined, ACTOR)).value.toString()).toBe("v");
      const e = (() => {
        try {
          gw.namespaces.delete("team-a", { identity: "user:admin" });
        } catch (err) {
          return err as { code: string; detail: string };
        }
        return undefined;
      })();
      expect(e?.code).toBe("PC_RBAC_NAMESPACE_IN_USE");
      expect(e?.detail).toContain("1 secrets");
    } finally {
      await gw.close();
    }
  });

  it.each([
    ["the keyring file removed", (d: string) => rmSync(keyringPath(d)), "PC_SECRETS_KEYRING_MISSING"],
    ["the keyring file corrupted", (d: string) => writeFileSync(keyringPath(d), "{ not json", { mode: 0o600 }), "PC_SECRETS_KEYRING_INVALID"],
    ["the keyring file readable by others", (d: string) => chmodSync(keyringPath(d), 0o644), "PC_SECRETS_KEYRING_INVALID"],
    [
      "a key of the wrong length",
      (d: string) => {
        const doc = JSON.parse(readFileSync(keyringPath(d), "utf8")) as { keys: { key: string }[] };
        (doc.keys[0] as { key: string }).key = Buffer.alloc(16, 1).toString("base64url");
        writeFileSync(keyringPath(d), JSON.stringify(doc), { mode: 0o600 });
      },
      "PC_SECRETS_KEYRING_INVALID",
    ],
  ])("refuses to start with %s, and makes no key", async (_, damage, code) => {
    const d = copy();
    damage(d);
    const before = existsSync(keyringPath(d)) ? readFileSync(keyringPath(d)) : undefined;
    const e = await rejection(start(d));
    expect(e.code).toBe(code);
    expect(e.message).toContain(keyringPath(d));
    const after = existsSync(keyringPath(d)) ? readFileSync(keyringPath(d)) : undefined;
    expect(after).toEqual(before);
  });

  it("takes the keyring from PORTCULLIS_KEYRING when config.json says secrets.keyring = env, and removes the variable", async () => {
    const d = copy();
    const cfg = loadConfig(d);
    writeFileSync(join(d, "config.json"), JSON.stringify({ ...cfg, secrets: { keyring: "env" } }), { mode: 0o600 });
    const ringText = readFileSync(keyringPath(d), "utf8");
    rmSync(join(d, "keys"), { recursive: true });

    delete process.env.PORTCULLIS_KEYRING;
    expect((await rejection(start(d))).code).toBe("PC_SECRETS_KEYRING_MISSING");

    process.env.PORTCULLIS_KEYRING = ringText;
    const gw = await start(d);
    try {
      expect(process.env.PORTCULLIS_KEYRING).toBeUndefined();
      expect(gw.secrets.kekStatus().keks).toHaveLength(1);
      expect(() => gw.secrets.rotateKek(ACTOR)).toThrow(expect.objectContaining({ code: "PC_SECRETS_KEYRING_READONLY" }));
    } finally {
      await gw.close();
      delete process.env.PORTCULLIS_KEYRING;
    }
  });
});
