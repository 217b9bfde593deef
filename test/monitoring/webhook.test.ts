/**
 * The alert webhook against a real HTTP receiver (node:http on 127.0.0.1): every
 * delivery carries a signature the receiver verifies with the key (and that fails on a
 * tampered body); a 500 is retried with growing gaps until delivered; a receiver that
 * always fails, or is too slow, makes the delivery dead after maxAttempts (listed as
 * dead); redirects are not followed; a new sink over the same store (a restart) resumes
 * pending deliveries; the key file is checked, and the key never reaches the logs.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryAuditSink, PortcullisError, silentLogger, systemClock, type Logger, type WebhookConfig } from "../../src/core/index.js";
import { AlertService, WebhookSink, loadWebhookKey, type Alert } from "../../src/monitoring/index.js";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { context, hitOn, rule } from "./alert-fixtures.js";

interface Received {
  readonly at: number;
  readonly path: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
  readonly signatureValid: boolean;
}

let tmp: ReturnType<typeof tempDir>;
let store: Store;
let key: Buffer;
let server: Server;
let url: string;
let received: Received[];
let respond: (n: number, res: ServerResponse) => void;
const sinks: WebhookSink[] = [];

/** What a receiver does: HMAC-SHA256(key, timestamp + "." + raw body), compared in constant time. */
function verify(k: Buffer, timestamp: string | undefined, body: string, header: string | undefined): boolean {
  if (timestamp === undefined || header === undefined || !header.startsWith("sha256=")) return false;
  const want = createHmac("sha256", k).update(`${timestamp}.${body}`).digest();
  const got = Buffer.from(header.slice("sha256=".length), "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

beforeEach(async () => {
  tmp = tempDir("portcullis-webhook-");
  store = Store.open(tmp.dir);
  key = randomBytes(32);
  received = [];
  respond = (_n, res) => res.writeHead(200).end("ok");
  server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      const h = req.headers;
      received.push({ at: Date.now(), path: req.url ?? "", headers: h, body, signatureValid: verify(key, h["x-portcullis-timestamp"] as string, body, h["x-portcullis-signature"] as string) });
      respond(received.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/portcullis`;
});
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.stop()));
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  store.close();
  tmp.cleanup();
});

const cfg = (over: Partial<WebhookConfig> = {}): WebhookConfig => ({ url, keyFile: "/unused", maxAttempts: 5, timeoutMs: 2_000, ...over });

function sinkOf(c: WebhookConfig, opts: { retryBaseMs?: number; logger?: Logger; store?: Store } = {}): WebhookSink {
  const s = new WebhookSink(c, key, opts.store ?? store, systemClock, opts.logger ?? silentLogger, { retryBaseMs: opts.retryBaseMs ?? 100 });
  sinks.push(s);
  return s;
}

/** Raises one alert through an AlertService whose sink is the webhook: the delivery is written in its transaction. */
function raiseInto(sink: WebhookSink, container = "pc-gw-payments-api-r1-0", s: Store = store): Alert {
  const alerts = new AlertService(s, new MemoryAuditSink(), systemClock, { sink });
  const ctx = context("local", "c0ffee", container, { namespace: "payments", deployment: "api" });
  return s.transaction(() => alerts.raise(hitOn(rule("exec-into-container", { severity: "critical" }), ctx, Date.now()), "ev-1")).alert;
}

async function until<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("WebhookSink", () => {
  it("delivers a signed JSON body that the receiver verifies; a tampered body does not verify", async () => {
    const sink = sinkOf(cfg());
    const alert = raiseInto(sink);
    const row = store.alertDeliveries.list()[0]!;
    expect(row).toMatchObject({ alertId: alert.id, sink: url, state: "pending", attempts: 0 });
    sink.start();
    await until(() => (store.alertDeliveries.get(row.id)?.state === "delivered" ? true : undefined), 5_000, "the delivery");
    expect(received).toHaveLength(1);
    const r = received[0]!;
    expect(r.path).toBe("/hooks/portcullis");
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.headers["x-portcullis-delivery"]).toBe(row.id);
    expect(r.headers["x-portcullis-timestamp"]).toMatch(/^\d{10}$/);
    expect(Math.abs(Number(r.headers["x-portcullis-timestamp"]) - Date.now() / 1000)).toBeLessThan(10);
    expect(r.signatureValid).toBe(true);
    // The body is exactly what was stored (and signed).
    expect(r.body).toBe(row.payload);
    expect(JSON.parse(r.body)).toEqual({ type: "portcullis.alert", alert: JSON.parse(JSON.stringify(alert)) });
    // The check can fail: a changed body, another timestamp or another key do not verify.
    const ts = r.headers["x-portcullis-timestamp"] as string;
    const sig = r.headers["x-portcullis-signature"] as string;
    expect(verify(key, ts, r.body.replace('"critical"', '"low"'), sig)).toBe(false);
    expect(verify(key, String(Number(ts) + 1), r.body, sig)).toBe(false);
    expect(verify(randomBytes(32), ts, r.body, sig)).toBe(false);
    expect(store.alertDeliveries.get(row.id)).toMatchObject({ state: "delivered", attempts: 1, lastError: null });
  });

  it("answers 500 twice, then 200: delivered on the third attempt, the gaps growing", async () => {
    respond = (n, res) => res.writeHead(n <= 2 ? 500 : 200).end();
    const sink = sinkOf(cfg(), { retryBaseMs: 200 });
    raiseInto(sink);
    sink.start();
    const id = store.alertDeliveries.list()[0]!.id;
    await until(() => (store.alertDeliveries.get(id)?.state === "delivered" ? true : undefined), 10_000, "the third attempt");
    expect(received).toHaveLength(3);
    expect(received.every((r) => r.signatureValid)).toBe(true);
    expect(new Set(received.map((r) => r.headers["x-portcullis-delivery"]))).toEqual(new Set([id]));
    const gap1 = received[1]!.at - received[0]!.at;
    const gap2 = received[2]!.at - received[1]!.at;
    expect(gap1).toBeGreaterThanOrEqual(190);
    expect(gap2).toBeGreaterThanOrEqual(390);
    expect(gap2).toBeGreaterThan(gap1);
    expect(store.alertDeliveries.get(id)).toMatchObject({ state: "delivered", attempts: 3, lastError: null });
  });

  it("a receiver that always fails: dead after maxAttempts, with the last error, listed as dead", async () => {
    respond = (_n, res) => res.writeHead(500).end("nope");
    const sink = sinkOf(cfg({ maxAttempts: 3 }), { retryBaseMs: 50 });
    const alert = raiseInto(sink);
    sink.start();
    const id = store.alertDeliveries.list()[0]!.id;
    await until(() => (store.alertDeliveries.get(id)?.state === "dead" ? true : undefined), 10_000, "a dead delivery");
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toHaveLength(3);
    expect(store.alertDeliveries.get(id)).toMatchObject({ state: "dead", attempts: 3, lastError: "HTTP 500" });
    const dead = new AlertService(store, new MemoryAuditSink(), systemClock).deliveries({ state: "dead" });
    expect(dead).toEqual([expect.objectContaining({ id, alertId: alert.id, state: "dead", attempts: 3, lastError: "HTTP 500", sink: url })]);
    expect(store.alertDeliveries.list({ state: "pending" })).toEqual([]);
  });

  it("a slow receiver counts as a failure (timeout); so does a redirect, which is not followed", async () => {
    respond = (n, res) => {
      if (n === 1) setTimeout(() => res.writeHead(200).end(), 1_500);
      else if (n === 2) res.writeHead(302, { location: `${url}/elsewhere` }).end();
      else res.writeHead(204).end();
    };
    const sink = sinkOf(cfg({ timeoutMs: 300 }), { retryBaseMs: 50 });
    raiseInto(sink);
    const id = store.alertDeliveries.list()[0]!.id;
    await sink.deliverDue();
    expect(store.alertDeliveries.get(id)).toMatchObject({ state: "pending", attempts: 1, lastError: "timed out after 300 ms" });
    await new Promise((r) => setTimeout(r, 80));
    await sink.deliverDue();
    expect(store.alertDeliveries.get(id)).toMatchObject({ state: "pending", attempts: 2, lastError: "HTTP 302" });
    await new Promise((r) => setTimeout(r, 150));
    await sink.deliverDue();
    expect(store.alertDeliveries.get(id)).toMatchObject({ state: "delivered", attempts: 3 });
    expect(received.map((r) => r.path)).toEqual(["/hooks/portcullis", "/hooks/portcullis", "/hooks/portcullis"]);
  });

  it("a connection refused is a failed attempt, tried again", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const sink = sinkOf(cfg({ url: `http://127.0.0.1:${port}/x` }));
    raiseInto(sink);
    expect(await sink.deliverDue()).toBe(1);
    const d = store.alertDeliveries.list()[0]!;
    expect(d).toMatchObject({ state: "pending", attempts: 1 });
    expect(d.lastError).toMatch(/ECONNREFUSED/);
    expect(d.nextAt).toBeGreaterThan(d.updatedAt);
  });

  it("resumes pending deliveries after a restart (a new sink over the same store)", async () => {
    const first = sinkOf(cfg());
    const a1 = raiseInto(first, "c-1");
    const a2 = raiseInto(first, "c-2");
    await first.stop(); // never started: the gateway stopped before delivering
    store.close();
    store = Store.open(tmp.dir);
    expect(received).toEqual([]);
    const second = sinkOf(cfg(), { store });
    second.start();
    await until(() => (received.length >= 2 ? true : undefined), 5_000, "the resumed deliveries");
    expect(received.map((r) => (JSON.parse(r.body) as { alert: Alert }).alert.id).sort()).toEqual([a1.id, a2.id].sort());
    expect(received.every((r) => r.signatureValid)).toBe(true);
    await until(() => (store.alertDeliveries.list({ state: "delivered" }).length === 2 ? true : undefined), 5_000, "both delivered");
  });

  it("never writes the key to the logs, the store or an error", async () => {
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) })) as unknown as Logger;
    respond = (_n, res) => res.writeHead(500).end();
    const sink = sinkOf(cfg({ maxAttempts: 2 }), { retryBaseMs: 10, logger });
    raiseInto(sink);
    await sink.deliverDue();
    await new Promise((r) => setTimeout(r, 30));
    await sink.deliverDue();
    expect(store.alertDeliveries.list()[0]!.state).toBe("dead");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const everything = [...lines, JSON.stringify(store.alertDeliveries.list())].join("\n");
    for (const form of [key.toString("hex"), key.toString("base64"), key.toString("latin1")]) expect(everything).not.toContain(form);
  });
});

