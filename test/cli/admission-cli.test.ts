/**
 * The admission commands through the real CLI process: `admission test` offline (no
 * server, no profile; exit 0 when every case passes, 1 when one fails, 2 for a file it
 * cannot use), and `admission policy get / apply / history / rollback` against a gateway
 * over real mTLS.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shippedAdmissionPolicyFiles } from "../../src/admission/index.js";
import { writeProfile } from "../../src/pki/index.js";
import { setUpWorld, type World } from "../api/rbac-support.js";
import { runCli, type CliResult } from "../support/cli.js";
import { startTestGateway, tempDir, type TestGateway } from "../support/gateway.js";

const policyText = (name: string, namespaces: string, mode: string) =>
  ["apiVersion: portcullis/v1", "kind: AdmissionPolicy", "metadata:", `  name: ${name}`, "spec:", `  selector: { namespaces: [${namespaces}] }`, "  checks:", `    hardening: { mode: ${mode} }`, ""].join("\n");

describe("admission test works offline", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const offline = { PORTCULLIS_PROFILE: join(tmp.dir, "no-such-profile.json"), PORTCULLIS_DATA_DIR: join(tmp.dir, "no-such-dir") };

  it("passes the shipped tests, fails a candidate that breaks one, and exits 2 for a malformed test or policy file", async () => {
    // A candidate baseline that lets 8Gi through: the memory case must catch it.
    const baseline = readFileSync("policies/admission/baseline.yaml", "utf8");
    expect(baseline).toContain("maxMemory: 4Gi");
    const candidateDir = join(tmp.dir, "candidate");
    mkdirSync(candidateDir);
    writeFileSync(join(candidateDir, "baseline.yaml"), baseline.replace("maxMemory: 4Gi", "maxMemory: 16Gi"));
    const malformed = join(tmp.dir, "malformed.yaml");
    writeFileSync(malformed, ["policies: [../x.yaml]", "cases:", "  - name: one", "    expect: perhaps", ""].join("\n"));
    const brokenPolicy = join(tmp.dir, "broken.yaml");
    writeFileSync(brokenPolicy, policyText("broken", "payments", "block"));

    const [pass, fail, bad, badPolicy, json] = await Promise.all([
      runCli(["admission", "test", "policies/admission/tests/baseline.yaml"], { env: offline }),
      runCli(["admission", "test", "--policy", candidateDir, "policies/admission/tests/baseline.yaml"], { env: offline }),
      runCli(["admission", "test", malformed], { env: offline }),
      runCli(["admission", "test", "--policy", brokenPolicy, "policies/admission/tests/baseline.yaml"], { env: offline }),
      runCli(["-o", "json", "admission", "test", "policies/admission/tests/baseline.yaml"], { env: offline }),
    ]);

    expect(pass.code, pass.stderr).toBe(0);
    expect(pass.stdout).toContain("# policies/admission/tests/baseline.yaml\n");
    expect(pass.stdout).toMatch(/^ok {3}memory above 4Gi is refused$/m);
    expect(pass.stdout).not.toMatch(/^FAIL/m);
    expect(pass.stdout).toMatch(/^[1-9]\d* passed, 0 failed$/m);

    expect(fail.code, fail.stderr).toBe(1);
    expect(fail.stdout).toMatch(/^FAIL memory above 4Gi is refused \(line \d+\): expected deny, got allow/m);
    expect(fail.stdout).toMatch(/^\d+ passed, [1-9]\d* failed$/m);

    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: PC_ADMISSION_TEST_INVALID: admission test file is not valid: .*line \d+/m);
    expect(bad.stdout).toBe("");

    expect(badPolicy.code).toBe(2);
    expect(badPolicy.stderr).toMatch(/^error: PC_ADMISSION_POLICY_INVALID: admission policy is not valid: broken\.yaml:8: spec\.checks\.hardening\.mode: unknown mode/m);

    expect(json.code, json.stderr).toBe(0);
    const reports = JSON.parse(json.stdout) as { file: string; report: { passed: number; failed: number } }[];
    expect(reports).toHaveLength(1);
    expect(reports[0]?.report.failed).toBe(0);
    expect(reports[0]?.report.passed).toBeGreaterThan(0);
  });
});

describe("admission policy commands against a gateway", () => {
  let t: TestGateway;
  let w: World;
  const env: Record<"admin" | "dev", Record<string, string>> = { admin: {}, dev: {} };
  const as = (who: keyof typeof env, ...args: string[]): Promise<CliResult> => runCli(args, { env: env[who] });
  const shipped = shippedAdmissionPolicyFiles();

  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpWorld(t);
    for (const [name, c] of [["admin", t.admin], ["dev", w.dev]] as const) {
      const path = join(t.root, `${name}.profile.json`);
      writeProfile(path, { ...t.adminProfile, identity: `user:${name}`, certificate: c.certPem, privateKey: c.keyPem });
      env[name] = { PORTCULLIS_PROFILE: path };
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it("get prints the files in force (table, json, --out-dir)", async () => {
    const outDir = join(t.root, "admission-out");
    const [table, json, out] = await Promise.all([
      as("admin", "admission", "policy", "get"),
      as("admin", "-o", "json", "admission", "policy", "get"),
      as("admin", "admission", "policy", "get", "--out-dir", outDir),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^# admission policy version 1\n/);
    for (const f of shipped) expect(table.stdout).toContain(`# --- ${f.name}\n${f.text}`);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ version: 1, files: shipped });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^admission policy version 1: wrote /);
    expect(readdirSync(outDir).sort()).toEqual(shipped.map((f) => f.name).sort());
    for (const f of shipped) expect(readFileSync(join(outDir, f.name), "utf8")).toBe(f.text);
  });

  it("apply, history, rollback; a bad set and a developer are refused and change nothing", async () => {
    const dir = join(t.root, "admission-in");
    mkdirSync(dir);
    for (const f of shipped) writeFileSync(join(dir, f.name), f.text);
    const payments = join(t.root, "payments.yaml");
    writeFileSync(payments, policyText("payments-strict", "payments", "enforce"));
    const broken = join(t.root, "broken.yaml");
    writeFileSync(broken, policyText("broken", "billing", "block"));

    const [refusedBad, refusedDev, noMessage] = await Promise.all([
      as("admin", "admission", "policy", "apply", "-f", dir, "-f", broken, "--message", "broken"),
      as("dev", "admission", "policy", "apply", "-f", payments, "--message", "mine"),
      as("admin", "admission", "policy", "apply", "-f", payments),
    ]);
    expect(refusedBad.code).toBe(1);
    expect(refusedBad.stderr).toMatch(/^error: PC_ADMISSION_POLICY_INVALID: admission policy is not valid: broken\.yaml:8: spec\.checks\.hardening\.mode: unknown mode/m);
    expect(refusedDev.code).toBe(1);
    expect(refusedDev.stderr).toMatch(/^error: PC_API_FORBIDDEN: /m);
    expect(noMessage.code).toBe(2);
    expect(t.gw.admissionPolicy.current().version).toBe(1);

    const applied = await as("admin", "admission", "policy", "apply", "-f", dir, "-f", payments, "--message", "payments hardening");
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toBe("admission policy version 2\n  changed payments.yaml\n");
    expect(t.gw.admissionPolicy.current().files.map((f) => f.name)).toEqual([...shipped.map((f) => f.name), "payments.yaml"].sort());

    const [history, v1] = await Promise.all([as("admin", "admission", "policy", "history"), as("admin", "-o", "json", "admission", "policy", "get", "--at", "1")]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(/^version 1 {2}\S+ {2}service:portcullis-init {2}sha256:[0-9a-f]{12}\n {4}initial admission policy$/m);
    expect(history.stdout).toMatch(/^version 2 {2}\S+ {2}user:admin {2}sha256:[0-9a-f]{12}\n {4}payments hardening$/m);
    expect(v1.code, v1.stderr).toBe(0);
    expect(JSON.parse(v1.stdout)).toEqual({ version: 1, files: shipped });

    const rolled = await as("admin", "admission", "policy", "rollback", "1", "--message", "back to the shipped set");
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toBe("admission policy version 3\n  changed payments.yaml\n");
    expect(t.gw.admissionPolicy.current()).toMatchObject({ version: 3, files: shipped });
    const h = t.gw.admissionPolicy.history();
    expect(h[2]).toMatchObject({ author: "user:admin", message: "back to the shipped set", rollbackOf: 1 });

    const [missing, badVersion] = await Promise.all([as("admin", "admission", "policy", "rollback", "42"), as("admin", "admission", "policy", "rollback", "zero")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: PC_ADMISSION_VERSION_NOT_FOUND: no such admission policy version/m);
    expect(badVersion.code).toBe(2);
    expect(t.gw.admissionPolicy.current().version).toBe(3);
  });
});
