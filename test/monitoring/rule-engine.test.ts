/**
 * The rule engine: each match kind (event, restarts, stats, state), scopes in every
 * combination, action prefixes, held conditions that break and hold again, the dedupe
 * window while a condition keeps holding, and summaries that say what happened and where
 * without repeating attribute values.
 */
import { describe, expect, it } from "vitest";
import {
  actionMatches,
  parseMonitoringRules,
  RuleEngine,
  scopeMatches,
  type ContainerContext,
  type EventHistory,
  type MonitoringRuleSet,
  type MonitorEvent,
  type StatsSample,
} from "../../src/monitoring/index.js";

const T0 = Date.parse("2026-01-01T00:00:00Z");

function rules(...yaml: string[]): MonitoringRuleSet {
  return parseMonitoringRules(`apiVersion: portcullis.io/v1\nkind: MonitoringRules\nrules:\n${yaml.join("")}`);
}
const rule = (name: string, match: string, extra = "") => `  - name: ${name}\n    description: d\n    severity: high\n    match: ${match}\n${extra}`;

const MANAGED: ContainerContext = {
  node: "local",
  containerId: "c1",
  containerName: "pc-gw-payments-api-r1-0",
  managed: true,
  namespace: "payments",
  deployment: "api",
  revision: 1,
  requester: "user:dev",
  labels: { tier: "web", team: "pay" },
};
const UNMANAGED: ContainerContext = { node: "local", containerId: "c9", containerName: "stray", managed: false, labels: { tier: "web" } };

function event(action: string, over: Partial<MonitorEvent> = {}): MonitorEvent {
  const timeMs = over.timeMs ?? T0;
  return {
    id: "0".repeat(64),
    node: "local",
    source: "engine",
    type: "container",
    action,
    actor: "c1",
    attributes: { name: "pc-gw-payments-api-r1-0" },
    timeNano: `${timeMs}000000`,
    timeMs,
    ...over,
  };
}
const NO_HISTORY: EventHistory = { dies: () => 0 };

function sample(at: number, memoryPercent: number | undefined, over: Partial<StatsSample> = {}): StatsSample {
  return {
    node: "local",
    containerId: "c1",
    containerName: "pc-gw-payments-api-r1-0",
    namespace: "payments",
    deployment: "api",
    at,
    cpuPercent: 5,
    memoryBytes: 900,
    memoryLimitBytes: memoryPercent === undefined ? 0 : 1000,
    memoryPercent,
    pids: 3,
    netRxBytes: 0,
    netTxBytes: 0,
    ...over,
  };
}
const obs = (at: number, status: string, health?: string) => ({ node: "local", containerId: "c1", containerName: MANAGED.containerName, status, health, at });

