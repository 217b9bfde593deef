import { createHmac, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog, BODY_FIELDS, entryParts, HEAD_FIELDS } from "../../src/audit/index.js";
import { ManualClock, type AuditEvent } from "../../src/core/index.js";
import { DB_FILE, Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";

const KEY = Buffer.alloc(32, 7);
const base: AuditEvent = { type: "api.request", outcome: "allowed", actor: "user:alice" };
const sha = "ab".repeat(32);

describe("entryParts: only declared fields map, each to its place", () => {
  it.each<[string, Partial<AuditEvent>, Record<string, unknown>, Record<string, unknown>]>([
    ["the required fields", {}, { type: "api.request", outcome: "allowed", actor: "user:alice" }, {}],
    ["method and route → action", { method: "GET", route: "/v1/whoami" }, { action: "GET /v1/whoami" }, {}],
    ["route alone → action", { route: "certificates:issue" }, { action: "certificates:issue" }, {}],
    ["method alone → nothing", { method: "GET" }, {}, {}],
    ["resource and namespace", { resource: "deployments", namespace: "prod" }, { resource: "deployments", namespace: "prod" }, {}],
    ["actorSerial", { actorSerial: "0a1b" }, {}, { actorSerial: "0a1b" }],
    ["sourceAddress → source", { sourceAddress: "127.0.0.1" }, {}, { source: "127.0.0.1" }],
    ["status", { status: 403 }, {}, { status: 403 }],
    ["reason → reasons", { reason: "PC_API_FORBIDDEN" }, {}, { reasons: ["PC_API_FORBIDDEN"] }],
    ["requestId", { requestId: "req-1" }, {}, { requestId: "req-1" }],
    ["bodySha256", { bodySha256: sha }, {}, { bodySha256: sha }],
    ["bodySha256 that is not a digest → nothing", { bodySha256: "the body itself" }, {}, {}],
    ["target", { target: "token:0123" }, {}, { target: "token:0123" }],
    ["matchOnly → targetHmac only", { matchOnly: "alice@example.com" }, {}, { targetHmac: createHmac("sha256", KEY).update("alice@example.com").digest("hex") }],
    ["a status that is not an integer → nothing", { status: "200" as unknown as number }, {}, {}],
    ["a target that is an object → nothing", { target: { token: "s3cret" } as unknown as string }, {}, {}],
  ])("%s", (_name, extra, head, body) => {
    const p = entryParts({ ...base, ...extra }, KEY);
    expect(p.head).toEqual({ type: "api.request", outcome: "allowed", actor: "user:alice", ...head });
    expect(p.body).toEqual(body);
    for (const k of Object.keys(p.head)) expect(HEAD_FIELDS as readonly string[]).toContain(k);
    for (const k of Object.keys(p.body)) expect(BODY_FIELDS as readonly string[]).toContain(k);
  });

  it.each([
    ["no type", { ...base, type: "" }],
    ["no actor", { ...base, actor: undefined as unknown as string }],
    ["an unknown outcome", { ...base, outcome: "maybe" as AuditEvent["outcome"] }],
  ])("refuses an event with %s", (_name, e) => {
    expect(() => entryParts(e, KEY)).toThrow(TypeError);
  });
});

describe("nothing undeclared reaches the database", () => {
  let t: ReturnType<typeof tempDir> | undefined;
  afterEach(() => t?.cleanup());

  it("an event carrying a token, a CSR and a body stores none of them, nor the matchOnly value", async () => {
    t = tempDir();
    const store = Store.open(t.dir);
    const log = new AuditLog(store, new ManualClock(), { trustDomain: "portcullis.local", hmacKey: randomBytes(32) });
    const secrets = {
      token: "tok_SECRET_1f9d8c7b6a5e4d3c",
      csr: "-----BEGIN CERTIFICATE REQUEST-----MIIBSECRETCSR-----END CERTIFICATE REQUEST-----",
      body: '{"password":"hunter2-SECRET"}',
      matchOnly: "mallory-SECRET@example.com",
    };
    const event = { ...base, target: "token:0123", requestId: "req-9", ...secrets } as AuditEvent;
    log.record(event);
    await log.append(event);
    log.recordAfter(event);
    log.flush();
    expect(store.auditLog.count()).toBe(3);
    const dbPath = join(t.dir, DB_FILE);
    const bytes = () => [dbPath, `${dbPath}-wal`].filter(existsSync).map((p) => readFileSync(p));
    const check = () => {
      for (const b of bytes()) {
        for (const s of [secrets.token, "MIIBSECRETCSR", "hunter2-SECRET", secrets.matchOnly, "SECRET"]) {
          expect(b.includes(Buffer.from(s)), s).toBe(false);
        }
      }
    };
    check();
    const all = [dbPath, `${dbPath}-wal`].filter(existsSync).map((p) => readFileSync(p).toString("latin1")).join("");
    expect(all).toContain("token:0123"); // the declared target is there: the check reads the right bytes
    const body = JSON.parse(store.auditLog.get(0)?.body ?? "{}") as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["requestId", "target", "targetHmac"]);
    store.close(); // WAL checkpointed into the main file
    check();
  });
});
