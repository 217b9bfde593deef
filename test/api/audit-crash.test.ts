/**
 * Crash safety with a real process: `portcullis serve` is killed with SIGKILL while four
 * clients send requests. Afterwards the chain of the data dir verifies (`audit verify
 * --data-dir`, exit 0), every request that got an answer has its api.request entry, and
 * every namespace whose creation was answered 201 exists.
 */
import type { ChildProcess } from "node:child_process";
import type { IncomingMessage } from "node:http";
import { request } from "node:https";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { initGateway, startGateway } from "../../src/app.js";
import { verifySource } from "../../src/audit/index.js";
import { silentLogger } from "../../src/core/index.js";
import { formatFingerprint, readProfile, type ClientProfile } from "../../src/pki/index.js";
import { runCli } from "../support/cli.js";
import { tempDir } from "../support/gateway.js";
import { execFileP } from "../support/tls-client.js";
import { freePort, spawnServe, waitFor } from "./api-support.js";

const CLIENTS = 4;
const RUN_MS = 1500;


interface Answered {
  readonly requestId: string;
  readonly status: number;
  readonly namespace?: string;
}

/** One request on its own connection; resolves with its status and x-request-id, or undefined if no answer came. */
function send(port: number, p: ClientProfile, method: string, path: string, body?: unknown): Promise<{ status: number; requestId: string } | undefined> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((done) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        ca: p.caBundle,
        cert: p.certificate,
        key: p.privateKey,
        agent: false,
        headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
      },
      (res: IncomingMessage) => {
        res.on("data", () => undefined);
        res.on("end", () => done({ status: res.statusCode ?? 0, requestId: String(res.headers["x-request-id"] ?? "") }));
        res.on("error", () => done(undefined));
      },
    );
    req.setTimeout(3000, () => req.destroy(new Error("timeout")));
    req.on("error", () => done(undefined));
    req.end(payload);
  });
}

describe("kill -9 while four clients write", () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, "data");
  let child: ChildProcess | undefined;

  afterAll(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    tmp.cleanup();
  });

  it("loses no answered request's entry, keeps every answered namespace, and the chain verifies", async () => {
    const [apiPort, bootPort] = [await freePort(), await freePort()];
    const init = initGateway({ dataDir, listen: `127.0.0.1:${apiPort}`, bootstrapListen: `127.0.0.1:${bootPort}` });
    child = (await spawnServe(dataDir)).child;

    const profile = readProfile(init.adminProfile);
    const answered: Answered[] = [];
    let stop = false;
    let killedAt = 0;
    const client = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const namespace = i % 2 === 1 ? `c${n}-n${i}` : undefined;
        const r = namespace ? await send(apiPort, profile, "POST", "/v1/namespaces", { name: namespace }) : await send(apiPort, profile, "GET", "/v1/whoami");
        if (r) answered.push({ ...r, ...(namespace ? { namespace } : {}) });
        else if (killedAt > 0) return; // the server is gone
      }
    };
    const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
    await new Promise((r) => setTimeout(r, RUN_MS));
    expect(child.kill("SIGKILL")).toBe(true);
    killedAt = Date.now();
    await waitFor(() => (child?.exitCode !== null || child?.signalCode !== null ? true : undefined), 5000, "the server to die");
    expect(child.signalCode).toBe("SIGKILL");
    stop = true;
    await Promise.all(clients);

    // Enough traffic to mean something, of both kinds.
    expect(answered.length).toBeGreaterThan(20);
    const created = answered.filter((a) => a.namespace && a.status === 201);
    expect(created.length).toBeGreaterThan(5);
    expect(answered.filter((a) => !a.namespace && a.status === 200).length).toBeGreaterThan(5);
    expect(answered.every((a) => /\S/.test(a.requestId))).toBe(true);

    // Offline verification of the data dir the killed process left.
    const v = await runCli(["audit", "verify", "--data-dir", dataDir, "--ca-fingerprint", formatFingerprint(init.rootFingerprint)], {
      env: { PORTCULLIS_PROFILE: join(tmp.dir, "no-such.profile.json") },
    });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^ok: \d+ entries, seq 0\.\.\d+, last checkpoint at seq \d+, 0 signed requests$/m);

    const db = new Database(join(dataDir, "portcullis.db"), { readonly: true, fileMustExist: true });
    try {
      const ids = new Set(
        (db.prepare("SELECT body FROM audit_log WHERE type = 'api.request'").all() as { body: string }[]).map((r) => (JSON.parse(r.body) as { requestId?: string }).requestId),
      );
      const lost = answered.filter((a) => !ids.has(a.requestId));
      expect(lost, `answered requests without an entry (of ${answered.length})`).toEqual([]);
      const names = new Set((db.prepare("SELECT name FROM namespaces").all() as { name: string }[]).map((r) => r.name));
      expect(created.filter((a) => !names.has(a.namespace as string))).toEqual([]);
    } finally {
      db.close();
    }

    // After a restart the gateway serves, appends to the same chain, and it verifies.
    const gw = await startGateway({ dataDir, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
    const headBefore = gw.audit.head().seq;
    try {
      const r = await execFileP("curl", ["-sS", "--max-time", "5", "--cacert", join(dataDir, "ca", "root.crt"), `https://${gw.bootstrapAddress}/healthz`]);
      expect(JSON.parse(r.stdout).store).toBe("ok");
      expect((await verifySource(gw.audit, { caFingerprint: init.rootFingerprint, ensureCheckpoint: async () => void (await gw.audit.checkpointNow()) })).ok).toBe(true);
    } finally {
      await gw.close();
    }
    const after = await runCli(["audit", "verify", "--data-dir", dataDir, "--ca-fingerprint", formatFingerprint(init.rootFingerprint)], {
      env: { PORTCULLIS_PROFILE: join(tmp.dir, "no-such.profile.json") },
    });
    expect(after.code, after.stdout + after.stderr).toBe(0);
    expect(Number(/seq 0\.\.(\d+)/.exec(after.stdout)?.[1])).toBeGreaterThan(headBefore);
  });
});