describe("event rules", () => {
  it.each([
    ["exec_create", "exec_create", true],
    ["exec_create", "exec_create: ls", true],
    ["exec_create", "exec_create: sh -c id", true],
    ["exec_create", "exec_createX", false],
    ["exec_create", "exec_createX: ls", false],
    ["exec_create", "exec_start: ls", false],
    ["exec_start", "exec_create: exec_start", false],
    ["die", "die", true],
    ["die", "died", false],
  ])("action %s matches %s: %s", (ruleAction, eventAction, expected) => {
    expect(actionMatches(ruleAction, eventAction)).toBe(expected);
    const engine = new RuleEngine(() => rules(rule("r", `{ event: { type: container, actions: [${ruleAction}] } }`)));
    expect(engine.onEvent(event(eventAction), MANAGED, NO_HISTORY).map((h) => h.rule.name)).toEqual(expected ? ["r"] : []);
  });

  it("needs the type equal and every attribute of the rule equal", () => {
    const set = rules(
      rule("by-type", "{ event: { type: image, actions: [pull] } }"),
      rule("by-attr", "{ event: { type: container, actions: [kill], attributes: { signal: '9' } } }"),
    );
    const engine = new RuleEngine(() => set);
    expect(engine.onEvent(event("pull"), MANAGED, NO_HISTORY)).toEqual([]); // a container pull is not an image pull
    expect(engine.onEvent(event("pull", { type: "image", actor: "busybox" }), undefined, NO_HISTORY).map((h) => h.rule.name)).toEqual(["by-type"]);
    expect(engine.onEvent(event("kill", { attributes: { name: "x", signal: "9" } }), MANAGED, NO_HISTORY).map((h) => h.rule.name)).toEqual(["by-attr"]);
    expect(engine.onEvent(event("kill", { attributes: { name: "x", signal: "15" } }), MANAGED, NO_HISTORY)).toEqual([]);
    expect(engine.onEvent(event("kill", { attributes: { name: "x" } }), MANAGED, NO_HISTORY)).toEqual([]);
  });

  it("a hit carries the rule, the context, the event as evidence and its time", () => {
    const set = rules(rule("exec", "{ event: { type: container, actions: [exec_start] } }"));
    const ev = event("exec_start: sh -c id", { timeMs: T0 + 5 });
    const [hit] = new RuleEngine(() => set).onEvent(ev, MANAGED, NO_HISTORY);
    expect(hit).toEqual({ rule: set.rules[0], context: MANAGED, evidence: { kind: "event", event: ev }, at: T0 + 5, summary: "docker exec into payments/pc-gw-payments-api-r1-0 (exec_start: sh -c id)" });
  });

  it("reads the rules at every call: a new set applies at once, no set means no hit", () => {
    let set: MonitoringRuleSet | undefined = rules(rule("a", "{ event: { type: container, actions: [oom] } }"));
    const engine = new RuleEngine(() => set);
    expect(engine.onEvent(event("oom"), MANAGED, NO_HISTORY).map((h) => h.rule.name)).toEqual(["a"]);
    set = rules(rule("b", "{ event: { type: container, actions: [oom] } }"));
    expect(engine.onEvent(event("oom"), MANAGED, NO_HISTORY).map((h) => h.rule.name)).toEqual(["b"]);
    set = undefined;
    expect(engine.onEvent(event("oom"), MANAGED, NO_HISTORY)).toEqual([]);
  });
});

describe("the engine's healthchecks", () => {
  const exec = rules(rule("exec", "{ event: { type: container, actions: [exec_create, exec_start] } }"));
  const withHc: ContainerContext = { ...MANAGED, healthcheck: "/bin/test -f /tmp/ready" };

  it("an exec of exactly the admitted healthcheck command is the engine's own: no exec rule matches it", () => {
    const engine = new RuleEngine(() => exec);
    expect(engine.onEvent(event("exec_create: /bin/test -f /tmp/ready"), withHc, NO_HISTORY)).toEqual([]);
    expect(engine.onEvent(event("exec_start: /bin/test -f /tmp/ready"), withHc, NO_HISTORY)).toEqual([]);
    // A one-word healthcheck: the engine writes a trailing space.
    expect(engine.onEvent(event("exec_create: /healthz "), { ...MANAGED, healthcheck: "/healthz" }, NO_HISTORY)).toEqual([]);
  });

  it("any other command is judged: another command, extra words, the same command without a healthcheck admitted", () => {
    const engine = new RuleEngine(() => exec);
    expect(engine.onEvent(event("exec_create: /bin/test -f /tmp/ready; sh"), withHc, NO_HISTORY)).toHaveLength(1);
    expect(engine.onEvent(event("exec_create: /bin/test -f /tmp/readyx"), withHc, NO_HISTORY)).toHaveLength(1);
    expect(engine.onEvent(event("exec_start: sh -c id"), withHc, NO_HISTORY)).toHaveLength(1);
    expect(engine.onEvent(event("exec_create: /bin/test -f /tmp/ready"), MANAGED, NO_HISTORY)).toHaveLength(1);
  });
});

