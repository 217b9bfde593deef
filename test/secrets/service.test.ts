/**
 * SecretService against real SQLite files, a real keyring file and a real audit log:
 * names, sizes, versions, concurrent updates, pins, usedBy, deletes, audit entries
 * without values, and a database in which no value can be found in the clear.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryAuditSink } from "../../src/core/index.js";
import { MAX_SECRET_BYTES } from "../../src/secrets/index.js";
import { DB_FILE } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { expectRefusal, rejection } from "../support/refusal.js";
import { ACTOR, openFixture, secretsFixture, type SecretsFixture } from "./support.js";

const tmp = tempDir("portcullis-secrets-");
afterAll(() => tmp.cleanup());
let n = 0;
const fixtures: SecretsFixture[] = [];
function fixture(opts: Parameters<typeof secretsFixture>[2] = {}): SecretsFixture {
  const f = secretsFixture(tmp.dir, `d${n++}`, opts);
  fixtures.push(f);
  return f;
}
afterAll(async () => {
  for (const f of fixtures) if (f.store.isOpen) await f.close();
});

const auditRows = (f: SecretsFixture) => f.store.db.prepare(`SELECT type, actor, resource, namespace, body FROM audit_log WHERE type LIKE 'secret.%' OR type LIKE 'keyring.%' ORDER BY seq`).all() as { type: string; actor: string; resource: string | null; namespace: string | null; body: string }[];

describe("create", () => {
  let f: SecretsFixture;
  beforeAll(() => {
    f = fixture();
  });

  it("stores version 1 and returns metadata without the value", async () => {
    const meta = await f.secrets.create("team-a", "db-password", Buffer.from("s3cr3t-value"), ACTOR);
    expect(meta).toEqual({
      namespace: "team-a",
      name: "db-password",
      createdAt: "2026-05-01T10:00:00.000Z",
      createdBy: "user:alice",
      latest: 1,
      versions: [{ version: 1, size: 12, createdAt: "2026-05-01T10:00:00.000Z", createdBy: "user:alice", kekId: f.keyring.active().id }],
      usedBy: [],
    });
    expect(JSON.stringify(meta)).not.toContain("s3cr3t-value");
    const r = await f.secrets.read("team-a", "db-password", undefined, ACTOR);
    expect(r.version).toBe(1);
    expect(r.value.toString()).toBe("s3cr3t-value");
  });

  it("refuses a second secret of the same name, leaving the first as it was", async () => {
    const e = await rejection(f.secrets.create("team-a", "db-password", Buffer.from("other"), ACTOR));
    expect(e.code).toBe("PC_SECRETS_EXISTS");
    expect((await f.secrets.read("team-a", "db-password", undefined, ACTOR)).value.toString()).toBe("s3cr3t-value");
  });

  it.each([
    ["a", true],
    ["db-pass", true],
    ["tls.key", true],
    ["0", true],
    ["a".repeat(63), true],
    ["a".repeat(64), false],
    ["", false],
    ["DB", false],
    ["-a", false],
    ["a-", false],
    ["a.", false],
    ["a_b", false],
    ["a/b", false],
    ["../x", false],
    ["a b", false],
  ])("name %j: allowed %s", async (name, ok) => {
    const p = f.secrets.create("team-a", name, Buffer.from("v"), ACTOR);
    if (ok) expect((await p).name).toBe(name);
    else expect((await rejection(p)).code).toBe("PC_SECRETS_NAME_INVALID");
  });

  it.each([
    ["exactly 64 KiB", MAX_SECRET_BYTES, undefined],
    ["one byte", 1, undefined],
    ["64 KiB + 1", MAX_SECRET_BYTES + 1, "PC_SECRETS_TOO_LARGE"],
    ["empty", 0, "PC_SECRETS_VALUE_INVALID"],
  ])("a value of %s", async (label, size, code) => {
    const name = `size-${size}`;
    const value = randomBytes(size);
    const p = f.secrets.create("team-a", name, value, ACTOR);
    if (code === undefined) {
      expect((await p).versions[0]?.size).toBe(size);
      expect((await f.secrets.read("team-a", name, 1, ACTOR)).value.equals(value)).toBe(true);
    } else {
      expect((await rejection(p)).code, label).toBe(code);
      expect(f.store.secrets.get("team-a", name)).toBeUndefined();
    }
  });

  it("refuses a namespace that does not exist", async () => {
    expect((await rejection(f.secrets.create("nowhere", "x", Buffer.from("v"), ACTOR))).code).toBe("PC_RBAC_NAMESPACE_NOT_FOUND");
  });
});

describe("versions", () => {
  let f: SecretsFixture;
  beforeAll(async () => {
    f = fixture();
    await f.secrets.create("team-a", "api-token", Buffer.from("v1"), ACTOR);
  });

  it("update adds max+1; each version keeps its own value", async () => {
    f.clock.advance(60_000);
    expect((await f.secrets.update("team-a", "api-token", Buffer.from("v2"), { id: "user:bob" })).latest).toBe(2);
    expect((await f.secrets.update("team-a", "api-token", Buffer.from("v3"), ACTOR)).latest).toBe(3);
    for (const v of [1, 2, 3]) expect((await f.secrets.read("team-a", "api-token", v, ACTOR)).value.toString()).toBe(`v${v}`);
    expect((await f.secrets.read("team-a", "api-token", undefined, ACTOR)).version).toBe(3);
    const meta = f.secrets.get("team-a", "api-token");
    expect(meta.versions.map((v) => [v.version, v.createdBy, v.createdAt])).toEqual([
      [1, "user:alice", "2026-05-01T10:00:00.000Z"],
      [2, "user:bob", "2026-05-01T10:01:00.000Z"],
      [3, "user:alice", "2026-05-01T10:01:00.000Z"],
    ]);
  });

  it.each([
    ["a missing secret", "nope", 1, "PC_SECRETS_NOT_FOUND"],
    ["version 0", "api-token", 0, "PC_SECRETS_VERSION_NOT_FOUND"],
    ["version 4", "api-token", 4, "PC_SECRETS_VERSION_NOT_FOUND"],
    ["version 1.5", "api-token", 1.5, "PC_SECRETS_VERSION_NOT_FOUND"],
  ])("read of %s", async (_, name, version, code) => {
    expect((await rejection(f.secrets.read("team-a", name, version, ACTOR))).code).toBe(code);
  });

  it("update of a missing secret, and of one with an invalid value", async () => {
    expect((await rejection(f.secrets.update("team-a", "nope", Buffer.from("x"), ACTOR))).code).toBe("PC_SECRETS_NOT_FOUND");
    expect((await rejection(f.secrets.update("team-a", "api-token", Buffer.alloc(MAX_SECRET_BYTES + 1), ACTOR))).code).toBe("PC_SECRETS_TOO_LARGE");
    expect(f.secrets.get("team-a", "api-token").latest).toBe(3);
  });

  it("pin fixes the latest version or checks the one given; open decrypts pins into files", async () => {
    const pins = f.secrets.pin("team-a", [
      { name: "api-token", path: "/run/secrets/token" },
      { name: "api-token", path: "/run/secrets/old/token", version: 1 },
    ]);
    expect(pins).toEqual([
      { name: "api-token", path: "/run/secrets/token", version: 3 },
      { name: "api-token", path: "/run/secrets/old/token", version: 1 },
    ]);
    const files = await f.secrets.open("team-a", pins);
    expect(files.map((x) => [x.relativePath, x.value.toString()])).toEqual([
      ["token", "v3"],
      ["old/token", "v1"],
    ]);
    expectRefusal(() => f.secrets.pin("team-a", [{ name: "missing", path: "/run/secrets/m" }]), "PC_SECRETS_NOT_FOUND", "team-a/missing");
    expectRefusal(() => f.secrets.pin("team-a", [{ name: "api-token", path: "/run/secrets/t", version: 9 }]), "PC_SECRETS_VERSION_NOT_FOUND", "team-a/api-token version 9");
    expect((await rejection(f.secrets.open("team-a", [{ name: "api-token", path: "/run/secrets/t", version: 9 }]))).code).toBe("PC_SECRETS_VERSION_NOT_FOUND");
    expect((await rejection(f.secrets.open("team-a", [{ name: "api-token", path: "/etc/passwd", version: 1 }]))).code).toBe("PC_SECRETS_INJECTION_FAILED");
  });

  it("open fails with PC_SECRETS_DECRYPT_FAILED when a stored part was swapped with another version's", async () => {
    const v1 = f.store.secrets.getVersion("team-a", "api-token", 1);
    const v2 = f.store.secrets.getVersion("team-a", "api-token", 2);
    // The trigger lets only wrapped_key and kek_id change: move version 2's wrapped key into version 1.
    f.store.db.prepare(`UPDATE secret_versions SET wrapped_key = ? WHERE namespace = 'team-a' AND name = 'api-token' AND version = 1`).run(v2?.wrappedKey);
    const e = await rejection(f.secrets.open("team-a", [{ name: "api-token", path: "/run/secrets/t", version: 1 }]));
    expect(e.code).toBe("PC_SECRETS_DECRYPT_FAILED");
    expect(e.detail).toBe("team-a/api-token version 1");
    f.store.db.prepare(`UPDATE secret_versions SET wrapped_key = ? WHERE namespace = 'team-a' AND name = 'api-token' AND version = 1`).run(v1?.wrappedKey);
    expect((await f.secrets.read("team-a", "api-token", 1, ACTOR)).value.toString()).toBe("v1");
  });

  it("a value is never edited in place: the table refuses it", () => {
    expect(() => f.store.db.prepare(`UPDATE secret_versions SET value_jwe = 'x' WHERE name = 'api-token' AND version = 1`).run()).toThrow(/only be rewrapped/);
  });
});

describe("concurrent updates", () => {
  it("two connections updating one secret at the same time: every update gets its own version, none lost", async () => {
    const a = fixture({ audit: () => new MemoryAuditSink() });
    await a.secrets.create("team-a", "shared", Buffer.from("v-0"), ACTOR);
    const b = openFixture(a.dir, a.clock, { audit: () => new MemoryAuditSink() });
    fixtures.push(b);
    expect(b.store.db).not.toBe(a.store.db);
    const PER = 15;
    const values: string[] = [];
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < PER; i++) {
      for (const [who, f] of [["a", a], ["b", b]] as const) {
        const v = `${who}-${i}`;
        values.push(v);
        ps.push(f.secrets.update("team-a", "shared", Buffer.from(v), { id: `user:${who}` }));
      }
    }
    await Promise.all(ps);
    const meta = b.secrets.get("team-a", "shared");
    expect(meta.latest).toBe(2 * PER + 1);
    expect(meta.versions.map((v) => v.version)).toEqual(Array.from({ length: 2 * PER + 1 }, (_, i) => i + 1));
    const got: string[] = [];
    for (let v = 2; v <= meta.latest; v++) got.push((await a.secrets.read("team-a", "shared", v, ACTOR)).value.toString());
    expect(got.sort()).toEqual([...values].sort());
  });
});

describe("usedBy, list, delete, count", () => {
  it("names the deployments whose revision in force pins the secret", async () => {
    const f = fixture({ namespaces: ["team-a", "team-b"] });
    await f.secrets.create("team-a", "db", Buffer.from("x"), ACTOR);
    await f.secrets.update("team-a", "db", Buffer.from("y"), ACTOR);
    await f.secrets.create("team-a", "other", Buffer.from("z"), ACTOR);
    const dep = f.store.db.prepare(`INSERT INTO deployments (namespace, name, revision, replicas, state, created_at, updated_at) VALUES (?, ?, ?, 1, ?, 0, 0)`);
    dep.run("team-a", "web", 2, "active");
    dep.run("team-a", "worker", 1, "active");
    dep.run("team-a", "gone", 1, "deleting");
    dep.run("team-b", "web", 1, "active");
    f.store.secrets.insertRevisionSecrets([
      { namespace: "team-a", deployment: "web", revision: 1, secret: "db", version: 1, path: "/run/secrets/db" }, // superseded revision
      { namespace: "team-a", deployment: "web", revision: 2, secret: "db", version: 2, path: "/run/secrets/db" },
      { namespace: "team-a", deployment: "web", revision: 2, secret: "db", version: 1, path: "/run/secrets/db-old" },
      { namespace: "team-a", deployment: "worker", revision: 1, secret: "other", version: 1, path: "/run/secrets/o" },
      { namespace: "team-a", deployment: "gone", revision: 1, secret: "db", version: 2, path: "/run/secrets/db" }, // being deleted
      { namespace: "team-b", deployment: "web", revision: 1, secret: "db", version: 1, path: "/run/secrets/db" }, // another namespace
    ]);
    expect(f.secrets.get("team-a", "db").usedBy).toEqual([
      { deployment: "web", revision: 2, version: 2, path: "/run/secrets/db" },
      { deployment: "web", revision: 2, version: 1, path: "/run/secrets/db-old" },
    ]);
    expect(f.secrets.get("team-a", "other").usedBy).toEqual([{ deployment: "worker", revision: 1, version: 1, path: "/run/secrets/o" }]);
    const list = f.secrets.list("team-a");
    expect(list.map((m) => [m.name, m.latest, m.versions.length, m.usedBy.length])).toEqual([
      ["db", 2, 2, 2],
      ["other", 1, 1, 1],
    ]);
    expect(f.secrets.list("team-b")).toEqual([]);
    expect(f.secrets.countInNamespace("team-a")).toBe(2);

    f.secrets.delete("team-a", "db", ACTOR);
    expect(f.secrets.countInNamespace("team-a")).toBe(1);
    expect(f.store.db.prepare(`SELECT count(*) AS n FROM secret_versions WHERE name = 'db'`).get()).toEqual({ n: 0 });
    expectRefusal(() => f.secrets.get("team-a", "db"), "PC_SECRETS_NOT_FOUND");
    expectRefusal(() => f.secrets.delete("team-a", "db", ACTOR), "PC_SECRETS_NOT_FOUND");
  });
});

describe("audit entries", () => {
  it("record create, update, read and delete with actor, namespace and version, never a value", async () => {
    const f = fixture();
    const value = `distinctive-${randomBytes(8).toString("hex")}`;
    await f.secrets.create("team-a", "cred", Buffer.from(value), ACTOR);
    await f.secrets.update("team-a", "cred", Buffer.from(value), ACTOR);
    await f.secrets.read("team-a", "cred", 1, ACTOR);
    f.secrets.delete("team-a", "cred", ACTOR);
    const rows = auditRows(f);
    expect(rows.map((r) => [r.type, r.actor, r.resource, r.namespace])).toEqual([
      ["secret.created", "user:alice", "secrets", "team-a"],
      ["secret.updated", "user:alice", "secrets", "team-a"],
      ["secret.read", "user:alice", "secrets", "team-a"],
      ["secret.deleted", "user:alice", "secrets", "team-a"],
    ]);
    const bodies = rows.map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(bodies.map((b) => [b.target, (b.reasons as string[] | undefined)?.join(",") ?? null, b.requestId, b.actorSerial])).toEqual([
      ["cred", "version:1", "req-1", "0a1b2c"],
      ["cred", "version:2", "req-1", "0a1b2c"],
      ["cred", "version:1", "req-1", "0a1b2c"],
      ["cred", null, "req-1", "0a1b2c"],
    ]);
    const all = JSON.stringify(rows);
    expect(all).not.toContain(value);
    expect(all).not.toContain(Buffer.from(value).toString("base64"));
    expect(all).not.toContain(Buffer.from(value).toString("hex"));
  });
});

describe("the database file", () => {
  it("holds no value in the clear (db and WAL, as text, base64, base64url and hex)", async () => {
    const f = fixture();
    const values = [`PLAINTEXT-MARKER-${randomBytes(12).toString("hex")}`, `second-marker-${randomBytes(12).toString("hex")}`.repeat(40)];
    await f.secrets.create("team-a", "marker", Buffer.from(values[0] as string), ACTOR);
    await f.secrets.update("team-a", "marker", Buffer.from(values[1] as string), ACTOR);
    await f.secrets.read("team-a", "marker", 2, ACTOR);
    const files = [join(f.dir, DB_FILE), join(f.dir, `${DB_FILE}-wal`)].filter((p) => existsSync(p));
    expect(files.length).toBe(2);
    const bytes = Buffer.concat(files.map((p) => readFileSync(p)));
    expect(bytes.length).toBeGreaterThan(10_000);
    // The search works: the secret's name is in the file in the clear.
    expect(bytes.includes(Buffer.from("marker"))).toBe(true);
    for (const v of values) {
      const raw = Buffer.from(v);
      const probe = raw.subarray(0, 24);
      for (const form of [probe.toString(), probe.toString("hex"), raw.toString("base64").slice(0, 24), raw.toString("base64url").slice(0, 24)]) {
        expect(bytes.includes(Buffer.from(form)), form).toBe(false);
      }
    }
    // And the values still open.
    expect((await f.secrets.read("team-a", "marker", 1, ACTOR)).value.toString()).toBe(values[0]);
  });
});
