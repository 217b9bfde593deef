/**
 * Revocation takes effect on the API port within a second, whoever revokes: the API
 * itself, another PkiService on the same store, or another process. Live connections of
 * a revoked certificate are closed; revocations survive a restart; revoking an identity
 * also voids its unused enrollment tokens.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/app.js";
import { AuditLog, loadOrCreateHmacKey } from "../../src/audit/index.js";
import { systemClock } from "../../src/core/index.js";
import { PkiService } from "../../src/pki/index.js";
import { Store } from "../../src/store/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mtlsGet, tlsConnect } from "../support/tls-client.js";
import {
  adminPost,
  bootPost,
  closedWithin,
  createToken,
  creds,
  csrFor,
  enrollNew,
  eventsSince,
  expectError,
  httpOnSocket,
  json,
  mark,
  openKeepAlive,
  spiffe,
  whoami,
  type Enrolled,
} from "./api-support.js";

const ROOT = resolve(import.meta.dirname, "../..");

/** Makes fresh connections until one is refused at the handshake; returns the ms it took. */
async function msUntilRefused(t: TestGateway, c: Enrolled, since: number, limitMs = 3000): Promise<number> {
  for (;;) {
    const r = await whoami(t, c);
    const elapsed = Date.now() - since;
    if (!r.ok) return elapsed;
    // Until the TLS context reloads, a handshake may still pass; the request is then
    // answered 200 (before the revocation is seen) or 401 PC_PKI_CERT_REVOKED (after).
    expect([200, 401], r.body).toContain(r.status);
    if (r.status === 401) expect(r.body).toContain("PC_PKI_CERT_REVOKED");
    if (elapsed > limitMs) throw new Error(`still accepted ${elapsed} ms after the revocation`);
    await new Promise((res) => setTimeout(res, 5));
  }
}