describe("scopes", () => {
  const cases: [string, string, ContainerContext | undefined, boolean][] = [
    ["no scope, a managed container", "", MANAGED, true],
    ["no scope, an unmanaged container", "", UNMANAGED, true],
    ["no scope, no container", "", undefined, true],
    ["managed: true, managed", "{ managed: true }", MANAGED, true],
    ["managed: true, unmanaged", "{ managed: true }", UNMANAGED, false],
    ["managed: true, no container", "{ managed: true }", undefined, false],
    ["managed: false, unmanaged", "{ managed: false }", UNMANAGED, true],
    ["managed: false, managed", "{ managed: false }", MANAGED, false],
    ["namespaces, managed in it", "{ namespaces: [billing, payments] }", MANAGED, true],
    ["namespaces, managed elsewhere", "{ namespaces: [billing] }", MANAGED, false],
    ["namespaces, unmanaged (never)", "{ namespaces: [payments] }", { ...UNMANAGED, namespace: "payments" }, false],
    ["namespaces, no container", "{ namespaces: [payments] }", undefined, false],
    ["labels, all equal", "{ labels: { tier: web, team: pay } }", MANAGED, true],
    ["labels, one differs", "{ labels: { tier: web, team: ops } }", MANAGED, false],
    ["labels, one missing", "{ labels: { tier: web, owner: x } }", UNMANAGED, false],
    ["labels, unmanaged with them", "{ labels: { tier: web } }", UNMANAGED, true],
    ["labels, no container", "{ labels: { tier: web } }", undefined, false],
    ["everything, matching", "{ namespaces: [payments], labels: { tier: web }, managed: true }", MANAGED, true],
    ["everything, label off", "{ namespaces: [payments], labels: { tier: db }, managed: true }", MANAGED, false],
  ];
  it.each(cases)("%s", (_n, scope, ctx, expected) => {
    const set = rules(rule("r", "{ event: { type: container, actions: [oom] } }", scope ? `    scope: ${scope}\n` : ""));
    expect(scopeMatches(set.rules[0]?.scope ?? {}, ctx)).toBe(expected);
    expect(new RuleEngine(() => set).onEvent(event("oom"), ctx, NO_HISTORY)).toHaveLength(expected ? 1 : 0);
  });
});

describe("restart rules", () => {
  const set = rules(rule("loop", "{ restarts: { count: 3, within: 10m } }", "    scope: { managed: true }\n"));

  it("hit on a die event once the history counts `count` deaths within the window, asked from the event's time", () => {
    const asked: [string, string, number][] = [];
    let n = 0;
    const history: EventHistory = {
      dies: (node, actor, since) => {
        asked.push([node, actor, since]);
        return n;
      },
    };
    const engine = new RuleEngine(() => set);
    n = 2;
    expect(engine.onEvent(event("die", { timeMs: T0 + 600_000 }), MANAGED, history)).toEqual([]);
    expect(asked).toEqual([["local", "c1", T0]]);
    n = 3;
    const [hit] = engine.onEvent(event("die", { timeMs: T0 + 700_000 }), MANAGED, history);
    expect(hit?.rule.name).toBe("loop");
    expect(hit?.evidence).toMatchObject({ kind: "restarts", count: 3, withinMs: 600_000 });
    expect(hit?.summary).toBe("crash loop: payments/pc-gw-payments-api-r1-0 died 3 times within 10m");
  });

  it("only die events count; other actions and other scopes never ask", () => {
    let asked = 0;
    const history: EventHistory = {
      dies: () => {
        asked++;
        return 99;
      },
    };
    const engine = new RuleEngine(() => set);
    expect(engine.onEvent(event("stop"), MANAGED, history)).toEqual([]);
    expect(engine.onEvent(event("die", { type: "network" }), MANAGED, history)).toEqual([]);
    expect(engine.onEvent(event("die"), UNMANAGED, history)).toEqual([]);
    expect(asked).toBe(0);
    expect(engine.onEvent(event("die"), MANAGED, history)).toHaveLength(1);
  });
});

