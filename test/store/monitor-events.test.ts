import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openDatabase, Store, type RecordedEvent } from "../../src/store/index.js";
import { gatewayEvent, toMonitorEvent } from "../../src/monitoring/index.js";
import { tempDir } from "../support/gateway.js";

let t: ReturnType<typeof tempDir>;
let store: Store;
beforeEach(() => {
  t = tempDir();
  store = new Store(openDatabase(join(t.dir, "p.db")));
});
afterEach(() => {
  store.close();
  t.cleanup();
});

const BASE_NS = 1_795_771_668_802_222_510n;

/** A container event of `node` at BASE + `ms` (+ `ns`). */
function ev(opts: { node?: string; actor?: string; action?: string; ms?: number; ns?: number; type?: string; attrs?: Record<string, string> } = {}): RecordedEvent {
  const nano = BASE_NS + BigInt(opts.ms ?? 0) * 1_000_000n + BigInt(opts.ns ?? 0);
  return toMonitorEvent(opts.node ?? "local", {
    Type: opts.type ?? "container",
    Action: opts.action ?? "start",
    Actor: { ID: opts.actor ?? "c1", Attributes: opts.attrs ?? { name: "api-0", image: "busybox" } },
    time: Number(nano / 1_000_000_000n),
    timeNano: nano.toString(),
  });
}

const baseMs = Number(BASE_NS / 1_000_000n);

