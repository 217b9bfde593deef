/**
 * `portcullis serve` stops cleanly on SIGTERM: it stops accepting, lets the request in
 * flight finish (and records it), closes idle keep-alive connections, closes the
 * store (the WAL is checkpointed away) and exits 0, logging "stopped".
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initGateway } from "../../src/app.js";
import { hashToken, readProfile } from "../../src/pki/index.js";
import { tempDir } from "../support/gateway.js";
import { tlsConnect } from "../support/tls-client.js";
import { closedWithin, openKeepAlive, freePort, spawnServe, waitFor, type ServeProcess } from "./api-support.js";



function exited(p: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((res, rej) => {
    if (p.exitCode !== null || p.signalCode !== null) return res({ code: p.exitCode, signal: p.signalCode });
    const timer = setTimeout(() => rej(new Error(`still running ${timeoutMs} ms after SIGTERM`)), timeoutMs);
    p.once("exit", (code, signal) => {
      clearTimeout(timer);
      res({ code, signal });
    });
  });
}

describe("serve drains on SIGTERM", () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, "data");
  let child: ChildProcess | undefined;
  let serve: ServeProcess;

  beforeAll(async () => {
    const [apiPort, bootPort] = [await freePort(), await freePort()];
    initGateway({ dataDir, listen: `127.0.0.1:${apiPort}`, bootstrapListen: `127.0.0.1:${bootPort}` });
    serve = await spawnServe(dataDir);
    child = serve.child;
  });

  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    tmp.cleanup();
  });

  it("finishes the in-flight request, closes idle connections, closes the store and exits 0", async () => {
    const profile = readProfile(join(dataDir, "admin.profile.json"));
    const api = profile.server;
    const tls = { ca: profile.caBundle, cert: profile.certificate, key: profile.privateKey };

    // An idle keep-alive connection, used once.
    const idle = await openKeepAlive(api, tls);

    // A request in flight: headers and half of the body sent, the rest held back.
    const conn = await tlsConnect(api, { ...tls, servername: "localhost" });
    if (!conn.socket) throw new Error(conn.error);
    const inflight = conn.socket;
    inflight.on("error", () => undefined);
    const body = JSON.stringify({ identity: "user:drained" });
    let response = "";
    inflight.on("data", (d: Buffer) => (response += d.toString()));
    inflight.write(`POST /v1/enroll-tokens HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`);
    inflight.write(body.slice(0, 5));
    await new Promise((r) => setTimeout(r, 100));

    expect(child?.kill("SIGTERM")).toBe(true);
    const signalledAt = Date.now();

    // The idle connection is closed, while the request in flight keeps the process up.
    await closedWithin(idle, 3000);
    await new Promise((r) => setTimeout(r, 300));
    expect(child?.exitCode, `exited before the in-flight request finished:\n${serve.stdout()}\n${serve.stderr()}`).toBeNull();
    // New connections are no longer accepted.
    const late = await tlsConnect(api, { ...tls, servername: "localhost" });
    late.socket?.destroy();
    expect(late.error).toMatch(/ECONNREFUSED|ECONNRESET|socket hang up/);

    inflight.write(body.slice(5));
    const status = await waitFor(() => /^HTTP\/1\.1 (\d{3})/.exec(response)?.[1], 5000, "the in-flight response");
    expect(status, response).toBe("201");
    const token = JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4)) as { token: string; identity: string };
    expect(token.identity).toBe("user:drained");

    const { code, signal } = await exited(child as ChildProcess, 5000);
    expect({ code, signal, stderr: serve.stderr() }).toMatchObject({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(6000);
    await closedWithin(inflight, 2000);

    const logs = serve
      .stdout()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg?: string; signal?: string });
    expect(logs.find((l) => l.msg === "draining")?.signal).toBe("SIGTERM");
    expect(logs[logs.length - 1]?.msg).toBe("stopped");

    // The store was closed cleanly: the WAL is checkpointed away, the database is whole
    // and holds what the drained request wrote, and its access event.
    const db = join(dataDir, "portcullis.db");
    const wal = `${db}-wal`;
    expect(!existsSync(wal) || statSync(wal).size === 0, "the WAL was left behind").toBe(true);
    const conn2 = new Database(db, { readonly: true, fileMustExist: true });
    try {
      expect(conn2.pragma("integrity_check", { simple: true })).toBe("ok");
      const row = conn2.prepare("SELECT identity, used_at FROM enroll_tokens WHERE token_hash = ?").get(hashToken(token.token));
      expect(row).toEqual({ identity: "user:drained", used_at: null });
      const ev = conn2.prepare("SELECT actor, route, status FROM access_events WHERE type = 'api.request' AND method = 'POST' ORDER BY id DESC LIMIT 1").get();
      expect(ev).toEqual({ actor: "user:admin", route: "/v1/enroll-tokens", status: 201 });
    } finally {
      conn2.close();
    }
  });
});
