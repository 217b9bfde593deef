/**
 * Secrets through the API, against a real gateway over mutual TLS:
 * - values go in base64 (create, update) and come out only through an explicit read by a
 *   secret-reader, with `Cache-Control: no-store`; every other answer is metadata;
 * - strict input: unknown fields, bad base64, an empty value, a value over 64 KiB (413
 *   PC_SECRETS_TOO_LARGE, while exactly 64 KiB passes), bad names;
 * - who may do what: the administrator manages secrets and the keyring but cannot read a
 *   value; a developer sees metadata only; a node sees nothing; an auditor sees metadata
 *   and the keyring's status;
 * - delete, and the keyring's status, rotation and retirement.
 */
import { randomBytes } from "node:crypto";
import { request } from "node:https";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { pino } from "pino";
import { loggerOptions, parseHostPort } from "../../src/core/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { call, expectCode, type Who } from "./rbac-support.js";

const NS = "payments";
const OTHER = "billing";
const SHIPPED = readFileSync(new URL("../../policies/rbac/policy.csv", import.meta.url), "utf8");
let t: TestGateway;
let admin: Who;
let dev: Who;
let reader: Who;
let node: Who;
let auditor: Who;

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64");
const base = `/v1/namespaces/${NS}/secrets`;

/** One request, with the response headers. */
function callWithHeaders(who: Who, method: string, path: string, body?: unknown): Promise<{ status: number; headers: Record<string, unknown>; body: any }> {
  const { host, port } = parseHostPort(t.api);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, method, path, ca: t.caPem, cert: who.certPem, key: who.keyPem, agent: false, headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {} },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

beforeAll(async () => {
  // secret-reader is bound at init: binding it later needs a caller who reads values itself.
  t = await startTestGateway({ init: { policyCsv: `${SHIPPED}\ng, user:reader, secret-reader, ${NS}\n` } });
  for (const ns of [NS, OTHER]) t.gw.namespaces.create(ns, {}, { identity: "user:admin" });
  t.gw.policy.bind("user:dev1", "developer", NS, { identity: "user:admin" });
  t.gw.policy.bind("node:engine-1", "node", "*", { identity: "user:admin" });
  t.gw.policy.bind("user:carol", "auditor", "*", { identity: "user:admin" });
  admin = t.admin;
  dev = t.issueClient("user:dev1");
  reader = t.issueClient("user:reader");
  node = t.issueClient("node:engine-1");
  auditor = t.issueClient("user:carol");
}, 60_000);

afterAll(async () => {
  await t?.close();
});

