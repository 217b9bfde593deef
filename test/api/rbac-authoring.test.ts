/**
 * Policy authoring through the API, over real mTLS: a policy is validated as a whole
 * (every problem with its line), applied atomically (each request sees the old or the new
 * policy, never a mix, never going back), versioned with author, time, message and diff,
 * and rolled back as a new version. No caller can grant powers it does not hold. Bad
 * input is refused with a clear code and leaves the policy in force unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { adminPost, enrollNew, type Enrolled } from "./api-support.js";
import { call, canI, expectCode, policyInForce, RawClient, setUpWorld, type Answer, type World } from "./rbac-support.js";

let t: TestGateway;
let w: World;

beforeAll(async () => {
  t = await startTestGateway();
  w = await setUpWorld(t);
});
afterAll(async () => {
  await t?.close();
});

const linesOf = (csv: string) => csv.split("\n").filter((l) => l !== "");
const csvOf = (lines: readonly string[]) => `${lines.join("\n")}\n`;

/** Runs `fn` and asserts the policy in force and a few decisions did not change. */
async function unchanged(fn: () => Promise<void>): Promise<void> {
  const before = await policyInForce(t);
  const decisions = async () =>
    Promise.all([
      canI(t, w.dev, "deploy", "deployments", "payments"),
      canI(t, w.dev, "deploy", "deployments", "billing"),
      canI(t, w.sec, "read", "secrets", "payments"),
      canI(t, w.sec, "update", "policies", "*"),
    ]).then((as) => as.map((a) => [a.body.allowed, a.body.rule, a.body.policyVersion]));
  const d0 = await decisions();
  await fn();
  expect(await policyInForce(t)).toEqual(before);
  expect(await decisions()).toEqual(d0);
  expect(d0.map((d) => d[0])).toEqual([true, false, false, true]);
}

describe("PUT /v1/policy validates the whole file", () => {
  it("reports a syntax error on line 3 and an unknown action on line 5 together; nothing changes", async () => {
    await unchanged(async () => {
      const cur = linesOf((await policyInForce(t)).csv);
      const bad = csvOf([cur[0] as string, cur[1] as string, "p, developer, *", cur[2] as string, "p, developer, *, deployments, launch, allow", ...cur.slice(3)]);
      const a = await call(t, w.admin, "PUT", "/v1/policy", { csv: bad, message: "broken" });
      const msg = expectCode(a, 400, "PC_RBAC_POLICY_INVALID");
      expect(msg).toMatch(/line 3\b/);
      expect(msg).toMatch(/line 5\b/);
      expect(msg).toContain("launch");
    });
  });

  it.each([
    ["a binding to a role no rule defines", (l: string[]) => [...l, "g, user:dev, no-such-role, payments"], /line \d+ \(role\): role "no-such-role" is not defined/],
    ["a duplicate rule", (l: string[]) => [...l, l[0] as string], /duplicate rule \(same as line 1\)/],
    ["an unknown resource", (l: string[]) => [...l, "p, developer, *, rockets, read, allow"], /unknown resource "rockets"/],
    ["an unknown line type", (l: string[]) => ["x, y", ...l], /line 1: unknown line type/],
    ["an allow that edits the audit log", (l: string[]) => [...l, "p, developer, *, audit, update, allow"], /nothing can edit the audit log/],
    ["binary noise", () => ["\u0000\u0001\u0002,,,", "p,,,,,"], /line 1/],
    ["an empty field", (l: string[]) => [...l, "p, developer, , deployments, read, allow"], /empty namespace/],
  ] as const)("refuses %s with its line, and changes nothing", async (_name, edit, reason) => {
    await unchanged(async () => {
      const cur = linesOf((await policyInForce(t)).csv);
      const msg = expectCode(await call(t, w.admin, "PUT", "/v1/policy", { csv: csvOf(edit(cur)) }), 400, "PC_RBAC_POLICY_INVALID");
      expect(msg).toMatch(reason);
    });
  });
});

