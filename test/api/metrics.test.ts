/**
 * GET /metrics through a real gateway: requests, authorization decisions, a deploy
 * denied by admission and scan-cache verdicts leave their series, scraped over mutual
 * TLS and read by a real Prometheus text parser (Python's prometheus_client); curl as an
 * outside client, with and without the right to read metrics; the plain
 * `--metrics-listen` listener (loopback only, GET /metrics and nothing else), in process
 * and through `portcullis serve`.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initGateway, startGateway } from "../../src/app.js";
import { parseMetricsListen } from "../../src/api/index.js";
import { isPortcullisError, parseHostPort, silentLogger } from "../../src/core/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, describeDocker, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, tempDir, type ClientFiles, type TestGateway } from "../support/gateway.js";
import { parsePrometheusText, sampleOf, samplesOf, type PromFamily } from "../support/prometheus.js";
import { execFileP, mtlsGet } from "../support/tls-client.js";
import { runCli } from "../support/cli.js";
import { apiCall, busyboxManifest, cleanupDeployments, developerIn, pinnedRef, postSigned, signRequest, type ApiClient } from "../runtime/deploy-support.js";
import { freePort, waitFor } from "./api-support.js";
import { declaredApiRoutes } from "./rbac-support.js";

const run = newTestRun();
const NS = `met-${run.id}`;
/** Strings that appear only in raw URLs: no series may carry them. */
const RAW_NAMESPACE = `zq${run.id}ns`;
const RAW_ID = `f00d${run.id}`;