describe("secrets API", () => {
  const v1 = randomBytes(48);
  const v2 = Buffer.from("second version\n");

  it("creates a secret and answers metadata only", async () => {
    const a = await call(t, admin, "POST", base, { name: "db-password", value: b64(v1) });
    expect(a.status, a.text).toBe(201);
    expect(a.body).toMatchObject({ namespace: NS, name: "db-password", createdBy: "user:admin", latest: 1, usedBy: [] });
    expect(a.body.versions).toEqual([expect.objectContaining({ version: 1, size: 48, createdBy: "user:admin" })]);
    expect(Object.keys(a.body).sort()).toEqual(["createdAt", "createdBy", "latest", "name", "namespace", "usedBy", "versions"]);
    expect(a.text).not.toContain(b64(v1));
    expectCode(await call(t, admin, "POST", base, { name: "db-password", value: b64("x") }), 409, "PC_SECRETS_EXISTS");
  });

  it("adds a version with PUT", async () => {
    const a = await call(t, admin, "PUT", `${base}/db-password`, { value: b64(v2) });
    expect(a.status, a.text).toBe(200);
    expect(a.body.latest).toBe(2);
    expect(a.body.versions.map((v: { version: number; size: number }) => [v.version, v.size])).toEqual([[1, 48], [2, v2.length]]);
    expectCode(await call(t, admin, "PUT", `${base}/nope`, { value: b64("x") }), 404, "PC_SECRETS_NOT_FOUND");
  });

  it("lists and gets metadata for whoever holds secret-metadata:read", async () => {
    for (const who of [admin, dev, reader, auditor]) {
      const list = await call(t, who, "GET", base);
      expect(list.status, list.text).toBe(200);
      expect(list.body.items.map((m: { name: string; latest: number }) => [m.name, m.latest])).toEqual([["db-password", 2]]);
      const one = await call(t, who, "GET", `${base}/db-password`);
      expect(one.status).toBe(200);
      expect(one.body.versions).toHaveLength(2);
      expect(one.text).not.toContain(b64(v1));
    }
    expectCode(await call(t, dev, "GET", `/v1/namespaces/${OTHER}/secrets`), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, node, "GET", base), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, admin, "GET", `${base}/nope`), 404, "PC_SECRETS_NOT_FOUND");
  });

  it("reads a value only as a secret-reader, with Cache-Control: no-store", async () => {
    const latest = await callWithHeaders(reader, "POST", `${base}/db-password/read`, {});
    expect(latest.status).toBe(200);
    expect(latest.headers["cache-control"]).toBe("no-store");
    expect(latest.body).toEqual({ name: "db-password", version: 2, value: b64(v2) });
    const first = await callWithHeaders(reader, "POST", `${base}/db-password/read`, { version: 1 });
    expect(Buffer.from(first.body.value, "base64").equals(v1)).toBe(true);
    expectCode(await call(t, reader, "POST", `${base}/db-password/read`, { version: 9 }), 404, "PC_SECRETS_VERSION_NOT_FOUND");
    expectCode(await call(t, reader, "POST", `${base}/db-password/read`, { version: 1, extra: true }), 400, "PC_API_INVALID_BODY");
    for (const who of [admin, dev, auditor, node]) {
      const refused = await call(t, who, "POST", `${base}/db-password/read`, {});
      expectCode(refused, 403, "PC_API_FORBIDDEN");
      expect(refused.text).not.toContain(b64(v2));
    }
    // A reader in payments reads nothing elsewhere.
    expectCode(await call(t, reader, "POST", `/v1/namespaces/${OTHER}/secrets/db-password/read`, {}), 403, "PC_API_FORBIDDEN");
  });

  it("refuses writes to those without secrets:create / update / delete", async () => {
    for (const who of [dev, reader, auditor]) {
      expectCode(await call(t, who, "POST", base, { name: "mine", value: b64("x") }), 403, "PC_API_FORBIDDEN");
      expectCode(await call(t, who, "PUT", `${base}/db-password`, { value: b64("x") }), 403, "PC_API_FORBIDDEN");
      expectCode(await call(t, who, "DELETE", `${base}/db-password`), 403, "PC_API_FORBIDDEN");
    }
  });

  const bad: [string, unknown, number, string][] = [
    ["an unknown field", { name: "a", value: b64("x"), note: "hi" }, 400, "PC_API_INVALID_BODY"],
    ["no value", { name: "a" }, 400, "PC_API_INVALID_BODY"],
    ["a value that is not a string", { name: "a", value: 12 }, 400, "PC_API_INVALID_BODY"],
    ["an empty value", { name: "a", value: "" }, 400, "PC_SECRETS_VALUE_INVALID"],
    ["base64 with a bad character", { name: "a", value: "c2VjcmV0!!" }, 400, "PC_SECRETS_VALUE_INVALID"],
    ["base64 without padding", { name: "a", value: "c2VjcmV0MQ" }, 400, "PC_SECRETS_VALUE_INVALID"],
    ["base64url", { name: "a", value: "_-__" }, 400, "PC_SECRETS_VALUE_INVALID"],
    ["base64 with a newline", { name: "a", value: "c2Vj\ncmV0" }, 400, "PC_SECRETS_VALUE_INVALID"],
    ["a name with upper case", { name: "DB", value: b64("x") }, 400, "PC_SECRETS_NAME_INVALID"],
    ["a name with a slash", { name: "a/b", value: b64("x") }, 400, "PC_SECRETS_NAME_INVALID"],
    ["one byte over 64 KiB", { name: "big", value: b64(Buffer.alloc(64 * 1024 + 1, 7)) }, 413, "PC_SECRETS_TOO_LARGE"],
    ["a body over the route's limit", { name: "big", value: b64(Buffer.alloc(200 * 1024, 7)) }, 413, "PC_API_BODY_TOO_LARGE"],
  ];
  it.each(bad)("refuses %s, echoing nothing of it", async (_n, body, status, code) => {
    const a = await call(t, admin, "POST", base, body);
    const message = expectCode(a, status, code);
    const value = (body as { value?: unknown }).value;
    if (typeof value === "string" && value.length > 3) expect(message).not.toContain(value.slice(0, 8));
    if (code === "PC_SECRETS_TOO_LARGE") expect(message).toMatch(/at most 65536 bytes/);
  });

  it("takes exactly 64 KiB", async () => {
    const a = await call(t, admin, "POST", base, { name: "big", value: b64(Buffer.alloc(64 * 1024, 7)) });
    expect(a.status, a.text).toBe(201);
    expect(a.body.versions[0].size).toBe(65536);
    expect((await call(t, admin, "DELETE", `${base}/big`)).status).toBe(200);
  });

  it("refuses a secret in a namespace that does not exist", async () => {
    expectCode(await call(t, admin, "POST", "/v1/namespaces/nowhere/secrets", { name: "a", value: b64("x") }), 404, "PC_RBAC_NAMESPACE_NOT_FOUND");
  });

  it("deletes a secret no deployment uses", async () => {
    expect((await call(t, admin, "POST", base, { name: "temp", value: b64("t") })).status).toBe(201);
    const del = await call(t, admin, "DELETE", `${base}/temp`);
    expect(del.status, del.text).toBe(200);
    expect(del.body).toEqual({ namespace: NS, name: "temp", deleted: true, stopped: [] });
    expectCode(await call(t, admin, "GET", `${base}/temp`), 404, "PC_SECRETS_NOT_FOUND");
    expectCode(await call(t, admin, "DELETE", `${base}/temp`), 404, "PC_SECRETS_NOT_FOUND");
    expectCode(await call(t, admin, "DELETE", `${base}/db-password?force=yes`), 400, "PC_API_INVALID_BODY");
  });

  it("shows, rotates and retires key-encryption keys, never a key", async () => {
    const before = await call(t, auditor, "GET", "/v1/keyring");
    expect(before.status, before.text).toBe(200);
    expect(Object.keys(before.body).sort()).toEqual(["active", "keks", "rewrapping"]);
    const old = before.body.active as string;
    expect(before.body.keks).toEqual([expect.objectContaining({ id: old, active: true, dataKeys: 2 })]);
    expectCode(await call(t, dev, "GET", "/v1/keyring"), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, auditor, "POST", "/v1/keyring/rotate", {}), 403, "PC_API_FORBIDDEN");

    const rotated = await call(t, admin, "POST", "/v1/keyring/rotate", {});
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.body.active).not.toBe(old);
    for (const k of rotated.body.keks) expect(Object.keys(k).sort()).toEqual(["active", "createdAt", "dataKeys", "id"]);
    // Once the data keys are rewrapped the old KEK wraps none and can be retired.
    const deadline = Date.now() + 20_000;
    let status = rotated.body;
    while (status.rewrapping && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await call(t, admin, "GET", "/v1/keyring")).body;
    }
    expect(status.rewrapping).toBe(false);
    const retired = await call(t, admin, "POST", "/v1/keyring/retire", { kek: old });
    expect(retired.status, retired.text).toBe(200);
    expect(retired.body.keks.map((k: { id: string }) => k.id)).toEqual([status.active]);
    expectCode(await call(t, admin, "POST", "/v1/keyring/retire", { kek: old }), 404, "PC_SECRETS_KEK_NOT_FOUND");
    // Still readable after the rotation.
    const again = await call(t, reader, "POST", `${base}/db-password/read`, {});
    expect(again.body.value).toBe(b64(v2));
  });

  it("the logger drops value fields and bodies, at any level", () => {
    let out = "";
    const sink = new Writable({ write: (c: Buffer, _e, done) => ((out += c.toString()), done()) });
    const log = pino(loggerOptions("debug"), sink);
    log.debug({ value: "pcleak-top", req: { body: { value: "pcleak-body" } }, res: { body: "pcleak-res" }, item: { value: "pcleak-nested" } }, "a line");
    expect(out).toContain("a line");
    expect(out).not.toContain("pcleak");
  });
});
