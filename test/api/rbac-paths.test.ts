/**
 * Path tricks on the API reach the same authorization decision as the canonical path, or
 * are refused: never a different allow. Each request-target is sent byte for byte on a
 * raw mTLS socket (an HTTP client library might normalise it first).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mark } from "./api-support.js";
import { decisionsSince, RawClient, setUpWorld, type Answer, type World } from "./rbac-support.js";

/** Variants of a canonical path that a router, a proxy or a decoder might treat as it. */
const POLICY_TRICKS = [
  "//v1/policy",
  "/v1//policy",
  "/v1/policy/",
  "/v1/policy//",
  "/V1/POLICY",
  "/v1/Policy",
  "/v1/%70olicy",
  "/v1/polic%79",
  "/%761/policy",
  "/v1%2fpolicy",
  "/v1/policy%2f",
  "/v1/./policy",
  "/v1/x/../policy",
  "/v1/x/%2e%2e/policy",
  "/v1/policy/.",
  "/v1/policy/history/..",
  "/v1/policy%00",
  "/v1/policy;x",
  "/v1/policy?",
  "/v1/policy#x",
  "/v1/policy%23x",
  "/v1/policy%3fx",
  "/./v1/policy",
  "/v1/namespaces/../policy",
  "http://localhost/v1/policy",
];

/** Variants that name a namespace the developer may not read (billing), or none at all. */
const NAMESPACE_TRICKS = [
  "/v1/namespaces/%2e%2e",
  "/v1/namespaces/..",
  "/v1/namespaces/.",
  "/v1/namespaces/payments%2f..",
  "/v1/namespaces/payments%2f..%2fbilling",
  "/v1/namespaces/payments/../billing",
  "/v1/namespaces/./billing",
  "/v1/namespaces/./payments",
  "/v1/namespaces//billing",
  "/v1/namespaces/billing/",
  "/v1/namespaces/BILLING",
  "/v1/namespaces/Payments",
  "/v1/namespaces/bil%6cing",
  "/v1/namespaces/pay%6dents",
  "/v1/namespaces/%2a",
  "/v1/namespaces/*",
  "/v1/namespaces/payments%00",
  "/v1/namespaces/payments%20",
  "/v1/namespaces/%20payments",
  "/v1/namespaces/payments,billing",
  "/v1/namespaces/payments?namespace=billing",
  "/v1/namespaces/billing?namespace=payments",
];

describe("path tricks", () => {
  let t: TestGateway;
  let w: World;
  let admin: RawClient;
  let dev: RawClient;

  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpWorld(t);
    admin = await RawClient.open(t, w.admin);
    dev = await RawClient.open(t, w.dev);
  });
  afterAll(async () => {
    admin?.close();
    dev?.close();
    await t?.close();
  });

  /** Sends on a kept connection; reopens it if the server closed it after a refusal. */
  async function send(who: "admin" | "dev", target: string): Promise<Answer> {
    try {
      return await (who === "admin" ? admin : dev).send("GET", target);
    } catch {
      const c = await RawClient.open(t, who === "admin" ? w.admin : w.dev);
      if (who === "admin") admin = c;
      else dev = c;
      return c.send("GET", target);
    }
  }

  it("the canonical paths decide as expected", async () => {
    expect((await send("dev", "/v1/policy")).status).toBe(403);
    expect((await send("admin", "/v1/policy")).status).toBe(200);
    expect((await send("dev", "/v1/namespaces/payments")).status).toBe(200);
    expect((await send("dev", "/v1/namespaces/billing")).status).toBe(403);
    expect((await send("admin", "/v1/namespaces/billing")).status).toBe(200);
  });

  it.each(POLICY_TRICKS)("GET %s: never 200 for the developer; for the admin, a 200 is the canonical answer", async (target) => {
    const canonical = await send("admin", "/v1/policy");
    const d = await send("dev", target);
    expect(d.status, `${target}: ${d.text}`).not.toBe(200);
    expect([400, 403, 404]).toContain(d.status);
    const a = await send("admin", target);
    expect([200, 400, 404]).toContain(a.status);
    if (a.status === 200) {
      // It reached GET /v1/policy: the same answer for the admin, the same refusal for the developer.
      expect(a.body).toEqual(canonical.body);
      expect(d.status, target).toBe(403);
    } else {
      // Refused before any decision: the same refusal for both.
      expect(d.status, target).toBe(a.status);
    }
  });

  it.each(NAMESPACE_TRICKS)("GET %s: the developer reads payments only; any 200 is the canonical answer", async (target) => {
    const m = mark(t);
    const d = await send("dev", target);
    expect([200, 400, 403, 404]).toContain(d.status);
    const decisions = decisionsSince(t, m);
    if (d.status === 200) {
      // An allow only ever for payments, with the canonical answer.
      expect(d.body).toEqual((await send("dev", "/v1/namespaces/payments")).body);
      expect(decisions.map((x) => [x.outcome, x.target])).toEqual([["allowed", "payments"]]);
    }
    // Whatever was decided was decided about a real namespace name or the cluster ("*", which
    // the developer does not hold): never "..", a name with a slash, or an undecoded name.
    for (const x of decisions) {
      expect(["payments", "billing", "*"], `${target}: ${String(x.target)}`).toContain(x.target);
      if (x.target !== "payments") expect(x.outcome, target).toBe("denied");
    }
    const a = await send("admin", target);
    if (a.status === 200) {
      const name = (a.body as { name: string }).name;
      expect(["payments", "billing"]).toContain(name);
      expect(a.body).toEqual((await send("admin", `/v1/namespaces/${name}`)).body);
    }
  });

  it("a role-binding through a dot-segment or an encoded slash is refused, and binds nothing", async () => {
    const before = t.gw.policy.current().version;
    for (const target of [
      "/v1/namespaces/payments/../billing/role-bindings",
      "/v1/namespaces/payments%2f..%2fbilling/role-bindings",
      "/v1/namespaces/%2e%2e/role-bindings",
      "/v1/namespaces/%2a/role-bindings",
      "/v1/namespaces/PAYMENTS/role-bindings",
    ]) {
      const c = await RawClient.open(t, w.admin);
      try {
        const r = await c.send("POST", target, { identity: "user:trick", role: "developer" });
        // %2a decodes to "*": that is the cluster-wide binding, and it must be the same decision
        // as the canonical "/v1/namespaces/*/role-bindings" (admin may), so it is allowed.
        if (target.includes("%2a")) expect([200, 400], `${target}: ${r.text}`).toContain(r.status);
        else expect([400, 404], `${target}: ${r.text}`).toContain(r.status);
      } finally {
        c.close();
      }
    }
    const after = t.gw.policy.current();
    const added = after.policy.bindings.filter((b) => b.member === "user:trick");
    expect(added.every((b) => b.namespace === "*")).toBe(true);
    expect(after.version - before).toBeLessThanOrEqual(1);
  });
});
