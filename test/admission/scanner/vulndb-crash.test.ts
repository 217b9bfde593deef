/**
 * An import killed with SIGKILL part-way leaves the database in force. A child process
 * (test/admission/scanner/vulndb-import-child.ts, the project's own import) imports
 * 20,000 generated records in small batches; the test watches the SQLite file and kills
 * the child once some of the new import's rows are committed. Then:
 * - the old database answers as before (same status, same matches);
 * - the dead import is still `loading` with its rows, until the next import (or
 *   cleanupVulnDb) marks it failed and deletes them;
 * - the next import succeeds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupVulnDb, importVulnDb } from "../../../src/admission/scanner/vulndb-import.js";
import { VulnDb } from "../../../src/admission/scanner/vulndb.js";
import { DB_FILE, Store } from "../../../src/store/index.js";
import { entriesOf, fixtureRecords, syntheticRecords, writeZip } from "./vulndb-support.js";

const ROOT = resolve(import.meta.dirname, "../../..");
const CHILD = join(ROOT, "test/admission/scanner/vulndb-import-child.ts");
const RECORDS = 20_000;
const ACTOR = { id: "user:secadmin" };

const root = mkdtempSync(join(tmpdir(), "portcullis-vulndb-crash-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

const ALL = fixtureRecords();
const FIXTURE_ZIP = join(root, "fixtures.zip");
writeFileSync(FIXTURE_ZIP, writeZip(entriesOf(ALL)));
const BIG_ZIP = join(root, "big.zip");
writeFileSync(BIG_ZIP, writeZip(syntheticRecords(RECORDS, 7).map((r) => ({ name: `${r.id}.json`, data: r.text }))));

/** A data directory whose database in force is the fixtures (version 1). */
async function withFixtures(name: string): Promise<string> {
  const dataDir = join(root, name);
  mkdirSync(dataDir);
  const store = Store.open(dataDir);
  try {
    await importVulnDb(store, FIXTURE_ZIP, ACTOR);
  } finally {
    store.close();
  }
  return dataDir;
}

/** Starts the importing child and kills it with SIGKILL once the new import has committed rows. */
async function importAndKill(dataDir: string): Promise<{ importId: number; rows: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir, BIG_ZIP], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const db = new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    const loading = db.prepare<[], { id: number; n: number }>(
      `SELECT i.id AS id, (SELECT count(*) FROM vuln_records r WHERE r.import_id = i.id) AS n
       FROM vulndb_imports i WHERE i.state = 'loading'`,
    );
    const end = Date.now() + 30_000;
    let seen: { id: number; n: number } | undefined;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the child ended before it was killed: ${out} ${err}`);
      if (Date.now() > end) throw new Error(`no partial import seen: ${out} ${err}`);
      seen = loading.get();
      if (seen !== undefined && seen.n > 0 && seen.n < RECORDS) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill("SIGKILL");
    await exited;
    expect(child.signalCode).toBe("SIGKILL");
    expect(out).not.toMatch(/done/);
    const after = loading.get();
    expect(after?.id).toBe(seen.id);
    expect(after?.n).toBeGreaterThan(0);
    expect(after?.n).toBeLessThan(RECORDS);
    return { importId: seen.id, rows: after?.n ?? 0 };
  } finally {
    db.close();
  }
}

function rows(store: Store, importId: number): number {
  return (store.db.prepare("SELECT count(*) AS n FROM vuln_records WHERE import_id = ?").get(importId) as { n: number }).n;
}

describe("kill -9 during an import", () => {
  it("keeps the old database in force; the next import cleans up and succeeds", async () => {
    const dataDir = await withFixtures("data-a");
    const before = (() => {
      const s = Store.open(dataDir);
      try {
        return new VulnDb(s).status();
      } finally {
        s.close();
      }
    })();
    expect(before).toMatchObject({ version: 1, records: 6 });

    const killed = await importAndKill(dataDir);
    expect(killed.importId).toBe(2);

    const store = Store.open(dataDir);
    try {
      const db = new VulnDb(store);
      expect(db.status()).toEqual(before);
      expect(db.match("npm", "lodash", "4.17.18").map((f) => f.id)).toEqual(["GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"]);
      expect(db.match("Debian:12", "openssl", "3.0.11-1~deb12u1").map((f) => f.id)).toEqual(["DSA-5532-1"]);
      // The dead import's rows are still there, never read.
      expect(store.vulndb.get(2)?.state).toBe("loading");
      expect(rows(store, 2)).toBe(killed.rows);

      const r = await importVulnDb(store, FIXTURE_ZIP, ACTOR);
      expect(r).toMatchObject({ version: 3, records: 6 });
      expect(db.imports().map((i) => [i.id, i.state, i.purgedAt !== null])).toEqual([
        [1, "replaced", true],
        [2, "failed", true],
        [3, "active", false],
      ]);
      expect(rows(store, 2)).toBe(0);
      expect(rows(store, 1)).toBe(0);
      expect(db.match("npm", "lodash", "4.17.18").map((f) => f.id)).toEqual(["GHSA-35jh-r3h4-6jhm", "GHSA-p6mc-m468-83gw"]);
    } finally {
      store.close();
    }
  });

  it("cleanupVulnDb alone (as at start-up) marks the dead import failed and deletes its rows", async () => {
    const dataDir = await withFixtures("data-b");
    const killed = await importAndKill(dataDir);
    const store = Store.open(dataDir);
    try {
      const before = new VulnDb(store).status();
      expect(await cleanupVulnDb(store)).toEqual({ failed: [killed.importId], purged: [killed.importId] });
      expect(new VulnDb(store).status()).toEqual(before);
      expect(rows(store, killed.importId)).toBe(0);
      expect(store.vulndb.get(killed.importId)?.state).toBe("failed");
      // The synthetic records import in full when nothing kills the import.
      const r = await importVulnDb(store, BIG_ZIP, ACTOR);
      expect(r).toMatchObject({ version: 3, records: RECORDS });
      expect(new VulnDb(store).status()).toMatchObject({ version: 3, records: RECORDS });
    } finally {
      store.close();
    }
  });
});