type Curl = { code: number; stdout: string; stderr: string };
async function curl(args: readonly string[]): Promise<Curl> {
  try {
    const r = await execFileP("curl", ["-sS", "--max-time", "10", ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : -1, stdout: x.stdout ?? "", stderr: x.stderr ?? "" };
  }
}
/** curl printing the body, then the status and content type on the last line. */
async function curlStatus(args: readonly string[]): Promise<Curl & { body: string; status: string; contentType: string }> {
  const r = await curl(["-w", "\n%{http_code} %{content_type}", ...args]);
  const cut = r.stdout.lastIndexOf("\n");
  const [status = "", ...ct] = r.stdout.slice(cut + 1).split(" ");
  return { ...r, body: r.stdout.slice(0, cut), status, contentType: ct.join(" ") };
}

const value = (f: readonly PromFamily[], name: string, labels: Record<string, string> = {}) => sampleOf(f, name, labels)?.value;

describe("GET /metrics", () => {
  let t: TestGateway;
  let dev: ApiClient;
  let devFiles: ClientFiles;
  let prometheus: ClientFiles;
  let apiUrl: string;

  const tls = (c: Pick<ClientFiles, "certPem" | "keyPem">) => ({ ca: t.caPem, cert: c.certPem, key: c.keyPem });
  async function scrape(who: Pick<ClientFiles, "certPem" | "keyPem"> = t.admin): Promise<PromFamily[]> {
    const r = await mtlsGet(t.api, "/metrics", tls(who));
    expect(r.status, r.body ?? r.error).toBe(200);
    return parsePrometheusText(r.body ?? "");
  }

  beforeAll(async () => {
    t = await startTestGateway({ start: { metricsListen: "127.0.0.1:0" } });
    dev = developerIn(t, NS, "user:dev1");
    devFiles = t.writeClient("dev1", dev.certPem, dev.keyPem);
    prometheus = t.issueClient("service:prometheus");
    t.gw.policy.bind("service:prometheus", "metrics-reader", "*", { identity: "user:admin" });
    apiUrl = `https://localhost:${parseHostPort(t.api).port}`;
  }, 60_000);

  afterAll(async () => {
    await t?.close();
  });

  it("counts requests by route pattern and status, authorization decisions, certificates and audit appends; the whole body parses", async () => {
    const WHOAMI = 5;
    for (let i = 0; i < WHOAMI; i++) expect((await mtlsGet(t.api, "/v1/whoami", tls(t.admin))).status).toBe(200);
    // Forbidden: the developer reads a namespace it holds no role in.
    const forbidden = await mtlsGet(t.api, `/v1/namespaces/${RAW_NAMESPACE}`, tls(dev));
    expect(forbidden.status).toBe(403);
    // No route at all.
    expect((await mtlsGet(t.api, `/v1/no-such-thing/${RAW_ID}`, tls(t.admin))).status).toBe(404);
    // The bootstrap listener is counted under its own name.
    expect((await mtlsGet(t.bootstrap, "/v1/ca.pem", { ca: t.caPem })).status).toBe(200);

    const r = await mtlsGet(t.api, "/metrics", tls(t.admin));
    expect(r.status).toBe(200);
    const families = parsePrometheusText(r.body ?? "");
    const requests = samplesOf(families, "portcullis_http_requests_total");
    const req = (labels: Record<string, string>) => value(families, "portcullis_http_requests_total", labels) ?? 0;

    expect(req({ listener: "api", route: "/v1/whoami", method: "GET", status: "200" })).toBeGreaterThanOrEqual(WHOAMI);
    expect(req({ listener: "api", route: "/v1/namespaces/:namespace", method: "GET", status: "403" })).toBe(1);
    expect(req({ listener: "api", route: "unmatched", method: "GET", status: "404" })).toBe(1);
    expect(req({ listener: "bootstrap", route: "/v1/ca.pem", method: "GET", status: "200" })).toBe(1);
    // Every route label is a declared pattern (or "unmatched"), never a raw URL.
    const patterns = new Set([...declaredApiRoutes(t).map((d) => d.url), "/v1/ca.pem", "/v1/enroll", "/v1/crl", "/v1/crl.pem", "/healthz", "unmatched"]);
    for (const s of requests) expect(patterns.has(s.labels.route ?? ""), s.labels.route).toBe(true);
    expect(r.body).not.toContain(RAW_NAMESPACE);
    expect(r.body).not.toContain(RAW_ID);
    // Durations are observed under the same labels.
    expect(value(families, "portcullis_http_request_duration_seconds_count", { route: "/v1/whoami", status: "200" })).toBeGreaterThanOrEqual(WHOAMI);

    // The guard's decisions: the developer's denial, and this scrape's own allow.
    expect(value(families, "portcullis_authz_decisions_total", { resource: "namespaces", action: "read", decision: "deny" })).toBe(1);
    expect(value(families, "portcullis_authz_decisions_total", { resource: "metrics", action: "read", decision: "allow" })).toBeGreaterThanOrEqual(1);

    // Certificates, counted in the store at scrape time (CA certificates excluded).
    const leaves = t.gw.pki.list().filter((c) => c.kind !== "ca");
    expect(leaves.length).toBeGreaterThanOrEqual(3);
    expect(value(families, "portcullis_certificates_issued_total")).toBe(leaves.length);
    expect(value(families, "portcullis_certificates_revoked_total")).toBe(leaves.filter((c) => c.revokedAt !== null).length);

    // Every answer above was audited: appends were timed.
    expect(value(families, "portcullis_audit_append_seconds_count") ?? 0).toBeGreaterThan(0);
    // And the process metrics are there, prefixed.
    expect(value(families, "portcullis_process_resident_memory_bytes") ?? 0).toBeGreaterThan(0);
  });

  it("certificate counts follow the store: a revocation is counted at the next scrape", async () => {
    const before = await scrape();
    const issued = value(before, "portcullis_certificates_issued_total") ?? NaN;
    const revoked = value(before, "portcullis_certificates_revoked_total") ?? NaN;
    const victim = t.issueClient("user:short-lived");
    t.gw.pki.revokeSerial(victim.serial, "keyCompromise", { identity: "user:admin" });
    const after = await scrape();
    expect(value(after, "portcullis_certificates_issued_total")).toBe(issued + 1);
    expect(value(after, "portcullis_certificates_revoked_total")).toBe(revoked + 1);
  });

  it("curl: the admin and a metrics-reader get the text format; no client certificate is refused at the handshake; a developer gets 403", async () => {
    const admin = await curlStatus(["--cacert", t.caFile, "--cert", t.admin.certFile, "--key", t.admin.keyFile, `${apiUrl}/metrics`]);
    expect(admin.code, admin.stderr).toBe(0);
    expect(admin.status).toBe("200");
    expect(admin.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parsePrometheusText(admin.body).some((f) => f.name === "portcullis_http_requests")).toBe(true);

    const reader = await curlStatus(["--cacert", t.caFile, "--cert", prometheus.certFile, "--key", prometheus.keyFile, `${apiUrl}/metrics`]);
    expect(reader.status, reader.stderr).toBe("200");
    expect(value(parsePrometheusText(reader.body), "portcullis_authz_decisions_total", { resource: "metrics", action: "read", decision: "allow" })).toBeGreaterThanOrEqual(2);
    // metrics-reader reads nothing else.
    const other = await curlStatus(["--cacert", t.caFile, "--cert", prometheus.certFile, "--key", prometheus.keyFile, `${apiUrl}/v1/certificates`]);
    expect(other.status).toBe("403");

    const developer = await curlStatus(["--cacert", t.caFile, "--cert", devFiles.certFile, "--key", devFiles.keyFile, `${apiUrl}/metrics`]);
    expect(developer.status).toBe("403");
    expect(JSON.parse(developer.body)).toMatchObject({ code: "PC_API_FORBIDDEN" });

    const anonymous = await curlStatus(["--cacert", t.caFile, `${apiUrl}/metrics`]);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stderr).toMatch(/certificate required/i);
    expect(anonymous.status).toBe("000");
  });

  it("--metrics-listen: plain GET /metrics on loopback answers the same series; anything else is 404", async () => {
    const addr = t.gw.metricsAddress;
    expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
    const base = `http://${addr as string}`;
    const m = await curlStatus([`${base}/metrics`]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.status).toBe("200");
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusText(m.body);
    expect(value(families, "portcullis_http_requests_total", { route: "/v1/whoami", status: "200" }) ?? 0).toBeGreaterThanOrEqual(5);

    for (const [method, path, extra] of [
      ["GET", "/v1/whoami", []],
      ["GET", "/", []],
      ["GET", "/metrics/", []],
      ["POST", "/metrics", ["--data-binary", "x".repeat(100_000), "-H", "content-type: application/json"]],
      ["DELETE", "/metrics", []],
    ] as const) {
      const r = await curlStatus(["-X", method, ...extra, `${base}${path}`]);
      expect(r.status, `${method} ${path}`).toBe("404");
      expect(JSON.parse(r.body), `${method} ${path}`).toMatchObject({ code: "PC_API_NOT_FOUND" });
    }
    // TLS is not spoken there, and the API's port does not answer plain HTTP.
    const plainApi = await curlStatus([`http://${t.api}/metrics`]);
    expect(plainApi.status).not.toBe("200");
  });

  it("--metrics-listen refuses any address but loopback, with PC_CONFIG_INVALID and the reason, before opening anything", async () => {
    for (const bad of ["0.0.0.0:9100", "[::]:9100", "192.0.2.10:9100", "example.com:9100", "127.0.0.2:9100", "127.0.0.1", "127.0.0.1:99999"]) {
      let err: unknown;
      try {
        // The data directory is in use by the running gateway: the refusal comes first.
        await startGateway({ dataDir: t.dataDir, logger: silentLogger, listen: "127.0.0.1:0", bootstrapListen: "127.0.0.1:0", metricsListen: bad });
      } catch (e) {
        err = e;
      }
      expect(isPortcullisError(err) && err.code, bad).toBe("PC_CONFIG_INVALID");
    }
    expect(() => parseMetricsListen("0.0.0.0:9100")).toThrow(/loopback/);
    expect(parseMetricsListen("[::1]:9100")).toEqual({ host: "::1", port: 9100 });
    expect(parseMetricsListen("localhost:0")).toEqual({ host: "localhost", port: 0 });
    // The gateway that runs is untouched.
    expect((await mtlsGet(t.api, "/v1/whoami", tls(t.admin))).status).toBe(200);
  });

  describeDocker("deploys", () => {
    const engine = new DockerEngine();
    let image: string | undefined;
    afterAll(async () => {
      await cleanupDeployments(engine, t.gw.deployments.gatewayId, [NS], run).catch(() => undefined);
      if (image !== undefined) await engine.removeImage(image).catch(() => undefined);
    });

    itDocker("a deploy denied by admission counts each denying check and its latency; scans count cache misses and hits", async () => {
      // A tag no node holds: denied by several checks at once.
      const bad = await signRequest(dev, "create", busyboxManifest(NS, "bad", "portcullis-test/busybox:v1", { runtime: "sandboxed" }));
      const denied = await postSigned(t.api, dev, NS, bad);
      expect(denied.status, denied.body).toBe(403);
      const checks = (JSON.parse(denied.body ?? "{}") as { decision: { admission: { denials: { check: string }[] } } }).decision.admission.denials.map((d) => d.check);
      expect(checks).toContain("image-reference");

      // An admissible image, reviewed twice: scanned once, then from the cache.
      image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
      const ref = await pinnedRef(image);
      for (let i = 0; i < 2; i++) {
        const jws = await signRequest(dev, "create", busyboxManifest(NS, "web", ref));
        const review = await apiCall(t.api, dev, "POST", `/v1/namespaces/${NS}/admission/review`, { request: jws });
        expect(review.status, review.body).toBe(200);
      }

      const families = await scrape(prometheus);
      for (const check of checks) {
        expect(value(families, "portcullis_admission_denials_total", { check }), check).toBe(1);
      }
      expect(value(families, "portcullis_deploy_duration_seconds_count", { outcome: "denied" })).toBe(1);
      expect(value(families, "portcullis_deploy_duration_seconds_sum", { outcome: "denied" }) ?? 0).toBeGreaterThan(0);
      expect(sampleOf(families, "portcullis_deploy_duration_seconds_count", { outcome: "accepted" })).toBeUndefined();
      expect(value(families, "portcullis_scan_cache_requests_total", { result: "miss" })).toBe(1);
      expect(value(families, "portcullis_scan_cache_requests_total", { result: "hit" })).toBe(1);
      expect(value(families, "portcullis_http_requests_total", { route: "/v1/namespaces/:namespace/deployments", method: "POST", status: "403" })).toBe(1);
    }, {}, 120_000);
  });

  it("the metrics listener closes with the gateway", async () => {
    const addr = t.gw.metricsAddress as string;
    await t.stop();
    const r = await curl([`http://${addr}/metrics`]);
    expect(r.code).toBe(7); // couldn't connect
  });
});

