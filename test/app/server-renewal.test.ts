import { join } from "node:path";
import { readFileSync } from "node:fs";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { initGateway, startGateway, type Gateway } from "../../src/app.js";
import { ManualClock, silentLogger } from "../../src/core/index.js";
import { certificateInfo, certificatesFromPem } from "../../src/pki/index.js";
import { tempDir } from "../support/gateway.js";
import { tlsConnect } from "../support/tls-client.js";

const DAY = 86_400_000;

async function servedSerial(addr: string): Promise<string> {
  const r = await tlsConnect(addr, { rejectUnauthorized: false });
  if (!r.socket) throw new Error(r.error);
  const serial = r.socket.getPeerCertificate().serialNumber.toLowerCase();
  r.socket.destroy();
  return serial;
}

function fileSerial(dataDir: string): string {
  const der = certificatesFromPem(readFileSync(join(dataDir, "server", "server.crt"), "utf8"))[0] as Buffer;
  return certificateInfo(der).serialHex;
}

describe("the gateway's server certificate renews itself", () => {
  const tmp = tempDir();
  let gw: Gateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });
  afterAll(() => tmp.cleanup());

  it("at start, when two thirds of its 30 days have passed", async () => {
    const dataDir = join(tmp.dir, "old");
    initGateway({ dataDir, clock: new ManualClock(Date.now() - 21 * DAY), listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
    const old = fileSerial(dataDir);
    gw = await startGateway({ dataDir, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
    const now = fileSerial(dataDir);
    expect(now).not.toBe(old);
    expect(await servedSerial(gw.apiAddress)).toBe(now);
    expect(await servedSerial(gw.bootstrapAddress)).toBe(now);
    const servers = gw.pki.list().filter((c) => c.profile === "server");
    expect(servers).toHaveLength(2);
    const fresh = servers.find((c) => c.serial === now);
    expect(fresh && fresh.notAfter - Date.now()).toBeGreaterThan(29 * DAY);
  });

  it("not before two thirds have passed", async () => {
    const dataDir = join(tmp.dir, "young");
    initGateway({ dataDir, clock: new ManualClock(Date.now() - 19 * DAY), listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
    const old = fileSerial(dataDir);
    gw = await startGateway({ dataDir, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
    expect(fileSerial(dataDir)).toBe(old);
    expect(await servedSerial(gw.apiAddress)).toBe(old);
  });

  it("while serving: both listeners switch to the new certificate without a restart", async () => {
    const dataDir = join(tmp.dir, "live");
    initGateway({ dataDir, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0" });
    const clock = new ManualClock(Date.now());
    gw = await startGateway({ dataDir, clock, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0", serverRenewCheckMs: 50 });
    const old = await servedSerial(gw.apiAddress);
    clock.advance(21 * DAY);
    const deadline = Date.now() + 3000;
    let served = old;
    while (served === old && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      served = await servedSerial(gw.apiAddress);
    }
    expect(served).not.toBe(old);
    expect(served).toBe(fileSerial(dataDir));
    expect(await servedSerial(gw.bootstrapAddress)).toBe(served);
  });
});
