/**
 * Monitoring rules through the API, over real mTLS: the shipped rules are version 1; an
 * administrator applies a file (validated whole; the text in force again is `unchanged`),
 * reads any version, the history, and rolls back as a new version; each change leaves a
 * `monitoring.rules_applied` audit entry. Candidate rules are tested without being
 * applied (a test file's cases, a replay of events). The recorded events are listed for
 * replays. Reading rules needs policies:read, changing them policies:update, reading
 * events alerts:read: a developer gets 403 for all of them, an auditor reads only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shippedMonitoringRules, toMonitorEvent } from "../../src/monitoring/index.js";
import type { EngineEvent } from "../../src/runtime/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { eventsSince, mark } from "./api-support.js";
import { call, expectCode, setUpWorld, type World } from "./rbac-support.js";

const PATH = "/v1/monitoring/rules";
const rulesText = (actions: string, severity = "critical") =>
  [
    "apiVersion: portcullis.io/v1",
    "kind: MonitoringRules",
    "rules:",
    "  - name: exec-into-container",
    "    description: Someone ran a command inside a managed container.",
    `    severity: ${severity}`,
    "    scope: { managed: true }",
    "    match: { event: { type: container, actions: [exec_create, exec_start] } }",
    `    actions: ${actions}`,
    "",
  ].join("\n");
const QUARANTINE = rulesText("[alert, quarantine]");
/** Line 9: an unknown action. */
const BROKEN = rulesText("[alert, kill]");
const TEST_FILE = [
  "cases:",
  "  - name: exec is caught",
  "    container: { managed: true, namespace: payments, name: api-0 }",
  "    events:",
  '      - { Type: container, Action: "exec_create: sh", Actor: { ID: c1, Attributes: { name: api-0 } }, time: 1700000000, timeNano: "1700000000000000000" }',
  "    expect: [{ rule: exec-into-container, severity: critical, actions: [alert, quarantine] }]",
  "",
].join("\n");

let t: TestGateway;
let w: World;
const shipped = shippedMonitoringRules();

beforeAll(async () => {
  t = await startTestGateway();
  w = await setUpWorld(t);
});
afterAll(async () => {
  await t?.close();
});

