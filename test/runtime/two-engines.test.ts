/**
 * A second real engine, reached over TCP with mutual TLS: its server certificate and its
 * client CA come from `portcullis node cert` (the real CLI, through the API). The engine
 * trusts only the engine-client CA, so only the gateway's `service:gateway` certificate
 * gets in: certificates of users and nodes from our main issuing CA, even a
 * `service:gateway` one from there, are refused in the handshake.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseIdentity, systemClock } from "../../src/core/index.js";
import { generateKeyPair, pkiPaths, privateKeyPem, spkiDer, writeProfile } from "../../src/pki/index.js";
import type { ClientFiles } from "../support/gateway.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, newTestRun, testEngine } from "../support/docker.js";
import { runCli } from "../support/cli.js";
import { foreignCa, startTestGateway, type TestGateway } from "../support/gateway.js";
import { copyImage, mountsUnder, startSecondEngine, type SecondEngine } from "../support/second-engine.js";

const execFileAsync = promisify(execFile);
const actor = { identity: "user:ops" };

async function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, args, { timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : -1, stdout: x.stdout ?? "", stderr: x.stderr ?? "" };
  }
}

describeDocker(
  "a second engine over mutual TLS",
  () => {
    let t: TestGateway;
    let engine: SecondEngine | undefined;
    let certDir: string;
    let gwCert: string;
    let gwKey: string;
    const testRun = newTestRun();
    let image: string | undefined;

    beforeAll(async () => {
      t = await startTestGateway();
      const profile = join(t.root, "admin.json");
      writeProfile(profile, t.adminProfile);
      certDir = join(t.root, "engine-2-tls");
      const r = await runCli(
        ["node", "cert", "engine-2", "--san", "127.0.0.1", "--san", "localhost", "--out-dir", certDir, "-o", "json"],
        { env: { PORTCULLIS_PROFILE: profile } },
      );
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const p = pkiPaths(t.dataDir);
      gwCert = p.gatewayClientCert;
      gwKey = p.gatewayClientKey;
      engine = await startSecondEngine({
        tls: { caFile: join(certDir, "ca.pem"), certFile: join(certDir, "cert.pem"), keyFile: join(certDir, "key.pem") },
        client: { ca: t.caPem, cert: readFileSync(gwCert, "utf8"), key: readFileSync(gwKey, "utf8") },
      });
    }, 60_000);

    afterAll(async () => {
      await engine?.stop();
      if (image !== undefined) await cleanupTestRun(testEngine(), testRun, image);
      await t?.close();
    }, 60_000);

    it("node cert writes the key 0600, the engine certificate, the engine-client CA as ca.pem and our root", async () => {
      expect(readdirSync(certDir).sort()).toEqual(["ca.pem", "cert.pem", "gateway-ca.pem", "key.pem"]);
      expect(statSync(join(certDir, "key.pem")).mode & 0o777).toBe(0o600);
      const leaf = new X509Certificate(readFileSync(join(certDir, "cert.pem")));
      const root = new X509Certificate(readFileSync(join(certDir, "gateway-ca.pem")));
      // ca.pem (dockerd --tlscacert) is the engine-client CA alone: not our root, not the issuing CA.
      const caPem = readFileSync(join(certDir, "ca.pem"), "utf8");
      expect(caPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
      const clientCa = new X509Certificate(caPem);
      expect(clientCa.ca).toBe(true);
      expect(clientCa.subject).toContain("CN=portcullis engine clients");
      expect(clientCa.checkIssued(root) && clientCa.verify(root.publicKey)).toBe(true);
      expect(clientCa.raw.equals(Buffer.from(t.gw.pki.engineClients.material.certDer))).toBe(true);
      expect(clientCa.raw.equals(t.gw.pki.ca.material.intermediateDer)).toBe(false);
      expect(clientCa.raw.equals(t.gw.pki.ca.material.rootDer)).toBe(false);
      // The gateway's engine-client certificate chains to it.
      expect(new X509Certificate(readFileSync(gwCert)).verify(clientCa.publicKey)).toBe(true);
      // cert.pem checks against gateway-ca.pem (as docs/deploy.md shows), not against ca.pem.
      const cert = join(certDir, "cert.pem");
      const good = await run("openssl", ["verify", "-CAfile", join(certDir, "gateway-ca.pem"), "-untrusted", cert, cert]);
      expect(good.code, good.stderr).toBe(0);
      const wrong = await run("openssl", ["verify", "-partial_chain", "-CAfile", join(certDir, "ca.pem"), "-untrusted", cert, cert]);
      expect(wrong.code).not.toBe(0);
      expect(leaf.subjectAltName?.split(", ").sort()).toEqual(["DNS:localhost", "IP Address:127.0.0.1", `URI:spiffe://${t.gw.config.trustDomain}/node/engine-2`].sort());
      expect(leaf.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // serverAuth only
      expect(root.checkIssued(root)).toBe(true);
      expect(root.toString()).toBe(new X509Certificate(t.gw.pki.ca.material.rootDer).toString());
      const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
      expect(Math.round(days)).toBe(90);
      expect(t.gw.pki.list("node:engine-2").map((c) => c.profile)).toEqual(["node-server"]);
    });

    it("refuses a client without a certificate (curl)", async () => {
      const r = await run("curl", ["-sS", "--max-time", "10", "--cacert", join(certDir, "gateway-ca.pem"), `https://127.0.0.1:${engine?.port}/version`]);
      expect(r.code).not.toBe(0);
      expect(r.stdout).not.toContain("ApiVersion");
      expect(r.stderr).toMatch(/alert|certificate/i);
    });

    it("refuses a client certificate from a foreign CA (curl)", async () => {
      const ca = foreignCa(systemClock);
      const kp = generateKeyPair("ec-p256");
      const leaf = ca.issueLeaf({ spki: spkiDer(kp.publicKey), profile: "client", identity: parseIdentity("service:gateway"), lifetimeMs: 3_600_000 });
      const certFile = join(t.root, "foreign.crt");
      const keyFile = join(t.root, "foreign.key");
      writeFileSync(certFile, leaf.pem + ca.intermediatePem);
      writeFileSync(keyFile, privateKeyPem(kp.privateKey), { mode: 0o600 });
      const args = ["-sS", "--max-time", "10", "--cacert", join(certDir, "gateway-ca.pem"), `https://127.0.0.1:${engine?.port}/version`];
      const refused = await run("curl", [...args, "--cert", certFile, "--key", keyFile]);
      expect(refused.code).not.toBe(0);
      expect(refused.stdout).not.toContain("ApiVersion");
      expect(refused.stderr).toMatch(/alert|certificate/i);
      // The same request with the gateway's certificate is answered.
      const ok = await run("curl", [...args, "--cert", gwCert, "--key", gwKey]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toHaveProperty("ApiVersion");
    });

    /** curl with a client certificate: refused in the handshake, and dockerd says why. */
    async function expectRefusedByCurl(c: Pick<ClientFiles, "certFile" | "keyFile">): Promise<void> {
      const before = refusals();
      const r = await run("curl", ["-sS", "--max-time", "10", "--cacert", join(certDir, "gateway-ca.pem"), "--cert", c.certFile, "--key", c.keyFile, `https://127.0.0.1:${engine?.port}/version`]);
      expect(r.code).not.toBe(0);
      expect(r.stdout).not.toContain("ApiVersion");
      expect(r.stderr).toMatch(/alert|certificate/i);
      await expect.poll(refusals, { timeout: 5_000 }).toBeGreaterThan(before);
    }

    /** The docker CLI with a client certificate: no answer from the server. */
    async function expectRefusedByDockerCli(c: Pick<ClientFiles, "certFile" | "keyFile">): Promise<void> {
      const r = await run("docker", [
        "-H", engine?.endpoint ?? "",
        "--tlsverify", "--tlscacert", join(certDir, "gateway-ca.pem"), "--tlscert", c.certFile, "--tlskey", c.keyFile,
        "version", "--format", "{{.Server.Version}}",
      ]);
      expect(r.code).not.toBe(0);
      expect(r.stdout.trim()).not.toMatch(/^20\.10\./);
      expect(r.stderr).toMatch(/bad certificate|remote error|certificate/i);
    }

    /** Handshakes dockerd refused because the client certificate is not the engine-client CA's. */
    const refusals = (): number => (engine?.log().match(/TLS handshake error.*certificate signed by unknown authority/g) ?? []).length;

    it("refuses the admin's certificate from our issuing CA (curl and the docker CLI)", async () => {
      await expectRefusedByCurl(t.admin);
      await expectRefusedByDockerCli(t.admin);
    });

    it("refuses an enrolled user's certificate from our issuing CA", async () => {
      const dev = t.issueClient("user:dev1");
      await expectRefusedByCurl(dev);
      await expectRefusedByDockerCli(dev);
    });

    it("refuses a node's client certificate from our issuing CA", async () => {
      const node = t.issueClient("node:engine-2");
      await expectRefusedByCurl(node);
      await expectRefusedByDockerCli(node);
    });

    it("refuses a service:gateway certificate that our issuing CA made: the CA decides, not the name", async () => {
      const impostor = t.issueClient("service:gateway");
      expect(new X509Certificate(impostor.certPem).subjectAltName).toBe(`URI:spiffe://${t.gw.config.trustDomain}/service/gateway`);
      await expectRefusedByCurl(impostor);
      await expectRefusedByDockerCli(impostor);
    });

    it("lets the docker CLI in with the gateway's service:gateway certificate", async () => {
      const caFile = join(t.root, "ca-bundle.pem");
      writeFileSync(caFile, t.caPem);
      const r = await run("docker", [
        "-H", engine?.endpoint ?? "",
        "--tlsverify", "--tlscacert", caFile, "--tlscert", gwCert, "--tlskey", gwKey,
        "version", "--format", "{{.Server.Version}}",
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toMatch(/^20\.10\./);
    });

    it("the registry reports the node healthy with its capacity and runtimes, over mutual TLS", async () => {
      t.gw.nodes.add("engine-2", engine?.endpoint ?? "", { zone: "b" }, actor);
      const s = await t.gw.nodes.status("engine-2", { fresh: true });
      expect(s.health).toBe("ok");
      expect(s.runtimes).toEqual(expect.arrayContaining(["runc", "runsc"]));
      expect(s.capacity.nanoCpus).toBeGreaterThanOrEqual(1e9);
      expect(s.capacity.memoryBytes).toBeGreaterThan(2 ** 28);
      expect(s.version).toMatch(/^20\.10\./);
      const cli = await runCli(["node", "get", "engine-2", "-o", "json"], { env: { PORTCULLIS_PROFILE: join(t.root, "admin.json") } });
      expect(cli.code).toBe(0);
      expect(JSON.parse(cli.stdout)).toMatchObject({ name: "engine-2", state: "active", labels: { zone: "b" }, status: { health: "ok" } });
    });

    it("accepts the engine only under its own node name", async () => {
      // Same endpoint, same CA, but the certificate names node/engine-2, not node/impostor.
      t.gw.nodes.add("impostor", engine?.endpoint ?? "", {}, actor);
      expect((await t.gw.nodes.status("impostor", { fresh: true })).health).toBe("unreachable");
      t.gw.nodes.remove("impostor", actor);
    });

    it("runs a container on the second engine from an image copied there", async () => {
      const local = testEngine();
      image = await buildBusyboxImage(local, testRun);
      const e2 = new Docker({ host: "127.0.0.1", port: engine?.port, protocol: "https", ca: t.caPem, cert: readFileSync(gwCert), key: readFileSync(gwKey) });
      await copyImage(new Docker(), e2, image);
      const r = await t.gw.nodes.engine("engine-2").runOnce(
        { Image: image, Cmd: ["echo", "hello from engine-2"], Labels: { ...testRun.labels }, HostConfig: { NetworkMode: "none" } },
        { timeoutMs: 20_000 },
      );
      expect(r).toMatchObject({ exitCode: 0, stdout: "hello from engine-2\n" });
      expect(await t.gw.nodes.engine("engine-2").listByLabel(testRun.selector)).toEqual([]);
    }, 60_000);

    it("stops and leaves nothing behind: no process, no mount, no directory", async () => {
      const e = engine as SecondEngine;
      await e.stop();
      expect(() => process.kill(e.pid, 0)).toThrow();
      const left = readdirSync("/proc").filter((p) => /^\d+$/.test(p) && (() => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(e.root);
        } catch {
          return false;
        }
      })());
      expect(left).toEqual([]);
      expect(mountsUnder(e.root)).toEqual([]);
      expect(existsSync(e.root)).toBe(false);
      expect((await t.gw.nodes.status("engine-2", { fresh: true })).health).toBe("unreachable");
    }, 30_000);
  },
  { runtimes: ["runsc"] },
);