describe("MonitorEventRepo", () => {
  it("records an event once: the same id again is refused and changes nothing", () => {
    const a = ev();
    expect(store.monitorEvents.record(a, 1000)).toBe(true);
    expect(store.monitorEvents.record(a, 2000)).toBe(false);
    expect(store.monitorEvents.record({ ...a }, 3000)).toBe(false);
    const rows = store.db.prepare("SELECT id, received_at, attributes, time_nano, time_ms FROM monitor_events").all();
    expect(rows).toEqual([{ id: a.id, received_at: 1000, attributes: JSON.stringify(a.attributes), time_nano: a.timeNano, time_ms: a.timeMs }]);
    // A different event (one nanosecond later) is recorded.
    expect(store.monitorEvents.record(ev({ ns: 1 }), 1000)).toBe(true);
    expect(store.monitorEvents.list()).toHaveLength(2);
  });

  it("gives back what it recorded, attributes and the 19-digit timeNano intact, source from the type", () => {
    const a = ev({ attrs: { name: "x", "io.portcullis.namespace": "payments", exitCode: "137", "a\"b": "é\u0000" } });
    const g = gatewayEvent({ node: "", action: "drift", actor: "c9", attributes: { reason: "unknown" }, timeMs: baseMs + 5, cause: a.id });
    store.monitorEvents.record(a, 1);
    store.monitorEvents.record(g, 1);
    expect(store.monitorEvents.list()).toEqual([a, g]);
    expect(store.monitorEvents.list({ type: "portcullis" })[0]?.source).toBe("gateway");
  });

  it("moves the cursor only forward, comparing as integers (not as text)", () => {
    expect(store.monitorEvents.cursor("n1")).toBeUndefined();
    expect(store.monitorEvents.setCursor("n1", "999999999999999999", 1)).toBe(true); // 18 digits
    expect(store.monitorEvents.setCursor("n1", "1000000000000000000", 2)).toBe(true); // 19 digits: larger, though "1" < "9"
    expect(store.monitorEvents.cursor("n1")).toBe("1000000000000000000");
    expect(store.monitorEvents.setCursor("n1", "999999999999999999", 3)).toBe(false);
    expect(store.monitorEvents.setCursor("n1", "1000000000000000000", 4)).toBe(false); // equal: no change
    expect(store.monitorEvents.cursor("n1")).toBe("1000000000000000000");
    expect(store.db.prepare("SELECT updated_at FROM monitor_cursors WHERE node = 'n1'").get()).toEqual({ updated_at: 2 });
    // Nodes are apart.
    expect(store.monitorEvents.setCursor("n2", "5", 5)).toBe(true);
    expect(store.monitorEvents.cursor("n2")).toBe("5");
    expect(store.monitorEvents.cursor("n1")).toBe("1000000000000000000");
    expect(() => store.monitorEvents.setCursor("n1", "12x", 6)).toThrow(TypeError);
    expect(() => store.monitorEvents.setCursor("n1", "0012", 6)).toThrow(TypeError);
  });

  it("commits the cursor with the caller's transaction, and rolls it back with it", () => {
    const a = ev();
    expect(() =>
      store.transaction(() => {
        store.monitorEvents.record(a, 1);
        store.monitorEvents.setCursor("local", a.timeNano, 1);
        throw new Error("handler failed");
      }),
    ).toThrow("handler failed");
    expect(store.monitorEvents.cursor("local")).toBeUndefined();
    expect(store.monitorEvents.record(a, 2)).toBe(true); // not recorded by the rolled-back transaction
  });

  it("counts one container's actions in a window (crash loops: die events)", () => {
    for (const ms of [0, 10_000, 20_000, 30_000]) store.monitorEvents.record(ev({ action: "die", ms }), 1);
    store.monitorEvents.record(ev({ action: "start", ms: 30_001 }), 1);
    store.monitorEvents.record(ev({ action: "die", ms: 25_000, actor: "c2" }), 1);
    store.monitorEvents.record(ev({ action: "die", ms: 25_000, node: "other" }), 1);
    store.monitorEvents.record(ev({ action: "die: extra", ms: 25_000 }), 1);
    expect(store.monitorEvents.countActions("local", "c1", "die", baseMs)).toBe(4);
    expect(store.monitorEvents.countActions("local", "c1", "die", baseMs + 10_000)).toBe(3); // inclusive
    expect(store.monitorEvents.countActions("local", "c1", "die", baseMs + 10_001)).toBe(2);
    expect(store.monitorEvents.countActions("local", "c1", "die", baseMs + 30_001)).toBe(0);
    expect(store.monitorEvents.countActions("local", "c2", "die", baseMs)).toBe(1);
    expect(store.monitorEvents.countActions("other", "c1", "die", baseMs)).toBe(1);
    expect(store.monitorEvents.countActions("local", "c1", "start", baseMs)).toBe(1);
  });

  it("lists oldest first by event time (not by arrival), with node, time, type filters and a bounded limit", () => {
    const late = ev({ ms: 2_000 });
    const early = ev({ ms: 1_000 });
    const sameMsLater = ev({ ms: 1_000, ns: 500 });
    const otherNode = ev({ node: "n2", ms: 1_500 });
    const image = ev({ type: "image", action: "pull", ms: 3_000 });
    for (const e of [late, sameMsLater, image, early, otherNode]) store.monitorEvents.record(e, 1);
    expect(store.monitorEvents.list().map((e) => e.id)).toEqual([early, sameMsLater, otherNode, late, image].map((e) => e.id));
    expect(store.monitorEvents.list({ node: "n2" }).map((e) => e.id)).toEqual([otherNode.id]);
    expect(store.monitorEvents.list({ sinceMs: baseMs + 1_500 }).map((e) => e.id)).toEqual([otherNode, late, image].map((e) => e.id));
    expect(store.monitorEvents.list({ untilMs: baseMs + 1_500 }).map((e) => e.id)).toEqual([early, sameMsLater, otherNode].map((e) => e.id));
    expect(store.monitorEvents.list({ sinceMs: baseMs + 1_001, untilMs: baseMs + 2_000, node: "local" }).map((e) => e.id)).toEqual([late.id]);
    expect(store.monitorEvents.list({ type: "image" }).map((e) => e.id)).toEqual([image.id]);
    expect(store.monitorEvents.list({ limit: 2 }).map((e) => e.id)).toEqual([early.id, sameMsLater.id]);
    expect(store.monitorEvents.list({ limit: 0 })).toHaveLength(1);
    expect(store.monitorEvents.list({ limit: -5 })).toHaveLength(1);
  });

  it("lists at most 1000 by default and 10000 at most", () => {
    const insert = store.db.transaction(() => {
      for (let i = 0; i < 10_050; i++) store.monitorEvents.record(ev({ ms: i }), 1);
    });
    insert();
    expect(store.monitorEvents.list()).toHaveLength(1000);
    expect(store.monitorEvents.list({ limit: 20_000 })).toHaveLength(10_000);
    expect(store.monitorEvents.list({ limit: 20_000 })[9_999]?.timeMs).toBe(baseMs + 9_999);
  });

  it("prunes by receipt time in batches and returns how many", () => {
    const insert = store.db.transaction(() => {
      // Interleaved: old (received at 100) and new (received at 900) events.
      for (let i = 0; i < 2_500; i++) store.monitorEvents.record(ev({ ms: i }), i % 2 === 0 ? 100 : 900);
    });
    insert();
    const kept = store.monitorEvents.list({ limit: 10_000 }).filter((_, i) => i % 2 === 1).map((e) => e.id);
    expect(store.monitorEvents.prune(100)).toBe(0); // strictly before
    expect(store.monitorEvents.prune(500)).toBe(1_250);
    expect(store.monitorEvents.list({ limit: 10_000 }).map((e) => e.id)).toEqual(kept);
    expect(store.monitorEvents.prune(500)).toBe(0);
    // A pruned event can be recorded again (it is no longer known).
    expect(store.monitorEvents.record(ev({ ms: 0 }), 1_000)).toBe(true);
    expect(store.monitorEvents.prune(10_000)).toBe(1_251);
    expect(store.monitorEvents.list()).toEqual([]);
    // Cursors are not events: pruning leaves them.
    store.monitorEvents.setCursor("local", "7", 1);
    store.monitorEvents.prune(Number.MAX_SAFE_INTEGER);
    expect(store.monitorEvents.cursor("local")).toBe("7");
  });

  it("keeps every value as data (parameterised): quotes and SQL in fields are stored as they are", () => {
    const nasty = ev({ node: "n'; DROP TABLE monitor_events; --", actor: "a' OR '1'='1", attrs: { "k'": "v\"); --" } });
    expect(store.monitorEvents.record(nasty, 1)).toBe(true);
    expect(store.monitorEvents.list({ node: "n'; DROP TABLE monitor_events; --" })).toEqual([nasty]);
    expect(store.monitorEvents.countActions(nasty.node, "a' OR '1'='1", "start", 0)).toBe(1);
    expect(store.monitorEvents.countActions(nasty.node, "x' OR '1'='1", "start", 0)).toBe(0);
  });

  it("survives a reopen of the file", () => {
    const a = ev();
    store.monitorEvents.record(a, 1);
    store.monitorEvents.setCursor("local", a.timeNano, 1);
    store.close();
    store = new Store(openDatabase(join(t.dir, "p.db")));
    expect(store.monitorEvents.record(a, 2)).toBe(false);
    expect(store.monitorEvents.cursor("local")).toBe(a.timeNano);
  });
});
