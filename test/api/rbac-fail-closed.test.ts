/**
 * Fail closed: when the policy store cannot be trusted (a version whose CSV no longer
 * matches its checksum, a version that does not validate, the table gone), every RBAC
 * route answers 503 PC_RBAC_POLICY_UNAVAILABLE, never 200, and the decision is recorded as
 * an error. Routes that need no policy (whoami) keep working. Repairing the store
 * restores service. The store is broken from a second SQLite connection, as an outside
 * writer would.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mark } from "./api-support.js";
import { call, canI, decisionsSince, expectCode, pathOf, rbacRoutesOf, sampleBody, setUpWorld, type World } from "./rbac-support.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

describe("a broken policy store fails closed", () => {
  let t: TestGateway;
  let w: World;
  let db: Database.Database;

  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpWorld(t);
    db = new Database(join(t.dataDir, "portcullis.db"));
    db.pragma("busy_timeout = 5000");
  });
  afterAll(async () => {
    db?.close();
    await t?.close();
  });

  const latest = () => db.prepare("SELECT * FROM policy_versions ORDER BY version DESC LIMIT 1").get() as { version: number; csv: string; sha256: string };

  /** Every RBAC route, as the administrator (who may call them all): 503, never 200. */
  async function expectAllUnavailable(what: string): Promise<void> {
    const m = mark(t);
    const routes = rbacRoutesOf(t);
    for (const r of routes) {
      const path = pathOf(r);
      const a = await call(t, w.admin, r.method, path, sampleBody(r));
      expect(a.status, `${what}: ${r.method} ${path}: ${a.text}`).toBe(503);
      expectCode(a, 503, "PC_RBAC_POLICY_UNAVAILABLE");
    }
    // The developer's allowed route is no exception.
    expectCode(await call(t, w.dev, "GET", "/v1/namespaces/payments"), 503, "PC_RBAC_POLICY_UNAVAILABLE");
    // can-i cannot answer either.
    expectCode(await canI(t, w.admin, "read", "namespaces", "*"), 503, "PC_RBAC_POLICY_UNAVAILABLE");
    const ds = decisionsSince(t, m);
    expect(ds).toHaveLength(routes.length + 1);
    for (const d of ds) expect(d, what).toMatchObject({ type: "authz.decision", outcome: "error", reason: "error" });
    // whoami needs no policy.
    const me = await call(t, w.dev, "GET", "/v1/whoami");
    expect(me.status, what).toBe(200);
    expect(me.body.identity).toBe("user:dev");
  }

  async function expectServing(): Promise<void> {
    const p = await call(t, w.admin, "GET", "/v1/policy");
    expect(p.status, p.text).toBe(200);
    expect((await call(t, w.dev, "GET", "/v1/namespaces/payments")).status).toBe(200);
    expectCode(await call(t, w.dev, "GET", "/v1/namespaces/billing"), 403, "PC_API_FORBIDDEN");
    expect((await canI(t, w.dev, "deploy", "deployments", "payments")).body.allowed).toBe(true);
  }

  /** Runs `sql` with the immutability triggers of policy_versions lifted for the moment. */
  function withoutTriggers(fn: () => void): void {
    const triggers = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'policy_versions'").all() as { sql: string }[];
    expect(triggers.length).toBe(2);
    db.transaction(() => {
      db.exec("DROP TRIGGER policy_versions_no_update; DROP TRIGGER policy_versions_no_delete;");
      fn();
      for (const tr of triggers) db.exec(tr.sql);
    })();
  }

  it("serves before anything is broken", async () => {
    await expectServing();
  });

  it("the latest version's CSV edited in place (checksum mismatch): 503 everywhere until restored", async () => {
    const row = latest();
    // Lift the one restriction that matters to a would-be attacker: the dev's namespace.
    const edited = row.csv.replace("g, user:dev, developer, payments", "g, user:dev, platform-admin, *");
    expect(edited).not.toBe(row.csv);
    withoutTriggers(() => db.prepare("UPDATE policy_versions SET csv = ? WHERE version = ?").run(edited, row.version));
    await expectAllUnavailable("csv edited");
    const me = await canI(t, w.dev, "read", "namespaces", "billing");
    expect(me.status).toBe(503);
    withoutTriggers(() => db.prepare("UPDATE policy_versions SET csv = ? WHERE version = ?").run(row.csv, row.version));
    await expectServing();
  });

  it("a new version row with a wrong sha256: 503 everywhere until removed", async () => {
    const row = latest();
    const csv = `${row.csv}g, user:dev, platform-admin, *\n`;
    db.prepare(
      "INSERT INTO policy_versions (version, csv, sha256, author, created_at, message, diff, rollback_of) VALUES (?, ?, ?, 'user:mallory', 0, 'sneaky', '{\"added\":[],\"removed\":[]}', NULL)",
    ).run(row.version + 1, csv, "0".repeat(64));
    await expectAllUnavailable("bad checksum");
    withoutTriggers(() => db.prepare("DELETE FROM policy_versions WHERE version = ?").run(row.version + 1));
    await expectServing();
  });

  it("a new version with a matching checksum that does not validate (audit made editable): 503 until removed", async () => {
    const row = latest();
    const csv = `${row.csv.replace("p, platform-admin, *, audit, update, deny\n", "")}p, developer, *, audit, update, allow\n`;
    db.prepare(
      "INSERT INTO policy_versions (version, csv, sha256, author, created_at, message, diff, rollback_of) VALUES (?, ?, ?, 'user:mallory', 0, 'sneaky', '{\"added\":[],\"removed\":[]}', NULL)",
    ).run(row.version + 1, csv, sha256(csv));
    await expectAllUnavailable("invalid version");
    withoutTriggers(() => db.prepare("DELETE FROM policy_versions WHERE version = ?").run(row.version + 1));
    await expectServing();
  });

  it("the policy_versions table renamed away: 503 everywhere until it is back", async () => {
    db.exec("ALTER TABLE policy_versions RENAME TO policy_versions_hidden");
    await expectAllUnavailable("table renamed");
    db.exec("ALTER TABLE policy_versions_hidden RENAME TO policy_versions");
    await expectServing();
  });

  it("the policy_versions table dropped: 503 everywhere; recreated with its rows, service returns", async () => {
    const rows = db.prepare("SELECT * FROM policy_versions ORDER BY version").all() as Record<string, unknown>[];
    const schema = db.prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'policy_versions' AND sql IS NOT NULL ORDER BY type = 'table' DESC").all() as { sql: string }[];
    db.exec("DROP TABLE policy_versions");
    await expectAllUnavailable("table dropped");
    // An empty table is no better: no policy is in force.
    db.exec((schema[0] as { sql: string }).sql);
    await expectAllUnavailable("table empty");
    db.transaction(() => {
      const ins = db.prepare(
        "INSERT INTO policy_versions (version, csv, sha256, author, created_at, message, diff, rollback_of) VALUES (@version, @csv, @sha256, @author, @created_at, @message, @diff, @rollback_of)",
      );
      for (const r of rows) ins.run(r);
      for (const s of schema.slice(1)) db.exec(s.sql);
    })();
    await expectServing();
  });
});
