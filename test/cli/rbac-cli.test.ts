/**
 * The security team's commands through the real CLI process, against a gateway over real
 * mTLS: policy get / apply / history / rollback / test, role bind / unbind, namespace
 * create / list / get / delete, and can-i (exit 0 for yes, 1 for no, with the rule).
 * Independent commands run side by side to keep the spawns cheap.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeProfile } from "../../src/pki/index.js";
import { shippedPolicyCsv } from "../../src/rbac/index.js";
import { call, canI, policyInForce, setUpWorld, type World } from "../api/rbac-support.js";
import { runCli, type CliResult } from "../support/cli.js";
import { startTestGateway, tempDir, type TestGateway } from "../support/gateway.js";

describe("policy test works offline", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const offline = { PORTCULLIS_PROFILE: join(tmp.dir, "no-such-profile.json"), PORTCULLIS_DATA_DIR: join(tmp.dir, "no-such-dir") };
  const shippedTests = readdirSync("policies/rbac/tests").filter((f) => f.endsWith(".yaml")).sort().map((f) => `policies/rbac/tests/${f}`);

  it("passes the shipped tests, fails a candidate that breaks one, and refuses a malformed file with its line", async () => {
    // A candidate that lets developers delete deployments: the developer tests must catch it.
    const candidate = join(tmp.dir, "candidate.csv");
    writeFileSync(candidate, `${shippedPolicyCsv()}p, developer, *, deployments, delete, allow\n`);
    const malformed = join(tmp.dir, "malformed.yaml");
    writeFileSync(
      malformed,
      [
        `policy: ${JSON.stringify(join(process.cwd(), "policies/rbac/policy.csv"))}`,
        "cases:",
        "  - name: deploys",
        "    request: { subject: user:a, namespace: payments, resource: deployments, action: deploy",
        "    expect: allow",
        "",
      ].join("\n"),
    );
    const [pass, fail, bad] = await Promise.all([
      runCli(["policy", "test", ...shippedTests], { env: offline }),
      runCli(["policy", "test", "--policy", candidate, "policies/rbac/tests/developer.yaml"], { env: offline }),
      runCli(["policy", "test", malformed], { env: offline }),
    ]);

    expect(pass.code, pass.stderr).toBe(0);
    for (const f of shippedTests) expect(pass.stdout).toContain(`# ${f}\n`);
    expect(pass.stdout).toMatch(/^ok {3}deploys in its namespace$/m);
    expect(pass.stdout).not.toMatch(/^FAIL/m);
    expect(pass.stdout.match(/^\d+ passed, 0 failed$/gm)).toHaveLength(shippedTests.length);

    expect(fail.code, fail.stderr).toBe(1);
    expect(fail.stdout).toMatch(/^FAIL cannot delete a deployment \(line \d+\): /m);
    expect(fail.stdout).toMatch(/^\d+ passed, 1 failed$/m);

    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: PC_RBAC_TEST_INVALID: policy test file is not valid: line 5: /m);
  });
});

describe("RBAC commands against a gateway", () => {
  let t: TestGateway;
  let w: World;
  const env: Record<"admin" | "sec" | "dev", Record<string, string>> = { admin: {}, sec: {}, dev: {} };
  const as = (who: keyof typeof env, ...args: string[]): Promise<CliResult> => runCli(args, { env: env[who] });

  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpWorld(t);
    for (const [name, c] of [["admin", t.admin], ["sec", w.sec], ["dev", w.dev]] as const) {
      const path = join(t.root, `${name}.profile.json`);
      const identity = name === "admin" ? "user:admin" : `user:${name}`;
      writeProfile(path, { ...t.adminProfile, identity, certificate: c.certPem, privateKey: c.keyPem });
      env[name] = { PORTCULLIS_PROFILE: path };
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it("policy get (table, csv, json); can-i (0 yes, 1 no, the rule; --as needs policies:read; unknown namespace); escalation refused; namespace create/list/get/delete", async () => {
    const inForce = await policyInForce(t);
    // The namespace commands run in sequence, beside the read-only ones.
    const namespaces = (async () => {
      const made = await as("admin", "namespace", "create", "search", "--label", "team=search", "--label", "tier=1", "-o", "json");
      const got = await as("admin", "namespace", "get", "search", "-o", "json");
      const del = await as("admin", "namespace", "delete", "search");
      return { made, got, del };
    })();
    const [table, csv, json, yes, no, devAs, missing, escalate, list, ns] = await Promise.all([
      as("admin", "policy", "get"),
      as("admin", "policy", "get", "-o", "csv"),
      as("admin", "-o", "json", "policy", "get"),
      as("dev", "can-i", "deploy", "deployments", "-n", "payments"),
      as("dev", "can-i", "deploy", "deployments", "-n", "billing"),
      as("dev", "can-i", "read", "namespaces", "-n", "payments", "--as", "user:admin"),
      as("dev", "can-i", "read", "deployments", "-n", "no-such"),
      as("sec", "role", "bind", "user:sec", "platform-admin", "-n", "*"),
      as("admin", "namespace", "list"),
      namespaces,
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toBe(`# policy version ${inForce.version}\n${inForce.csv}`);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout).toBe(inForce.csv);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(inForce);

    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stdout).toBe("yes  (p, developer, *, deployments, deploy, allow)\n");
    expect(no.code, no.stderr).toBe(1);
    expect(no.stdout).toBe("no  (default-deny)\n");
    expect(no.stderr).toBe("");
    expect(devAs.code).toBe(1);
    expect(devAs.stderr).toMatch(/^error: PC_API_FORBIDDEN: .*policies:read/m);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: PC_RBAC_NAMESPACE_NOT_FOUND: /m);

    expect(escalate.code).toBe(1);
    expect(escalate.stderr).toMatch(/^error: PC_RBAC_ESCALATION: /m);
    expect(await policyInForce(t)).toEqual(inForce);

    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+LABELS\s+CREATEDBY\s+CREATEDAT$/m);
    expect(list.stdout).toMatch(/^billing\s+-\s+user:admin\s+\d{4}-/m);
    expect(list.stdout).toMatch(/^payments\s+-\s+user:admin\s+/m);

    expect(ns.made.code, ns.made.stderr).toBe(0);
    expect(JSON.parse(ns.made.stdout)).toMatchObject({ name: "search", labels: { team: "search", tier: "1" }, createdBy: "user:admin" });
    expect(ns.got.code, ns.got.stderr).toBe(0);
    expect(JSON.parse(ns.got.stdout)).toEqual(JSON.parse(ns.made.stdout));
    expect(ns.del.code, ns.del.stderr).toBe(0);
    expect(ns.del.stdout).toMatch(/^deleted\s+search$/m);
    expect(t.gw.namespaces.exists("search")).toBe(false);
  });

  it("policy apply -f prints the diff; role bind/unbind; history lists each version; rollback 1", async () => {
    const before = await policyInForce(t);
    const file = join(t.root, "edited.csv");
    writeFileSync(file, `# billing gets a developer too\n${before.csv}g, user:dev, developer, billing\n`);
    const applied = await as("admin", "policy", "apply", "-f", file, "--message", "dev joins billing");
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toBe(`policy version ${before.version + 1}\n+ g, user:dev, developer, billing\n`);
    expect((await canI(t, w.dev, "deploy", "deployments", "billing")).body.allowed).toBe(true);

    const bound = await as("admin", "role", "bind", "user:newbie", "developer", "-n", "payments");
    expect(bound.code, bound.stderr).toBe(0);
    expect(bound.stdout).toBe(`policy version ${before.version + 2}\n+ g, user:newbie, developer, payments\n`);
    const unbound = await as("admin", "role", "unbind", "user:newbie", "developer", "-n", "payments");
    expect(unbound.code, unbound.stderr).toBe(0);
    expect(unbound.stdout).toBe(`policy version ${before.version + 3}\n- g, user:newbie, developer, payments\n`);

    const history = await as("sec", "policy", "history");
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(/^version 1 {2}\S+ {2}service:portcullis-init\n {4}initial policy\n/m);
    expect(history.stdout).toMatch(new RegExp(`^version ${before.version + 1}  \\d{4}-\\d\\d-\\d\\dT[^ ]+Z  user:admin\\n    dev joins billing\\n    \\+ g, user:dev, developer, billing\\n`, "m"));
    expect(history.stdout).toContain(`version ${before.version + 3}  `);
    expect(history.stdout).toContain("    - g, user:newbie, developer, payments\n");

    const rolled = await as("admin", "policy", "rollback", "1");
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toMatch(new RegExp(`^policy version ${before.version + 4}\\n`));
    for (const l of ["g, user:sec, security-admin, *", "g, user:dev, developer, payments", "g, user:dev, developer, billing"]) {
      expect(rolled.stdout).toContain(`- ${l}\n`);
    }
    expect(rolled.stdout).not.toContain("+ ");
    expect(await policyInForce(t)).toEqual({ version: before.version + 4, csv: w.v1Csv });
    const h = await call(t, t.admin, "GET", "/v1/policy/history");
    expect(h.body.items.at(-1)).toMatchObject({ rollbackOf: 1, author: "user:admin" });
    expect((await canI(t, w.dev, "deploy", "deployments", "payments")).body).toMatchObject({ allowed: false, rule: "default-deny" });
  });
});
