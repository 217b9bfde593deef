/**
 * Bad deploy requests through the real API (mutual TLS, RBAC, the signed-request checks,
 * the controller) and, for some, through the real CLI: each gets its own error code, its
 * error body carries no internal detail, its refusal is in the audit log, and nothing of
 * it is applied: no container, no deployment, no revision, and its jti stays unused.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { CompactSign } from "jose";
import { createPrivateKey, randomBytes } from "node:crypto";
import { DEPLOY_JWS_TYPE, certificateThumbprint, signDeployRequest, type DeployOperation, type Manifest } from "../../src/deploy/index.js";
import { certificatesFromPem } from "../../src/pki/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, describeDocker, dockerCli, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { mtlsJson, type HandshakeResult } from "../support/tls-client.js";
import { busyboxManifest, cleanupDeployments, cli, gatewayContainers, writeManifest, writeProfile } from "../runtime/deploy-support.js";
import { creds, expectError, type ErrorBody } from "./api-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `team-${run.id}`;
const OTHER = `other-${run.id}`;
const SANDBOX = `sbx-${run.id}`;
/** A digest no node has: a random sha256. */
const ABSENT = `portcullis-test/absent@sha256:${randomBytes(32).toString("hex")}`;

interface Client {
  readonly certPem: string;
  readonly keyPem: string;
}

let tg: TestGateway;
let image: string;
let rootImage: string;
/** The images by digest (`repo@<image id>`), as admission requires. */
let imageRef: string;
let rootRef: string;
let alice: Client;
let bob: Client;
let carol: Client;
let auditor: Client;
let aliceProfile: string;
/** The one deployment that exists: NS/web, created in beforeAll. */
let webJws: string;
let webBody: string;
let webManifest: Manifest;
let baseline: string[];
let seq = 0;

/** A fresh jti for each request of this file. */
const nextJti = (): string => `bad-${run.id}-${String(++seq).padStart(4, "0")}`;

const manifest = (ns: string, name: string, spec: Record<string, unknown> = {}, img = imageRef): Manifest =>
  busyboxManifest(ns, name, img, spec) as unknown as Manifest;

async function sign(who: Client, op: DeployOperation, m: Manifest, o: { jti?: string; now?: Date; aud?: string } = {}): Promise<string> {
  return signDeployRequest({
    op,
    manifest: m,
    trustDomain: o.aud ?? tg.gw.config.trustDomain,
    privateKeyPem: who.keyPem,
    certificatePem: who.certPem,
    jti: o.jti ?? nextJti(),
    ...(o.now ? { now: o.now } : {}),
  });
}

function post(who: Client, ns: string, jws: string): Promise<HandshakeResult> {
  return mtlsJson(tg.api, "POST", `/v1/namespaces/${ns}/deployments`, creds(tg, who), JSON.stringify({ request: jws }));
}

const b64u = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");
const jtiOf = (jws: string): string => (JSON.parse(Buffer.from(jws.split(".")[1] as string, "base64url").toString()) as { jti: string }).jti;

