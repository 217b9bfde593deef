/**
 * Shared by the API tests: real TLS clients, enrollment through the bootstrap port,
 * CSR construction and reads of the access log.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join, resolve } from "node:path";
import { createServer } from "node:net";
import type { TLSSocket } from "node:tls";
import { expect } from "vitest";
import { identityToSpiffe, parseIdentity } from "../../src/core/index.js";
import { buildCsr, generateKeyPair, privateKeyPem } from "../../src/pki/index.js";
import type { StoredAccessEvent } from "../../src/store/index.js";
import type { ClientFiles, TestGateway } from "../support/gateway.js";
import { mtlsGet, mtlsJson, tlsConnect, type HandshakeResult } from "../support/tls-client.js";

export interface Tls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

export function creds(t: TestGateway, c?: Pick<ClientFiles, "certPem" | "keyPem">): Tls {
  return c ? { ca: t.caPem, cert: c.certPem, key: c.keyPem } : { ca: t.caPem };
}

export function spiffe(t: TestGateway, identity: string): string {
  return identityToSpiffe(parseIdentity(identity), t.gw.config.trustDomain);
}

/**
 * A CSR for the SPIFFE ID `uri`, signed with `key` (a fresh P-256 key by default); its
 * subject CN is the identity the URI names, as the CLI builds it.
 */
export function csrFor(uri: string, key?: { privateKey: KeyObject; publicKey: KeyObject }, commonName?: string): { pem: string; der: Buffer; keyPem: string } {
  const kp = key ?? generateKeyPair("ec-p256");
  commonName ??= uri.replace(/^spiffe:\/\/[^/]+\/([a-z]+)\/(.*)$/, "$1:$2");
  const csr = buildCsr({ key: kp.privateKey, publicKey: kp.publicKey, commonName, san: [{ uri }] });
  return { pem: csr.pem, der: csr.der, keyPem: privateKeyPem(kp.privateKey) };
}

export function weakKey(kind: "rsa1024" | "rsa-e3" | "p192"): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (kind) {
    case "rsa1024":
      return generateKeyPairSync("rsa", { modulusLength: 1024, publicExponent: 65537 });
    case "rsa-e3":
      return generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 3 });
    case "p192":
      return generateKeyPairSync("ec", { namedCurve: "prime192v1" });
  }
}

export function json<T = Record<string, unknown>>(r: HandshakeResult): T {
  expect(r.ok, `request failed: ${r.error ?? ""}`).toBe(true);
  return JSON.parse(r.body ?? "") as T;
}

export interface ErrorBody {
  code: string;
  message: string;
  requestId: string;
}

/** Asserts that `r` is an error answer with exactly `{ code, message, requestId }`. */
export function expectError(r: HandshakeResult, status: number, code: string): ErrorBody {
  expect(r.ok, `request failed: ${r.error ?? ""}`).toBe(true);
  expect({ status: r.status, body: r.body }).toMatchObject({ status });
  const body = JSON.parse(r.body ?? "") as ErrorBody;
  // Only a refusal by admission adds one more key: the decision record, in full.
  expect(Object.keys(body).sort()).toEqual(code === "PC_ADMISSION_DENIED" ? ["code", "decision", "message", "requestId"] : ["code", "message", "requestId"]);
  expect(body.code).toBe(code);
  expect(body.message.length).toBeGreaterThan(0);
  expect(body.requestId).toMatch(/\S/);
  return body;
}

export function adminPost(t: TestGateway, path: string, body: unknown, addr = t.api): Promise<HandshakeResult> {
  return mtlsJson(addr, "POST", path, creds(t, t.admin), JSON.stringify(body));
}

export function bootPost(t: TestGateway, path: string, body: string | Buffer, contentType = "application/json", addr = t.bootstrap): Promise<HandshakeResult> {
  return mtlsJson(addr, "POST", path, creds(t), body, contentType);
}

export function bootGet(t: TestGateway, path: string, addr = t.bootstrap): Promise<HandshakeResult> {
  return mtlsGet(addr, path, creds(t));
}

/** Creates an enrollment token through the API, as the administrator. */
export async function createToken(t: TestGateway, identity: string, extra: Record<string, string> = {}): Promise<string> {
  const r = await adminPost(t, "/v1/enroll-tokens", { identity, ...extra });
  expect(r.status, r.body).toBe(201);
  return json<{ token: string }>(r).token;
}

