import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPortcullisError } from "../../src/core/index.js";
import {
  GATEWAY_EVENT_TYPE,
  gatewayEvent,
  parseRecordedEvent,
  parseRecordedEvents,
  sinceOf,
  toMonitorEvent,
  type MonitorEvent,
} from "../../src/monitoring/index.js";
import type { EngineEvent } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, newTestRun, RUN_LABEL, testEngine } from "../support/docker.js";

function engineEvent(over: Partial<{ type: string; action: string; actor: string; attrs: Record<string, string>; timeNano: string }> = {}): EngineEvent {
  const timeNano = over.timeNano ?? "1795771668802222510";
  return {
    Type: over.type ?? "container",
    Action: over.action ?? "start",
    Actor: { ID: over.actor ?? "ab12", Attributes: over.attrs ?? { image: "busybox", name: "api-0" } },
    time: Number(BigInt(timeNano) / 1_000_000_000n),
    timeNano,
  };
}

function codeOf(fn: () => unknown): { code: string; detail: string | undefined } {
  try {
    fn();
  } catch (e) {
    if (isPortcullisError(e)) return { code: e.code, detail: e.detail };
    throw e;
  }
  throw new Error("did not throw");
}

describe("event ids", () => {
  it("is the SHA-256 of the canonical JSON of the identifying fields (a known answer)", () => {
    const ev = toMonitorEvent("n1", engineEvent({ attrs: { name: "api-0", image: "busybox" } }));
    const canonical =
      '{"action":"start","actor":"ab12","attributes":{"image":"busybox","name":"api-0"},"node":"n1","source":"engine","timeNano":"1795771668802222510","type":"container"}';
    expect(ev.id).toBe(createHash("sha256").update(canonical).digest("hex"));
    expect(ev).toEqual({
      id: ev.id,
      node: "n1",
      source: "engine",
      type: "container",
      action: "start",
      actor: "ab12",
      attributes: { image: "busybox", name: "api-0" },
      timeNano: "1795771668802222510",
      timeMs: 1795771668802,
    });
  });

  it("is stable: a re-delivered event, attributes in another order, a copy, all give the same id", () => {
    const a = toMonitorEvent("n1", engineEvent({ attrs: { a: "1", b: "2", c: "3" } }));
    const b = toMonitorEvent("n1", engineEvent({ attrs: { c: "3", a: "1", b: "2" } }));
    const c = toMonitorEvent("n1", JSON.parse(JSON.stringify(engineEvent({ attrs: { b: "2", c: "3", a: "1" } }))) as EngineEvent);
    expect(b.id).toBe(a.id);
    expect(c.id).toBe(a.id);
    expect(Object.keys(b.attributes)).toEqual(["a", "b", "c"]);
    const g1 = gatewayEvent({ node: "n1", action: "drift", actor: "ab12", attributes: { x: "1", y: "2" }, timeMs: 5, cause: a.id });
    const g2 = gatewayEvent({ node: "n1", action: "drift", actor: "ab12", attributes: { y: "2", x: "1" }, timeMs: 5, cause: a.id });
    expect(g2.id).toBe(g1.id);
  });

  it("is distinct for near-identical events (a table)", () => {
    const base = { type: "container", action: "start", actor: "ab12", attrs: { image: "busybox", name: "api-0" }, timeNano: "1795771668802222510" };
    const cases: [string, MonitorEvent][] = [
      ["base", toMonitorEvent("n1", engineEvent(base))],
      ["other node", toMonitorEvent("n2", engineEvent(base))],
      ["node '' ", toMonitorEvent("", engineEvent(base))],
      ["1 ns later", toMonitorEvent("n1", engineEvent({ ...base, timeNano: "1795771668802222511" }))],
      ["1 ms later", toMonitorEvent("n1", engineEvent({ ...base, timeNano: "1795771668803222510" }))],
      ["type", toMonitorEvent("n1", engineEvent({ ...base, type: "network" }))],
      ["action", toMonitorEvent("n1", engineEvent({ ...base, action: "stop" }))],
      ["action with command", toMonitorEvent("n1", engineEvent({ ...base, action: "start " }))],
      ["actor", toMonitorEvent("n1", engineEvent({ ...base, actor: "ab13" }))],
      ["boundary actor|action", toMonitorEvent("n1", engineEvent({ ...base, actor: "ab12s", action: "tart" }))],
      ["boundary node|timeNano", toMonitorEvent("n11", engineEvent({ ...base, timeNano: "795771668802222510" }))],
      ["attribute value", toMonitorEvent("n1", engineEvent({ ...base, attrs: { image: "busybox", name: "api-1" } }))],
      ["attribute key", toMonitorEvent("n1", engineEvent({ ...base, attrs: { image: "busybox", Name: "api-0" } }))],
      ["key|value boundary", toMonitorEvent("n1", engineEvent({ ...base, attrs: { image: "busybox", namea: "pi-0" } }))],
      ["empty attribute added", toMonitorEvent("n1", engineEvent({ ...base, attrs: { image: "busybox", name: "api-0", x: "" } }))],
      ["attribute dropped", toMonitorEvent("n1", engineEvent({ ...base, attrs: { image: "busybox" } }))],
      ["attribute in another", toMonitorEvent("n1", engineEvent({ ...base, attrs: { image: "busybox,name=api-0" } }))],
      ["gateway, same fields", gatewayEvent({ node: "n1", action: "start", actor: "ab12", attributes: base.attrs, timeMs: 1795771668802 })],
      ["gateway, a cause", gatewayEvent({ node: "n1", action: "start", actor: "ab12", attributes: base.attrs, timeMs: 1795771668802, cause: "c1" })],
      ["gateway, another cause", gatewayEvent({ node: "n1", action: "start", actor: "ab12", attributes: base.attrs, timeMs: 1795771668802, cause: "c2" })],
      ["gateway, 1 ms later", gatewayEvent({ node: "n1", action: "start", actor: "ab12", attributes: base.attrs, timeMs: 1795771668803, cause: "c1" })],
    ];
    const ids = new Map<string, string>();
    for (const [name, ev] of cases) {
      expect(ev.id, name).toMatch(/^[0-9a-f]{64}$/);
      const clash = ids.get(ev.id);
      expect(clash, `${name} has the id of ${clash}`).toBeUndefined();
      ids.set(ev.id, name);
    }
    expect(ids.size).toBe(cases.length);
  });

  it("computes timeMs from a 19-digit timeNano exactly (a double would round up)", () => {
    // Number("1795771668802999999") / 1e6 rounds to ...803; the exact floor is ...802.
    expect(Math.floor(Number("1795771668802999999") / 1e6)).toBe(1795771668803);
    expect(toMonitorEvent("n", engineEvent({ timeNano: "1795771668802999999" })).timeMs).toBe(1795771668802);
    expect(toMonitorEvent("n", engineEvent({ timeNano: "1795771668803000000" })).timeMs).toBe(1795771668803);
    expect(toMonitorEvent("n", engineEvent({ timeNano: "999999" })).timeMs).toBe(0);
    // Kept as text, exactly.
    expect(toMonitorEvent("n", engineEvent({ timeNano: "1795771668802999999" })).timeNano).toBe("1795771668802999999");
  });

  it("gives gateway events their type, a timeNano from timeMs, and refuses a bad time", () => {
    const g = gatewayEvent({ node: "", action: "scan_new_findings", actor: "payments/api", attributes: {}, timeMs: 1795771668802 });
    expect(g).toMatchObject({ source: "gateway", type: GATEWAY_EVENT_TYPE, timeNano: "1795771668802000000", timeMs: 1795771668802, node: "" });
    expect(() => gatewayEvent({ node: "", action: "x", actor: "y", attributes: {}, timeMs: 1.5 })).toThrow();
    expect(() => gatewayEvent({ node: "", action: "x", actor: "y", attributes: {}, timeMs: -1 })).toThrow();
  });

  it("sinceOf writes SECONDS.NANOSECONDS with nine digits", () => {
    expect(sinceOf("1795771668802222510")).toBe("1795771668.802222510");
    expect(sinceOf("1795771668000000001")).toBe("1795771668.000000001");
    expect(sinceOf("1000000000")).toBe("1.000000000");
    expect(sinceOf("5")).toBe("0.000000005");
    expect(sinceOf("0")).toBe("0.000000000");
    for (const bad of ["", "-1", "1.5", "0012", "12a"]) expect(() => sinceOf(bad), bad).toThrow();
  });
});