async function inForce(): Promise<{ version: number; text: string; rules: { name: string; actions: string[] }[] }> {
  const r = await call(t, w.admin, "GET", PATH);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

describe("monitoring rules through the API", () => {
  it("start as the shipped file, version 1, with its rules as parsed", async () => {
    const r = await inForce();
    expect(r.version).toBe(1);
    expect(r.text).toBe(shipped);
    expect(r.rules.map((x) => x.name)).toEqual([
      "exec-into-container",
      "container-drift",
      "runtime-mismatch",
      "image-mismatch",
      "oom-killed",
      "crash-loop",
      "memory-near-limit",
      "scan-new-findings",
    ]);
    expect(r.rules[0]).toMatchObject({ severity: "critical", scope: { managed: true }, match: { kind: "event", type: "container" }, actions: ["alert"], dedupeWindowMs: 300_000 });
  });

  it("a developer can neither read nor change them, nor read events; an auditor reads but cannot change", async () => {
    const before = await inForce();
    expectCode(await call(t, w.dev, "GET", PATH), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "GET", `${PATH}/history`), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "PUT", PATH, { text: QUARANTINE }), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "POST", `${PATH}/rollback`, { version: 1 }), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "POST", `${PATH}/test`, { rules: QUARANTINE, tests: TEST_FILE }), 403, "PC_API_FORBIDDEN");
    expectCode(await call(t, w.dev, "GET", "/v1/monitoring/events"), 403, "PC_API_FORBIDDEN");
    const read = await call(t, w.aud, "GET", PATH);
    expect(read.status, read.text).toBe(200);
    expect((await call(t, w.aud, "GET", "/v1/monitoring/events?limit=1")).status).toBe(200);
    expectCode(await call(t, w.aud, "PUT", PATH, { text: QUARANTINE }), 403, "PC_API_FORBIDDEN");
    expect(await inForce()).toEqual(before);
  });

  it("an administrator applies a file as a new version, audited with the caller and request; the same text again is unchanged", async () => {
    const m = mark(t);
    const a = await call(t, w.admin, "PUT", PATH, { text: QUARANTINE, message: "quarantine on exec" });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toEqual({ version: 2, unchanged: false });
    const cur = await inForce();
    expect(cur).toMatchObject({ version: 2, text: QUARANTINE });
    expect(cur.rules.map((r) => [r.name, r.actions])).toEqual([["exec-into-container", ["alert", "quarantine"]]]);
    expect(t.gw.monitoringRules.current().version).toBe(2);
    const again = await call(t, w.sec, "PUT", PATH, { text: QUARANTINE });
    expect(again.status, again.text).toBe(200);
    expect(again.body).toEqual({ version: 2, unchanged: true });
    const applied = eventsSince(t, m).filter((e) => e.type === "monitoring.rules_applied");
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ outcome: "allowed", actor: "user:admin", target: "monitoring-rules:v2", reason: "rules:1", resource: "policies" });
    expect(applied[0]?.requestId).toEqual(expect.any(String));
  });

  it("refuses an invalid file with 400 and its line and field path; nothing changes, nothing is audited", async () => {
    const before = await inForce();
    const m = mark(t);
    const msg = expectCode(await call(t, w.admin, "PUT", PATH, { text: BROKEN, message: "broken" }), 400, "PC_MONITOR_RULES_INVALID");
    expect(msg).toBe('monitoring rules are not valid: line 9: rules[0].actions[1]: unknown action "kill" (one of alert, stop, pause, quarantine, revoke)');
    expect(await inForce()).toEqual(before);
    expect(eventsSince(t, m).filter((e) => e.type === "monitoring.rules_applied")).toEqual([]);
  });

  it.each([
    ["an unknown field", { text: QUARANTINE, force: true }, /force|additional/],
    ["no text", { message: "x" }, /text/],
    ["an empty text", { text: "" }, /text/],
    ["a text that is not a string", { text: ["a"] }, /text/],
    ["a message too long", { text: QUARANTINE, message: "m".repeat(501) }, /message/],
  ])("refuses %s at the edge with 400 PC_API_INVALID_BODY", async (_what, body, detail) => {
    const before = await inForce();
    const msg = expectCode(await call(t, w.admin, "PUT", PATH, body), 400, "PC_API_INVALID_BODY");
    expect(msg).toMatch(detail);
    expect(await inForce()).toEqual(before);
  });

  it("refuses a body too large with 413", async () => {
    expectCode(await call(t, w.admin, "PUT", PATH, { text: `# ${"x".repeat(300 * 1024)}\n` }), 413, "PC_API_BODY_TOO_LARGE");
  });

  it("history lists every version; ?version=N reads one; rollback makes a new version of old text", async () => {
    const h = await call(t, w.aud, "GET", `${PATH}/history`);
    expect(h.status, h.text).toBe(200);
    expect(h.body.items.map((v: { version: number; author: string; rollbackOf: number | null }) => [v.version, v.author, v.rollbackOf])).toEqual([
      [1, "service:portcullis-init", null],
      [2, "user:admin", null],
    ]);
    expect(h.body.items[1]).toMatchObject({ message: "quarantine on exec", sha256: expect.stringMatching(/^[0-9a-f]{64}$/), createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    const v1 = await call(t, w.aud, "GET", `${PATH}?version=1`);
    expect(v1.status, v1.text).toBe(200);
    expect(v1.body).toMatchObject({ version: 1, text: shipped });
    expect(v1.body.rules).toHaveLength(8);
    expectCode(await call(t, w.admin, "GET", `${PATH}?version=99`), 404, "PC_MONITOR_RULES_VERSION_NOT_FOUND");
    expectCode(await call(t, w.admin, "GET", `${PATH}?version=x`), 400, "PC_API_INVALID_BODY");

    const m = mark(t);
    const r = await call(t, w.admin, "POST", `${PATH}/rollback`, { version: 1, message: "back to the shipped rules" });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ version: 3, unchanged: false });
    expect((await inForce()).text).toBe(shipped);
    expect(eventsSince(t, m).filter((e) => e.type === "monitoring.rules_applied")).toEqual([
      expect.objectContaining({ actor: "user:admin", target: "monitoring-rules:v3", reason: "rules:8 rollback-of:v1" }),
    ]);
    expectCode(await call(t, w.admin, "POST", `${PATH}/rollback`, { version: 99 }), 404, "PC_MONITOR_RULES_VERSION_NOT_FOUND");
    expectCode(await call(t, w.admin, "POST", `${PATH}/rollback`, { version: 0 }), 400, "PC_API_INVALID_BODY");
    expect((await inForce()).version).toBe(3);
  });

  it("tests candidate rules without applying them: a test file's cases, a replay of event lines", async () => {
    const before = await inForce();
    const passing = await call(t, w.aud, "POST", `${PATH}/test`, { rules: QUARANTINE, tests: TEST_FILE });
    expect(passing.status, passing.text).toBe(200);
    expect(passing.body.tests).toMatchObject({ passed: 1, failed: 0, cases: [{ name: "exec is caught", ok: true, hits: [{ rule: "exec-into-container", actions: ["alert", "quarantine"] }] }] });
    expect(passing.body.replay).toBeUndefined();
    // The shipped rules alert only: the same case fails, saying why.
    const failing = await call(t, w.aud, "POST", `${PATH}/test`, { rules: shipped, tests: TEST_FILE });
    expect(failing.status, failing.text).toBe(200);
    expect(failing.body.tests.cases[0]).toMatchObject({ ok: false, reason: "hit 1 (exec-into-container): expected actions [alert, quarantine], got [alert]" });
    const events = [
      JSON.stringify({ Type: "container", Action: "exec_start: id", Actor: { ID: "c1", Attributes: { name: "pc-x-payments-api-r1-0", "io.portcullis.gateway": "x", "io.portcullis.namespace": "payments" } }, time: 1700000000, timeNano: 1700000000000000000 }),
      JSON.stringify({ Type: "container", Action: "exec_start: id", Actor: { ID: "c2", Attributes: { name: "stray" } }, time: 1700000001, timeNano: 1700000001000000000 }),
    ].join("\n");
    const replay = await call(t, w.aud, "POST", `${PATH}/test`, { rules: QUARANTINE, events });
    expect(replay.status, replay.text).toBe(200);
    expect(replay.body.replay).toEqual({
      events: 2,
      hits: [{ rule: "exec-into-container", severity: "critical", actions: ["alert", "quarantine"], at: "2023-11-14T22:13:20.000Z", node: "local", container: "pc-x-payments-api-r1-0", summary: "docker exec into payments/pc-x-payments-api-r1-0 (exec_start: id)" }],
    });
    expect(await inForce()).toEqual(before);
  });

  it.each([
    ["neither tests nor events", { rules: QUARANTINE }, 400, "PC_API_INVALID_BODY"],
    ["an unknown field", { rules: QUARANTINE, events: "", apply: true }, 400, "PC_API_INVALID_BODY"],
    ["invalid candidate rules", { rules: BROKEN, tests: TEST_FILE }, 400, "PC_MONITOR_RULES_INVALID"],
    ["an invalid test file", { rules: QUARANTINE, tests: "cases: []\n" }, 400, "PC_MONITOR_TEST_INVALID"],
    ["an event line that is not JSON", { rules: QUARANTINE, events: "{oops\n" }, 400, "PC_MONITOR_EVENTS_INVALID"],
  ])("a test request with %s is refused", async (_what, body, status, code) => {
    const msg = expectCode(await call(t, w.admin, "POST", `${PATH}/test`, body), status, code);
    if (code === "PC_MONITOR_EVENTS_INVALID") expect(msg).toContain("line 1: not JSON");
    if (code === "PC_MONITOR_TEST_INVALID") expect(msg).toContain("line 1 (cases): must be a non-empty list");
  });

  it("lists recorded events with filters; each item replays as it is", async () => {
    const node = "replay-node";
    const base = 1_800_000_000;
    const raw: EngineEvent[] = [
      { Type: "container", Action: "create", Actor: { ID: "e1", Attributes: { name: "app" } }, time: base, timeNano: `${base}000000000` },
      { Type: "container", Action: "exec_create: sh -c id", Actor: { ID: "e1", Attributes: { name: "app", "io.portcullis.gateway": "x", "io.portcullis.namespace": "payments" } }, time: base + 1, timeNano: `${base + 1}000000000` },
      { Type: "image", Action: "pull", Actor: { ID: "busybox", Attributes: { name: "busybox" } }, time: base + 2, timeNano: `${base + 2}000000000` },
    ];
    for (const e of raw) expect(t.gw.store.monitorEvents.record(toMonitorEvent(node, e), Date.now())).toBe(true);
    const all = await call(t, w.aud, "GET", `/v1/monitoring/events?node=${node}`);
    expect(all.status, all.text).toBe(200);
    expect(all.body.items.map((e: { action: string }) => e.action)).toEqual(["create", "exec_create: sh -c id", "pull"]);
    expect(all.body.items[1]).toEqual(toMonitorEvent(node, raw[1] as EngineEvent));
    const images = await call(t, w.aud, "GET", `/v1/monitoring/events?node=${node}&type=image`);
    expect(images.body.items.map((e: { action: string }) => e.action)).toEqual(["pull"]);
    const since = new Date((base + 1) * 1000).toISOString();
    const until = new Date((base + 1) * 1000 + 500).toISOString();
    const window = await call(t, w.aud, "GET", `/v1/monitoring/events?node=${node}&since=${since}&until=${until}`);
    expect(window.body.items.map((e: { action: string }) => e.action)).toEqual(["exec_create: sh -c id"]);
    const limited = await call(t, w.aud, "GET", `/v1/monitoring/events?node=${node}&limit=2`);
    expect(limited.body.items).toHaveLength(2);
    expectCode(await call(t, w.aud, "GET", `/v1/monitoring/events?node=${node}&since=yesterday`), 400, "PC_API_INVALID_BODY");
    expectCode(await call(t, w.aud, "GET", `/v1/monitoring/events?limit=20000`), 400, "PC_API_INVALID_BODY");

    const lines = all.body.items.map((e: unknown) => JSON.stringify(e)).join("\n");
    const replay = await call(t, w.aud, "POST", `${PATH}/test`, { rules: shipped, events: lines });
    expect(replay.status, replay.text).toBe(200);
    expect(replay.body.replay.events).toBe(3);
    expect(replay.body.replay.hits.map((h: { rule: string; node: string }) => [h.rule, h.node])).toEqual([["exec-into-container", node]]);
  });
});
