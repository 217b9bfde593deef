import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import Docker from "dockerode";
import { stringify } from "yaml";
import { parseHostPort } from "../../src/core/index.js";
import { signDeployRequest, type DeployOperation, type Manifest } from "../../src/deploy/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildCsr, generateKeyPair, issueNodeServerCertificate, pkiPaths, privateKeyPem, type ClientProfile } from "../../src/pki/index.js";
import { runCli, type CliResult } from "../support/cli.js";
import { cleanupTestRun, dockerCli, type TestRun } from "../support/docker.js";
import type { TestGateway } from "../support/gateway.js";
import { engineProcess, type ClientTls, type EngineTlsFiles } from "../support/second-engine.js";

/** A manifest for the busybox test image, with overrides. */
export function busyboxManifest(
  namespace: string,
  name: string,
  image: string,
  spec: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    apiVersion: "portcullis/v1",
    kind: "Deployment",
    metadata: { name, namespace },
    spec: {
      image,
      command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
      user: "10001:10001",
      replicas: 1,
      resources: { cpus: 0.25, memory: "64Mi", pids: 64 },
      runtime: "standard",
      ...spec,
    },
  };
}

/** A client profile file for the CLI, pointing at the test gateway. */
export function writeProfile(tg: TestGateway, name: string, client: { certPem: string; keyPem: string }, identity: string): string {
  const profile: ClientProfile = {
    version: 1,
    identity,
    server: tg.api,
    trustDomain: tg.gw.config.trustDomain,
    caBundle: tg.caPem,
    certificate: client.certPem,
    privateKey: client.keyPem,
  };
  const path = join(tg.root, `${name}.profile.json`);
  writeFileSync(path, JSON.stringify(profile), { mode: 0o600 });
  return path;
}

/** Writes a text file under the test gateway's root directory; returns its path. */
export function writeFile(tg: TestGateway, file: string, text: string): string {
  const path = join(tg.root, file);
  writeFileSync(path, text);
  return path;
}

export function writeManifest(tg: TestGateway, file: string, manifest: Record<string, unknown>): string {
  const path = join(tg.root, file);
  writeFileSync(path, stringify(manifest));
  return path;
}

export function cli(profile: string, args: readonly string[], timeoutMs = 120_000): Promise<CliResult> {
  return runCli(["-o", "json", ...args], { env: { PORTCULLIS_PROFILE: profile }, timeoutMs });
}

/** The containers of a gateway on the local engine, as `docker ps` sees them. */
export async function gatewayContainers(gatewayId: string): Promise<{ name: string; state: string; labels: Record<string, string> }[]> {
  const out = await dockerCli(["ps", "-a", "--filter", `label=io.portcullis.gateway=${gatewayId}`, "--format", "{{json .}}"]);
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { Names: string; State: string; Labels: string })
    .map((c) => ({
      name: c.Names,
      state: c.State,
      labels: Object.fromEntries(c.Labels.split(",").filter((x) => x.includes("=")).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])),
    }));
}