describe("apply, history, rollback", () => {
  it("applies a change as a new version; history shows author, time, message and diff", async () => {
    const before = await policyInForce(t);
    expect((await canI(t, w.dev, "deploy", "deployments", "billing")).body.allowed).toBe(false);
    const startedAt = Date.now();
    const csv = csvOf([...linesOf(before.csv), "g, user:dev, developer, billing"]);
    const a = await call(t, w.admin, "PUT", "/v1/policy", { csv, message: "dev joins billing" });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toEqual({ version: before.version + 1, added: ["g, user:dev, developer, billing"], removed: [] });
    const d = await canI(t, w.dev, "deploy", "deployments", "billing");
    expect(d.body).toMatchObject({ allowed: true, rule: "p, developer, *, deployments, deploy, allow", policyVersion: before.version + 1 });

    const h = await call(t, w.aud, "GET", "/v1/policy/history");
    expect(h.status).toBe(200);
    const items = h.body.items as { version: number; author: string; time: string; message: string; added: string[]; removed: string[]; rollbackOf: number | null }[];
    expect(items.map((i) => i.version)).toEqual(Array.from({ length: before.version + 1 }, (_, i) => i + 1));
    const last = items.at(-1);
    expect(last).toMatchObject({ version: before.version + 1, author: "user:admin", message: "dev joins billing", added: ["g, user:dev, developer, billing"], removed: [], rollbackOf: null });
    const time = Date.parse(last?.time ?? "");
    expect(time).toBeGreaterThanOrEqual(startedAt - 1000);
    expect(time).toBeLessThanOrEqual(Date.now() + 1000);
    expect(items[0]).toMatchObject({ version: 1, author: "service:portcullis-init", message: "initial policy", removed: [] });
    // Bindings the administrator made through the API are versions too, with their diff.
    expect(items.some((i) => i.author === "user:admin" && i.added.includes("g, user:sec, security-admin, *"))).toBe(true);

    // Removing it again: a version whose diff has a "-" line.
    const back = await call(t, w.admin, "PUT", "/v1/policy", { csv: before.csv, message: "dev leaves billing" });
    expect(back.body).toEqual({ version: before.version + 2, added: [], removed: ["g, user:dev, developer, billing"] });
    expect((await canI(t, w.dev, "deploy", "deployments", "billing")).body.allowed).toBe(false);
  });

  it("every request sees the old or the new policy, and never the old again once the new one is seen", async () => {
    const before = await policyInForce(t);
    const v = before.version;
    const flipped = csvOf([...linesOf(before.csv), "g, user:dev, developer, billing"]);
    const q = "/v1/can-i?action=deploy&resource=deployments&namespace=billing";

    // A sequential stream on one keep-alive connection, and 50 parallel one-shot requests.
    const raw = await RawClient.open(t, w.dev);
    const stream: Answer[] = [];
    let stop = false;
    const streaming = (async () => {
      while (!stop) stream.push(await raw.send("GET", q));
    })();
    await new Promise((r) => setTimeout(r, 30));
    const burst = Array.from({ length: 50 }, () => call(t, w.dev, "GET", q));
    const apply = call(t, w.admin, "PUT", "/v1/policy", { csv: flipped, message: "flip" });
    const after = apply.then(async (a) => {
      // Requests made after the apply answered see the new policy only.
      const later = await Promise.all(Array.from({ length: 10 }, () => call(t, w.dev, "GET", q)));
      return { a, later };
    });
    const [answers, { a, later }] = await Promise.all([Promise.all(burst), after]);
    await new Promise((r) => setTimeout(r, 30));
    stop = true;
    await streaming;
    raw.close();

    expect(a.status, a.text).toBe(200);
    expect(a.body.version).toBe(v + 1);
    const state = (x: Answer) => {
      expect(x.status, x.text).toBe(200);
      const old = x.body.allowed === false && x.body.rule === "default-deny" && x.body.policyVersion === v;
      const neu = x.body.allowed === true && x.body.rule === "p, developer, *, deployments, deploy, allow" && x.body.policyVersion === v + 1;
      expect(old || neu, JSON.stringify(x.body)).toBe(true);
      return neu ? 1 : 0;
    };
    answers.forEach(state);
    expect(later.map(state)).toEqual(later.map(() => 1));
    const seq = stream.map(state);
    expect(seq.length).toBeGreaterThan(2);
    // Monotone: once the new policy is seen, never the old one again.
    const firstNew = seq.indexOf(1);
    expect(firstNew).toBeGreaterThan(0);
    expect(seq.slice(firstNew).every((s) => s === 1)).toBe(true);

    // Restore for the tests that follow.
    expect((await call(t, w.admin, "PUT", "/v1/policy", { csv: before.csv, message: "unflip" })).status).toBe(200);
  });

  it("refuses a rollback to a version that does not exist; changes nothing", async () => {
    await unchanged(async () => {
      expectCode(await call(t, w.admin, "POST", "/v1/policy/rollback", { version: 9999 }), 404, "PC_RBAC_VERSION_NOT_FOUND");
      expectCode(await call(t, w.admin, "POST", "/v1/policy/rollback", { version: 0 }), 400, "PC_API_INVALID_BODY");
    });
  });
});

