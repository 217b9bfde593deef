/**
 * Offline tests of monitoring rules: the shipped rules pass their own test files, and
 * every shipped rule is hit by one of those cases; a candidate that breaks a rule fails
 * the case that covers it, saying what differed; bad test files are refused with
 * PC_MONITOR_TEST_INVALID, line and field; replays of recorded events list the hits,
 * with restart counts taken from the replay itself.
 */
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  formatMonitoringTestReport,
  formatReplayReport,
  parseMonitoringTestFile,
  replayMonitoringEvents,
  runMonitoringTestFile,
  runMonitoringTests,
  shippedMonitoringRules,
  shippedMonitoringRuleSet,
  type MonitoringTestIssue,
} from "../../src/monitoring/index.js";
import { tempDir } from "../support/gateway.js";
import { expectRefusal } from "../support/refusal.js";

const TESTS_DIR = "policies/monitoring/tests";
const testFiles = readdirSync(TESTS_DIR).filter((n) => n.endsWith(".yaml")).sort().map((n) => join(TESTS_DIR, n));
const tmp = tempDir("portcullis-monitoring-test-");
afterAll(() => tmp.cleanup());

/** A Docker event line as `docker events --format '{{json .}}'` prints it. */
function dockerLine(action: string, id: string, seconds: number, attributes: Record<string, string>, type = "container"): string {
  return JSON.stringify({ status: action, id, from: "busybox", Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope: "local", time: seconds, timeNano: seconds * 1e9 });
}
const MANAGED_ATTRS = { name: "pc-0123456789ab-payments-api-r1-0", image: "busybox", "io.portcullis.gateway": "0123456789ab", "io.portcullis.namespace": "payments", "io.portcullis.deployment": "api" };

describe("the shipped rules and their test files", () => {
  it("pass every case of every file", () => {
    expect(testFiles.length).toBeGreaterThanOrEqual(2);
    for (const f of testFiles) {
      const report = runMonitoringTestFile(f);
      expect(report.failed, `${f}\n${formatMonitoringTestReport(report)}`).toBe(0);
      expect(report.passed).toBeGreaterThan(0);
    }
  });

  it("cover every shipped rule with a case that hits it, and hold cases that expect no hit", () => {
    const hitRules = new Set<string>();
    let negatives = 0;
    for (const f of testFiles) {
      for (const c of runMonitoringTestFile(f).cases) {
        for (const h of c.hits) hitRules.add(h.rule);
        if (c.hits.length === 0) negatives++;
      }
    }
    expect([...hitRules].sort()).toEqual(shippedMonitoringRuleSet().rules.map((r) => r.name).sort());
    expect(negatives).toBeGreaterThanOrEqual(shippedMonitoringRuleSet().rules.length);
  });

  it("catch a candidate that weakens a rule: the failing case says what differed", () => {
    const shipped = shippedMonitoringRules();
    const weaker = shipped.replace("actions: [exec_create, exec_start]", "actions: [exec_create]").replace("severity: medium\n    scope: { managed: true }\n    match:\n      restarts:", "severity: low\n    scope: { managed: true }\n    match:\n      restarts:");
    expect(weaker).not.toBe(shipped);
    const events = runMonitoringTestFile(join(TESTS_DIR, "events.yaml"), { rulesText: weaker });
    const failed = events.cases.filter((c) => !c.ok);
    expect(failed.map((c) => [c.name, c.reason])).toEqual([
      ["exec into a managed container is critical, alert only", "expected exec-into-container (critical), exec-into-container (critical); got exec-into-container (critical)"],
    ]);
    const conditions = runMonitoringTestFile(join(TESTS_DIR, "conditions.yaml"), { rulesText: weaker });
    expect(conditions.cases.filter((c) => !c.ok).map((c) => c.reason)).toEqual(["hit 1 (crash-loop): expected severity medium, got low"]);
    expect(formatMonitoringTestReport(conditions)).toMatch(/^FAIL five deaths within ten minutes are a crash loop \(the fifth and sixth hit\) \(line \d+\): hit 1 \(crash-loop\): expected severity medium, got low$/m);
    expect(formatMonitoringTestReport(conditions)).toMatch(/^7 passed, 1 failed$/m);
  });

  it("reads the rules file a test file names, relative to it; an unreadable one is refused", () => {
    const dir = join(tmp.dir, "relative");
    const sub = join(dir, "tests");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(dir, "candidate.yaml"), shippedMonitoringRules().replace("severity: critical\n    scope: { managed: true }", "severity: high\n    scope: { managed: true }"));
    const t = ["rules: ../candidate.yaml", "cases:", "  - name: exec", "    container: { managed: true, namespace: payments, name: a }", "    events:", '      - { Type: container, Action: exec_start, Actor: { ID: x, Attributes: { name: a } }, time: 1, timeNano: "1000000000" }', "    expect: [{ rule: exec-into-container, severity: high }]", ""].join("\n");
    writeFileSync(join(sub, "t.yaml"), t);
    expect(runMonitoringTestFile(join(sub, "t.yaml")).passed).toBe(1);
    writeFileSync(join(sub, "missing.yaml"), t.replace("../candidate.yaml", "../nope.yaml"));
    expectRefusal(() => runMonitoringTestFile(join(sub, "missing.yaml")), "PC_MONITOR_TEST_INVALID", "cannot read the rules file ../nope.yaml");
    expectRefusal(() => runMonitoringTestFile(join(sub, "absent.yaml")), "PC_MONITOR_TEST_INVALID", /^cannot read /);
  });
});