describe("parseRecordedEvent", () => {
  const dockerLine =
    '{"status":"die","id":"ae3d","from":"pc-scratch:bb","Type":"container","Action":"die","Actor":{"ID":"ae3d","Attributes":{"exitCode":"137","image":"pc-scratch:bb","name":"evstat"}},"scope":"local","time":1795771668,"timeNano":1795771668802999999}';

  it("reads a docker CLI line: node local, the timeNano digits exact, the same id as the engine event", () => {
    const ev = parseRecordedEvent(dockerLine, 1);
    expect(ev).toEqual(
      toMonitorEvent("local", {
        Type: "container",
        Action: "die",
        Actor: { ID: "ae3d", Attributes: { exitCode: "137", image: "pc-scratch:bb", name: "evstat" } },
        time: 1795771668,
        timeNano: "1795771668802999999",
      }),
    );
    expect(ev.timeMs).toBe(1795771668802);
    // A node on the line is kept.
    const withNode = parseRecordedEvent(dockerLine.replace('"scope"', '"node":"edge-1","scope"'), 1);
    expect(withNode.node).toBe("edge-1");
    expect(withNode.id).not.toBe(ev.id);
  });

  it("reads back an exported MonitorEvent, and refuses one whose fields no longer match its id", () => {
    const ev = toMonitorEvent("n1", engineEvent());
    expect(parseRecordedEvent(JSON.stringify(ev), 3)).toEqual(ev);
    const g = gatewayEvent({ node: "n1", action: "drift", actor: "c", attributes: { a: "b" }, timeMs: 7, cause: ev.id });
    expect(parseRecordedEvent(JSON.stringify(g), 4)).toEqual(g);
    expect(codeOf(() => parseRecordedEvent(JSON.stringify({ ...ev, actor: "other" }), 9))).toEqual({
      code: "PC_MONITOR_EVENTS_INVALID",
      detail: "line 9: id does not match the event's fields",
    });
  });

  const ok = toMonitorEvent("n1", engineEvent());
  const okJson = JSON.stringify(ok);
  const long = "x".repeat(4097);
  const manyAttrs = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, "v"]));
  const bad: [string, string, RegExp][] = [
    ["empty", "   ", /empty/],
    ["not JSON", "{nope", /not JSON/],
    ["an array", "[1,2]", /not a JSON object/],
    ["a string", '"x"', /not a JSON object/],
    ["neither format", '{"hello":"world"}', /neither a Docker event/],
    ["duplicate key", dockerLine.replace('"status":"die"', '"Action":"x","status":"die"'), /duplicate key Action/],
    ["too long", `{"Type":"${"a".repeat(70_000)}"}`, /longer than 65536 bytes/],
    ["Type missing", dockerLine.replace('"Type":"container",', ""), /Type is missing/],
    ["Action not a string", dockerLine.replace('"Action":"die"', '"Action":5'), /Action must be a string/],
    ["Action empty", dockerLine.replace('"Action":"die"', '"Action":""'), /Action must not be empty/],
    ["Actor missing", dockerLine.replace(/"Actor":\{[^}]*\}\},/, ""), /Actor is missing/],
    ["Actor not an object", dockerLine.replace(/"Actor":\{[^}]*\}\}/, '"Actor":"x"'), /Actor must be an object/],
    ["attribute not a string", dockerLine.replace('"exitCode":"137"', '"exitCode":137'), /Actor\.Attributes\.exitCode must be a string/],
    ["unknown field", dockerLine.replace('"scope"', '"extra":1,"scope"'), /unknown field extra/],
    ["unknown Actor field", dockerLine.replace('"Actor":{"ID"', '"Actor":{"X":"1","ID"'), /unknown field Actor\.X/],
    ["timeNano missing", dockerLine.replace(',"timeNano":1795771668802999999', ""), /timeNano is missing/],
    ["timeNano negative", dockerLine.replace('"timeNano":1795771668802999999', '"timeNano":-1'), /non-negative decimal/],
    ["timeNano fractional", dockerLine.replace('"timeNano":1795771668802999999', '"timeNano":1.5e18'), /non-negative decimal/],
    ["timeNano boolean", dockerLine.replace('"timeNano":1795771668802999999', '"timeNano":true'), /timeNano must be a decimal integer/],
    ["time disagrees", dockerLine.replace('"time":1795771668', '"time":1795771669'), /time and timeNano disagree/],
    ["string too long", dockerLine.replace('"from":"pc-scratch:bb"', `"from":"${long}"`), /from is longer than 4096 bytes/],
    ["attribute too long", dockerLine.replace('"exitCode":"137"', `"exitCode":"${long}"`), /exitCode is longer than 4096 bytes/],
    ["too many attributes", dockerLine.replace(/"Attributes":\{[^}]*\}/, `"Attributes":${JSON.stringify(manyAttrs)}`), /more than 256 entries/],
    ["recorded: id not hex", okJson.replace(ok.id, "XYZ"), /id must be 64 lower-case hex digits/],
    ["recorded: bad source", okJson.replace('"source":"engine"', '"source":"cli"'), /source must be engine or gateway/],
    ["recorded: timeNano a number", okJson.replace(`"timeNano":"${ok.timeNano}"`, `"timeNano":${ok.timeNano}`), /timeNano must be a string/],
    ["recorded: timeMs wrong", okJson.replace(`"timeMs":${ok.timeMs}`, `"timeMs":${ok.timeMs + 1}`), /timeMs must be timeNano/],
    ["recorded: unknown field", okJson.replace('"source"', '"extra":true,"source"'), /unknown field extra/],
    ["recorded: gateway with another type", JSON.stringify({ ...gatewayEvent({ node: "", action: "a", actor: "b", attributes: {}, timeMs: 1 }), type: "container" }), /a gateway event has type portcullis/],
    ["nesting too deep", `{"Type":"c","Action":"a","Actor":{"ID":"x","Attributes":{"a":${"[".repeat(20)}${"]".repeat(20)}}},"timeNano":1}`, /not JSON|must be a string/],
  ];

  it.each(bad)("refuses %s with PC_MONITOR_EVENTS_INVALID and the line number", (_name, line, why) => {
    const { code, detail } = codeOf(() => parseRecordedEvent(line, 42));
    expect(code).toBe("PC_MONITOR_EVENTS_INVALID");
    expect(detail).toMatch(/^line 42: /);
    expect(detail).toMatch(why);
  });

  it("parses a file: blank lines skipped and counted, the first bad line named", () => {
    const text = `${dockerLine}\n\n${okJson}\r\n   \n`;
    expect(parseRecordedEvents(text).map((e) => e.id)).toEqual([parseRecordedEvent(dockerLine, 1).id, ok.id]);
    const broken = `${dockerLine}\n\n${okJson}\n{"Type":"container"}\n`;
    expect(codeOf(() => parseRecordedEvents(broken))).toEqual({ code: "PC_MONITOR_EVENTS_INVALID", detail: "line 4: Action is missing" });
  });
});