/** Nothing in an error body that belongs to the inside: stacks, engine or store messages, paths. */
const INTERNAL = /stack|\bat [\w.<>]+ \(|Error:|\bE[A-Z]{3,}\b|SQLITE|sqlite|dockerode|daemon|docker\.sock|\/var\/|\/work\/|node_modules|HTTP code|statusCode|-----BEGIN/;

function expectClean(body: ErrorBody, raw: string): void {
  expect(body.message).not.toMatch(INTERNAL);
  expect(raw).not.toMatch(INTERNAL);
  // An admission denial carries its whole decision record; anything else stays short.
  expect(raw.length).toBeLessThan(body.code === "PC_ADMISSION_DENIED" ? 20_000 : 1_000);
}

async function auditRows(): Promise<{ type: string; outcome: string; actor: string; body: { requestId?: string; reasons?: string[]; target?: string } }[]> {
  tg.gw.audit.flush();
  const head = tg.gw.store.auditLog.head();
  if (head === undefined) return [];
  return [...tg.gw.store.auditLog.iterate(0, head.seq)].map((r) => ({ type: r.type, outcome: r.outcome, actor: r.actor, body: JSON.parse(r.body) as { requestId?: string } }));
}

/** The refusal is audited under its request id: a refused deploy with its code, or the authz denial. */
async function expectAudited(requestId: string, code: string): Promise<void> {
  const rows = (await auditRows()).filter((r) => r.body.requestId === requestId);
  if (code === "PC_API_FORBIDDEN") {
    expect(rows.some((r) => r.type === "authz.decision" && r.outcome === "denied"), JSON.stringify(rows)).toBe(true);
  } else if (code === "PC_ADMISSION_DENIED") {
    expect(rows.find((r) => r.type === "deploy.request_denied"), JSON.stringify(rows)).toMatchObject({ outcome: "denied" });
  } else {
    const refused = rows.find((r) => r.type === "deploy.request_refused");
    expect(refused, JSON.stringify(rows)).toBeDefined();
    expect(refused).toMatchObject({ outcome: "denied", body: { reasons: [code] } });
  }
  expect(rows.some((r) => r.type === "deploy.request_accepted" || r.type === "deploy.completed")).toBe(false);
}

/** The checks that denied a request, from the decision record the error carries. */
function denialChecks(body: ErrorBody): string[] {
  const d = (body as ErrorBody & { decision?: { outcome?: string; admission?: { denials?: { check: string }[] } } }).decision;
  expect(d?.outcome).toBe("denied");
  return (d?.admission?.denials ?? []).map((x) => x.check);
}

async function containerNames(): Promise<string[]> {
  return (await gatewayContainers(tg.gw.deployments.gatewayId)).map((c) => c.name).sort();
}

/** Nothing of the request was applied: containers as before, no deployment or revision, jti unused. */
async function expectNothingApplied(jws: string, ns: string, name: string): Promise<void> {
  expect(await containerNames()).toEqual(baseline);
  expect(tg.gw.store.deployRequests.get(jtiOf(jws))).toBeUndefined();
  if (!(ns === NS && name === "web")) {
    expect(tg.gw.store.deployments.get(ns, name)).toBeUndefined();
    expect(tg.gw.store.deployments.revisions(ns, name)).toEqual([]);
  } else {
    expect(tg.gw.store.deployments.revisions(ns, name).map((r) => r.revision)).toEqual([1]);
  }
}

/** Sends a request and checks the whole refusal: status, code, clean body, audit, nothing applied. */
async function refused(who: Client, urlNs: string, jws: string, status: number, code: string, target = { ns: urlNs, name: "" }): Promise<ErrorBody> {
  const r = await post(who, urlNs, jws);
  const body = expectError(r, status, code);
  expectClean(body, r.body ?? "");
  await expectAudited(body.requestId, code);
  await expectNothingApplied(jws, target.ns, target.name);
  return body;
}

describeDocker("bad deploy requests are refused with their code, audited, and leave nothing behind", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { rollout: { pollMs: 100, settleMs: 300 } } });
    [image, rootImage] = await Promise.all([
      buildBusyboxImage(engine, run, { user: "10001:10001" }),
      buildBusyboxImage(engine, run, { variant: "root" }),
    ]);
    imageRef = `portcullis-test/busybox@${(await engine.inspectImage(image))!.id}`;
    rootRef = `portcullis-test/busybox-root@${(await engine.inspectImage(rootImage))!.id}`;
    const admin = { identity: "user:admin" };
    tg.gw.namespaces.create(NS, {}, admin);
    tg.gw.namespaces.create(OTHER, {}, admin);
    tg.gw.namespaces.create(SANDBOX, { "portcullis.io/runtime": "sandboxed" }, admin);
    alice = tg.issueClient("user:alice");
    bob = tg.issueClient("user:bob");
    carol = tg.issueClient("user:carol");
    auditor = tg.issueClient("user:aud");
    for (const ns of [NS, SANDBOX]) tg.gw.policy.bind("user:alice", "developer", ns, admin);
    tg.gw.policy.bind("user:bob", "developer", NS, admin);
    tg.gw.policy.bind("user:carol", "developer", OTHER, admin);
    tg.gw.policy.bind("user:aud", "auditor", "*", admin);
    aliceProfile = writeProfile(tg, "alice", alice, "user:alice");

    webManifest = manifest(NS, "web");
    webJws = await sign(alice, "create", webManifest);
    const r = await post(alice, NS, webJws);
    expect(r.status, r.body).toBe(200);
    webBody = r.body ?? "";
    baseline = await containerNames();
    expect(baseline).toHaveLength(1);
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    if (tg !== undefined) await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [], run).catch(() => undefined);
    for (const i of [image, rootImage]) if (i !== undefined) await engine.removeImage(i).catch(() => undefined);
  });

  it.each<[string, Record<string, unknown>]>([
    ["a host path volume", { volumes: [{ name: "host", hostPath: { path: "/" } }] }],
    ["a hostPath field", { hostPath: "/var/run/docker.sock" }],
    ["privileged: true", { privileged: true }],
    ["a securityContext asking for privilege", { securityContext: { privileged: true } }],
    ["a capability added", { capabilities: { add: ["SYS_ADMIN"] } }],
    ["a capAdd list", { capAdd: ["NET_ADMIN"] }],
    ["host networking", { network: { mode: "host" } }],
    ["an unknown runtime", { runtime: "kata" }],
    ["the OCI runtime name instead of a class", { runtime: "runc" }],
    ["negative CPUs", { resources: { cpus: -1, memory: "64Mi", pids: 64 } }],
    ["a huge memory limit", { resources: { cpus: 0.25, memory: "1Ti", pids: 64 } }],
    ["zero pids", { resources: { cpus: 0.25, memory: "64Mi", pids: 0 } }],
    ["a root user", { user: "0:0" }],
  ])("%s → 400 PC_DEPLOY_MANIFEST_INVALID", async (_what, spec) => {
    const jws = await sign(alice, "create", manifest(NS, "bad", spec));
    const body = await refused(alice, NS, jws, 400, "PC_DEPLOY_MANIFEST_INVALID", { ns: NS, name: "bad" });
    expect(body.message).toMatch(/^manifest is not valid/);
  });

  it("a name that is not a DNS label → 400 PC_DEPLOY_MANIFEST_INVALID naming metadata.name", async () => {
    for (const name of ["Web_1", "web.api", "-web", "a".repeat(64)]) {
      const jws = await sign(alice, "create", manifest(NS, name));
      const body = await refused(alice, NS, jws, 400, "PC_DEPLOY_MANIFEST_INVALID", { ns: NS, name });
      expect(body.message).toContain("metadata.name");
    }
  });

  it("an image no eligible node has → 403 PC_ADMISSION_DENIED by image-identity, with the decision record", async () => {
    const jws = await sign(alice, "create", manifest(NS, "noimg", {}, ABSENT));
    const body = await refused(alice, NS, jws, 403, "PC_ADMISSION_DENIED", { ns: NS, name: "noimg" });
    expect(denialChecks(body)).toContain("image-identity");
  });

  it("placement labels no node carries → 409 PC_RUNTIME_NO_CAPACITY", async () => {
    const jws = await sign(alice, "create", manifest(NS, "nowhere", { placement: { nodeLabels: { zone: "mars" } } }));
    const body = await refused(alice, NS, jws, 409, "PC_RUNTIME_NO_CAPACITY", { ns: NS, name: "nowhere" });
    expect(body.message).toContain("label zone=mars missing");
  });

  it("a namespace that does not exist → 404 PC_RBAC_NAMESPACE_NOT_FOUND (the platform admin passes RBAC)", async () => {
    const ghost = `ghost-${run.id}`;
    const jws = await sign(tg.admin, "create", manifest(ghost, "web"));
    await refused(tg.admin, ghost, jws, 404, "PC_RBAC_NAMESPACE_NOT_FOUND", { ns: ghost, name: "web" });
  });

  it("signed with bob's key over alice's connection → 403 PC_DEPLOY_SIGNER_MISMATCH", async () => {
    const jws = await sign(bob, "create", manifest(NS, "stolen"));
    await refused(alice, NS, jws, 403, "PC_DEPLOY_SIGNER_MISMATCH", { ns: NS, name: "stolen" });
  });

  it("alice's thumbprint but bob's signature → 403 PC_DEPLOY_SIGNATURE_INVALID", async () => {
    const good = await sign(alice, "create", manifest(NS, "forged"));
    const der = certificatesFromPem(alice.certPem)[0] as Buffer;
    const payload = Buffer.from(good.split(".")[1] as string, "base64url");
    const forged = await new CompactSign(payload)
      .setProtectedHeader({ alg: "ES256", typ: DEPLOY_JWS_TYPE, "x5t#S256": certificateThumbprint(der) })
      .sign(createPrivateKey(bob.keyPem));
    await refused(alice, NS, forged, 403, "PC_DEPLOY_SIGNATURE_INVALID", { ns: NS, name: "forged" });
  });

  it("alg none → 400 PC_DEPLOY_ALG_NOT_ALLOWED", async () => {
    const good = await sign(alice, "create", manifest(NS, "unsigned"));
    const der = certificatesFromPem(alice.certPem)[0] as Buffer;
    const none = `${b64u({ alg: "none", typ: DEPLOY_JWS_TYPE, "x5t#S256": certificateThumbprint(der) })}.${good.split(".")[1]}.`;
    await refused(alice, NS, none, 400, "PC_DEPLOY_ALG_NOT_ALLOWED", { ns: NS, name: "unsigned" });
  });

  it("an expired request → 400 PC_DEPLOY_EXPIRED", async () => {
    const jws = await sign(alice, "create", manifest(NS, "late"), { now: new Date(Date.now() - 10 * 60_000) });
    await refused(alice, NS, jws, 400, "PC_DEPLOY_EXPIRED", { ns: NS, name: "late" });
  });

  it("another audience → 400 PC_DEPLOY_CLAIMS_INVALID", async () => {
    const jws = await sign(alice, "create", manifest(NS, "elsewhere"), { aud: "other.example" });
    const body = await refused(alice, NS, jws, 400, "PC_DEPLOY_CLAIMS_INVALID", { ns: NS, name: "elsewhere" });
    expect(body.message).toContain("aud");
  });

  it("the signed namespace differs from the URL's → 400 PC_DEPLOY_CLAIMS_INVALID", async () => {
    const jws = await sign(alice, "create", manifest(SANDBOX, "moved", { runtime: "sandboxed" }));
    const body = await refused(alice, NS, jws, 400, "PC_DEPLOY_CLAIMS_INVALID", { ns: SANDBOX, name: "moved" });
    expect(body.message).toContain("namespace");
    expect(tg.gw.store.deployments.get(NS, "moved")).toBeUndefined();
  });

  it("runtime standard in a namespace that requires the sandbox → 403 PC_ADMISSION_DENIED by runtime-class", async () => {
    const jws = await sign(alice, "create", manifest(SANDBOX, "plain", { runtime: "standard" }));
    const body = await refused(alice, SANDBOX, jws, 403, "PC_ADMISSION_DENIED", { ns: SANDBOX, name: "plain" });
    expect(denialChecks(body)).toEqual(["runtime-class"]);
  });

  it("an image that runs as root and no spec.user → 403 PC_ADMISSION_DENIED by hardening", async () => {
    const m = busyboxManifest(NS, "rooted", rootRef) as { spec: Record<string, unknown> };
    delete m.spec.user;
    const jws = await sign(alice, "create", m as unknown as Manifest);
    const body = await refused(alice, NS, jws, 403, "PC_ADMISSION_DENIED", { ns: NS, name: "rooted" });
    expect(denialChecks(body)).toEqual(["hardening"]);
    expect(body.message).toContain("spec.user");
  });

  it("a create of an existing deployment → 409 PC_DEPLOY_EXISTS", async () => {
    const jws = await sign(alice, "create", manifest(NS, "web", { replicas: 2 }));
    await refused(alice, NS, jws, 409, "PC_DEPLOY_EXISTS", { ns: NS, name: "web" });
  });

  it.each<[DeployOperation]>([["update"], ["scale"], ["delete"]])("%s of a missing deployment → 404 PC_DEPLOY_NOT_FOUND", async (op) => {
    const jws = await sign(alice, op, manifest(NS, "missing"));
    await refused(alice, NS, jws, 404, "PC_DEPLOY_NOT_FOUND", { ns: NS, name: "missing" });
  });

  it("a scale that changes more than spec.replicas → 400 PC_DEPLOY_OPERATION_INVALID", async () => {
    const jws = await sign(alice, "scale", manifest(NS, "web", { replicas: 2, command: ["/bin/sh", "-c", "sleep 3600"] }));
    await refused(alice, NS, jws, 400, "PC_DEPLOY_OPERATION_INVALID", { ns: NS, name: "web" });
    expect(tg.gw.store.deployments.get(NS, "web")?.replicas).toBe(1);
  });

  it("a delete that does not carry the current manifest → 400 PC_DEPLOY_OPERATION_INVALID", async () => {
    const jws = await sign(alice, "delete", manifest(NS, "web", { replicas: 3 }));
    await refused(alice, NS, jws, 400, "PC_DEPLOY_OPERATION_INVALID", { ns: NS, name: "web" });
    expect(tg.gw.store.deployments.get(NS, "web")?.state).toBe("active");
  });

  it("a used jti on another request → 409 PC_DEPLOY_REPLAYED; a byte-identical retry → 200 with the first answer", async () => {
    const jti = jtiOf(webJws);
    const other = await sign(alice, "create", manifest(NS, "again"), { jti });
    const r = await post(alice, NS, other);
    const body = expectError(r, 409, "PC_DEPLOY_REPLAYED");
    expectClean(body, r.body ?? "");
    await expectAudited(body.requestId, "PC_DEPLOY_REPLAYED");
    expect(tg.gw.store.deployments.get(NS, "again")).toBeUndefined();
    expect(tg.gw.store.deployRequests.get(jti)?.jwsSha256).toBeDefined();

    // Bob may deploy in NS too, but not under alice's jti.
    const bobs = await sign(bob, "create", manifest(NS, "again"), { jti });
    expectError(await post(bob, NS, bobs), 409, "PC_DEPLOY_REPLAYED");

    const retry = await post(alice, NS, webJws);
    expect(retry.status, retry.body).toBe(200);
    expect(JSON.parse(retry.body ?? "")).toEqual(JSON.parse(webBody));
    expect(await containerNames()).toEqual(baseline);
    expect(tg.gw.store.deployments.revisions(NS, "web").map((x) => x.revision)).toEqual([1]);
  });

  it("a developer of another namespace → 403 PC_API_FORBIDDEN, before any signature check", async () => {
    const jws = await sign(carol, "create", manifest(NS, "intruder"));
    const body = await refused(carol, NS, jws, 403, "PC_API_FORBIDDEN", { ns: NS, name: "intruder" });
    expect(body.message).toContain("deployments:deploy");
    const rows = (await auditRows()).filter((x) => x.body.requestId === body.requestId);
    expect(rows.some((x) => x.type === "deploy.request_refused")).toBe(false);
  });

  it("an auditor (read-only everywhere) → 403 PC_API_FORBIDDEN", async () => {
    const jws = await sign(auditor, "create", manifest(NS, "audited"));
    await refused(auditor, NS, jws, 403, "PC_API_FORBIDDEN", { ns: NS, name: "audited" });
  });

  it("the CLI `deploy -f` prints the same codes and applies nothing", async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      [NS, { name: "cli-host", spec: { volumes: [{ hostPath: { path: "/" } }] } }, "PC_DEPLOY_MANIFEST_INVALID"],
      [NS, { name: "cli-noimg", image: ABSENT }, "PC_ADMISSION_DENIED"],
      [NS, { name: "cli-mars", spec: { placement: { nodeLabels: { zone: "mars" } } } }, "PC_RUNTIME_NO_CAPACITY"],
      [SANDBOX, { name: "cli-plain", spec: { runtime: "standard" } }, "PC_ADMISSION_DENIED"],
    ];
    const results = await Promise.all(
      cases.map(async ([ns, c]) => {
        const name = c.name as string;
        const file = writeManifest(tg, `${name}.yaml`, busyboxManifest(ns, name, (c.image as string | undefined) ?? imageRef, (c.spec as Record<string, unknown> | undefined) ?? {}));
        return cli(aliceProfile, ["deploy", "-f", file], 60_000);
      }),
    );
    results.forEach((r, i) => {
      const [ns, c, code] = cases[i] as (typeof cases)[number];
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain(code);
      expect(r.stderr).not.toMatch(INTERNAL);
      expect(tg.gw.store.deployments.get(ns, c.name as string)).toBeUndefined();
      expect(tg.gw.store.deployments.revisions(ns, c.name as string)).toEqual([]);
    });
    expect(await containerNames()).toEqual(baseline);
  }, 90_000);

  it("in the end: only the one good deployment exists, and every refused jti is unused", async () => {
    expect(tg.gw.store.deployments.list().map((d) => `${d.namespace}/${d.name}`)).toEqual([`${NS}/web`]);
    expect(await containerNames()).toEqual(baseline);
    const refusedCount = (await auditRows()).filter((r) => r.type === "deploy.request_refused").length;
    expect(refusedCount).toBeGreaterThanOrEqual(30);
    const out = await dockerCli(["ps", "-a", "--filter", `label=io.portcullis.namespace=${SANDBOX}`, "--format", "{{.Names}}"]);
    expect(out.trim()).toBe("");
  });
});
