/**
 * KEK rotation in one process: the new KEK is persisted before use and audited, data keys
 * are rewrapped in batches while reads go on, a version that does not open is left alone
 * (and the rotation is not reported complete), and the checks of retiring a KEK.
 */
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryAuditSink, silentLogger } from "../../src/core/index.js";
import { EnvKekSource, Keyring, SecretService, serializeKeyring } from "../../src/secrets/index.js";
import { tempDir } from "../support/gateway.js";
import { expectRefusal } from "../support/refusal.js";
import { ACTOR, secretsFixture, type SecretsFixture } from "./support.js";

const tmp = tempDir("portcullis-rotation-");
const fixtures: SecretsFixture[] = [];
let n = 0;
function fixture(opts: Parameters<typeof secretsFixture>[2] = {}): SecretsFixture {
  const f = secretsFixture(tmp.dir, `r${n++}`, opts);
  fixtures.push(f);
  return f;
}
afterAll(async () => {
  for (const f of fixtures) if (f.store.isOpen) await f.close();
  tmp.cleanup();
});

async function populate(f: SecretsFixture, count: number): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const v = `v-${i}-${randomBytes(4).toString("hex")}`;
      values.set(`s${i}`, v);
      await f.secrets.create("team-a", `s${i}`, Buffer.from(v), ACTOR);
    }),
  );
  return values;
}

const keyringAudit = (f: SecretsFixture) =>
  (f.store.db.prepare(`SELECT type, actor, resource, body FROM audit_log WHERE type LIKE 'keyring.%' ORDER BY seq`).all() as { type: string; actor: string; resource: string; body: string }[]).map((r) => ({
    type: r.type,
    actor: r.actor,
    resource: r.resource,
    ...(JSON.parse(r.body) as { target?: string; reasons?: string[] }),
  }));

describe("rotateKek", () => {
  it("adds an active KEK, rewraps every data key in batches while reads go on, and audits each step", async () => {
    const f = fixture({ rewrap: { batchSize: 7 } });
    const values = await populate(f, 60);
    const old = f.keyring.active().id;
    f.clock.advance(86_400_000);
    const status = f.secrets.rotateKek(ACTOR);
    const fresh = status.active;
    expect(fresh).not.toBe(old);
    expect(status.rewrapping).toBe(true);
    expect(status.keks.map((k) => [k.id, k.active, k.dataKeys])).toEqual([
      [old, false, 60],
      [fresh, true, 0],
    ]);
    // Reads during the rewrap: every value opens at each point.
    const seen = new Set<number>();
    while (f.secrets.kekStatus().rewrapping) {
      seen.add(f.secrets.kekStatus().keks[1]?.dataKeys ?? -1);
      for (const [name, v] of values) expect((await f.secrets.read("team-a", name, 1, ACTOR)).value.toString()).toBe(v);
    }
    expect([...seen].some((c) => c > 0 && c < 60), `partial states seen: ${[...seen].join(",")}`).toBe(true);
    await f.secrets.rewrap();
    expect(f.secrets.kekStatus().keks.map((k) => k.dataKeys)).toEqual([0, 60]);
    // New versions are wrapped under the new KEK.
    expect((await f.secrets.update("team-a", "s1", Buffer.from("new"), ACTOR)).versions[1]?.kekId).toBe(fresh);

    f.secrets.retireKek(old, ACTOR);
    expect(f.secrets.kekStatus().keks.map((k) => k.id)).toEqual([fresh]);
    expect(keyringAudit(f)).toEqual([
      { type: "keyring.kek_added", actor: "user:alice", resource: "keyring", target: fresh, reasons: [`previous:${old}`], actorSerial: "0a1b2c", requestId: "req-1", source: "127.0.0.1" },
      { type: "keyring.rewrap_completed", actor: "service:gateway", resource: "keyring", target: fresh, reasons: ["rewrapped:60"] },
      { type: "keyring.kek_retired", actor: "user:alice", resource: "keyring", target: old, actorSerial: "0a1b2c", requestId: "req-1", source: "127.0.0.1" },
    ]);
    for (const [name, v] of values) expect((await f.secrets.read("team-a", name, 1, ACTOR)).value.toString()).toBe(v);
  });

  it("a version that does not open is left as it is and the rotation is not reported complete", async () => {
    const f = fixture();
    await populate(f, 5);
    const bad = f.store.secrets.getVersion("team-a", "s2", 1);
    const other = f.store.secrets.getVersion("team-a", "s3", 1);
    f.store.db.prepare(`UPDATE secret_versions SET wrapped_key = ? WHERE name = 's2'`).run(other?.wrappedKey);
    f.secrets.rotateKek(ACTOR);
    const r = await f.secrets.rewrap();
    expect(r).toEqual({ rewrapped: 4, failed: 1, remaining: 1, stopped: false });
    expect(f.store.secrets.getVersion("team-a", "s2", 1)?.kekId).toBe(bad?.kekId);
    expect(f.secrets.kekStatus().rewrapping).toBe(true);
    expect(keyringAudit(f).map((e) => e.type)).toEqual(["keyring.kek_added"]);
    expectRefusal(() => f.secrets.retireKek(bad?.kekId as string, ACTOR), "PC_SECRETS_KEK_IN_USE", /still wraps 1 data keys/);
  });

  it("stop() ends a pass after its batch; the next pass resumes where the rows are", async () => {
    const f = fixture({ rewrap: { batchSize: 5, pauseMs: 20 } });
    await populate(f, 40);
    f.secrets.rotateKek(ACTOR);
    await new Promise((r) => setTimeout(r, 30));
    await f.secrets.stop();
    const partial = f.secrets.kekStatus().keks.find((k) => k.active)?.dataKeys ?? 0;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(40);
    const r = await f.secrets.rewrap();
    expect(r.rewrapped).toBe(40 - partial);
    expect(r.remaining).toBe(0);
  });

  it("a rotation made while a pass is ending is not missed: another pass follows", async () => {
    const f = fixture();
    await populate(f, 5);
    f.secrets.startRewrap(); // nothing to do: this pass is over before it is awaited
    const status = f.secrets.rotateKek(ACTOR);
    expect(status.rewrapping).toBe(true);
    await f.secrets.rewrap();
    expect(f.secrets.kekStatus().rewrapping).toBe(false);
    expect(f.secrets.kekStatus().keks.find((k) => k.active)?.dataKeys).toBe(5);
  });

  it("a gateway's start-up pass with nothing to rewrap records nothing", async () => {
    const f = fixture();
    await populate(f, 3);
    expect(await f.secrets.rewrap()).toEqual({ rewrapped: 0, failed: 0, remaining: 0, stopped: false });
    expect(keyringAudit(f)).toEqual([]);
  });
});