describe("no escalation", () => {
  it("security-admin cannot apply a policy that grants itself secrets read or platform-admin", async () => {
    await unchanged(async () => {
      const cur = linesOf((await policyInForce(t)).csv);
      for (const extra of ["p, user:sec, *, secrets, read, allow", "g, user:sec, platform-admin, *", "p, security-admin, *, namespaces, create, allow"]) {
        const msg = expectCode(await call(t, w.sec, "PUT", "/v1/policy", { csv: csvOf([...cur, extra]), message: "mine" }), 403, "PC_RBAC_ESCALATION");
        expect(msg).toContain(extra);
      }
    });
  });

  it("security-admin cannot bind itself to platform-admin cluster-wide, nor anyone to a role with powers it lacks", async () => {
    await unchanged(async () => {
      expectCode(await adminPostAs(w.sec, "/v1/namespaces/*/role-bindings", { identity: "user:sec", role: "platform-admin" }), 403, "PC_RBAC_ESCALATION");
      // developer can deploy; security-admin cannot, so it cannot hand that out.
      expectCode(await adminPostAs(w.sec, "/v1/namespaces/payments/role-bindings", { identity: "user:friend", role: "developer" }), 403, "PC_RBAC_ESCALATION");
      // auditor may export the audit log; security-admin may not.
      expectCode(await adminPostAs(w.sec, "/v1/namespaces/*/role-bindings", { identity: "user:friend", role: "auditor" }), 403, "PC_RBAC_ESCALATION");
    });
  });

  it("removing a deny rule is a grant: refused to security-admin, and even to platform-admin, who do not hold secrets read", async () => {
    await unchanged(async () => {
      const cur = linesOf((await policyInForce(t)).csv);
      for (const [who, deny] of [
        [w.sec, "p, security-admin, *, secrets, read, deny"],
        [w.sec, "p, platform-admin, *, secrets, read, deny"],
        [w.admin, "p, platform-admin, *, secrets, read, deny"],
      ] as const) {
        expect(cur).toContain(deny);
        const msg = expectCode(await call(t, who, "PUT", "/v1/policy", { csv: csvOf(cur.filter((l) => l !== deny)) }), 403, "PC_RBAC_ESCALATION");
        expect(msg).toContain(`cannot remove "${deny}"`);
      }
    });
  });

  it("a developer allowed to bind in payments can hand out developer there, never platform-admin", async () => {
    const cur = linesOf((await policyInForce(t)).csv);
    const grant = await call(t, w.admin, "PUT", "/v1/policy", {
      csv: csvOf([...cur, "p, binder, *, role-bindings, create, allow", "g, user:dev, binder, payments"]),
      message: "dev may bind in payments",
    });
    expect(grant.status, grant.text).toBe(200);
    try {
      await unchanged(async () => {
        expectCode(await adminPostAs(w.dev, "/v1/namespaces/payments/role-bindings", { identity: "user:pal", role: "platform-admin" }), 403, "PC_RBAC_ESCALATION");
        expectCode(await adminPostAs(w.dev, "/v1/namespaces/payments/role-bindings", { identity: "user:dev", role: "security-admin" }), 403, "PC_RBAC_ESCALATION");
        // Not in billing at all: the route's own permission.
        expectCode(await adminPostAs(w.dev, "/v1/namespaces/billing/role-bindings", { identity: "user:pal", role: "developer" }), 403, "PC_API_FORBIDDEN");
      });
      const ok = await adminPostAs(w.dev, "/v1/namespaces/payments/role-bindings", { identity: "user:pal", role: "developer" });
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.added).toEqual(["g, user:pal, developer, payments"]);
      expect((await canI(t, w.admin, "deploy", "deployments", "payments", "user:pal")).body.allowed).toBe(true);
    } finally {
      const restore = await call(t, w.admin, "PUT", "/v1/policy", { csv: csvOf(cur), message: "restore" });
      expect(restore.status, restore.text).toBe(200);
    }
  });

  it("platform-admin binds and unbinds a developer", async () => {
    const carol: Enrolled = await enrollNew(t, "user:carol");
    expectCode(await call(t, carol, "GET", "/v1/namespaces/billing"), 403, "PC_API_FORBIDDEN");
    const b = await adminPost(t, "/v1/namespaces/billing/role-bindings", { identity: "user:carol", role: "developer" });
    expect(b.status, b.body).toBe(200);
    expect((await call(t, carol, "GET", "/v1/namespaces/billing")).status).toBe(200);
    expectCode(await call(t, carol, "GET", "/v1/namespaces/payments"), 403, "PC_API_FORBIDDEN");
    const again = await call(t, w.admin, "POST", "/v1/namespaces/billing/role-bindings", { identity: "user:carol", role: "developer" });
    expectCode(again, 409, "PC_RBAC_BINDING_EXISTS");
    const u = await adminPost(t, "/v1/namespaces/billing/role-bindings/remove", { identity: "user:carol", role: "developer" });
    expect(u.status, u.body).toBe(200);
    expectCode(await call(t, carol, "GET", "/v1/namespaces/billing"), 403, "PC_API_FORBIDDEN");
  });
});

