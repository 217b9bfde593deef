/**
 * The same claims, checked by clients that are not ours: curl and the openssl tools.
 * Everything runs through execFile (no shell), with timeouts.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHostPort, parseIdentity, systemClock } from "../../src/core/index.js";
import { generateKeyPair, privateKeyPem, spkiDer } from "../../src/pki/index.js";
import { foreignCa, startTestGateway, type TestGateway } from "../support/gateway.js";
import { execFileP } from "../support/tls-client.js";
import { adminPost, enrollNew, eventsSince, mark, waitFor, type Enrolled } from "./api-support.js";

const TIMEOUT = { timeout: 15_000 };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, TIMEOUT);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number | string; stdout?: string; stderr?: string; killed?: boolean };
    if (x.killed || typeof x.code !== "number") throw e;
    return { code: x.code, stdout: x.stdout ?? "", stderr: x.stderr ?? "" };
  }
}

/** openssl s_client with one HTTP request on stdin; resolves with its output once it exits. */
function sClient(args: string[], request: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn("openssl", ["s_client", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`openssl s_client timed out\n${stdout}\n${stderr}`));
    }, 15_000);
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    p.stdin.end(request);
  });
}

describe("outside clients: curl and openssl", () => {
  let t: TestGateway;
  let apiUrl: string;
  let bootUrl: string;
  let alice: Enrolled;

  beforeAll(async () => {
    t = await startTestGateway();
    apiUrl = `https://localhost:${parseHostPort(t.api).port}`;
    bootUrl = `https://localhost:${parseHostPort(t.bootstrap).port}`;
    alice = await enrollNew(t, "user:alice");
  });
  afterAll(async () => {
    await t?.close();
  });

  const curl = (args: string[]) => run("curl", ["-sS", "--max-time", "10", "-w", "\n%{http_code}", ...args]);

  it("curl with a good client certificate gets 200 from /v1/whoami", async () => {
    const r = await curl(["--cacert", t.caFile, "--cert", alice.certFile, "--key", alice.keyFile, `${apiUrl}/v1/whoami`]);
    expect(r.code, r.stderr).toBe(0);
    const [body, status] = r.stdout.split("\n");
    expect(status).toBe("200");
    expect(JSON.parse(body ?? "")).toMatchObject({ identity: "user:alice", serial: alice.serial });
  });

  it("curl without a client certificate is refused at the handshake", async () => {
    const before = mark(t);
    const r = await curl(["--cacert", t.caFile, `${apiUrl}/v1/whoami`]);
    // 56: the server's "certificate required" alert arrives on the first read.
    expect(r.code).toBe(56);
    expect(r.stderr).toMatch(/certificate required/i);
    expect(r.stdout.trim()).toBe("000");
    await waitFor(() => eventsSince(t, before).find((e) => e.type === "tls.handshake_refused"));
    expect(eventsSince(t, before).filter((e) => e.type === "api.request")).toEqual([]);
  });

  it("curl limited to TLS 1.2 is refused: the API speaks only TLS 1.3", async () => {
    const r = await curl(["--cacert", t.caFile, "--cert", alice.certFile, "--key", alice.keyFile, "--tls-max", "1.2", `${apiUrl}/v1/whoami`]);
    expect(r.code).not.toBe(0);
    expect(r.stdout.trim()).toBe("000");
  });

  it("curl fetches the CA bundle from the bootstrap port without a client certificate, and it matches", async () => {
    const r = await run("curl", ["-sS", "--max-time", "10", "--cacert", t.caFile, `${bootUrl}/v1/ca.pem`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(t.caPem);
  });

  it("openssl s_client negotiates TLSv1.3 with a valid client certificate and verifies the server", async () => {
    const port = String(parseHostPort(t.api).port);
    const r = await sClient(
      ["-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-verify_hostname", "localhost", "-verify_return_error", "-CAfile", t.caFile, "-cert", alice.certFile, "-key", alice.keyFile, "-ign_eof"],
      "GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/New, TLSv1\.3, Cipher is/);
    expect(r.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(r.stdout).toMatch(/HTTP\/1\.1 200/);
    expect(r.stdout).toContain('"identity":"user:alice"');
  });

  it("openssl s_client limited to TLS 1.2 gets no session", async () => {
    const port = String(parseHostPort(t.api).port);
    const r = await sClient(["-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-CAfile", t.caFile, "-cert", alice.certFile, "-key", alice.keyFile, "-tls1_2"], "");
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toMatch(/New, TLSv1\.[23]/);
  });

  it("openssl verify accepts an enrolled user's certificate and rejects a foreign one", async () => {
    const ok = await run("openssl", ["verify", "-CAfile", t.caFile, "-purpose", "sslclient", alice.certFile]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/: OK/);

    const other = foreignCa(systemClock);
    const kp = generateKeyPair();
    const leaf = other.issueLeaf({ spki: spkiDer(kp.publicKey), profile: "client", identity: parseIdentity("user:alice"), lifetimeMs: 3_600_000 });
    const foreign = t.writeClient("foreign-alice", leaf.pem, privateKeyPem(kp.privateKey));
    const bad = await run("openssl", ["verify", "-CAfile", t.caFile, "-untrusted", writeTemp(t, "foreign-chain.pem", other.intermediatePem), foreign.certFile]);
    expect(bad.code).not.toBe(0);
    expect(`${bad.stdout}${bad.stderr}`).toMatch(/unable to get (local )?issuer certificate|certificate signature failure/i);
  });

  it("after revocation: curl is refused, and openssl verify rejects it with the CRL curl fetched", async () => {
    const bob = await enrollNew(t, "user:bob");
    const before = await curl(["--cacert", t.caFile, "--cert", bob.certFile, "--key", bob.keyFile, `${apiUrl}/v1/whoami`]);
    expect(before.stdout.split("\n")[1]).toBe("200");

    const rv = await adminPost(t, "/v1/certificates/revoke", { serial: bob.serial, reason: "keyCompromise" });
    expect(rv.status, rv.body).toBe(200);

    const r = await curl(["--cacert", t.caFile, "--cert", bob.certFile, "--key", bob.keyFile, `${apiUrl}/v1/whoami`]);
    expect(r.code).not.toBe(0);
    expect(r.stdout.trim()).toBe("000");

    const crlFile = join(t.root, "crl.pem");
    const got = await run("curl", ["-sS", "--max-time", "10", "--cacert", t.caFile, "-o", crlFile, `${bootUrl}/v1/crl.pem`]);
    expect(got.code, got.stderr).toBe(0);
    const v = await run("openssl", ["verify", "-CAfile", t.caFile, "-crl_check", "-CRLfile", crlFile, bob.certFile]);
    expect(v.code).not.toBe(0);
    expect(`${v.stdout}${v.stderr}`).toMatch(/certificate revoked/i);
    // The CRL is signed by our issuing CA and names bob's serial.
    const text = await run("openssl", ["crl", "-in", crlFile, "-noout", "-text", "-CAfile", t.caFile]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr).toMatch(/verify OK/);
    expect(text.stdout.replace(/\s/g, "").toLowerCase()).toContain(`serialnumber:${bob.serial}`);
    // alice is untouched.
    const a = await run("openssl", ["verify", "-CAfile", t.caFile, "-crl_check", "-CRLfile", crlFile, alice.certFile]);
    expect(a.code, a.stderr).toBe(0);
  });
});

function writeTemp(t: TestGateway, name: string, text: string): string {
  const p = join(t.root, name);
  writeFileSync(p, text);
  return p;
}