describe("portcullis serve --metrics-listen", () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, "data");

  afterAll(() => tmp.cleanup());

  it("serves plain GET /metrics on the loopback address it is given, and stops with the gateway", async () => {
    const [apiPort, bootPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    initGateway({ dataDir, listen: `127.0.0.1:${apiPort}`, bootstrapListen: `127.0.0.1:${bootPort}` });
    const root = join(import.meta.dirname, "../..");
    let out = "";
    let err = "";
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), "serve", "--data-dir", dataDir, "--metrics-listen", `127.0.0.1:${metricsPort}`], {
      cwd: root,
      env: { ...process.env, PORTCULLIS_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    try {
      const started = await waitFor(() => (out.includes("portcullis serving") ? true : child.exitCode !== null ? false : undefined), 20_000, "the server to start");
      expect(started, `serve exited early: ${err}`).toBe(true);
      expect(out).toContain(`"metrics":"127.0.0.1:${metricsPort}"`);
      const m = await curlStatus([`http://127.0.0.1:${metricsPort}/metrics`]);
      expect(m.status, m.stderr).toBe("200");
      const families = parsePrometheusText(m.body);
      expect(value(families, "portcullis_certificates_issued_total") ?? 0).toBeGreaterThanOrEqual(1);
      expect((await curlStatus([`http://127.0.0.1:${metricsPort}/v1/whoami`])).status).toBe("404");
    } finally {
      const exited = new Promise<number | null>((resolve) => {
        if (child.exitCode !== null) resolve(child.exitCode);
        else child.once("exit", (code) => resolve(code));
      });
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
    expect((await curl([`http://127.0.0.1:${metricsPort}/metrics`])).code).toBe(7);
  }, 60_000);

  it("serve and up refuse a non-loopback address with PC_CONFIG_INVALID (exit 2); up creates nothing", async () => {
    const s = await runCli(["serve", "--data-dir", dataDir, "--metrics-listen", "0.0.0.0:9100"]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/PC_CONFIG_INVALID: .*loopback/);
    const fresh = join(tmp.dir, "fresh");
    const u = await runCli(["up", "--data-dir", fresh, "--metrics-listen", "10.0.0.1:9100"]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/PC_CONFIG_INVALID: .*loopback/);
    expect(existsSync(fresh)).toBe(false);
  }, 60_000);
});
