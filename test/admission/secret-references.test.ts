/**
 * The secret-references check: the mount rule (paths, collisions, other namespaces), the
 * secret store's judgement (secret, version, secrets:use) through the gateway's hook, a
 * missing, failing or late hook, and the chain running the check in enforce mode for
 * every request that references a secret, whatever the policies say.
 */
import { describe, expect, it } from "vitest";
import {
  BUILT_IN_POLICY,
  evaluate,
  secretReferencesCheck,
  secretReferencesHook,
  type ActiveWaiver,
  type AdmissionHooks,
  type CheckResult,
  type SecretReferenceFacts,
} from "../../src/admission/index.js";
import { attrs, NOW, policySet, policyYaml } from "./fixture.js";

const brief = (rs: readonly CheckResult[]) => rs.map((r) => [r.allowed, r.reason, r.field]);

/** The store of the tests: payments holds db (versions 1, 2) and api-key (1); dev1 may use secrets there. */
const FACTS: SecretReferenceFacts = {
  versions: (ns, name) => (ns !== "payments" ? undefined : ({ db: [1, 2], "api-key": [1] } as Record<string, number[]>)[name]),
  mayUse: (identity, ns) => ns === "payments" && identity === "user:dev1",
};
const HOOKS: AdmissionHooks = { secrets: secretReferencesHook(FACTS) };

async function judge(secrets: unknown[] | undefined, o: { requester?: string; hooks?: AdmissionHooks } = {}): Promise<readonly CheckResult[]> {
  const a = attrs({ ...(secrets !== undefined ? { spec: { secrets } } : {}), ...(o.requester !== undefined ? { requester: o.requester } : {}) });
  return secretReferencesCheck.run(a, {}, { hooks: o.hooks ?? HOOKS });
}

type Row = [string, unknown[], [boolean, string, string][]];

describe("secret-references", () => {
  const table: Row[] = [
    ["a reference that resolves", [{ name: "db", path: "/run/secrets/db" }], [[true, "ok", "spec.secrets"]]],
    ["a pinned version that exists", [{ name: "db", path: "/run/secrets/db", version: 2 }], [[true, "ok", "spec.secrets"]]],
    ["its own namespace, written out", [{ name: "db", path: "/run/secrets/db", namespace: "payments" }], [[true, "ok", "spec.secrets"]]],
    ["nested paths", [{ name: "db", path: "/run/secrets/db/password" }, { name: "api-key", path: "/run/secrets/api/key" }], [[true, "ok", "spec.secrets"]]],
    ["a missing secret", [{ name: "nope", path: "/run/secrets/nope" }], [[false, "secret not found", "spec.secrets[0].name"]]],
    ["a missing version", [{ name: "db", path: "/run/secrets/db", version: 3 }], [[false, "secret version not found", "spec.secrets[0].version"]]],
    ["another namespace's secret", [{ name: "db", path: "/run/secrets/db", namespace: "billing" }], [[false, "cross-namespace reference", "spec.secrets[0].namespace"]]],
    ["a path outside /run/secrets", [{ name: "db", path: "/etc/passwd" }], [[false, "secret path not allowed", "spec.secrets[0].path"]]],
    ["the secrets directory itself", [{ name: "db", path: "/run/secrets" }], [[false, "secret path not allowed", "spec.secrets[0].path"]]],
    ["a '..' segment", [{ name: "db", path: "/run/secrets/../etc/shadow" }], [[false, "secret path not allowed", "spec.secrets[0].path"]]],
    ["a trailing slash", [{ name: "db", path: "/run/secrets/db/" }], [[false, "secret path not allowed", "spec.secrets[0].path"]]],
    ["five levels deep", [{ name: "db", path: "/run/secrets/a/b/c/d/e" }], [[false, "secret path not allowed", "spec.secrets[0].path"]]],
    ["two mounts on one path", [{ name: "db", path: "/run/secrets/x" }, { name: "api-key", path: "/run/secrets/x" }], [[false, "secret path collides", "spec.secrets[1].path"]]],
    ["a mount below another", [{ name: "db", path: "/run/secrets/x" }, { name: "api-key", path: "/run/secrets/x/y" }], [[false, "secret path collides", "spec.secrets[1].path"]]],
    [
      "every problem at once, in order",
      [
        { name: "db", path: "/tmp/db", namespace: "billing" },
        { name: "gone", path: "/run/secrets/gone" },
        { name: "db", path: "/run/secrets/db", version: 9 },
      ],
      [
        [false, "cross-namespace reference", "spec.secrets[0].namespace"],
        [false, "secret path not allowed", "spec.secrets[0].path"],
        [false, "secret not found", "spec.secrets[1].name"],
        [false, "secret version not found", "spec.secrets[2].version"],
      ],
    ],
  ];
  it.each(table)("%s", async (_name, secrets, expected) => {
    const rs = await judge(secrets);
    expect(brief(rs)).toEqual(expected);
    for (const r of rs) expect(r.check).toBe("secret-references");
  });

  it("answers ok, no secret references, for a manifest without any (even with no hook)", async () => {
    for (const hooks of [HOOKS, {}]) {
      const rs = await judge(undefined, { hooks });
      expect(brief(rs)).toEqual([[true, "ok", ""]]);
      expect(rs[0]?.detail).toBe("no secret references");
    }
  });

  it("denies a requester without secrets:use, once, beside the other findings", async () => {
    const rs = await judge([{ name: "db", path: "/run/secrets/db" }, { name: "nope", path: "/run/secrets/nope" }], { requester: "user:eve" });
    expect(brief(rs)).toEqual([
      [false, "secret use not allowed", "spec.secrets"],
      [false, "secret not found", "spec.secrets[1].name"],
    ]);
    expect(rs[0]?.detail).toContain("user:eve");
  });

  it("does not ask the store about another namespace's secret", async () => {
    const asked: string[] = [];
    const hook = secretReferencesHook({ versions: (ns, n) => (asked.push(`${ns}/${n}`), [1]), mayUse: () => true });
    await judge([{ name: "db", path: "/run/secrets/db", namespace: "billing" }, { name: "api-key", path: "/run/secrets/k" }], { hooks: { secrets: hook } });
    expect(asked).toEqual(["payments/api-key"]);
  });

  it("details name the reference, never anything else", async () => {
    const rs = await judge([{ name: "db", path: "/run/secrets/db", version: 3 }]);
    expect(rs[0]?.detail).toBe("spec.secrets[0].version: secret db of namespace payments has no version 3");
  });

  const failing: [string, AdmissionHooks, string][] = [
    ["no hook", {}, "secret store unavailable"],
    ["a hook that rejects", { secrets: { check: async () => Promise.reject(new Error("database is locked")) } }, "secret store failed"],
    ["a hook that throws", { secrets: { check: () => { throw new Error("x"); } } }, "secret store failed"],
    ["a hook that answers nonsense", { secrets: { check: async () => [{ nope: 1 }] as never } }, "secret store failed"],
    ["a late hook", { secrets: { timeoutMs: 20, check: () => new Promise<[]>((r) => setTimeout(() => r([]), 500)) } }, "secret store timed out"],
  ];
  it.each(failing)("denies with %s, and still reports the mount problems", async (_name, hooks, reason) => {
    const rs = await judge([{ name: "db", path: "/run/secrets/db" }, { name: "api-key", path: "/etc/key" }], { hooks });
    expect(brief(rs)).toEqual([
      [false, "secret path not allowed", "spec.secrets[1].path"],
      [false, reason, "spec.secrets"],
    ]);
    expect(rs.map((r) => r.detail).join(" ")).not.toContain("database is locked");
  });
});