describe("loadWebhookKey", () => {
  function code(fn: () => unknown): { code?: string; detail?: string } {
    try {
      fn();
    } catch (e) {
      if (e instanceof PortcullisError) return { code: e.code, detail: e.detail };
      throw e;
    }
    return {};
  }

  it("reads a regular file of mode 0600 holding at least 32 bytes", () => {
    const path = join(tmp.dir, "webhook.key");
    const k = randomBytes(48);
    writeFileSync(path, k, { mode: 0o600 });
    expect(loadWebhookKey(path).equals(k)).toBe(true);
    chmodSync(path, 0o400);
    expect(loadWebhookKey(path).equals(k)).toBe(true);
  });

  it("refuses mode 0644, a symbolic link, a short key, a directory and a missing file, never showing the key", () => {
    const secret = "s3cr3t-".repeat(8);
    const open = join(tmp.dir, "open.key");
    writeFileSync(open, secret, { mode: 0o600 });
    chmodSync(open, 0o644);
    const good = join(tmp.dir, "good.key");
    writeFileSync(good, secret, { mode: 0o600 });
    const link = join(tmp.dir, "link.key");
    symlinkSync(good, link);
    const short = join(tmp.dir, "short.key");
    writeFileSync(short, "x".repeat(31), { mode: 0o600 });
    const group = join(tmp.dir, "group.key");
    writeFileSync(group, secret, { mode: 0o600 });
    chmodSync(group, 0o640);
    const cases: [string, RegExp][] = [
      [open, /mode 0644/],
      [group, /mode 0640/],
      [link, /symbolic link/],
      [short, /31 bytes, fewer than 32/],
      [tmp.dir, /not a regular file/],
      [join(tmp.dir, "absent.key"), /no such file/],
    ];
    for (const [path, why] of cases) {
      const r = code(() => loadWebhookKey(path));
      expect(r.code, path).toBe("PC_MONITOR_WEBHOOK_KEY_INVALID");
      expect(r.detail, path).toMatch(why);
      expect(r.detail, path).not.toContain("s3cr3t");
    }
    expect(loadWebhookKey(good).toString()).toBe(secret);
  });
});