describe("stats rules (held conditions)", () => {
  const set = rules(rule("mem", "{ stats: { metric: memory_percent, above: 90, for: 1m } }", "    dedupeWindow: 5m\n"));

  it("hits once when the condition has held for `for`, not per sample; again once per dedupe window while held", () => {
    const engine = new RuleEngine(() => set);
    const at = (s: number, v: number | undefined = 95) => engine.onSample(sample(T0 + s * 1000, v), MANAGED).map((h) => h.evidence.kind === "stats" ? h.evidence.heldMs : -1);
    expect(at(0)).toEqual([]);
    expect(at(30)).toEqual([]);
    expect(at(59)).toEqual([]);
    expect(at(60)).toEqual([60_000]);
    expect(at(70)).toEqual([]);
    expect(at(200)).toEqual([]);
    expect(at(359)).toEqual([]);
    expect(at(360)).toEqual([360_000]); // five minutes after the first hit, still held
    expect(at(400)).toEqual([]);
  });

  it("a sample at or below the threshold, or without the metric, breaks the hold; it starts over", () => {
    const engine = new RuleEngine(() => set);
    const hits = (s: number, v: number | undefined) => engine.onSample(sample(T0 + s * 1000, v), MANAGED).length;
    expect(hits(0, 95)).toBe(0);
    expect(hits(50, 90)).toBe(0); // exactly 90 is not above: broken
    expect(hits(60, 95)).toBe(0); // held again from 60 s
    expect(hits(100, 95)).toBe(0);
    expect(hits(120, 95)).toBe(1);
    expect(hits(130, undefined)).toBe(0); // no memory limit: no memory_percent, broken
    expect(hits(140, 99)).toBe(0);
    expect(hits(199, 99)).toBe(0);
    expect(hits(200, 99)).toBe(1); // held a minute again: a new hit, no dedupe wait
  });

  it("for: 0s hits on the first sample above; scopes and containers are held apart", () => {
    const zero = rules(rule("pids", "{ stats: { metric: pids, above: 100, for: 0s } }", "    scope: { namespaces: [payments] }\n"));
    const engine = new RuleEngine(() => zero);
    expect(engine.onSample(sample(T0, 10, { pids: 101 }), MANAGED)).toHaveLength(1);
    expect(engine.onSample(sample(T0 + 1000, 10, { pids: 101 }), MANAGED)).toHaveLength(0); // held: deduped
    expect(engine.onSample(sample(T0, 10, { pids: 101, containerId: "c2" }), { ...MANAGED, containerId: "c2" })).toHaveLength(1);
    expect(engine.onSample(sample(T0, 10, { pids: 500 }), { ...MANAGED, namespace: "billing" })).toHaveLength(0);
    expect(engine.onSample(sample(T0, 10, { pids: 500, containerId: "c9" }), UNMANAGED)).toHaveLength(0);
  });

  it("forget drops a container's hold; a changed rule starts over", () => {
    let current = set;
    const engine = new RuleEngine(() => current);
    engine.onSample(sample(T0, 95), MANAGED);
    engine.forget("local", "c1");
    expect(engine.onSample(sample(T0 + 60_000, 95), MANAGED)).toHaveLength(0); // the hold began again at 60 s
    expect(engine.onSample(sample(T0 + 120_000, 95), MANAGED)).toHaveLength(1);
    current = rules(rule("mem", "{ stats: { metric: memory_percent, above: 80, for: 1m } }"));
    expect(engine.onSample(sample(T0 + 130_000, 95), MANAGED)).toHaveLength(0); // a new match: held from 130 s
    expect(engine.onSample(sample(T0 + 190_000, 95), MANAGED)).toHaveLength(1);
  });

  it("the hit carries the sample and how long it held; the summary names the metric, the place and the value", () => {
    const engine = new RuleEngine(() => set);
    engine.onSample(sample(T0, 91), MANAGED);
    const s = sample(T0 + 61_000, 97.25);
    const [hit] = engine.onSample(s, MANAGED);
    expect(hit?.evidence).toEqual({ kind: "stats", sample: s, heldMs: 61_000 });
    expect(hit?.at).toBe(T0 + 61_000);
    expect(hit?.summary).toBe("memory_percent of payments/pc-gw-payments-api-r1-0 above 90 for 61s (now 97.3)");
  });
});