describe("the chain runs secret-references for every request that references a secret", () => {
  const noSecretCheck = policySet(policyYaml("loose", "signer: { mode: enforce }"));
  const warnOnly = policySet(policyYaml("loose", "signer: { mode: enforce }\nsecret-references: { mode: warn }"));
  const enforced = policySet(policyYaml("strict", "signer: { mode: enforce }\nsecret-references: { mode: enforce }"));
  const refs = { spec: { secrets: [{ name: "nope", path: "/run/secrets/nope" }] } };
  const good = { spec: { secrets: [{ name: "db", path: "/run/secrets/db" }] } };
  const sr = (d: Awaited<ReturnType<typeof evaluate>>) => d.results.filter((r) => r.check === "secret-references").map((r) => [r.policy, r.mode, r.allowed, r.reason, r.field]);

  it("built in, in enforce mode, when no policy names the check", async () => {
    const d = await evaluate(attrs(refs), noSecretCheck, { now: NOW, hooks: HOOKS });
    expect(d.allowed).toBe(false);
    expect(sr(d)).toEqual([[BUILT_IN_POLICY, "enforce", false, "secret not found", "spec.secrets[0].name"]]);
    expect(d.denials.map((r) => r.policy)).toEqual(["(built-in)"]);
  });

  it("built in beside a policy that only warns", async () => {
    const d = await evaluate(attrs(refs), warnOnly, { now: NOW, hooks: HOOKS });
    expect(d.allowed).toBe(false);
    expect(sr(d)).toEqual([
      ["loose", "warn", false, "secret not found", "spec.secrets[0].name"],
      [BUILT_IN_POLICY, "enforce", false, "secret not found", "spec.secrets[0].name"],
    ]);
  });

  it("not twice when a policy enforces it", async () => {
    const d = await evaluate(attrs(refs), enforced, { now: NOW, hooks: HOOKS });
    expect(sr(d)).toEqual([["strict", "enforce", false, "secret not found", "spec.secrets[0].name"]]);
  });

  it("admits good references, recorded as built in", async () => {
    const d = await evaluate(attrs(good), noSecretCheck, { now: NOW, hooks: HOOKS });
    expect(d.allowed).toBe(true);
    expect(sr(d)).toEqual([[BUILT_IN_POLICY, "enforce", true, "ok", "spec.secrets"]]);
  });

  it("not for a request without secrets", async () => {
    const d = await evaluate(attrs(), noSecretCheck, { now: NOW, hooks: HOOKS });
    expect(sr(d)).toEqual([]);
  });

  it("denies with no secret store configured", async () => {
    const d = await evaluate(attrs(good), noSecretCheck, { now: NOW });
    expect(sr(d)).toEqual([[BUILT_IN_POLICY, "enforce", false, "secret store unavailable", "spec.secrets"]]);
  });

  it("no waiver exempts the built-in check", async () => {
    const waiver: ActiveWaiver = { id: "wv-1", check: "secret-references", scope: { namespace: "payments" }, expiresAt: NOW.getTime() + 60_000 };
    const d = await evaluate(attrs(refs), noSecretCheck, { now: NOW, hooks: HOOKS, waivers: [waiver] });
    expect(d.allowed).toBe(false);
    expect(d.denials[0]?.waiver).toBeUndefined();
  });
});