/** Removes a gateway's containers and the namespace networks a test used, then the run's images. */
export async function cleanupDeployments(engine: DockerEngine, gatewayId: string, namespaces: readonly string[], run: TestRun): Promise<void> {
  await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`);
  for (const ns of namespaces) await dockerCli(["network", "rm", `pc-ns-${ns}`]).catch(() => undefined);
  await cleanupTestRun(engine, run);
}

/** What a client needs to sign deploy requests and call the API: its key, its certificate, our CA. */
export interface ApiClient {
  readonly trustDomain: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * A developer of `namespace` on a test gateway, as an API client: the namespace is
 * created, the identity bound to the developer role there and given a certificate.
 */
export function developerIn(tg: TestGateway, namespace: string, identity = "user:dev1"): ApiClient {
  tg.gw.namespaces.create(namespace, {}, { identity: "user:admin" });
  const c = tg.issueClient(identity);
  tg.gw.policy.bind(identity, "developer", namespace, { identity: "user:admin" });
  return { trustDomain: tg.gw.config.trustDomain, caPem: tg.caPem, certPem: c.certPem, keyPem: c.keyPem };
}

/** The reference a manifest pins a test image by: `portcullis-test/busybox@<image id>`. */
export async function pinnedRef(image: string): Promise<string> {
  return `portcullis-test/busybox@${(JSON.parse(await dockerCli(["image", "inspect", image])) as { Id: string }[])[0]!.Id}`;
}

/** Signs a deploy request (a compact JWS) as the CLI does; `jti` pins the request id. */
export function signRequest(c: ApiClient, op: DeployOperation, manifest: Record<string, unknown>, jti?: string): Promise<string> {
  return signDeployRequest({
    op,
    manifest: manifest as unknown as Manifest,
    trustDomain: c.trustDomain,
    privateKeyPem: c.keyPem,
    certificatePem: c.certPem,
    lifetimeSeconds: 300,
    ...(jti !== undefined ? { jti } : {}),
  });
}

/** An answer of the API, or why none came (connection refused, reset, timeout). */
export type ApiAnswer = { readonly status: number; readonly body: string; readonly error?: undefined } | { readonly status?: undefined; readonly body?: undefined; readonly error: string };

/**
 * One HTTPS request over mutual TLS, on its own connection. `onSent` runs once the whole
 * request has been written to the socket.
 */
export function apiCall(addr: string, c: ApiClient, method: string, path: string, body?: unknown, opts: { onSent?: () => void; timeoutMs?: number } = {}): Promise<ApiAnswer> {
  const { host, port } = parseHostPort(addr);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((done) => {
    const req = request(
      {
        host, port, method, path, ca: c.caPem, cert: c.certPem, key: c.keyPem, agent: false,
        headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {},
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => done({ status: res.statusCode ?? 0, body: text }));
        res.on("error", (e) => done({ error: e.message }));
      },
    );
    req.setTimeout(opts.timeoutMs ?? 120_000, () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => done({ error: `${e.code ?? ""} ${e.message}` }));
    if (opts.onSent) req.on("finish", opts.onSent);
    req.end(payload);
  });
}

/** POSTs a signed deploy request to the deployments of its namespace. */
export function postSigned(addr: string, c: ApiClient, namespace: string, jws: string, opts: { onSent?: () => void; timeoutMs?: number } = {}): Promise<ApiAnswer> {
  return apiCall(addr, c, "POST", `/v1/namespaces/${encodeURIComponent(namespace)}/deployments`, { request: jws }, opts);
}

/** A replica as `get deployment` shows it. */
export interface ReplicaRow {
  container: string;
  ordinal: number;
  revision: number;
  node: string;
  containerId: string | null;
  state: string;
  health: string;
}

export interface DeploymentRow {
  revision: number;
  replicas: number;
  ready: number;
  state: string;
  containers: ReplicaRow[];
}

/** `get deployment` over the API; undefined when the deployment does not exist (404). */
export async function getDeployment(addr: string, c: ApiClient, namespace: string, name: string): Promise<DeploymentRow | undefined> {
  const r = await apiCall(addr, c, "GET", `/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(name)}`, undefined, { timeoutMs: 10_000 });
  if (r.error !== undefined) throw new Error(`get deployment: ${r.error}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`get deployment: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as DeploymentRow;
}

/** A container of a gateway on an engine, with the labels that tie it to a replica. */
export interface EngineContainer {
  id: string;
  name: string;
  state: string;
  status: string;
  deployment: string | undefined;
  revision: number;
  ordinal: number;
}

/** The containers of one deployment of a gateway (all states), straight from the engine. */
export async function deploymentContainers(docker: Docker, gatewayId: string, name?: string): Promise<EngineContainer[]> {
  const labels = [`io.portcullis.gateway=${gatewayId}`, ...(name !== undefined ? [`io.portcullis.deployment=${name}`] : [])];
  const list = await docker.listContainers({ all: true, filters: { label: labels } });
  return list
    .map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      state: c.State,
      status: c.Status,
      deployment: c.Labels["io.portcullis.deployment"],
      revision: Number(c.Labels["io.portcullis.revision"]),
      ordinal: Number(c.Labels["io.portcullis.ordinal"] ?? /-([0-9]+)$/.exec(c.Names[0] ?? "")?.[1]),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Why the containers of a deployment are not exactly its desired state (revision, one
 * running container per ordinal below `replicas`), or undefined when they are.
 */
export function convergenceProblem(containers: readonly EngineContainer[], revision: number, replicas: number): string | undefined {
  const wrong = containers.filter((c) => c.revision !== revision || !(c.ordinal >= 0 && c.ordinal < replicas));
  if (wrong.length > 0) return `containers outside the desired state: ${wrong.map((c) => c.name).join(", ")}`;
  const ordinals = containers.map((c) => c.ordinal).sort((a, b) => a - b);
  if (ordinals.join(",") !== [...Array(replicas).keys()].join(",")) return `ordinals ${ordinals.join(",")} (want 0..${replicas - 1})`;
  const notRunning = containers.filter((c) => c.state !== "running");
  if (notRunning.length > 0) return `not running: ${notRunning.map((c) => `${c.name} ${c.state}`).join(", ")}`;
  return undefined;
}

/** Polls until `fn` returns a value, or throws with the last value of `describe` after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string, intervalMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Audit entries of one type, oldest first, with their time in milliseconds and their body. */
export function auditEntries(tg: TestGateway, type: string): { seq: number; at: number; reason: string | undefined; body: Record<string, unknown> }[] {
  tg.gw.audit.flush();
  const head = tg.gw.store.auditLog.head();
  if (head === undefined) return [];
  return [...tg.gw.store.auditLog.iterate(0, head.seq)]
    .filter((r) => r.type === type)
    .map((r) => {
      const body = JSON.parse(r.body) as Record<string, unknown> & { reasons?: string[] };
      return { seq: r.seq, at: Date.parse(r.time), reason: body.reasons?.[0], body };
    });
}

/**
 * A server certificate for an engine named `name` (the node's SPIFFE id and 127.0.0.1),
 * issued by the gateway's CA, written with its key and, as the engine's client CA, the
 * engine-client CA (what `node cert` writes as ca.pem); and the gateway's own client
 * credentials, with which the engine is reached.
 */
export function engineCredentials(tg: TestGateway, name: string): { tls: EngineTlsFiles; client: ClientTls } {
  const dir = join(tg.root, `${name}-tls`);
  mkdirSync(dir, { recursive: true });
  const kp = generateKeyPair("ec-p256");
  const csr = buildCsr({ key: kp.privateKey, publicKey: kp.publicKey, commonName: `node:${name}`, san: [{ dns: "localhost" }] });
  const issued = issueNodeServerCertificate(tg.gw.pki, name, csr.pem, ["127.0.0.1", "localhost"], { identity: "user:admin" });
  const tls = { caFile: join(dir, "ca.pem"), certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem") };
  writeFileSync(tls.caFile, tg.gw.pki.engineClients.certPem);
  writeFileSync(tls.certFile, issued.certificate + issued.chain);
  writeFileSync(tls.keyFile, privateKeyPem(kp.privateKey), { mode: 0o600 });
  const p = pkiPaths(tg.dataDir);
  return { tls, client: { ca: tg.caPem, cert: readFileSync(p.gatewayClientCert, "utf8"), key: readFileSync(p.gatewayClientKey, "utf8") } };
}

/**
 * A second dockerd that can be stopped and started again on the same data root and port
 * (an engine restart, a node outage): test/support/second-engine.ts's engine, with a
 * client holding the gateway's credentials. `destroy()` ends it and removes everything.
 */
export interface RestartableEngine {
  readonly port: number;
  readonly endpoint: string;
  readonly root: string;
  /** A client for the engine, with the gateway's credentials. */
  readonly docker: Docker;
  start(): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
  log(): string;
}

export async function restartableEngine(opts: { tls: EngineTlsFiles; client: ClientTls }): Promise<RestartableEngine> {
  const e = await engineProcess(opts);
  const engine: RestartableEngine = {
    port: e.port,
    endpoint: e.endpoint,
    root: e.root,
    docker: new Docker({ host: "127.0.0.1", port: e.port, protocol: "https", ...opts.client, timeout: 5_000 }),
    log: () => e.log(),
    start: () => e.start(),
    stop: () => e.halt(),
    destroy: () => e.stop(),
  };
  await engine.start().catch(async (err: unknown) => {
    await engine.destroy();
    throw err;
  });
  return engine;
}