export interface Enrolled extends ClientFiles {
  readonly serial: string;
  readonly identity: string;
}

/** Enrolls `identity` the way a client does: token from the admin, CSR to the bootstrap port. */
export async function enrollNew(t: TestGateway, identity: string): Promise<Enrolled> {
  const token = await createToken(t, identity);
  const csr = csrFor(spiffe(t, identity));
  const r = await bootPost(t, "/v1/enroll", JSON.stringify({ token, csr: csr.pem }));
  expect(r.status, r.body).toBe(201);
  const b = json<{ serial: string; certificate: string; chain: string; identity: string }>(r);
  const files = t.writeClient(`${identity.replace(":", "-")}-${b.serial.slice(0, 8)}`, b.certificate + b.chain, csr.keyPem);
  return { ...files, serial: b.serial, identity: b.identity };
}

export async function whoami(t: TestGateway, c: Pick<ClientFiles, "certPem" | "keyPem">, addr = t.api): Promise<HandshakeResult> {
  return mtlsGet(addr, "/v1/whoami", creds(t, c));
}

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 2000, what = "condition"): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The id of the newest access event, to read only what comes after it. */
export function mark(t: TestGateway): number {
  t.gw.audit.flush();
  return t.gw.store.accessEvents.latest(1)[0]?.id ?? 0;
}

/** Access events after `since`, oldest first. */
export function eventsSince(t: TestGateway, since: number): StoredAccessEvent[] {
  t.gw.audit.flush();
  return t.gw.store.accessEvents
    .latest(10_000)
    .filter((e) => e.id > since)
    .reverse();
}

/** A minimal HTTP/1.1 exchange on an established TLS socket (keeps the connection open). */
export async function httpOnSocket(s: TLSSocket, path: string): Promise<{ status: number; body: string }> {
  if (s.destroyed) throw new Error("connection closed");
  let buf = "";
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf += d.toString("utf8");
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.slice(0, end);
      const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? "0");
      if (Buffer.byteLength(buf.slice(end + 4)) < len) return;
      cleanup();
      resolve({ status: Number(head.split(" ")[1]), body: buf.slice(end + 4, end + 4 + len) });
    };
    const onClose = () => {
      cleanup();
      reject(new Error("connection closed"));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      s.off("data", onData);
      s.off("close", onClose);
      s.off("error", onError);
    };
    s.on("data", onData);
    s.once("close", onClose);
    s.once("error", onError);
  });
  s.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`);
  return done;
}

/** Opens a keep-alive mTLS connection and makes one request on it. */
export async function openKeepAlive(addr: string, tls: Tls): Promise<TLSSocket> {
  const c = await tlsConnect(addr, { ...tls, servername: "localhost" });
  if (!c.socket) throw new Error(`connect failed: ${c.error ?? ""}`);
  c.socket.on("error", () => undefined);
  const r = await httpOnSocket(c.socket, "/v1/whoami");
  expect(r.status).toBe(200);
  return c.socket;
}

/** Resolves with the milliseconds until the socket closes, or rejects after `timeoutMs`. */
export async function closedWithin(s: TLSSocket, timeoutMs: number): Promise<number> {
  const start = Date.now();
  if (s.destroyed || s.closed) return 0;
  await Promise.race([
    once(s, "close"),
    new Promise((_, reject) => setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs)),
  ]);
  return Date.now() - start;
}

/** A TCP port free on 127.0.0.1 right now (for a child process that must listen on a known port). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** `portcullis serve` as a real child process, with what it printed so far. */
export interface ServeProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
}

/** Starts `serve` on an initialised data dir and resolves once it says it is serving. */
export async function spawnServe(dataDir: string): Promise<ServeProcess> {
  const root = resolve(import.meta.dirname, "../..");
  let out = "";
  let err = "";
  const child = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), "serve", "--data-dir", dataDir], {
    cwd: root,
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const started = await waitFor(() => (out.includes("portcullis serving") ? true : child.exitCode !== null ? false : undefined), 20_000, "the server to start");
  expect(started, `serve exited early: ${err}`).toBe(true);
  return { child, stdout: () => out, stderr: () => err };
}
