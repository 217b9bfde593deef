/**
 * Event streams against real engines: the local dockerd, and a second dockerd (its own
 * socket on TCP with mutual TLS, certificates made with openssl) that the test stops and
 * starts again. Events are handled the way the gateway handles them: recorded and the
 * node's cursor moved in one transaction on a real SQLite file.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { silentLogger, systemClock } from "../../src/core/index.js";
import { EventStreams, sinceOf, toMonitorEvent, type MonitorEvent, type StreamState } from "../../src/monitoring/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { openDatabase, Store } from "../../src/store/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, newTestRun, RUN_LABEL, testEngine, type TestRun } from "../support/docker.js";
import { tempDir } from "../support/gateway.js";
import { engineProcess, type EngineProcess } from "../support/second-engine.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => T | undefined | false, budgetMs = 20_000): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Handles events as the gateway does (record + cursor in one transaction), and counts deliveries. */
class Harness {
  readonly deliveries = new Map<string, number>();
  /** Events recorded for the first time, in the order handled. */
  readonly handled: MonitorEvent[] = [];
  readonly transitions: { node: string; state: StreamState; detail: string | undefined }[] = [];
  failNext: ((ev: MonitorEvent) => boolean) | undefined;
  failures = 0;

  constructor(readonly store: Store) {}

  streams(nodes: string[], engine: (node: string) => Pick<DockerEngine, "events">, opts: { reconnectBaseMs?: number; reconnectMaxMs?: number } = {}): EventStreams {
    const { store } = this;
    return new EventStreams({
      nodes: () => nodes.map((name) => ({ name })),
      engine,
      cursor: (node) => store.monitorEvents.cursor(node),
      initCursor: (node, timeNano) => store.monitorEvents.setCursor(node, timeNano, Date.now()),
      handle: async (node, ev) => {
        this.deliveries.set(ev.id, (this.deliveries.get(ev.id) ?? 0) + 1);
        if (this.failNext?.(ev) === true) {
          this.failNext = undefined;
          this.failures++;
          throw new Error("the store is unavailable");
        }
        await Promise.resolve();
        store.transaction(() => {
          if (!store.monitorEvents.record(ev, Date.now())) return;
          store.monitorEvents.setCursor(node, ev.timeNano, Date.now());
          this.handled.push(ev);
        });
      },
      clock: systemClock,
      logger: silentLogger,
      reconnectBaseMs: opts.reconnectBaseMs ?? 100,
      reconnectMaxMs: opts.reconnectMaxMs ?? 1_000,
      pollNodesMs: 200,
      onState: (node, state, detail) => this.transitions.push({ node, state, detail }),
    });
  }

  ours(run: TestRun, node?: string): MonitorEvent[] {
    return this.handled.filter((e) => e.type === "container" && e.attributes[RUN_LABEL] === run.id && (node === undefined || e.node === node));
  }
}

/** A container that runs until stopped (it exits at once on SIGTERM), started, stopped and removed. */
async function lifecycle(engine: DockerEngine, image: string, run: TestRun, name: string, opts: { remove?: boolean } = {}): Promise<string> {
  const id = await engine.create({
    name,
    Image: image,
    Cmd: ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 30 & wait"],
    Labels: { ...run.labels },
    HostConfig: { NetworkMode: "none" },
  });
  await engine.start(id);
  await engine.stop(id, 1);
  if (opts.remove !== false) await engine.remove(id);
  return id;
}

/** What the engine itself lists for the run's containers between two times (a bounded replay). */
async function engineSays(engine: DockerEngine, node: string, run: TestRun, fromNano: string, untilMs: number): Promise<MonitorEvent[]> {
  await sleep(Math.max(0, untilMs + 1_100 - Date.now()));
  const stream = await engine.events({ since: sinceOf(fromNano), until: `${Math.ceil(untilMs / 1000)}` });
  const out: MonitorEvent[] = [];
  for await (const e of stream) {
    const ev = toMonitorEvent(node, e);
    if (ev.type === "container" && ev.attributes[RUN_LABEL] === run.id) out.push(ev);
  }
  return out;
}

const nowNano = () => (BigInt(Date.now()) * 1_000_000n).toString();
const ids = (evs: readonly MonitorEvent[]) => evs.map((e) => e.id);

/**
 * Checks one container's events: create, start, die, stop (and destroy when removed) in
 * this order, with only kill events besides (a stop may need a second signal).
 */
