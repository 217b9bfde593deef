import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog, CSV_COLUMNS, DEPLOY_FIELDS, deployCell, entryParts, exportCsv, MemoryAuditSource, sealEntry, verifyBundle } from "../../src/audit/index.js";
import { ManualClock, type AuditDeployFacts, type AuditEvent } from "../../src/core/index.js";
import { derToPem } from "../../src/pki/index.js";
import { DB_FILE, Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { auditSigner, exportLines, makePki, parse, signCheckpoint, START, TD } from "./support.js";

const KEY = Buffer.alloc(32, 7);
const base: AuditEvent = { type: "deploy.rollout_completed", outcome: "allowed", actor: "user:alice", resource: "deployments", namespace: "team-a" };
const DIGEST = `sha256:${"9f".repeat(32)}`;
const IMAGE = `sha256:${"1c".repeat(32)}`;
const DECISION = "d0".repeat(32);

const facts: AuditDeployFacts = {
  revision: 3,
  jti: "alice-request-000001",
  digest: DIGEST,
  imageId: IMAGE,
  runtime: "runsc",
  actualRuntimes: ["runsc", "runsc"],
  nodes: ["node-a", "node-b"],
  containers: ["team-a.web.3.0", "team-a.web.3.1"],
  replicas: 2,
  decisionSha256: DECISION,
};

const deployOf = (d: unknown) => entryParts({ ...base, deploy: d as AuditDeployFacts }, KEY).body.deploy;

describe("deploy facts: redaction by construction", () => {
  it("maps every declared key, each to itself", () => {
    expect(deployOf(facts)).toEqual(facts);
    expect(Object.keys(deployOf(facts) ?? {}).sort()).toEqual(Object.keys(DEPLOY_FIELDS).sort());
  });

  it.each<[string, Record<string, unknown>, Record<string, unknown> | undefined]>([
    ["a revision as a string", { revision: "3", jti: "j" }, { jti: "j" }],
    ["a revision of 0 or a fraction", { revision: 0, replicas: 1.5, jti: "j" }, { jti: "j" }],
    ["negative replicas", { replicas: -1, runtime: "runc" }, { runtime: "runc" }],
    ["a digest that is not sha256:<hex>", { digest: "latest", imageId: "sha256:xyz", runtime: "runc" }, { runtime: "runc" }],
    ["a runtime name with a shell in it", { runtime: "runsc; rm -rf /", actualRuntimes: ["runsc", "runc --debug"], replicas: 1 }, { replicas: 1 }],
    ["an array holding a number", { nodes: ["n1", 2], containers: "c0", replicas: 1 }, { replicas: 1 }],
    ["a decision digest of another length", { decisionSha256: "abc", replicas: 1 }, { replicas: 1 }],
    ["an object as jti", { jti: { token: "s3cret" }, replicas: 1 }, { replicas: 1 }],
    ["nothing left: no deploy at all", { revision: "x", digest: 5 }, undefined],
    ["not an object", ["runsc"] as unknown as Record<string, unknown>, undefined],
  ])("drops %s", (_name, input, want) => {
    expect(deployOf(input)).toEqual(want);
  });

  it("never lets an undeclared key inside deploy reach the entry", () => {
    const d = deployOf({ ...facts, manifest: { spec: { env: { TOKEN: "s3cret" } } }, jws: "eyJ...", signerKey: "-----BEGIN PRIVATE KEY-----" });
    expect(d).toEqual(facts);
    expect(JSON.stringify(d)).not.toMatch(/s3cret|eyJ|PRIVATE/);
  });

  it("copies arrays: a later change to the event does not change the entry", () => {
    const nodes = ["node-a"];
    const d = deployOf({ nodes });
    nodes.push("node-z");
    expect(d).toEqual({ nodes: ["node-a"] });
  });

  describe("through the log into the database", () => {
    let t: ReturnType<typeof tempDir> | undefined;
    afterEach(() => t?.cleanup());

    it("stores the declared facts and nothing undeclared of them", () => {
      t = tempDir();
      const store = Store.open(t.dir);
      const log = new AuditLog(store, new ManualClock(), { trustDomain: "portcullis.local", hmacKey: randomBytes(32) });
      log.record({ ...base, deploy: { ...facts, env: { DB_PASSWORD: "hunter2-SECRET" } } as AuditDeployFacts });
      const body = JSON.parse(store.auditLog.get(0)?.body ?? "{}") as { deploy?: unknown };
      expect(body.deploy).toEqual(facts);
      store.close();
      const bytes = [join(t.dir, DB_FILE), join(t.dir, `${DB_FILE}-wal`)].filter(existsSync).map((p) => readFileSync(p).toString("latin1")).join("");
      expect(bytes).toContain("alice-request-000001");
      expect(bytes).not.toContain("hunter2-SECRET");
    });
  });
});

describe("deploy facts: seal, export, verify", () => {
  async function logWith(bodyDeploy: unknown) {
    const pki = makePki();
    const signer = auditSigner(pki);
    const src = new MemoryAuditSource(TD, pki.ca.rootFingerprint, [derToPem(pki.ca.material.rootDer, "CERTIFICATE"), pki.ca.intermediatePem, signer.leafPem]);
    const t = (i: number) => new Date(START + i * 1000).toISOString();
    src.append({ time: t(0), type: "audit.genesis", outcome: "allowed", actor: "service:gateway" }, { genesis: { trustDomain: TD, caFingerprint: pki.ca.rootFingerprint } });
    const p = entryParts({ ...base, requestId: "r1", deploy: facts }, KEY);
    src.append({ ...p.head, time: t(1) }, bodyDeploy === undefined ? p.body : { ...p.body, deploy: bodyDeploy as typeof facts });
    const h = src.head();
    src.addCheckpoint(h.seq, await signCheckpoint(signer, { seq: h.seq, hash: h.hash, time: t(2), trustDomain: TD }));
    return { src, fp: pki.ca.rootFingerprint };
  }

  it("an entry with deploy facts round-trips through redact, seal, export and verify", async () => {
    const { src, fp } = await logWith(undefined);
    const lines = await exportLines(src);
    const shown = lines.map(parse).find((o) => o.kind === "entry" && o.entry?.head.seq === 1);
    expect((shown?.entry?.body as { deploy?: unknown } | undefined)?.deploy).toEqual(facts);
    const r = await verifyBundle(lines, { caFingerprint: fp });
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ ok: true, entries: 2 });
  });

  it("an edited fact is a hash mismatch at that entry", async () => {
    const { src, fp } = await logWith(undefined);
    const lines = await exportLines(src);
    const i = lines.findIndex((l) => l.includes('"deploy"'));
    const edited = [...lines];
    edited[i] = (lines[i] as string).replace('"actualRuntimes":["runsc","runsc"]', '"actualRuntimes":["runsc","runc"]');
    expect(edited[i]).not.toBe(lines[i]);
    expect((await verifyBundle(edited, { caFingerprint: fp })).error).toMatchObject({ kind: "hash mismatch", seq: 1 });
  });

  it.each([
    ["an undeclared key inside deploy", { ...facts, env: { A: "b" } }],
    ["a revision of another type", { ...facts, revision: "3" }],
    ["runtimes that are not strings", { ...facts, actualRuntimes: [1] }],
    ["deploy as an array", ["runsc"]],
  ])("the verifier refuses %s, even when sealed consistently", async (_name, bad) => {
    const { src, fp } = await logWith(bad);
    const e = [...src.entries(1, 1)][0];
    expect(e?.body.deploy).toEqual(bad); // sealed as given: only the verifier stands in the way
    expect(sealEntry(e!.head, e!.body, e!.prevHash).hash).toBe(e?.hash);
    const r = await verifyBundle(await exportLines(src), { caFingerprint: fp });
    expect(r.error).toMatchObject({ kind: "format", seq: 1, message: "malformed entry" });
  });

  it("CSV shows a short form in its last column", async () => {
    expect(CSV_COLUMNS.at(-1)).toBe("deploy");
    expect(deployCell(facts)).toBe(
      "revision=3; jti=alice-request-000001; digest=sha256:9f9f9f9f9f9f; image=sha256:1c1c1c1c1c1c; runtime=runsc; actual=runsc,runsc; replicas=2; nodes=node-a,node-b; containers=team-a.web.3.0,team-a.web.3.1; decision=d0d0d0d0d0d0",
    );
    expect(deployCell(undefined)).toBeUndefined();
    const { src } = await logWith(undefined);
    const rows: string[] = [];
    await exportCsv(src, { namespace: "team-a" }, (l) => void rows.push(l));
    expect(rows).toHaveLength(3);
    expect(rows[2]).toMatch(/,"revision=3; jti=alice-request-000001; .*decision=d0d0d0d0d0d0"$/);
  });
});
