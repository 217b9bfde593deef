import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initGateway, startGateway, type Gateway, type GatewayOptions, type InitOptions } from "../../src/app.js";
import { silentLogger, type Clock, parseIdentity } from "../../src/core/index.js";
import { importFixtureVulnDb } from "./vulndb.js";
import {
  CertificateAuthority,
  generateKeyPair,
  privateKeyPem,
  spkiDer,
  type CaKeyAlgorithm,
  type ClientProfile,
} from "../../src/pki/index.js";

/** A temporary directory removed by `cleanup()`. */
export function tempDir(prefix = "portcullis-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** PEM material of a client, also written to files for outside clients (curl, openssl). */
export interface ClientFiles {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestGateway {
  readonly root: string;
  readonly dataDir: string;
  readonly gw: Gateway;
  readonly admin: ClientFiles;
  readonly caFile: string;
  readonly caPem: string;
  readonly adminProfile: ClientProfile;
  readonly adminProfilePath: string;
  readonly rootFingerprint: string;
  /** host:port of the API (mTLS) listener. */
  readonly api: string;
  /** host:port of the bootstrap listener. */
  readonly bootstrap: string;
  /** Writes PEMs to files under the test's root directory. */
  writeClient(name: string, certPem: string, keyPem: string): ClientFiles;
  /**
   * Issues a client certificate straight from this gateway's CA (recorded in the store),
   * optionally with another clock for expired / not-yet-valid cases.
   */
  issueClient(identity: string, opts?: { clock?: Clock; lifetimeMs?: number; record?: boolean }): ClientFiles & { serial: string };
  /** Stops the gateway (the data dir stays, for restart tests). */
  stop(): Promise<void>;
  /** Starts the gateway again on the same data dir, on new ports. */
  restart(): Promise<TestGateway>;
  /** Stops and removes everything. */
  close(): Promise<void>;
}

/**
 * Initialises a data dir in a temp folder and starts a gateway on ephemeral ports, with
 * the fixture vulnerability database imported (unless `vulndb: false`), so that the
 * shipped admission policy can scan the test images.
 */
export async function startTestGateway(
  opts: { init?: Partial<InitOptions>; start?: Partial<GatewayOptions>; vulndb?: boolean } = {},
): Promise<TestGateway> {
  const { dir: root, cleanup } = tempDir();
  const dataDir = join(root, "data");
  const init = initGateway({ dataDir, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0", ...opts.init });
  const tg = await startOn(root, dataDir, init.rootFingerprint, init.adminProfile, cleanup, { scannerPathEnv: "", ...opts.start });
  if (opts.vulndb !== false) {
    try {
      await importFixtureVulnDb(tg.gw.store, tg.gw.audit);
    } catch (e) {
      await tg.close();
      throw e;
    }
  }
  return tg;
}

async function startOn(
  root: string,
  dataDir: string,
  rootFingerprint: string,
  adminProfilePath: string,
  cleanup: () => void,
  start: Partial<GatewayOptions>,
): Promise<TestGateway> {
  const gw = await startGateway({ dataDir, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0", ...start });
  const adminProfile = JSON.parse(readFileSync(adminProfilePath, "utf8")) as ClientProfile;
  const caFile = join(root, "ca.pem");
  writeFileSync(caFile, adminProfile.caBundle);
  const writeClient = (name: string, certPem: string, keyPem: string): ClientFiles => {
    const certFile = join(root, `${name}.crt`);
    const keyFile = join(root, `${name}.key`);
    writeFileSync(certFile, certPem);
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    return { certPem, keyPem, certFile, keyFile };
  };
  const admin = writeClient("admin", adminProfile.certificate, adminProfile.privateKey);
  let stopped = false;
  const tg: TestGateway = {
    root,
    dataDir,
    gw,
    admin,
    caFile,
    caPem: adminProfile.caBundle,
    adminProfile: { ...adminProfile, server: gw.apiAddress },
    adminProfilePath,
    rootFingerprint,
    api: gw.apiAddress,
    bootstrap: gw.bootstrapAddress,
    writeClient,
    issueClient(identity, o = {}) {
      const kp = generateKeyPair("ec-p256");
      const id = parseIdentity(identity);
      let pem: string;
      let serial: string;
      if (o.clock) {
        const ca = new CertificateAuthority(gw.pki.ca.material, gw.config.trustDomain, o.clock);
        const leaf = ca.issueLeaf({ spki: spkiDer(kp.publicKey), profile: "client", identity: id, lifetimeMs: o.lifetimeMs ?? 3_600_000 });
        pem = leaf.pem + gw.pki.ca.intermediatePem;
        serial = leaf.serialHex;
      } else {
        const b = gw.pki.issueClient(id, spkiDer(kp.publicKey), { identity: "service:test" }, o.lifetimeMs);
        pem = b.certificate + b.chain;
        serial = b.serial;
      }
      const name = `${identity.replace(":", "-")}-${serial.slice(0, 8)}`;
      return { ...writeClient(name, pem, privateKeyPem(kp.privateKey)), serial };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await gw.close();
    },
    async restart() {
      await tg.stop();
      return startOn(root, dataDir, rootFingerprint, adminProfilePath, cleanup, start);
    },
    async close() {
      await tg.stop();
      cleanup();
    },
  };
  return tg;
}

/** Another CA, unrelated to the gateway's, for "wrong CA" cases. */
export function foreignCa(clock: Clock, alg: CaKeyAlgorithm = "ec-p256"): CertificateAuthority {
  return CertificateAuthority.create("portcullis.local", clock, {
    userDefault: 3_600_000,
    userMax: 3_600_000,
    node: 3_600_000,
    service: 3_600_000,
    server: 3_600_000,
    intermediate: 86_400_000,
    root: 86_400_000,
    enrollTokenDefault: 60_000,
    enrollTokenMax: 60_000,
  }, alg);
}