describe("test files that cannot be used", () => {
  const good = ["cases:", "  - name: one", "    events:", '      - { Type: container, Action: oom, Actor: { ID: x, Attributes: { name: a } }, time: 1, timeNano: "1000000000" }', "    expect: []", ""];
  const variant = (i: number, line: string) => [...good.slice(0, i), line, ...good.slice(i + 1)].join("\n");
  const table: [string, string, [number, string, string][]][] = [
    ["an unknown top-level field", `${good.join("\n")}policies: [x]\n`, [[6, "policies", "unknown field (allowed: rules, cases)"]]],
    ["an unknown case field", `${good.join("\n")}    expected: []\n`, [[6, "cases[0].expected", "unknown field (allowed: name, container, events, samples, states, expect)"]]],
    ["a case without expect", good.filter((l) => !l.includes("expect")).join("\n"), [[2, "cases[0].expect", expect.stringContaining("is required") as unknown as string]]],
    ["an expected hit without a rule", variant(4, "    expect: [{ severity: high }]"), [[5, "cases[0].expect[0].rule", "is required: a rule name"]]],
    ["a bad expected severity", variant(4, "    expect: [{ rule: r, severity: urgent }]"), [[5, "cases[0].expect[0].severity", "must be one of low, medium, high, critical"]]],
    ["an event that is not a Docker event", variant(3, "      - { Kind: container }"), [[4, "cases[0].events[0]", expect.stringContaining("not a Docker or recorded event: neither a Docker event") as unknown as string]]],
    ["an event whose time and timeNano disagree", variant(3, '      - { Type: container, Action: oom, Actor: { ID: x }, time: 5, timeNano: "1000000000" }'), [[4, "cases[0].events[0]", "not a Docker or recorded event: time and timeNano disagree"]]],
    ["a duplicate key", `${good.join("\n")}    name: two\n`, [[6, "", "duplicate key"]]],
    ["a sample without a time", variant(3, "      - { Type: container, Action: oom, Actor: { ID: x }, timeNano: \"1\" }\n    samples: [{ memoryBytes: 1 }]"), [[5, "cases[0].samples[0].at", expect.stringContaining("is required: milliseconds since the epoch") as unknown as string]]],
    ["a case with nothing to feed", ["cases:", "  - name: empty", "    expect: []", ""].join("\n"), [[2, "cases[0]", "must give events, samples or states"]]],
  ];
  it.each(table)("refuses %s with PC_MONITOR_TEST_INVALID, line and field", (_n, text, expected) => {
    const e = expectRefusal(() => parseMonitoringTestFile(text), "PC_MONITOR_TEST_INVALID");
    expect((e.internal as MonitoringTestIssue[]).map((i) => [i.line, i.field, i.reason])).toEqual(expected);
    expect(e.status).toBe(400);
  });

  it("refuses two cases with the same name, and candidate rules that do not validate", () => {
    expectRefusal(() => parseMonitoringTestFile(`${good.join("\n")}${good.slice(1).join("\n")}`), "PC_MONITOR_TEST_INVALID", /line 6 \(cases\[1\]\.name\): repeats the name of the case on line 2/);
    expectRefusal(() => runMonitoringTests(good.join("\n"), "apiVersion: portcullis.io/v1\nkind: MonitoringRules\nrules: []\n"), "PC_MONITOR_RULES_INVALID", /rules: must be a non-empty list/);
  });
});

