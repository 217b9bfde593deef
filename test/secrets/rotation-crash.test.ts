/**
 * KEK rotation survives kill -9. A data directory made by `initGateway` holds 2,000
 * secret versions; a child process (the project's own code, test/secrets/fixtures/
 * rotate-child.ts) rotates the KEK and rewraps; the test watches the SQLite file and
 * kills the child with SIGKILL once some but not all rows use the new KEK. Then:
 * - every version still opens with its value (both KEKs are in the keyring);
 * - a rewrap run again finishes, every row uses the new KEK, the old KEK can be retired,
 *   and everything still opens;
 * - a gateway started on such a directory resumes the rewrap on its own and records
 *   `keyring.rewrap_completed`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { initGateway, startGateway } from "../../src/app.js";
import { AuditLog, loadOrCreateHmacKey } from "../../src/audit/index.js";
import { ManualClock, silentLogger } from "../../src/core/index.js";
import { FileKekSource, Keyring, keyringPath, SecretService } from "../../src/secrets/index.js";
import { DB_FILE, Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";

const ROOT = resolve(import.meta.dirname, "../..");
const CHILD = join(ROOT, "test/secrets/fixtures/rotate-child.ts");
const SECRETS = 400;
const VERSIONS = 5;
const TOTAL = SECRETS * VERSIONS;
const ACTOR = { id: "user:admin" };

const tmp = tempDir("portcullis-rotation-crash-");
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  tmp.cleanup();
});

type Values = Map<string, string>; // "name@version" -> value

/** The service over a data directory, as the gateway builds it (real audit log). */
function open(dataDir: string): { secrets: SecretService; store: Store; keyring: Keyring; close: () => Promise<void> } {
  const store = Store.open(dataDir);
  const keyring = Keyring.open(new FileKekSource(keyringPath(dataDir)));
  const audit = new AuditLog(store, new ManualClock(), { trustDomain: "portcullis.local", hmacKey: loadOrCreateHmacKey(dataDir) });
  const secrets = new SecretService(store, keyring, audit, new ManualClock(), silentLogger);
  return {
    secrets,
    store,
    keyring,
    close: async () => {
      await secrets.stop();
      await audit.close();
      store.close();
    },
  };
}

/** A fresh data directory with SECRETS x VERSIONS versions of distinct values. */
async function populated(name: string): Promise<{ dataDir: string; values: Values; oldKek: string }> {
  const dataDir = join(tmp.dir, name);
  initGateway({ dataDir, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
  const o = open(dataDir);
  o.store.namespaces.insert({ name: "team-a", labels: {}, createdAt: 0, createdBy: "user:admin" });
  const values: Values = new Map();
  const val = (i: number, v: number) => {
    const x = `value-${i}-${v}-${randomBytes(6).toString("hex")}`;
    values.set(`s${i}@${v}`, x);
    return Buffer.from(x);
  };
  await Promise.all(Array.from({ length: SECRETS }, (_, i) => o.secrets.create("team-a", `s${i}`, val(i, 1), ACTOR)));
  for (let v = 2; v <= VERSIONS; v++) await Promise.all(Array.from({ length: SECRETS }, (_, i) => o.secrets.update("team-a", `s${i}`, val(i, v), ACTOR)));
  const oldKek = o.keyring.active().id;
  await o.close();
  return { dataDir, values, oldKek };
}

/** Starts the rotating child and kills it with SIGKILL once part of the rows use the new KEK. */
async function rotateAndKill(dataDir: string, oldKek: string): Promise<{ newKek: string; newRows: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const db = new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    const count = db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM secret_versions WHERE kek_id <> ?`);
    const end = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the child ended before it was killed: ${out} ${err}`);
      if (Date.now() > end) throw new Error(`no partial rewrap seen: ${out} ${err}`);
      const moved = count.get(oldKek)?.n ?? 0;
      if (moved > 0 && moved < TOTAL) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    await exited;
    expect(child.signalCode).toBe("SIGKILL");
    const newRows = count.get(oldKek)?.n ?? 0;
    const m = /rotated (\S+)/.exec(out);
    expect(m, `the child reports the new KEK: ${out} ${err}`).not.toBeNull();
    return { newKek: (m as RegExpExecArray)[1] as string, newRows };
  } finally {
    db.close();
  }
}

