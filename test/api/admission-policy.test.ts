/**
 * Admission policy authoring through the API, over real mTLS: the shipped set is version
 * 1; an administrator applies a whole set (parsed whole, refused whole with every problem
 * as file:line: field: reason), reads any version, the history, and rolls back as a new
 * version; each change leaves an audit entry. Reading needs policies:read, changing needs
 * policies:update: a developer gets 403 for both, an auditor may read only. A version in
 * force that cannot be trusted is answered 503, never served.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shippedAdmissionPolicyFiles } from "../../src/admission/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { eventsSince, mark } from "./api-support.js";
import { call, expectCode, setUpWorld, type World } from "./rbac-support.js";

const policyText = (name: string, namespaces: string, mode: string) =>
  ["apiVersion: portcullis/v1", "kind: AdmissionPolicy", "metadata:", `  name: ${name}`, "spec:", `  selector: { namespaces: [${namespaces}] }`, "  checks:", `    hardening: { mode: ${mode} }`, ""].join("\n");
const PAYMENTS = { name: "payments.yaml", text: policyText("payments-strict", "payments", "enforce") };
/** Line 8: an unknown mode. */
const BROKEN = { name: "broken.yaml", text: policyText("broken", "billing", "block") };
const PATH = "/v1/admission/policy";

let t: TestGateway;
let w: World;
const shipped = shippedAdmissionPolicyFiles();

beforeAll(async () => {
  t = await startTestGateway();
  w = await setUpWorld(t);
});
afterAll(async () => {
  await t?.close();
});