describeDocker("recorded events from the real docker CLI and engine", () => {
  const run = newTestRun();
  const engine = testEngine();
  let image: string | undefined;
  let cliLines: string[] = [];
  let name = "";
  let containerId = "";
  let since = "";
  let until = "";

  beforeAll(async () => {
    image = await buildBusyboxImage(engine, run);
    name = `pc-evids-${run.id}`;
    const t0 = Date.now();
    since = `${Math.floor((t0 - 1_000) / 1000)}`;
    await dockerCli(["run", "--name", name, "--label", `${RUN_LABEL}=${run.id}`, "--label", "io.portcullis.test=1", "--network", "none", image, "/bin/true"]);
    containerId = (await dockerCli(["inspect", "--format", "{{.Id}}", name])).trim();
    await dockerCli(["rm", name]);
    until = `${Math.ceil((Date.now() + 1_000) / 1000)}`;
    await new Promise((r) => setTimeout(r, 1_100)); // until in the past: the CLI ends at once
    cliLines = (await dockerCli(["events", "--since", since, "--until", until, "--format", "{{json .}}"])).split("\n").filter((l) => l.trim() !== "");
  }, 60_000);

  afterAll(async () => {
    await cleanupTestRun(engine, run, image);
  }, 60_000);

  it("parses every line the CLI printed; our container's events are create, start, die, destroy, in order", () => {
    expect(cliLines.length).toBeGreaterThanOrEqual(4);
    const parsed = cliLines.map((l, i) => parseRecordedEvent(l, i + 1));
    for (const [i, ev] of parsed.entries()) {
      expect(ev.node).toBe("local");
      expect(ev.source).toBe("engine");
      // timeMs exactly from the digits the CLI printed.
      const digits = /"timeNano":(\d+)/.exec(cliLines[i] as string)?.[1] as string;
      expect(ev.timeNano).toBe(digits);
      expect(ev.timeMs).toBe(Number(BigInt(digits) / 1_000_000n));
    }
    expect(new Set(parsed.map((e) => e.id)).size).toBe(parsed.length);
    const ours = parsed.filter((e) => e.type === "container" && e.actor === containerId);
    const actions = ours.map((e) => e.action);
    for (const a of ["create", "start", "die", "destroy"]) expect(actions).toContain(a);
    expect(actions.indexOf("create")).toBeLessThan(actions.indexOf("start"));
    expect(actions.indexOf("start")).toBeLessThan(actions.indexOf("die"));
    expect(actions.indexOf("die")).toBeLessThan(actions.indexOf("destroy"));
    const die = ours.find((e) => e.action === "die");
    expect(die?.attributes).toMatchObject({ name, exitCode: "0", [RUN_LABEL]: run.id });
    // Parsing again gives the same ids (a re-read file is the same events).
    expect(cliLines.map((l, i) => parseRecordedEvent(l, i + 1).id)).toEqual(parsed.map((e) => e.id));
  });

  it("gives the CLI's lines and the engine API's events of the same moments the same ids", async () => {
    const stream = await engine.events({ since, until });
    const api: MonitorEvent[] = [];
    for await (const e of stream) api.push(toMonitorEvent("local", e));
    const cliIds = cliLines.map((l, i) => parseRecordedEvent(l, i + 1).id);
    const ours = (ids: MonitorEvent[]) => ids.filter((e) => e.actor === containerId).map((e) => e.id);
    const fromCli = cliLines.map((l, i) => parseRecordedEvent(l, i + 1));
    expect(ours(api).length).toBeGreaterThanOrEqual(4);
    expect(ours(api)).toEqual(ours(fromCli));
    for (const id of ours(api)) expect(cliIds).toContain(id);
  });

  it("resumes inclusively: events({ since: sinceOf(timeNano) }) starts with that very event", async () => {
    const fromCli = cliLines.map((l, i) => parseRecordedEvent(l, i + 1)).filter((e) => e.actor === containerId);
    const start = fromCli.find((e) => e.action === "start") as MonitorEvent;
    const stream = await engine.events({ since: sinceOf(start.timeNano), until });
    const got: MonitorEvent[] = [];
    for await (const e of stream) got.push(toMonitorEvent("local", e));
    const ours = got.filter((e) => e.actor === containerId);
    expect(ours[0]?.id).toBe(start.id);
    // One nanosecond later, it is not delivered.
    const after = await engine.events({ since: sinceOf((BigInt(start.timeNano) + 1n).toString()), until });
    const later: MonitorEvent[] = [];
    for await (const e of after) later.push(toMonitorEvent("local", e));
    expect(later.map((e) => e.id)).not.toContain(start.id);
    expect(later.filter((e) => e.actor === containerId).map((e) => e.action)).toContain("die");
  });
});
