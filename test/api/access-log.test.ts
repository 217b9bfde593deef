/**
 * The access log: every request on either port yields exactly one `<port>.request`
 * event naming the caller (identity and certificate serial), the route, the status and
 * the request id; an error answer carries the same request id, and so do the
 * authorization decision and the domain events of that request. Secrets (tokens,
 * CSRs, keys) never reach the log.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredAccessEvent } from "../../src/store/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mtlsGet, mtlsJson, type HandshakeResult } from "../support/tls-client.js";
import { adminPost, bootGet, bootPost, creds, csrFor, enrollNew, eventsSince, expectError, json, mark, spiffe, waitFor, type Enrolled } from "./api-support.js";

describe("access log of API requests", () => {
  let t: TestGateway;
  let alice: Enrolled;
  let adminSerial: string;
  beforeAll(async () => {
    t = await startTestGateway();
    alice = await enrollNew(t, "user:alice");
    adminSerial = json<{ serial: string }>(await mtlsGet(t.api, "/v1/whoami", creds(t, t.admin))).serial;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Runs one request and returns the single request event it produced, and all its events. */
  async function one(port: "api" | "bootstrap", fn: () => Promise<HandshakeResult>): Promise<{ r: HandshakeResult; ev: StoredAccessEvent; all: StoredAccessEvent[] }> {
    const before = mark(t);
    const r = await fn();
    expect(r.ok, r.error).toBe(true);
    // The event is written when the response has been sent; wait for it.
    const ev = await waitFor(() => eventsSince(t, before).find((e) => e.type === `${port}.request`), 2000, `${port}.request`);
    const all = eventsSince(t, before);
    expect(all.filter((e) => e.type.endsWith(".request"))).toHaveLength(1);
    expect(ev.requestId).toMatch(/^[0-9a-f-]{8,}$/);
    expect(ev.sourceAddress).toBe("127.0.0.1");
    return { r, ev, all };
  }

  it("records a successful request with the caller's identity and serial", async () => {
    const { ev } = await one("api", () => mtlsGet(t.api, "/v1/whoami", creds(t, alice)));
    expect(ev).toMatchObject({ type: "api.request", outcome: "allowed", actor: "user:alice", actorSerial: alice.serial, method: "GET", route: "/v1/whoami", status: 200 });
  });

  it("ties the authorization decision and the domain event to the request id", async () => {
    const { ev, all } = await one("api", () => adminPost(t, "/v1/enroll-tokens", { identity: "user:bob" }));
    expect(ev).toMatchObject({ actor: "user:admin", actorSerial: adminSerial, method: "POST", route: "/v1/enroll-tokens", status: 201, outcome: "allowed" });
    const authz = all.find((e) => e.type === "authz.decision");
    expect(authz).toMatchObject({ outcome: "allowed", actor: "user:admin", actorSerial: adminSerial, route: "enroll-tokens:create", requestId: ev.requestId });
    expect(authz?.reason).toBe("p, platform-admin, *, *, *, allow");
    const created = all.find((e) => e.type === "pki.enroll_token_created");
    expect(created).toMatchObject({ actor: "user:admin", requestId: ev.requestId });
    expect(created?.target).toContain("user:bob");
  });

  it("gives an error answer the request id of its access event: forbidden", async () => {
    const { r, ev, all } = await one("api", () => mtlsJson(t.api, "POST", "/v1/enroll-tokens", creds(t, alice), JSON.stringify({ identity: "user:alice" })));
    const err = expectError(r, 403, "PC_API_FORBIDDEN");
    expect(ev).toMatchObject({ requestId: err.requestId, actor: "user:alice", actorSerial: alice.serial, status: 403, outcome: "denied", route: "/v1/enroll-tokens" });
    expect(all.find((e) => e.type === "authz.decision")).toMatchObject({ requestId: err.requestId, outcome: "denied", reason: "default-deny" });
    expect(all.filter((e) => e.type.startsWith("pki."))).toEqual([]);
  });

  it("gives an error answer the request id of its access event: invalid body, unknown route, too large", async () => {
    const cases: [() => Promise<HandshakeResult>, number, string, string][] = [
      [() => adminPost(t, "/v1/enroll-tokens", { identity: "user:x", extra: 1 }), 400, "PC_API_INVALID_BODY", "/v1/enroll-tokens"],
      [() => mtlsGet(t.api, "/v1/nothing-here", creds(t, alice)), 404, "PC_API_NOT_FOUND", "unmatched"],
      [() => mtlsJson(t.api, "POST", "/v1/certificates/renew", creds(t, alice), JSON.stringify({ csr: "A".repeat(40_000) })), 413, "PC_API_BODY_TOO_LARGE", "/v1/certificates/renew"],
    ];
    for (const [fn, status, code, route] of cases) {
      const { r, ev } = await one("api", fn);
      const err = expectError(r, status, code);
      expect(ev, code).toMatchObject({ requestId: err.requestId, status, route, outcome: "denied" });
      expect(ev.actor, code).not.toBe("anonymous");
    }
  });

  it("records bootstrap requests as anonymous, with the request id of an error answer", async () => {
    const bad = await one("bootstrap", () => bootPost(t, "/v1/enroll", JSON.stringify({ token: "pct_nope", csr: "x" })));
    const err = expectError(bad.r, 401, "PC_PKI_TOKEN_INVALID");
    expect(bad.ev).toMatchObject({ type: "bootstrap.request", actor: "anonymous", requestId: err.requestId, status: 401, route: "/v1/enroll", method: "POST" });
    expect(bad.ev.actorSerial).toBeUndefined();

    const ok = await one("bootstrap", () => bootGet(t, "/v1/ca.pem"));
    expect(ok.ev).toMatchObject({ actor: "anonymous", status: 200, route: "/v1/ca.pem", outcome: "allowed" });
  });

  it("gives every request its own id, and one event each", async () => {
    const before = mark(t);
    const n = 8;
    const rs = await Promise.all(Array.from({ length: n }, () => mtlsGet(t.api, "/v1/nope", creds(t, alice))));
    const ids = rs.map((r) => expectError(r, 404, "PC_API_NOT_FOUND").requestId);
    expect(new Set(ids).size).toBe(n);
    const evs = await waitFor(() => {
      const e = eventsSince(t, before).filter((x) => x.type === "api.request");
      return e.length >= n ? e : undefined;
    });
    expect(evs).toHaveLength(n);
    expect(evs.map((e) => e.requestId).sort()).toEqual([...ids].sort());
  });

  it("never writes a token, a CSR or a key into the access log", async () => {
    const before = mark(t);
    const created = json<{ token: string }>(await adminPost(t, "/v1/enroll-tokens", { identity: "user:secretive" }));
    const csr = csrFor(spiffe(t, "user:secretive"));
    const r = await bootPost(t, "/v1/enroll", JSON.stringify({ token: created.token, csr: csr.pem }));
    expect(r.status).toBe(201);
    const used = await waitFor(() => eventsSince(t, before).find((e) => e.type === "pki.enroll_token_used"));
    expect(used.actor).toBe("user:secretive");
    await waitFor(() => eventsSince(t, before).find((e) => e.type === "bootstrap.request"));
    const text = JSON.stringify(eventsSince(t, before));
    const secret = created.token.slice(created.token.indexOf(".") + 1);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(csr.pem.split("\n")[1] as string);
    expect(text).not.toContain(csr.keyPem.split("\n")[1] as string);
  });
});