function adminPostAs(who: World["sec"], path: string, body: unknown): Promise<Answer> {
  return call(t, who, "POST", path, body);
}

describe("bad input leaves the policy unchanged", () => {
  // `inCsv`: the same identity written into a policy line makes that line invalid too ("alice"
  // there is a role name, and a newline there would be the test's own injection).
  it.each([
    ["a space", "user:a b", true],
    ["a comma", "user:a,b", true],
    ["a newline", "user:a\nb", false],
    ["'..'", "user:a..b", true],
    ["a trailing '*'", "user:a*", true],
    ["upper case", "user:Alice", true],
    ["no kind", "alice", false],
    ["an unknown kind", "root:alice", true],
    ["CSV injection", "user:a, platform-admin, *\ng, user:b", false],
  ] as const)("refuses a binding of an identity with %s with 400", async (_name, identity, inCsv) => {
    await unchanged(async () => {
      const a = await call(t, w.admin, "POST", "/v1/namespaces/payments/role-bindings", { identity, role: "developer" });
      expect(a.status, a.text).toBe(400);
      expect(["PC_API_INVALID_BODY", "PC_RBAC_POLICY_INVALID"]).toContain(a.body.code);
      if (inCsv) {
        const p = await call(t, w.admin, "PUT", "/v1/policy", { csv: `${(await policyInForce(t)).csv}g, ${identity}, developer, payments\n` });
        expectCode(p, 400, "PC_RBAC_POLICY_INVALID");
      }
    });
  });

  it.each(["Payments", "a_b", "a".repeat(64), "-ab", "ab-", "a.b", "pay ments", "é"])("refuses the namespace name %j with PC_RBAC_NAMESPACE_INVALID", async (name) => {
    await unchanged(async () => {
      expectCode(await call(t, w.admin, "POST", "/v1/namespaces", { name }), 400, "PC_RBAC_NAMESPACE_INVALID");
      expectCode(await call(t, w.admin, "GET", `/v1/namespaces/${encodeURIComponent(name)}`), 400, "PC_RBAC_NAMESPACE_INVALID");
      expectCode(await call(t, w.admin, "POST", `/v1/namespaces/${encodeURIComponent(name)}/role-bindings`, { identity: "user:x", role: "developer" }), 400, "PC_RBAC_NAMESPACE_INVALID");
      expectCode(await canI(t, w.admin, "read", "namespaces", name), 400, "PC_RBAC_NAMESPACE_INVALID");
    });
    expect(t.gw.namespaces.list().map((n) => n.name)).not.toContain(name);
  });

  it("namespaces: twice is 409, a missing one is 404, bad labels are 400", async () => {
    await unchanged(async () => {
      const made = await call(t, w.admin, "POST", "/v1/namespaces", { name: "search", labels: { team: "search", "example.com/tier": "1" } });
      expect(made.status, made.text).toBe(201);
      expect(made.body).toMatchObject({ name: "search", labels: { "example.com/tier": "1", team: "search" }, createdBy: "user:admin" });
      expectCode(await call(t, w.admin, "POST", "/v1/namespaces", { name: "search" }), 409, "PC_RBAC_NAMESPACE_EXISTS");
      expectCode(await call(t, w.admin, "DELETE", "/v1/namespaces/no-such"), 404, "PC_RBAC_NAMESPACE_NOT_FOUND");
      expectCode(await call(t, w.admin, "GET", "/v1/namespaces/no-such"), 404, "PC_RBAC_NAMESPACE_NOT_FOUND");
      for (const labels of [{ "bad key": "v" }, { k: "bad value" }, { "-k": "v" }, { k: "-v" }]) {
        expectCode(await call(t, w.admin, "POST", "/v1/namespaces", { name: "labelled", labels }), 400, "PC_RBAC_LABEL_INVALID");
      }
      expect(t.gw.namespaces.exists("labelled")).toBe(false);
      const del = await call(t, w.admin, "DELETE", "/v1/namespaces/search");
      expect(del.status, del.text).toBe(200);
      expect(del.body).toEqual({ deleted: "search" });
      expectCode(await call(t, w.admin, "DELETE", "/v1/namespaces/search"), 404, "PC_RBAC_NAMESPACE_NOT_FOUND");
    });
  });

  it("can-i about a namespace that does not exist is 404; binding in one too", async () => {
    await unchanged(async () => {
      expectCode(await canI(t, w.dev, "read", "deployments", "no-such"), 404, "PC_RBAC_NAMESPACE_NOT_FOUND");
      expectCode(await call(t, w.admin, "POST", "/v1/namespaces/no-such/role-bindings", { identity: "user:x", role: "developer" }), 404, "PC_RBAC_NAMESPACE_NOT_FOUND");
    });
  });

  it("can-i --as someone else needs policies:read", async () => {
    expectCode(await canI(t, w.dev, "read", "namespaces", "*", "user:admin"), 403, "PC_API_FORBIDDEN");
    const sec = await canI(t, w.sec, "deploy", "deployments", "payments", "user:dev");
    expect(sec.body).toMatchObject({ allowed: true, subject: "user:dev", rule: "p, developer, *, deployments, deploy, allow" });
    const aud = await canI(t, w.aud, "read", "secrets", "payments", "user:admin");
    expect(aud.body).toMatchObject({ allowed: false, subject: "user:admin", rule: "p, platform-admin, *, secrets, read, deny" });
    // Asking about oneself with --as is no request for another identity.
    expect((await canI(t, w.dev, "read", "namespaces", "payments", "user:dev")).body.allowed).toBe(true);
  });
});

describe("rollback", () => {
  it("rolls back to version 1 as a new version with v1's content; history records rollbackOf", async () => {
    const before = await policyInForce(t);
    expect(before.version).toBeGreaterThan(2);
    const r = await call(t, w.admin, "POST", "/v1/policy/rollback", { version: 1 });
    expect(r.status, r.text).toBe(200);
    expect(r.body.version).toBe(before.version + 1);
    expect(r.body.added).toEqual([]);
    expect(r.body.removed).toEqual(expect.arrayContaining(["g, user:sec, security-admin, *", "g, user:dev, developer, payments"]));
    const now = await policyInForce(t);
    expect(now).toEqual({ version: before.version + 1, csv: w.v1Csv });
    const h = await call(t, w.admin, "GET", "/v1/policy/history");
    expect(h.body.items.at(-1)).toMatchObject({ version: before.version + 1, author: "user:admin", rollbackOf: 1, message: "rollback to version 1" });
    // Version 1 binds nobody but the administrator.
    expectCode(await call(t, w.dev, "GET", "/v1/namespaces/payments"), 403, "PC_API_FORBIDDEN");
    expect((await canI(t, w.dev, "deploy", "deployments", "payments")).body).toMatchObject({ allowed: false, rule: "default-deny" });
  });
});