function expectLife(evs: readonly MonitorEvent[], actor: string, removed = true): void {
  const actions = evs.filter((e) => e.actor === actor).map((e) => e.action).filter((a) => a !== "kill");
  expect(actions).toEqual(["create", "start", "die", "stop", ...(removed ? ["destroy"] : [])]);
  expect(evs.filter((e) => e.actor === actor && e.action === "kill").length).toBeGreaterThanOrEqual(1);
}

describeDocker("event streams on the local engine", () => {
  const run = newTestRun();
  const engine = testEngine();
  let image: string | undefined;
  let t: ReturnType<typeof tempDir>;
  let store: Store;

  beforeAll(async () => {
    t = tempDir();
    store = new Store(openDatabase(join(t.dir, "p.db")));
    image = await buildBusyboxImage(engine, run);
  }, 60_000);

  afterAll(async () => {
    store?.close();
    t?.cleanup();
    await cleanupTestRun(engine, run, image);
  }, 60_000);

  it("delivers the events of containers the test creates, starts, stops and removes, in order, each once", async () => {
    const h = new Harness(store);
    const streams = h.streams(["local"], () => engine);
    expect(streams.state("local")).toBeUndefined();
    streams.start();
    try {
      expect(streams.state("local")).toBe("connecting");
      await until("the stream to be up", () => streams.state("local") === "up");
      // The first stream of a node writes where it started.
      const start = store.monitorEvents.cursor("local");
      expect(start).toBeDefined();
      expect(Number(BigInt(start as string) / 1_000_000n)).toBeGreaterThan(Date.now() - 10_000);
      const from = nowNano();
      const a = await lifecycle(engine, image as string, run, `pc-es-a-${run.id}`);
      const b = await lifecycle(engine, image as string, run, `pc-es-b-${run.id}`);
      const end = Date.now();
      const expected = await engineSays(engine, "local", run, from, end);
      expectLife(expected, a);
      expectLife(expected, b);
      expect(expected.every((e) => e.actor === a || e.actor === b)).toBe(true);
      expect(expected.findIndex((e) => e.actor === b)).toBe(expected.filter((e) => e.actor === a).length);
      await until("every event handled", () => h.ours(run).length >= expected.length);
      expect(ids(h.ours(run))).toEqual(ids(expected));
      for (const e of expected) expect(h.deliveries.get(e.id), e.action).toBe(1);
      expect(h.ours(run).every((e) => e.node === "local" && e.source === "engine")).toBe(true);
      // The cursor is the last event handled.
      expect(BigInt(store.monitorEvents.cursor("local") as string)).toBeGreaterThanOrEqual(BigInt((expected.at(-1) as MonitorEvent).timeNano));
      const st = streams.states().local;
      expect(st?.state).toBe("up");
      expect(st?.reconnects).toBe(0);
      expect(st?.lagMs).toBeGreaterThanOrEqual(0);
      expect(st?.lagMs).toBeLessThan(5_000);
      expect(Date.parse(st?.lastEventAt ?? "")).toBeGreaterThan(end - 10_000);
      expect(await streams.settle(end, 5_000)).toBe(true);
    } finally {
      await streams.stop();
    }
    expect(streams.state("local")).toBeUndefined();
  });

  it("a handler that fails tears the stream down: the same event comes again after the reconnect and is handled once", async () => {
    const h = new Harness(store);
    const streams = h.streams(["local"], () => engine);
    streams.start();
    try {
      await until("the stream to be up", () => streams.state("local") === "up");
      let failedId: string | undefined;
      h.failNext = (ev) => {
        const mine = ev.type === "container" && ev.attributes[RUN_LABEL] === run.id && ev.action === "start";
        if (mine) failedId = ev.id;
        return mine;
      };
      const from = nowNano();
      const c = await lifecycle(engine, image as string, run, `pc-es-c-${run.id}`);
      const expected = await engineSays(engine, "local", run, from, Date.now());
      expectLife(expected, c);
      expect(expected.every((e) => e.actor === c)).toBe(true);
      await until("every event handled", () => h.ours(run).filter((e) => e.actor === c).length >= expected.length);
      expect(h.failures).toBe(1);
      expect(failedId).toBe(expected[1]?.id);
      // Delivered twice (failed, then again), recorded once; nothing skipped, order kept.
      expect(h.deliveries.get(failedId as string)).toBe(2);
      expect(ids(h.ours(run).filter((e) => e.actor === c))).toEqual(ids(expected));
      const states = h.transitions.filter((x) => x.node === "local").map((x) => x.state);
      expect(states).toEqual(["connecting", "up", "degraded", "up"]);
      expect(h.transitions.find((x) => x.state === "degraded")?.detail).toBe("handling an event failed");
      expect(streams.states().local?.reconnects).toBe(1);
    } finally {
      await streams.stop();
    }
  });

  it("a gateway restart (streams stopped, events, new streams over the same store) misses and repeats nothing", async () => {
    const h1 = new Harness(store);
    const first = h1.streams(["local"], () => engine);
    first.start();
    await until("the stream to be up", () => first.state("local") === "up");
    const from = nowNano();
    const d = await lifecycle(engine, image as string, run, `pc-es-d-${run.id}`, { remove: false });
    await until("d's stop handled", () => h1.ours(run).some((e) => e.actor === d && e.action === "stop"));
    await first.stop();
    // While no stream runs: d is removed, e runs its whole life.
    await engine.remove(d);
    const e = await lifecycle(engine, image as string, run, `pc-es-e-${run.id}`);
    const h2 = new Harness(store);
    const second = h2.streams(["local"], () => engine);
    second.start();
    try {
      const expected = await engineSays(engine, "local", run, from, Date.now());
      expectLife(expected, d);
      expectLife(expected, e);
      expect(expected.every((x) => x.actor === d || x.actor === e)).toBe(true);
      await until("the events in between handled", () => h2.ours(run).some((x) => x.actor === e && x.action === "destroy"));
      const all = [...h1.ours(run), ...h2.ours(run)].filter((x) => x.actor === d || x.actor === e);
      expect(ids(all)).toEqual(ids(expected));
      // The second stream re-read the last events before its cursor (the resume overlap) and dropped them.
      const redelivered = [...h2.deliveries.keys()].filter((id) => ids(h1.handled).includes(id));
      expect(redelivered.length).toBeGreaterThanOrEqual(1);
    } finally {
      await second.stop();
    }
  });

  it("stop() closes the streams and leaves no socket or timer behind", async () => {
    const kinds = ["PipeWrap", "TCPSocketWrap", "Timeout", "TLSWrap"];
    const count = () => {
      const info = process.getActiveResourcesInfo();
      return Object.fromEntries(kinds.map((k) => [k, info.filter((x) => x === k).length]));
    };
    await sleep(200);
    const before = count();
    const h = new Harness(store);
    const streams = h.streams(["local"], () => engine);
    streams.start();
    await until("the stream to be up", () => streams.state("local") === "up");
    const during = count();
    expect((during.PipeWrap ?? 0) + (during.TCPSocketWrap ?? 0)).toBeGreaterThan((before.PipeWrap ?? 0) + (before.TCPSocketWrap ?? 0));
    await streams.stop();
    await sleep(100);
    const after = count();
    for (const k of kinds) expect(after[k], k).toBeLessThanOrEqual(before[k] ?? 0);
    expect(streams.states()).toEqual({});
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function opensslCerts(dir: string): { caFile: string; certFile: string; keyFile: string; client: { ca: string; cert: string; key: string } } {
  const f = (n: string) => join(dir, n);
  const ossl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  ossl(["req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "1", "-subj", "/CN=portcullis test engine CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
  for (const [name, ext] of [
    ["server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature"],
    ["client", "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature"],
  ] as const) {
    ossl(["req", ...ec, "-keyout", f(`${name}.key`), "-out", f(`${name}.csr`), "-subj", `/CN=${name}`]);
    execFileSync("sh", ["-c", `printf '%s\\n' "$1" > "$2"`, "sh", ext, f(`${name}.ext`)]);
    ossl(["x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", f(`${name}.ext`), "-out", f(`${name}.pem`)]);
  }
  return {
    caFile: f("ca.pem"),
    certFile: f("server.pem"),
    keyFile: f("server.key"),
    client: { ca: readFileSync(f("ca.pem"), "utf8"), cert: readFileSync(f("client.pem"), "utf8"), key: readFileSync(f("client.key"), "utf8") },
  };
}

describeDocker("event streams on a second engine that stops and starts again", () => {
  const run = newTestRun();
  let t: ReturnType<typeof tempDir>;
  let store: Store;
  let proc: EngineProcess | undefined;
  let engine: DockerEngine;
  let image = "";

  beforeAll(async () => {
    t = tempDir();
    store = new Store(openDatabase(join(t.dir, "p.db")));
    const certs = opensslCerts(t.dir);
    proc = await engineProcess({ tls: certs, client: certs.client });
    await proc.start();
    engine = new DockerEngine({ host: "127.0.0.1", port: proc.port, ...certs.client, requestTimeoutMs: 10_000 });
    image = await buildBusyboxImage(engine, run);
  }, 60_000);

  afterAll(async () => {
    await proc?.stop();
    store?.close();
    t?.cleanup();
  }, 60_000);

  it("dockerd stopped: degraded; started again and events made before the stream is back: every one handled, none twice, up again", async () => {
    const h = new Harness(store);
    // A long reconnect delay: the events below happen while the stream is still down.
    const streams = h.streams(["n2"], () => engine, { reconnectBaseMs: 9_000, reconnectMaxMs: 9_000 });
    streams.start();
    try {
      await until("the stream to be up", () => streams.state("n2") === "up");
      const from = nowNano();
      const a = await lifecycle(engine, image, run, `pc-es2-a-${run.id}`);
      await until("a's events handled", () => h.ours(run).some((e) => e.actor === a && e.action === "destroy"));

      const halted = Date.now();
      await (proc as EngineProcess).halt();
      await until("the stream to be degraded", () => streams.state("n2") === "degraded", 10_000);
      const down = h.transitions.filter((x) => x.state === "degraded").at(-1);
      expect(down?.detail).toBeTruthy();
      await (proc as EngineProcess).start();
      const restartFrom = nowNano();
      const b = await lifecycle(engine, image, run, `pc-es2-b-${run.id}`);
      const c = await lifecycle(engine, image, run, `pc-es2-c-${run.id}`, { remove: false });
      // The events above happened while the stream was down.
      expect(streams.state("n2")).toBe("degraded");
      expect(streams.states().n2?.reconnects).toBeGreaterThanOrEqual(1);
      const generated = Date.now();
      const expected = await engineSays(engine, "n2", run, restartFrom, generated);
      expectLife(expected, b);
      expectLife(expected, c, false);
      expect(expected.every((e) => e.actor === b || e.actor === c)).toBe(true);
      await until("the stream to be up again", () => streams.state("n2") === "up", 20_000);
      await until("the events made while it was down handled", () => h.ours(run).some((e) => e.actor === c && e.action === "stop"), 10_000);
      const afterRestart = h.ours(run).filter((e) => e.actor === b || e.actor === c);
      expect(ids(afterRestart)).toEqual(ids(expected));
      const all = h.ours(run);
      expect(new Set(ids(all)).size).toBe(all.length);
      expectLife(all, a);
      // Nothing recorded twice in the store either.
      const rows = store.monitorEvents.list({ node: "n2", sinceMs: Number(BigInt(from) / 1_000_000n) - 1 }).filter((e) => e.attributes[RUN_LABEL] === run.id);
      expect(ids(rows).sort()).toEqual(ids(all).sort());
      expect(h.transitions.map((x) => x.state)).toEqual(["connecting", "up", "degraded", "up"]);
      expect(Date.now() - halted).toBeLessThan(45_000);
    } finally {
      await streams.stop();
    }
  }, 60_000);

  it("a gateway restart between events: the new streams over the same cursor store handle what happened in between, once", async () => {
    const h1 = new Harness(store);
    const first = h1.streams(["n2"], () => engine);
    first.start();
    const from = nowNano();
    const d = await lifecycle(engine, image, run, `pc-es2-d-${run.id}`, { remove: false });
    await until("d's stop handled", () => h1.ours(run).some((e) => e.actor === d && e.action === "stop"));
    await first.stop();
    await engine.remove(d);
    const e = await lifecycle(engine, image, run, `pc-es2-e-${run.id}`);
    const h2 = new Harness(store);
    const second = h2.streams(["n2"], () => engine);
    second.start();
    try {
      const expected = await engineSays(engine, "n2", run, from, Date.now());
      await until("e's destroy handled", () => h2.ours(run).some((x) => x.actor === e && x.action === "destroy"));
      const all = [...h1.ours(run), ...h2.ours(run)].filter((x) => x.actor === d || x.actor === e);
      expectLife(expected, d);
      expectLife(expected, e);
      expect(ids(all)).toEqual(ids(expected));
    } finally {
      await second.stop();
    }
  });
});