describe("replays of recorded events", () => {
  it("list the hits of Docker event lines, with the context their labels give", () => {
    const lines = [
      dockerLine("create", "c1", 1_700_000_000, MANAGED_ATTRS),
      dockerLine("exec_create: sh -c id", "c1", 1_700_000_001, MANAGED_ATTRS),
      dockerLine("exec_start: sh -c id", "c1", 1_700_000_001, MANAGED_ATTRS),
      dockerLine("exec_create: ls", "c2", 1_700_000_002, { name: "stray", image: "busybox" }),
      dockerLine("pull", "busybox:latest", 1_700_000_003, { name: "busybox" }, "image"),
      "",
    ];
    const r = replayMonitoringEvents(shippedMonitoringRules(), lines.join("\n"));
    expect(r.events).toBe(5);
    expect(r.hits).toEqual([
      { rule: "exec-into-container", severity: "critical", actions: ["alert"], at: "2023-11-14T22:13:21.000Z", node: "local", container: MANAGED_ATTRS.name, summary: `docker exec into payments/${MANAGED_ATTRS.name} (exec_create: sh -c id)` },
      expect.objectContaining({ rule: "exec-into-container", summary: `docker exec into payments/${MANAGED_ATTRS.name} (exec_start: sh -c id)` }),
    ]);
    expect(formatReplayReport(r)).toBe(
      `2023-11-14T22:13:21.000Z  critical  exec-into-container  docker exec into payments/${MANAGED_ATTRS.name} (exec_create: sh -c id)\n` +
        `2023-11-14T22:13:21.000Z  critical  exec-into-container  docker exec into payments/${MANAGED_ATTRS.name} (exec_start: sh -c id)\n` +
        "2 hits in 5 events\n",
    );
  });

  it("count restarts from the dies seen so far in the replay, per container", () => {
    const dies = (id: string, from: number, n: number, step: number) => Array.from({ length: n }, (_, i) => dockerLine("die", id, from + i * step, { ...MANAGED_ATTRS, exitCode: "1" }));
    const r = replayMonitoringEvents(shippedMonitoringRules(), [...dies("c1", 1_700_000_000, 6, 60), ...dies("c2", 1_700_000_000, 5, 200)].join("\n"));
    expect(r.events).toBe(11);
    expect(r.hits.map((h) => [h.rule, h.summary])).toEqual([
      ["crash-loop", `crash loop: payments/${MANAGED_ATTRS.name} died 5 times within 10m`],
      ["crash-loop", `crash loop: payments/${MANAGED_ATTRS.name} died 6 times within 10m`],
    ]);
  });

  it("refuse a bad line with PC_MONITOR_EVENTS_INVALID and its number, and bad rules with PC_MONITOR_RULES_INVALID", () => {
    const lines = [dockerLine("start", "c1", 1, {}), "", "{not json"].join("\n");
    expectRefusal(() => replayMonitoringEvents(shippedMonitoringRules(), lines), "PC_MONITOR_EVENTS_INVALID", /^line 3: not JSON/);
    expectRefusal(() => replayMonitoringEvents("rules: []", lines), "PC_MONITOR_RULES_INVALID");
  });
});