async function expectAllOpen(secrets: SecretService, values: Values): Promise<void> {
  let opened = 0;
  for (const [key, value] of values) {
    const [name, v] = key.split("@") as [string, string];
    const [file] = await secrets.open("team-a", [{ name, path: `/run/secrets/${name}`, version: Number(v) }]);
    expect(file?.value.toString(), key).toBe(value);
    opened++;
  }
  expect(opened).toBe(TOTAL);
}

function kekCounts(store: Store): Record<string, number> {
  return Object.fromEntries(store.secrets.countByKek().map((c) => [c.kekId, c.count]));
}

describe("KEK rotation killed with SIGKILL", () => {
  it("loses nothing; a rewrap run again finishes; the old KEK can then be retired", async () => {
    const { dataDir, values, oldKek } = await populated("again");
    const { newKek, newRows } = await rotateAndKill(dataDir, oldKek);
    expect(newRows).toBeGreaterThan(0);
    expect(newRows).toBeLessThan(TOTAL);

    const o = open(dataDir);
    try {
      // The keyring was persisted before any row used the new KEK: both are there, the new one active.
      expect(o.keyring.active().id).toBe(newKek);
      expect(o.keyring.ids()).toEqual([oldKek, newKek]);
      const before = kekCounts(o.store);
      expect(before[newKek]).toBe(newRows);
      expect((before[oldKek] ?? 0) + (before[newKek] ?? 0)).toBe(TOTAL);
      expect(o.secrets.kekStatus().rewrapping).toBe(true);
      // Every secret opens with its value, whichever KEK wraps it now.
      await expectAllOpen(o.secrets, values);

      // A rotation is refused while the last one has not finished.
      expect(() => o.secrets.rotateKek(ACTOR)).toThrow(expect.objectContaining({ code: "PC_SECRETS_ROTATION_RUNNING" }));
      expect(() => o.secrets.retireKek(oldKek, ACTOR)).toThrow(expect.objectContaining({ code: "PC_SECRETS_KEK_IN_USE" }));

      const r = await o.secrets.rewrap();
      expect(r).toEqual({ rewrapped: TOTAL - newRows, failed: 0, remaining: 0, stopped: false });
      expect(kekCounts(o.store)).toEqual({ [newKek]: TOTAL });
      const status = o.secrets.kekStatus();
      expect(status.rewrapping).toBe(false);
      expect(status.keks).toEqual([
        { id: oldKek, createdAt: expect.any(String), active: false, dataKeys: 0 },
        { id: newKek, createdAt: expect.any(String), active: true, dataKeys: TOTAL },
      ]);

      o.secrets.retireKek(oldKek, ACTOR);
      expect(o.keyring.ids()).toEqual([newKek]);
      expect(readFileSync(keyringPath(dataDir), "utf8")).not.toContain(oldKek);
      await expectAllOpen(o.secrets, values);
      const types = (o.store.db.prepare(`SELECT type FROM audit_log WHERE type LIKE 'keyring.%' ORDER BY seq`).all() as { type: string }[]).map((x) => x.type);
      expect(types).toEqual(["keyring.kek_added", "keyring.rewrap_completed", "keyring.kek_retired"]);
    } finally {
      await o.close();
    }
  });

  it("a gateway started on the directory resumes the rewrap on its own", async () => {
    const { dataDir, values, oldKek } = await populated("restart");
    const { newKek, newRows } = await rotateAndKill(dataDir, oldKek);
    expect(newRows).toBeGreaterThan(0);
    expect(newRows).toBeLessThan(TOTAL);

    const gw = await startGateway({ dataDir, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0", reconcileIntervalMs: 3_600_000 });
    try {
      const end = Date.now() + 30_000;
      while (gw.secrets.kekStatus().rewrapping) {
        if (Date.now() > end) throw new Error("the gateway did not finish the rewrap");
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(kekCounts(gw.store)).toEqual({ [newKek]: TOTAL });
      // The completion is recorded once the last batch is in.
      const end2 = Date.now() + 5_000;
      let completed: { reasons?: string[] } | undefined;
      while (completed === undefined && Date.now() < end2) {
        const row = gw.store.db.prepare(`SELECT body FROM audit_log WHERE type = 'keyring.rewrap_completed'`).get() as { body: string } | undefined;
        if (row) completed = JSON.parse(row.body) as { reasons?: string[] };
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(completed?.reasons).toEqual([`rewrapped:${TOTAL - newRows}`]);
      gw.secrets.retireKek(oldKek, ACTOR);
      await expectAllOpen(gw.secrets, values);
    } finally {
      await gw.close();
    }
  });
});