describe("retireKek refuses", () => {
  it("an unknown KEK, the active KEK and a KEK that still wraps data keys", async () => {
    const f = fixture({ rewrap: { batchSize: 1, pauseMs: 100 } });
    await populate(f, 3);
    const old = f.keyring.active().id;
    expectRefusal(() => f.secrets.retireKek("kek-20990101-00000000", ACTOR), "PC_SECRETS_KEK_NOT_FOUND");
    expectRefusal(() => f.secrets.retireKek(old, ACTOR), "PC_SECRETS_KEK_IN_USE", /active/);
    f.secrets.rotateKek(ACTOR);
    await f.secrets.stop(); // after the first batch of one row
    expect(f.secrets.kekStatus().keks.find((k) => k.id === old)?.dataKeys).toBe(2);
    expectRefusal(() => f.secrets.retireKek(old, ACTOR), "PC_SECRETS_KEK_IN_USE", `${old} still wraps 2 data keys`);
    expect(f.keyring.ids()).toContain(old);
    await f.secrets.rewrap();
    f.secrets.retireKek(old, ACTOR);
    expect(f.keyring.ids()).toEqual([f.keyring.active().id]);
  });

  it("any change of a keyring from the environment: PC_SECRETS_KEYRING_READONLY", async () => {
    const f = fixture({ audit: () => new MemoryAuditSink() });
    const doc = { active: f.keyring.active().id, keys: [f.keyring.active()] };
    const env = { PORTCULLIS_KEYRING: serializeKeyring(doc) };
    const ring = Keyring.open(new EnvKekSource("PORTCULLIS_KEYRING", env));
    const audit = new MemoryAuditSink();
    const s = new SecretService(f.store, ring, audit, f.clock, silentLogger);
    await s.create("team-a", "from-env", Buffer.from("x"), ACTOR);
    expect((await s.read("team-a", "from-env", 1, ACTOR)).value.toString()).toBe("x");
    expectRefusal(() => s.rotateKek(ACTOR), "PC_SECRETS_KEYRING_READONLY");
    expectRefusal(() => s.retireKek(ring.active().id, ACTOR), "PC_SECRETS_KEYRING_READONLY");
    expect(audit.events.map((e) => e.type)).toEqual(["secret.created", "secret.read"]);
  });
});
