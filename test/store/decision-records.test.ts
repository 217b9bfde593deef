/**
 * Decision records and admission policy versions are kept as written: the repository
 * reads back what it stored, newest first per namespace, and the tables refuse any
 * update or delete.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Store, type DecisionRecordRow } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";

let tmp: ReturnType<typeof tempDir>;
let store: Store;
beforeEach(() => {
  tmp = tempDir("portcullis-decisions-");
  store = Store.open(tmp.dir);
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

const rec = (id: string, namespace: string, createdAt: number, allowed = true): DecisionRecordRow => ({
  id,
  requestId: `req-${id}`,
  requester: "user:dev",
  namespace,
  name: "web",
  operation: "create",
  allowed,
  dryRun: false,
  record: `{"id":"${id}"}`,
  createdAt,
});

describe("decision records", () => {
  it("reads back what was stored; lists a namespace newest first, bounded by the limit", () => {
    store.decisionRecords.insert(rec("a", "payments", 1000));
    store.decisionRecords.insert(rec("b", "payments", 2000, false));
    store.decisionRecords.insert({ ...rec("c", "billing", 3000), requestId: null, dryRun: true });
    store.decisionRecords.insert(rec("d", "payments", 3000));
    expect(store.decisionRecords.get("b")).toEqual(rec("b", "payments", 2000, false));
    expect(store.decisionRecords.get("c")).toMatchObject({ requestId: null, dryRun: true, allowed: true });
    expect(store.decisionRecords.get("zz")).toBeUndefined();
    expect(store.decisionRecords.list("payments", 10).map((r) => r.id)).toEqual(["d", "b", "a"]);
    expect(store.decisionRecords.list("payments", 2).map((r) => r.id)).toEqual(["d", "b"]);
    expect(store.decisionRecords.list("billing", 10).map((r) => r.id)).toEqual(["c"]);
    expect(() => store.decisionRecords.insert(rec("a", "payments", 4000))).toThrow(/UNIQUE/);
  });

  it("refuses updates and deletes of decision records and admission policy versions", () => {
    store.decisionRecords.insert(rec("a", "payments", 1000));
    store.admissionPolicyVersions.insert({ version: 1, files: "[]", sha256: "00", author: "user:a", createdAt: 1, message: "m", rollbackOf: null });
    expect(() => store.db.prepare("UPDATE decision_records SET allowed = 0").run()).toThrow(/decision records are immutable/);
    expect(() => store.db.prepare("DELETE FROM decision_records").run()).toThrow(/decision records are immutable/);
    expect(() => store.db.prepare("INSERT OR REPLACE INTO decision_records SELECT * FROM decision_records").run()).toThrow(/immutable/);
    expect(() => store.db.prepare("DELETE FROM admission_policy_versions").run()).toThrow(/admission policy versions are immutable/);
    expect(store.decisionRecords.get("a")?.allowed).toBe(true);
    expect(store.admissionPolicyVersions.latest()?.version).toBe(1);
  });
});
