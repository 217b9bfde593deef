import { request } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHostPort } from "../../src/core/index.js";
import { writeProfile } from "../../src/pki/index.js";
import { runCli } from "../support/cli.js";
import { dockerProbe } from "../support/docker.js";
import { startTestGateway, type ClientFiles, type TestGateway } from "../support/gateway.js";
import { mtlsJson, type HandshakeResult } from "../support/tls-client.js";
import { adminPost, creds, csrFor, eventsSince, expectError, json, mark, spiffe } from "./api-support.js";

/** A request without a body (GET, DELETE). */
function call(t: TestGateway, method: string, path: string, who: ClientFiles): Promise<HandshakeResult> {
  const { host, port } = parseHostPort(t.api);
  return new Promise((resolve) => {
    const req = request({ host, port, path, method, ...creds(t, who), agent: false, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ ok: true, status: res.statusCode ?? 0, body }));
    });
    req.on("error", (e) => resolve({ ok: false, error: e.message }));
    req.end();
  });
}

describe("node routes", () => {
  let t: TestGateway;
  let dev: ClientFiles;
  let profile: string;
  const cli = (args: string[]) => runCli(args, { env: { PORTCULLIS_PROFILE: profile } });

  beforeAll(async () => {
    t = await startTestGateway();
    dev = t.issueClient("user:dev1");
    profile = join(t.root, "admin.json");
    writeProfile(profile, t.adminProfile);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("adds, lists, drains and removes a node through the API, each change audited", async () => {
    const since = mark(t);
    const added = await adminPost(t, "/v1/nodes", { name: "engine-1", endpoint: "tcp://127.0.0.1:2376", labels: { zone: "a" }, publishHost: "0.0.0.0" });
    expect(added.status).toBe(201);
    expect(json(added)).toMatchObject({ name: "engine-1", endpoint: "tcp://127.0.0.1:2376", labels: { zone: "a" }, state: "active", publishHost: "0.0.0.0", createdBy: "user:admin" });
    const list = json<{ items: { name: string }[] }>(await call(t, "GET", "/v1/nodes", t.admin));
    expect(list.items.map((n) => n.name)).toEqual(["engine-1", "local"]);
    expect(json(await adminPost(t, "/v1/nodes/engine-1/drain", {}))).toMatchObject({ name: "engine-1", state: "draining" });
    expect(json(await adminPost(t, "/v1/nodes/engine-1/activate", {}))).toMatchObject({ state: "active" });
    expect(json(await call(t, "DELETE", "/v1/nodes/engine-1", t.admin))).toEqual({ removed: "engine-1" });
    expectError(await call(t, "GET", "/v1/nodes/engine-1", t.admin), 404, "PC_RUNTIME_NODE_NOT_FOUND");
    const types = eventsSince(t, since).filter((e) => e.type.startsWith("runtime.")).map((e) => `${e.type} ${e.actor} ${e.target}`);
    expect(types).toEqual([
      "runtime.node_added user:admin engine-1",
      "runtime.node_drained user:admin engine-1",
      "runtime.node_activated user:admin engine-1",
      "runtime.node_removed user:admin engine-1",
    ]);
  });

  it.each([
    [{ name: "Bad_Name", endpoint: "tcp://127.0.0.1:2376" }, 400, "PC_RUNTIME_NODE_INVALID"],
    [{ name: "n1", endpoint: "http://127.0.0.1:2375" }, 400, "PC_RUNTIME_NODE_INVALID"],
    [{ name: "n1", endpoint: "tcp://127.0.0.1" }, 400, "PC_RUNTIME_NODE_INVALID"],
    [{ name: "n1", endpoint: "tcp://127.0.0.1:2376", labels: { "a b": "c" } }, 400, "PC_RUNTIME_NODE_INVALID"],
    [{ name: "n1", endpoint: "tcp://127.0.0.1:2376", publishHost: "host" }, 400, "PC_RUNTIME_NODE_INVALID"],
    [{ name: "n1", endpoint: "tcp://127.0.0.1:2376", extra: 1 }, 400, "PC_API_INVALID_BODY"],
    [{ name: "local", endpoint: "unix:///var/run/docker.sock" }, 409, "PC_RUNTIME_NODE_EXISTS"],
  ])("POST /v1/nodes %j answers %i %s", async (body, status, code) => {
    expectError(await adminPost(t, "/v1/nodes", body), status, code);
  });

  it("refuses to remove a node that holds replicas", async () => {
    t.gw.nodes.add("busy", "tcp://127.0.0.1:2376", {}, { identity: "user:admin" });
    t.gw.store.db
      .prepare(`INSERT INTO replicas (container_name, namespace, name, revision, ordinal, node, created_at, updated_at) VALUES ('pc-x', 'default', 'x', 1, 0, 'busy', 0, 0)`)
      .run();
    expectError(await call(t, "DELETE", "/v1/nodes/busy", t.admin), 409, "PC_RUNTIME_NODE_IN_USE");
    const r = await cli(["node", "remove", "busy"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PC_RUNTIME_NODE_IN_USE");
    t.gw.store.db.prepare(`DELETE FROM replicas WHERE node = 'busy'`).run();
    expect((await cli(["node", "remove", "busy", "-o", "json"])).code).toBe(0);
  });

  it("lets only callers with nodes permissions in", async () => {
    expectError(await mtlsJson(t.api, "POST", "/v1/nodes", creds(t, dev), JSON.stringify({ name: "n2", endpoint: "tcp://127.0.0.1:2376" })), 403, "PC_API_FORBIDDEN");
    expectError(await call(t, "GET", "/v1/nodes", dev), 403, "PC_API_FORBIDDEN");
    expectError(await call(t, "DELETE", "/v1/nodes/local", dev), 403, "PC_API_FORBIDDEN");
    const csr = csrFor(spiffe(t, "node:n2"));
    expectError(await mtlsJson(t.api, "POST", "/v1/nodes/n2/certificate", creds(t, dev), JSON.stringify({ csr: csr.pem, sans: ["127.0.0.1"] })), 403, "PC_API_FORBIDDEN");
    expect(t.gw.pki.list("node:n2")).toEqual([]);
  });

  it("issues an engine certificate only for good names, SANs and keys", async () => {
    const csr = csrFor(spiffe(t, "node:n3"));
    const post = (name: string, body: unknown) => adminPost(t, `/v1/nodes/${name}/certificate`, body);
    expectError(await post("N3", { csr: csr.pem, sans: ["127.0.0.1"] }), 400, "PC_RUNTIME_NODE_INVALID");
    expectError(await post("n3", { csr: csr.pem, sans: ["*.example.com"] }), 400, "PC_RUNTIME_NODE_INVALID");
    expectError(await post("n3", { csr: csr.pem, sans: ["127.0.0.1", "127.0.0.1"] }), 400, "PC_RUNTIME_NODE_INVALID");
    expectError(await post("n3", { csr: csr.pem, sans: [] }), 400, "PC_API_INVALID_BODY");
    expectError(await post("n3", { csr: "not a csr", sans: ["127.0.0.1"] }), 400, "PC_PKI_PEM_MALFORMED");
    const issued = await post("n3", { csr: csr.pem, sans: ["engine-3.example.com", "10.1.2.3"] });
    expect(issued.status).toBe(201);
    expect(json(issued)).toMatchObject({ identity: "node:n3", engineClientCa: t.gw.pki.engineClients.certPem });
    expect(json<{ engineClientCa: string }>(issued).engineClientCa).not.toBe(t.gw.pki.ca.intermediatePem);
    expect(t.gw.pki.list("node:n3").map((c) => c.profile)).toEqual(["node-server"]);
  });

  it("the CLI adds, lists, drains and removes nodes, with codes and exit statuses", async () => {
    const add = await cli(["node", "add", "engine-9", "--endpoint", "tcp://10.0.0.9:2376", "--label", "zone=c", "--publish-host", "10.0.0.9", "-o", "json"]);
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ name: "engine-9", labels: { zone: "c" }, publishHost: "10.0.0.9" });
    const list = await cli(["node", "list"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+ENDPOINT\s+STATE/);
    // EVENTS: an engine that does not answer has no stream up (not yet watched, or degraded).
    expect(list.stdout).toMatch(/^NAME\s+ENDPOINT\s+STATE\s+EVENTS\s+LABELS/);
    expect(list.stdout).toMatch(/engine-9\s+tcp:\/\/10\.0\.0\.9:2376\s+active\s+(-|connecting|degraded)\s+zone=c/);
    expect((await cli(["node", "drain", "engine-9", "-o", "json"])).stdout).toContain('"state": "draining"');
    const bad = await cli(["node", "add", "engine-8", "--endpoint", "http://10.0.0.8:2375"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: PC_RUNTIME_NODE_INVALID: /);
    const usage = await cli(["node", "add", "engine-8"]);
    expect(usage.code).toBe(2);
    const noSan = await cli(["node", "cert", "engine-8", "--out-dir", join(t.root, "x")]);
    expect(noSan.code).toBe(2);
    expect(noSan.stderr).toContain("PC_CLI_USAGE");
    expect((await cli(["node", "remove", "engine-9"])).code).toBe(0);
    expect((await cli(["node", "get", "engine-9"])).stderr).toContain("PC_RUNTIME_NODE_NOT_FOUND");
  });

  it.runIf(dockerProbe.available)("GET /v1/nodes/local reports the local engine's health and capacity", async () => {
    const n = json<{ status: { health: string; runtimes: string[]; capacity: { nanoCpus: number; pids: number } } }>(await call(t, "GET", "/v1/nodes/local", t.admin));
    expect(n.status.health).toBe("ok");
    expect(n.status.runtimes).toContain("runc");
    expect(n.status.capacity.nanoCpus).toBeGreaterThan(0);
    expect(n.status.capacity.pids).toBe(32_768);
  });
});