async function inForce(): Promise<{ version: number; files: { name: string; text: string }[] }> {
  const r = await call(t, w.admin, "GET", PATH);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

describe("the admission policy through the API", () => {
  it("starts as the shipped files, version 1", async () => {
    expect(await inForce()).toEqual({ version: 1, files: shipped });
    expect(t.gw.admissionPolicy.current().set.policies.map((p) => p.name)).toContain("baseline");
  });

  it("a developer can neither read nor change it; an auditor reads but cannot change it", async () => {
    const before = await inForce();
    expectCode(await call(t, w.dev, "GET", PATH), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "GET", `${PATH}/history`), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "PUT", PATH, { files: [PAYMENTS], message: "mine now" }), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "POST", `${PATH}/rollback`, { version: 1 }), 403, "PC_API_FORBIDDEN");
    const read = await call(t, w.aud, "GET", PATH);
    expect(read.status, read.text).toBe(200);
    expect(read.body.version).toBe(before.version);
    expectCode(await call(t, w.aud, "PUT", PATH, { files: [PAYMENTS], message: "audit this" }), 403, "PC_API_FORBIDDEN");
    expect(await inForce()).toEqual(before);
  });

  it("an administrator applies a set as a new version, audited with the caller and request", async () => {
    const m = mark(t);
    const a = await call(t, w.admin, "PUT", PATH, { files: [...shipped, PAYMENTS], message: "payments hardening" });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toEqual({ version: 2, changed: ["payments.yaml"] });
    const cur = await inForce();
    expect(cur.version).toBe(2);
    expect(cur.files.map((f) => f.name)).toEqual([...shipped.map((f) => f.name), "payments.yaml"].sort());
    expect(t.gw.admissionPolicy.current().set.policies.map((p) => p.name)).toContain("payments-strict");
    const applied = eventsSince(t, m).filter((e) => e.type === "admission.policy_applied");
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ outcome: "allowed", actor: "user:admin", target: "admission-policy:v2", reason: `files:${shipped.length + 1} changed:1` });
    expect(applied[0]?.requestId).toEqual(expect.any(String));
  });

  it("a security admin may apply too", async () => {
    const a = await call(t, w.sec, "PUT", PATH, { files: [...shipped, { ...PAYMENTS, text: policyText("payments-strict", "payments", "warn") }], message: "warn first" });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toEqual({ version: 3, changed: ["payments.yaml"] });
  });

  it("refuses a bad policy with 400 and its file:line: field: reason; nothing changes, nothing is audited", async () => {
    const before = await inForce();
    const m = mark(t);
    const msg = expectCode(await call(t, w.admin, "PUT", PATH, { files: [...shipped, BROKEN], message: "broken" }), 400, "PC_ADMISSION_POLICY_INVALID");
    expect(msg).toContain("broken.yaml:8: spec.checks.hardening.mode: unknown mode");
    expect(msg).not.toContain("baseline.yaml");
    expect(await inForce()).toEqual(before);
    expect(eventsSince(t, m).filter((e) => e.type === "admission.policy_applied")).toEqual([]);
  });

  it.each([
    ["a path as a file name", { files: [{ name: "../../etc/evil.yaml", text: PAYMENTS.text }], message: "x" }, /files\/0\/name|name/],
    ["an unknown field", { files: [PAYMENTS], message: "x", force: true }, /force|additional/],
    ["no message", { files: [PAYMENTS] }, /message/],
    ["no files", { files: [], message: "x" }, /files/],
  ])("refuses %s at the edge with 400 PC_API_INVALID_BODY", async (_what, body, detail) => {
    const before = await inForce();
    const msg = expectCode(await call(t, w.admin, "PUT", PATH, body), 400, "PC_API_INVALID_BODY");
    expect(msg).toMatch(detail);
    expect(await inForce()).toEqual(before);
  });

  it("refuses a body over 256 KiB with 413", async () => {
    const big = { files: [{ name: "big.yaml", text: `# ${"x".repeat(190 * 1024)}\n` }, { name: "big2.yaml", text: `# ${"y".repeat(100 * 1024)}\n` }], message: "big" };
    expectCode(await call(t, w.admin, "PUT", PATH, big), 413, "PC_API_BODY_TOO_LARGE");
  });

  it("history lists every version; ?version=N reads one; rollback makes a new version of old files", async () => {
    const h = await call(t, w.aud, "GET", `${PATH}/history`);
    expect(h.status, h.text).toBe(200);
    expect(h.body.items.map((v: { version: number; author: string; rollbackOf: number | null }) => [v.version, v.author, v.rollbackOf])).toEqual([
      [1, "service:portcullis-init", null],
      [2, "user:admin", null],
      [3, "user:sec", null],
    ]);
    expect(h.body.items[1]).toMatchObject({ message: "payments hardening", sha256: expect.stringMatching(/^[0-9a-f]{64}$/), createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });

    const v2 = await call(t, w.admin, "GET", `${PATH}?version=2`);
    expect(v2.status, v2.text).toBe(200);
    expect(v2.body.version).toBe(2);
    expect(v2.body.files.find((f: { name: string }) => f.name === "payments.yaml")?.text).toBe(PAYMENTS.text);
    expectCode(await call(t, w.admin, "GET", `${PATH}?version=99`), 404, "PC_ADMISSION_VERSION_NOT_FOUND");

    const m = mark(t);
    const r = await call(t, w.admin, "POST", `${PATH}/rollback`, { version: 1, message: "back to the shipped set" });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ version: 4, changed: ["payments.yaml"] });
    expect(await inForce()).toEqual({ version: 4, files: shipped });
    expect(eventsSince(t, m).filter((e) => e.type === "admission.policy_applied")).toEqual([
      expect.objectContaining({ actor: "user:admin", target: "admission-policy:v4", reason: `files:${shipped.length} changed:1 rollback-of:v1` }),
    ]);
    expectCode(await call(t, w.admin, "POST", `${PATH}/rollback`, { version: 99 }), 404, "PC_ADMISSION_VERSION_NOT_FOUND");
    expect((await inForce()).version).toBe(4);
  });

  it("answers 503 PC_ADMISSION_POLICY_UNAVAILABLE while the version in force fails its checksum, and serves again once a valid set is applied", async () => {
    const db = new Database(join(t.dataDir, "portcullis.db"));
    try {
      db.pragma("busy_timeout = 5000");
      const triggers = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'admission_policy_versions'").all() as { sql: string }[];
      expect(triggers).toHaveLength(2);
      const files = JSON.stringify([{ name: "baseline.yaml", text: "# emptied\n" }]);
      db.transaction(() => {
        db.exec("DROP TRIGGER admission_policy_versions_no_update; DROP TRIGGER admission_policy_versions_no_delete;");
        db.prepare("UPDATE admission_policy_versions SET files = ? WHERE version = (SELECT max(version) FROM admission_policy_versions)").run(files);
        for (const tr of triggers) db.exec(tr.sql);
      })();
    } finally {
      db.close();
    }
    const msg = expectCode(await call(t, w.admin, "GET", PATH), 503, "PC_ADMISSION_POLICY_UNAVAILABLE");
    expect(msg).toContain("fails its checksum");
    expect(() => t.gw.admissionPolicy.current()).toThrow(/admission policy unavailable/);
    const fix = await call(t, w.admin, "PUT", PATH, { files: shipped, message: "repair" });
    expect(fix.status, fix.text).toBe(200);
    const cur = await inForce();
    expect(cur.version).toBe(5);
    expect(createHash("sha256").update(JSON.stringify(cur.files)).digest("hex")).toBe(t.gw.admissionPolicy.history()[4]?.sha256);
  });
});