describe("revocation on the API port", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses a new connection within 1 s of a revocation through the API", async () => {
    const c = await enrollNew(t, "user:rv-api");
    expect((await whoami(t, c)).status).toBe(200);
    const r = await adminPost(t, "/v1/certificates/revoke", { serial: c.serial, reason: "keyCompromise" });
    const at = Date.now();
    expect(r.status, r.body).toBe(200);
    expect(json(r)).toEqual({ revoked: [c.serial] });
    expect(await msUntilRefused(t, c, at)).toBeLessThan(1000);
    // The store says so too.
    expect(t.gw.pki.get(c.serial)?.revocationReason).toBe("keyCompromise");
    // Revoking it again changes nothing.
    const again = await adminPost(t, "/v1/certificates/revoke", { serial: c.serial });
    expect(json(again)).toEqual({ revoked: [] });
  });

  it("picks up, within 1 s, a revocation made through another PkiService on the same store", async () => {
    const c = await enrollNew(t, "user:rv-store");
    expect((await whoami(t, c)).status).toBe(200);
    const live = await openKeepAlive(t.api, creds(t, c));
    const store = Store.open(t.dataDir);
    let at: number;
    try {
      const pki = PkiService.load(t.dataDir, store, new AuditLog(store, systemClock, { trustDomain: loadConfig(t.dataDir).trustDomain, hmacKey: loadOrCreateHmacKey(t.dataDir) }), systemClock, loadConfig(t.dataDir));
      expect(pki.revokeSerial(c.serial, "superseded", { identity: "user:admin" })).toEqual({ revoked: [c.serial] });
      at = Date.now();
    } finally {
      store.close();
    }
    // Nothing told the gateway: only its poller can notice.
    try {
      expect(await msUntilRefused(t, c, at)).toBeLessThan(1000);
      // Its live connection is gone too.
      await closedWithin(live, Math.max(1, 1000 - (Date.now() - at)));
    } finally {
      live.destroy();
    }
  });

  it("picks up, within 1 s, a revocation made by another process", async () => {
    const c = await enrollNew(t, "user:rv-process");
    expect((await whoami(t, c)).status).toBe(200);
    const script = join(t.root, "revoke.mts");
    const src = (p: string) => JSON.stringify(pathToFileURL(join(ROOT, "src", p)).href);
    writeFileSync(
      script,
      [
        `import { loadConfig } from ${src("app.ts")};`,
        `import { AuditLog, loadOrCreateHmacKey } from ${src("audit/index.ts")};`,
        `import { systemClock } from ${src("core/index.ts")};`,
        `import { PkiService } from ${src("pki/index.ts")};`,
        `import { Store } from ${src("store/index.ts")};`,
        `const [dataDir, serial] = process.argv.slice(2);`,
        `const store = Store.open(dataDir);`,
        `const pki = PkiService.load(dataDir, store, new AuditLog(store, systemClock, { trustDomain: loadConfig(dataDir).trustDomain, hmacKey: loadOrCreateHmacKey(dataDir) }), systemClock, loadConfig(dataDir));`,
        `const out = pki.revokeSerial(serial, "keyCompromise", { identity: "user:admin" });`,
        `process.stdout.write(JSON.stringify(out) + "\\n");`,
        `store.close();`,
      ].join("\n"),
    );
    const child = spawn(process.execPath, ["--import", "tsx", script, t.dataDir, c.serial], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const line = await new Promise<string>((res, rej) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        rej(new Error(`the revoking process did not answer: ${stderr}`));
      }, 20_000);
      child.stdout.once("data", (d: Buffer) => {
        clearTimeout(timer);
        res(d.toString());
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        rej(new Error(`the revoking process exited ${String(code)}: ${stderr}`));
      });
    });
    const at = Date.now();
    expect(JSON.parse(line)).toEqual({ revoked: [c.serial] });
    expect(await msUntilRefused(t, c, at)).toBeLessThan(1000);
    await new Promise((res) => (child.exitCode !== null ? res(undefined) : child.once("exit", res)));
    expect(child.exitCode).toBe(0);
  });

  it("closes a keep-alive connection of a certificate revoked after it was established", async () => {
    const c = await enrollNew(t, "user:rv-live");
    const live = await openKeepAlive(t.api, creds(t, c));
    const other = await openKeepAlive(t.api, creds(t, t.admin));
    try {
      // Still usable before the revocation.
      expect((await httpOnSocket(live, "/v1/whoami")).status).toBe(200);
      const r = await adminPost(t, "/v1/certificates/revoke", { serial: c.serial });
      expect(r.status).toBe(200);
      expect(await closedWithin(live, 1000)).toBeLessThan(1000);
      await expect(httpOnSocket(live, "/v1/whoami")).rejects.toThrow();
      // Someone else's connection stays up and keeps working.
      expect(other.destroyed).toBe(false);
      expect((await httpOnSocket(other, "/v1/whoami")).status).toBe(200);
    } finally {
      live.destroy();
      other.destroy();
    }
  });

  it("refuses requests on a connection that was established, but not yet used, before the revocation", async () => {
    const c = await enrollNew(t, "user:rv-idle");
    const conn = await tlsConnect(t.api, { ...creds(t, c), servername: "localhost" });
    if (!conn.socket) throw new Error(conn.error);
    const s = conn.socket;
    s.on("error", () => undefined);
    try {
      const r = await adminPost(t, "/v1/certificates/revoke", { serial: c.serial });
      expect(r.status).toBe(200);
      const before = mark(t);
      // Either the connection is gone or the request is refused; it is never served.
      let status: number | undefined;
      let body = "";
      try {
        const res = await httpOnSocket(s, "/v1/whoami");
        status = res.status;
        body = res.body;
      } catch {
        status = undefined;
      }
      if (status !== undefined) {
        expect(status).toBe(401);
        expect(JSON.parse(body).code).toBe("PC_PKI_CERT_REVOKED");
        const ev = eventsSince(t, before).find((e) => e.type === "api.request");
        // The access log names the revoked certificate that tried.
        expect(ev).toMatchObject({ status: 401, outcome: "denied", actor: "user:rv-idle", actorSerial: c.serial });
      }
    } finally {
      s.destroy();
    }
  });

  it("revoking an identity revokes its certificates and voids its unused enrollment tokens", async () => {
    const c = await enrollNew(t, "user:carol");
    const unused = await createToken(t, "user:carol");
    const otherToken = await createToken(t, "user:dave");
    const r = await adminPost(t, "/v1/certificates/revoke", { identity: "user:carol", reason: "affiliationChanged" });
    expect(r.status, r.body).toBe(200);
    expect(json(r)).toEqual({ revoked: [c.serial], tokensRevoked: 1 });

    expect((await whoami(t, c)).ok).toBe(false);
    const certsBefore = t.gw.pki.list().length;
    const e = await bootPost(t, "/v1/enroll", JSON.stringify({ token: unused, csr: csrFor(spiffe(t, "user:carol")).pem }));
    expectError(e, 401, "PC_PKI_TOKEN_REVOKED");
    expect(t.gw.pki.list().length).toBe(certsBefore);

    // Another identity's token is untouched.
    const ok = await bootPost(t, "/v1/enroll", JSON.stringify({ token: otherToken, csr: csrFor(spiffe(t, "user:dave")).pem }));
    expect(ok.status, ok.body).toBe(201);
  });

  it("still refuses revoked certificates after a restart, on the new ports", async () => {
    const revoked = await enrollNew(t, "user:rv-restart");
    const kept = await enrollNew(t, "user:kept");
    const r = await adminPost(t, "/v1/certificates/revoke", { serial: revoked.serial });
    expect(r.status).toBe(200);
    const oldApi = t.api;

    t = await t.restart();
    expect(t.api).not.toBe(oldApi);
    // The old listener is gone.
    expect((await mtlsGet(oldApi, "/v1/whoami", creds(t, t.admin))).ok).toBe(false);

    const before = mark(t);
    const refused = await mtlsGet(t.api, "/v1/whoami", creds(t, revoked));
    expect(refused.ok).toBe(false);
    expect(eventsSince(t, before).filter((e) => e.type === "api.request")).toEqual([]);
    const ok = await mtlsGet(t.api, "/v1/whoami", creds(t, kept));
    expect(ok.status).toBe(200);
    expect(json(ok).identity).toBe("user:kept");
  });
});
