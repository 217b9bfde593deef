/**
 * The monitoring commands through the real CLI process: `monitoring rules test` offline
 * (no server, no profile; exit 0 when every case passes, 1 when one fails, 2 for a file
 * it cannot use), replays of recorded events — among them events the docker CLI recorded
 * around a real `docker exec` — and `monitoring rules get / apply / history / rollback`
 * and `monitoring events` against a gateway over real mTLS.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shippedMonitoringRules, toMonitorEvent } from "../../src/monitoring/index.js";
import type { EngineEvent } from "../../src/runtime/index.js";
import { writeProfile } from "../../src/pki/index.js";
import { setUpWorld, type World } from "../api/rbac-support.js";
import { runCli, type CliResult } from "../support/cli.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, newTestRun, testEngine } from "../support/docker.js";
import { startTestGateway, tempDir, type TestGateway } from "../support/gateway.js";

const TESTS = readdirSync("policies/monitoring/tests").filter((n) => n.endsWith(".yaml")).sort().map((n) => `policies/monitoring/tests/${n}`);
const shipped = shippedMonitoringRules();
const quarantineExec = shipped.replace(
  "    match:\n      event: { type: container, actions: [exec_create, exec_start] }\n    actions: [alert]",
  "    match:\n      event: { type: container, actions: [exec_create, exec_start] }\n    actions: [alert, quarantine]",
);

describe("monitoring rules test works offline", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  const offline = { PORTCULLIS_PROFILE: join(tmp.dir, "no-such-profile.json"), PORTCULLIS_DATA_DIR: join(tmp.dir, "no-such-dir") };

  it("the shipped rules pass their own test files; a weakened candidate fails; unusable files exit 2", async () => {
    expect(quarantineExec).not.toBe(shipped);
    const weaker = join(tmp.dir, "weaker.yaml");
    writeFileSync(weaker, shipped.replace("restarts: { count: 5, within: 10m }", "restarts: { count: 7, within: 10m }"));
    const malformed = join(tmp.dir, "malformed.yaml");
    writeFileSync(malformed, ["cases:", "  - name: one", "    events: []", "    expect: perhaps", ""].join("\n"));
    const broken = join(tmp.dir, "broken-rules.yaml");
    writeFileSync(broken, shipped.replace("severity: low", "severity: negligible"));

    const [pass, fail, bad, badRules, json, none] = await Promise.all([
      runCli(["monitoring", "rules", "test", ...TESTS], { env: offline }),
      runCli(["monitoring", "rules", "test", "--rules", weaker, ...TESTS], { env: offline }),
      runCli(["monitoring", "rules", "test", malformed], { env: offline }),
      runCli(["monitoring", "rules", "test", "--rules", broken, ...TESTS], { env: offline }),
      runCli(["-o", "json", "monitoring", "rules", "test", ...TESTS], { env: offline }),
      runCli(["monitoring", "rules", "test"], { env: offline }),
    ]);

    expect(pass.code, pass.stderr).toBe(0);
    for (const f of TESTS) expect(pass.stdout).toContain(`# ${f}\n`);
    expect(pass.stdout).toMatch(/^ok {3}exec into a managed container is critical, alert only$/m);
    expect(pass.stdout).toMatch(/^ok {3}memory above 90% of the limit for a minute is low$/m);
    expect(pass.stdout).not.toMatch(/^FAIL/m);
    expect(pass.stdout.match(/^[1-9]\d* passed, 0 failed$/gm)).toHaveLength(TESTS.length);

    expect(fail.code, fail.stderr).toBe(1);
    expect(fail.stdout).toMatch(/^FAIL five deaths within ten minutes are a crash loop \(the fifth and sixth hit\) \(line \d+\): expected crash-loop \(medium\), crash-loop \(medium\); got no hit$/m);
    expect(fail.stdout).toMatch(/^\d+ passed, 1 failed$/m);

    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: PC_MONITOR_TEST_INVALID: monitoring rules test file is not valid: line 4 \(cases\[0\]\.expect\): is required/m);
    expect(bad.stdout).toBe("");

    expect(badRules.code).toBe(2);
    expect(badRules.stderr).toMatch(/^error: PC_MONITOR_RULES_INVALID: monitoring rules are not valid: line \d+: rules\[6\]\.severity: unknown severity "negligible"/m);

    expect(json.code, json.stderr).toBe(0);
    const reports = JSON.parse(json.stdout) as { tests: { file: string; report: { passed: number; failed: number } }[] };
    expect(reports.tests.map((r) => r.file)).toEqual(TESTS);
    for (const r of reports.tests) expect(r.report).toMatchObject({ failed: 0, passed: expect.any(Number) });

    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^error: PC_CLI_USAGE: bad usage: give a TESTFILE, --events FILE, or both/m);
  });

  it("replays recorded events against candidate rules (--events, --rules), and refuses a bad line with its number", async () => {
    const events = join(tmp.dir, "events.jsonl");
    const exec = { Type: "container", Action: "exec_start: sh", Actor: { ID: "abc", Attributes: { name: "pc-g-payments-api-r1-0", "io.portcullis.gateway": "g", "io.portcullis.namespace": "payments" } }, time: 1700000000, timeNano: 1700000000000000000 };
    writeFileSync(events, `${JSON.stringify(exec)}\n${JSON.stringify({ ...exec, Action: "start" })}\n`);
    const candidate = join(tmp.dir, "candidate.yaml");
    writeFileSync(candidate, quarantineExec);
    const badEvents = join(tmp.dir, "bad.jsonl");
    writeFileSync(badEvents, `${JSON.stringify(exec)}\n\n{"Type": 1}\n`);
    const [shippedRun, candidateRun, bad, json] = await Promise.all([
      runCli(["monitoring", "rules", "test", "--events", events], { env: offline }),
      runCli(["monitoring", "rules", "test", "--events", events, "--rules", candidate], { env: offline }),
      runCli(["monitoring", "rules", "test", "--events", badEvents], { env: offline }),
      runCli(["-o", "json", "monitoring", "rules", "test", "--events", events, "--rules", candidate], { env: offline }),
    ]);
    expect(shippedRun.code, shippedRun.stderr).toBe(0);
    expect(shippedRun.stdout).toBe(`# ${events}\n2023-11-14T22:13:20.000Z  critical  exec-into-container  docker exec into payments/pc-g-payments-api-r1-0 (exec_start: sh)\n1 hit in 2 events\n`);
    expect(candidateRun.code, candidateRun.stderr).toBe(0);
    expect(candidateRun.stdout).toContain("1 hit in 2 events");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: PC_MONITOR_EVENTS_INVALID: recorded events are not valid: line 3: /m);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ replay: { events: 2, hits: [{ rule: "exec-into-container", actions: ["alert", "quarantine"] }] } });
  });
});

describeDocker("replay of events the docker CLI recorded around a real docker exec", () => {
  const engine = testEngine();
  const run = newTestRun();
  const tmp = tempDir();
  let image: string | undefined;
  beforeAll(async () => {
    image = await buildBusyboxImage(engine, run);
  }, 60_000);
  afterAll(async () => {
    await cleanupTestRun(engine, run, image);
    tmp.cleanup();
  });

  it("rules test --events finds the exec into the labelled container, and nothing for an unlabelled one", async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    const labels = Object.entries({ ...run.labels, "io.portcullis.gateway": "feedfacecafe", "io.portcullis.namespace": "payments", "io.portcullis.deployment": "api" }).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
    const managedName = `pc-feedfacecafe-payments-api-r1-0-${run.id}`;
    const strayName = `stray-${run.id}`;
    const managed = (await dockerCli(["run", "-d", "--name", managedName, ...labels, image as string, "sleep", "300"])).trim();
    const stray = (await dockerCli(["run", "-d", "--name", strayName, ...Object.entries(run.labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]), image as string, "sleep", "300"])).trim();
    expect((await dockerCli(["exec", managed, "id", "-u"])).trim()).toBe("0");
    await dockerCli(["exec", stray, "true"]);
    const until = Math.ceil(Date.now() / 1000) + 1;
    const recorded = await dockerCli(["events", "--since", String(since), "--until", String(until), "--filter", `label=${run.selector}`, "--format", "{{json .}}"]);
    const lines = recorded.split("\n").filter((l) => l.trim() !== "");
    expect(lines.some((l) => l.includes('"exec_create: id -u"'))).toBe(true);
    const file = join(tmp.dir, "recorded.jsonl");
    writeFileSync(file, recorded);

    const r = await runCli(["-o", "json", "monitoring", "rules", "test", "--events", file], { env: { PORTCULLIS_PROFILE: join(tmp.dir, "none.json") } });
    expect(r.code, r.stderr).toBe(0);
    const { replay } = JSON.parse(r.stdout) as { replay: { events: number; hits: { rule: string; container: string; summary: string; severity: string }[] } };
    expect(replay.events).toBe(lines.length);
    expect(replay.hits.map((h) => [h.rule, h.severity, h.container, h.summary])).toEqual([
      ["exec-into-container", "critical", managedName, `docker exec into payments/${managedName} (exec_create: id -u)`],
      ["exec-into-container", "critical", managedName, `docker exec into payments/${managedName} (exec_start: id -u)`],
    ]);
  }, 60_000);
});

describe("monitoring commands against a gateway", () => {
  let t: TestGateway;
  let w: World;
  const env: Record<"admin" | "dev", Record<string, string>> = { admin: {}, dev: {} };
  const as = (who: keyof typeof env, ...args: string[]): Promise<CliResult> => runCli(args, { env: env[who] });

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

  it("get prints the rules in force (table with its version, -o yaml the file alone, -o json with the parsed rules)", async () => {
    const [table, yaml, json, csv] = await Promise.all([
      as("admin", "monitoring", "rules", "get"),
      as("admin", "-o", "yaml", "monitoring", "rules", "get"),
      as("admin", "-o", "json", "monitoring", "rules", "get"),
      as("admin", "-o", "csv", "monitoring", "rules", "get"),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toBe(`# monitoring rules version 1\n${shipped}`);
    expect(yaml.code, yaml.stderr).toBe(0);
    expect(yaml.stdout).toBe(shipped);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { version: number; text: string; rules: { name: string }[] };
    expect(parsed).toMatchObject({ version: 1, text: shipped });
    expect(parsed.rules).toHaveLength(8);
    expect(csv.code).toBe(2);
    const yamlElsewhere = await as("admin", "-o", "yaml", "monitoring", "rules", "history");
    expect(yamlElsewhere.code).toBe(2);
  });

  it("apply, unchanged, history, rollback; a bad file and a developer are refused and change nothing", async () => {
    const candidate = join(t.root, "rules.yaml");
    writeFileSync(candidate, quarantineExec);
    const broken = join(t.root, "broken.yaml");
    writeFileSync(broken, shipped.replace("\n    actions: [alert, quarantine]\n", "\n    actions: [alert, quarantine, revoke]\n"));
    expect(readFileSync(broken, "utf8")).not.toBe(shipped);

    const [refusedBad, refusedDev, noFile] = await Promise.all([
      as("admin", "monitoring", "rules", "apply", "-f", broken, "-m", "broken"),
      as("dev", "monitoring", "rules", "apply", "-f", candidate),
      as("admin", "monitoring", "rules", "apply", "-f", join(t.root, "absent.yaml")),
    ]);
    expect(refusedBad.code).toBe(1);
    expect(refusedBad.stderr).toMatch(/^error: PC_MONITOR_RULES_INVALID: monitoring rules are not valid: line \d+: rules\[2\]\.actions: revoke needs scope\.managed: true/m);
    expect(refusedDev.code).toBe(1);
    expect(refusedDev.stderr).toMatch(/^error: PC_API_FORBIDDEN: /m);
    expect(noFile.code).toBe(2);
    expect(t.gw.monitoringRules.current().version).toBe(1);

    const applied = await as("admin", "monitoring", "rules", "apply", "-f", candidate, "-m", "quarantine on exec");
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toBe("monitoring rules version 2\n");
    expect(t.gw.monitoringRules.current().set.rules[0]?.actions).toEqual(["alert", "quarantine"]);
    const again = await as("admin", "monitoring", "rules", "apply", "-f", candidate);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe("monitoring rules unchanged: version 2 is in force with this text\n");

    const [history, v1] = await Promise.all([as("admin", "monitoring", "rules", "history"), as("admin", "-o", "yaml", "monitoring", "rules", "get", "--version", "1")]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(/^version 1 {2}\S+ {2}service:portcullis-init {2}sha256:[0-9a-f]{12}\n {4}initial monitoring rules$/m);
    expect(history.stdout).toMatch(/^version 2 {2}\S+ {2}user:admin {2}sha256:[0-9a-f]{12}\n {4}quarantine on exec$/m);
    expect(v1.code, v1.stderr).toBe(0);
    expect(v1.stdout).toBe(shipped);

    const rolled = await as("admin", "monitoring", "rules", "rollback", "1", "-m", "back to alert only");
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toBe("monitoring rules version 3\n");
    expect(t.gw.monitoringRules.current()).toMatchObject({ version: 3, text: shipped });
    expect(t.gw.monitoringRules.history()[2]).toMatchObject({ author: "user:admin", message: "back to alert only", rollbackOf: 1 });

    const [missing, badVersion] = await Promise.all([as("admin", "monitoring", "rules", "rollback", "42"), as("admin", "monitoring", "rules", "rollback", "zero")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: PC_MONITOR_RULES_VERSION_NOT_FOUND: no such monitoring rules version/m);
    expect(badVersion.code).toBe(2);
    expect(t.gw.monitoringRules.current().version).toBe(3);
  });

  it("events prints recorded events as JSON lines that rules test --events replays", async () => {
    const node = "cli-node";
    const base = 1_800_000_100;
    const raw: EngineEvent[] = [
      { Type: "container", Action: "create", Actor: { ID: "k1", Attributes: { name: "app" } }, time: base, timeNano: `${base}000000000` },
      { Type: "container", Action: "exec_create: cat /etc/shadow", Actor: { ID: "k1", Attributes: { name: "app", "io.portcullis.gateway": "x", "io.portcullis.namespace": "billing" } }, time: base + 1, timeNano: `${base + 1}000000000` },
    ];
    for (const e of raw) t.gw.store.monitorEvents.record(toMonitorEvent(node, e), Date.now());
    const [out, filtered, dev] = await Promise.all([
      as("admin", "monitoring", "events", "--node", node, "--since", new Date(base * 1000).toISOString()),
      as("admin", "monitoring", "events", "--node", node, "--type", "image"),
      as("dev", "monitoring", "events", "--node", node),
    ]);
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { action: string }).action)).toEqual(["create", "exec_create: cat /etc/shadow"]);
    expect(filtered.code, filtered.stderr).toBe(0);
    expect(filtered.stdout).toBe("");
    expect(dev.code).toBe(1);
    expect(dev.stderr).toMatch(/^error: PC_API_FORBIDDEN: /m);

    const file = join(t.root, "exported.jsonl");
    writeFileSync(file, out.stdout);
    const replay = await runCli(["monitoring", "rules", "test", "--events", file]);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toContain("critical  exec-into-container  docker exec into billing/app (exec_create: cat /etc/shadow)\n1 hit in 2 events\n");
  });
});