describe("state rules", () => {
  it("status and health must both match when both are given; held for `for`; a change breaks it", () => {
    const set = rules(rule("sick", "{ state: { status: [running], health: [unhealthy], for: 30s } }"));
    const engine = new RuleEngine(() => set);
    expect(engine.onState(obs(T0, "running", "unhealthy"), MANAGED)).toHaveLength(0);
    expect(engine.onState(obs(T0 + 20_000, "running", "healthy"), MANAGED)).toHaveLength(0); // broken
    expect(engine.onState(obs(T0 + 30_000, "running", "unhealthy"), MANAGED)).toHaveLength(0);
    expect(engine.onState(obs(T0 + 40_000, "running", undefined), MANAGED)).toHaveLength(0); // no healthcheck: broken
    expect(engine.onState(obs(T0 + 50_000, "running", "unhealthy"), MANAGED)).toHaveLength(0);
    const [hit] = engine.onState(obs(T0 + 80_000, "running", "unhealthy"), MANAGED);
    expect(hit?.evidence).toEqual({ kind: "state", status: "running", health: "unhealthy", heldMs: 30_000, at: T0 + 80_000 });
    expect(hit?.summary).toBe("payments/pc-gw-payments-api-r1-0 running, unhealthy for 30s");
    expect(engine.onState(obs(T0 + 90_000, "running", "unhealthy"), MANAGED)).toHaveLength(0);
  });

  it("a status-only rule ignores health", () => {
    const set = rules(rule("flap", "{ state: { status: [restarting, exited] } }"));
    const engine = new RuleEngine(() => set);
    expect(engine.onState(obs(T0, "running"), MANAGED)).toHaveLength(0);
    expect(engine.onState(obs(T0 + 1, "restarting", "starting"), MANAGED).map((h) => h.summary)).toEqual(["payments/pc-gw-payments-api-r1-0 restarting for 0s"]);
    expect(engine.onState(obs(T0 + 2, "exited"), MANAGED)).toHaveLength(0); // still held: within the dedupe window
  });
});

describe("summaries", () => {
  const set = rules(
    rule("exec", "{ event: { type: container, actions: [exec_create] } }"),
    rule("drift", "{ event: { type: portcullis, actions: [drift] } }"),
    rule("img", "{ event: { type: image, actions: [delete] } }"),
  );
  const engine = new RuleEngine(() => set);

  it("are one line of at most 300 characters, without attribute values other than the name", () => {
    const secretish = "x".repeat(5000);
    const ev = event(`exec_create: sh -c 'echo a\nrm -rf /'${" --flag".repeat(200)}`, { attributes: { name: "pc-gw-payments-api-r1-0", image: secretish, execID: "deadbeef" } });
    const [hit] = engine.onEvent(ev, MANAGED, NO_HISTORY);
    expect(hit?.summary.length).toBeLessThanOrEqual(300);
    expect(hit?.summary).toMatch(/^docker exec into payments\/pc-gw-payments-api-r1-0 \(exec_create: sh -c 'echo a rm -rf \/'/);
    expect(hit?.summary).not.toMatch(/[\n\r\t]/);
    expect(hit?.summary).not.toContain("xxxx");
    expect(hit?.summary).not.toContain("deadbeef");
  });

  it("name an unmanaged container by its name, a container without context by its attribute name or short id", () => {
    const drift = { ...event("drift", { type: "portcullis", source: "gateway", actor: "a".repeat(64), attributes: { container: "stray", reason: "not created by the gateway" } }) };
    expect(engine.onEvent(drift, UNMANAGED, NO_HISTORY)[0]?.summary).toBe("container stray on a managed node was not created by the gateway (drift)");
    expect(engine.onEvent(drift, undefined, NO_HISTORY)[0]?.summary).toBe(`container ${"a".repeat(12)} on a managed node was not created by the gateway (drift)`);
    const img = event("delete", { type: "image", actor: "sha256:abc", attributes: { name: "busybox:1" } });
    expect(engine.onEvent(img, undefined, NO_HISTORY)[0]?.summary).toBe("image event delete on busybox:1");
  });
});
