/**
 * The two-person rule, end to end through the real gateway and CLI: in a namespace that
 * asks for two approvals a deploy waits (nothing runs), approvals by the namespace's
 * approvers are counted, the requester's own, one for another digest, a repeated one and
 * one replayed on another request are refused, the second valid approval runs the
 * deployment and its decision record lists both; after the request expires, approvals
 * are refused and nothing runs.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { signApproval, signDeployRequest, type Manifest } from "../../src/deploy/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, describeDocker, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import {
  apiCall,
  busyboxManifest,
  cleanupDeployments,
  cli,
  gatewayContainers,
  postSigned,
  writeManifest,
  writeProfile,
  type ApiClient,
} from "../runtime/deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `apr-${run.id}`;
let tg: TestGateway;
let image: string;
let imageRef: string;
let dev: string;
let ann: string;
let bob: string;
let devClient: ApiClient;
let annClient: ApiClient;
let bobClient: ApiClient;

interface Pending {
  pending: true;
  requestId: string;
  jti: string;
  manifestDigest: string;
  required: number;
  approvals: string[];
  expiresAt: string;
  state?: string;
}

const approvalsPath = (id = "") => `/v1/namespaces/${NS}/approvals${id ? `/${id}` : ""}`;

function approvalFor(c: ApiClient, p: { requestId: string; jti: string; manifestDigest: string }): Promise<string> {
  return signApproval({ ...p, namespace: NS, trustDomain: c.trustDomain, privateKeyPem: c.keyPem, certificatePem: c.certPem });
}

async function deployPending(file: string, name: string): Promise<Pending> {
  const m = writeManifest(tg, file, busyboxManifest(NS, name, imageRef));
  const r = await cli(dev, ["deploy", "-f", m]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toContain("waiting for 2 approvals: request ");
  const p = JSON.parse(r.stdout) as Pending;
  expect(p).toMatchObject({ pending: true, required: 2, approvals: [] });
  return p;
}

describeDocker("approvals: the two-person rule", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { rollout: { pollMs: 100, settleMs: 300 } } });
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = `portcullis-test/busybox@${(await engine.inspectImage(image))!.id}`;
    tg.gw.namespaces.create(NS, { "portcullis.io/approvals": "2" }, { identity: "user:admin" });
    const common = { trustDomain: tg.gw.config.trustDomain, caPem: tg.caPem };
    const devCert = tg.issueClient("user:dev1");
    const annCert = tg.issueClient("user:ann");
    const bobCert = tg.issueClient("user:bob");
    tg.gw.policy.bind("user:dev1", "developer", NS, { identity: "user:admin" });
    // The requester is an approver too: only the rule, not RBAC, keeps their approval from counting.
    tg.gw.policy.bind("user:dev1", "approver", NS, { identity: "user:admin" });
    tg.gw.policy.bind("user:ann", "approver", NS, { identity: "user:admin" });
    tg.gw.policy.bind("user:bob", "approver", NS, { identity: "user:admin" });
    dev = writeProfile(tg, "dev1", devCert, "user:dev1");
    ann = writeProfile(tg, "ann", annCert, "user:ann");
    bob = writeProfile(tg, "bob", bobCert, "user:bob");
    devClient = { ...common, certPem: devCert.certPem, keyPem: devCert.keyPem };
    annClient = { ...common, certPem: annCert.certPem, keyPem: annCert.keyPem };
    bobClient = { ...common, certPem: bobCert.certPem, keyPem: bobCert.keyPem };
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [NS], run).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
  });

  itDocker("a deploy waits; the requester's own, another digest's and a repeated approval are refused; the second valid one runs it", async () => {
    const p = await deployPending("web.yaml", "web");
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);
    expect(tg.gw.store.deployments.get(NS, "web")).toBeUndefined();
    expect(tg.gw.store.deployRequests.get(p.jti)).toBeUndefined();

    const listed = await cli(ann, ["approvals", "list", "-n", NS]);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Pending[]).map((x) => [x.requestId, x.manifestDigest, x.approvals.length])).toEqual([[p.requestId, p.manifestDigest, 0]]);

    const first = await cli(ann, ["approve", p.requestId, "-n", NS]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(p.manifestDigest);
    expect(JSON.parse(first.stdout)).toMatchObject({ pending: true, approvals: ["user:ann"] });
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);

    const own = await cli(dev, ["approve", p.requestId, "-n", NS]);
    expect(own.code).toBe(1);
    expect(own.stderr).toContain("PC_ADMISSION_APPROVAL_INVALID");

    const otherDigest = await approvalFor(bobClient, { ...p, manifestDigest: `sha256:${"0".repeat(64)}` });
    const wrong = await apiCall(tg.api, bobClient, "POST", approvalsPath(p.requestId), { approval: otherDigest });
    expect(wrong.status).toBe(400);
    expect(JSON.parse(wrong.body!)).toMatchObject({ code: "PC_ADMISSION_APPROVAL_INVALID" });

    const again = await cli(ann, ["approve", p.requestId, "-n", NS]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("PC_ADMISSION_APPROVAL_INVALID");

    const shown = await apiCall(tg.api, annClient, "GET", approvalsPath(p.requestId));
    expect(JSON.parse(shown.body!)).toMatchObject({ state: "pending", approvals: ["user:ann"] });
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);

    const second = await cli(bob, ["approve", p.requestId, "-n", NS]);
    expect(second.code, second.stderr).toBe(0);
    const record = JSON.parse(second.stdout) as { outcome: string; jti: string; requester: string; approvals: { approver: string; jwsSha256: string }[] };
    expect(record).toMatchObject({ outcome: "deployed", jti: p.jti, requester: "user:dev1" });
    expect(record.approvals.map((a) => a.approver)).toEqual(["user:ann", "user:bob"]);
    expect((await gatewayContainers(tg.gw.deployments.gatewayId)).map((c) => c.state)).toEqual(["running"]);
    expect(tg.gw.store.deployRequests.get(p.jti)?.requester).toBe("user:dev1");

    // The requester reads the decision under the id the deploy answered with.
    const got = await cli(dev, ["decision", "get", p.requestId, "-n", NS]);
    expect(got.code, got.stderr).toBe(0);
    const stored = JSON.parse(got.stdout) as { outcome: string; approvals: { approver: string }[]; admission: { allowed: boolean; results: { check: string; allowed: boolean }[] } };
    expect(stored.outcome).toBe("deployed");
    expect(stored.approvals.map((a) => a.approver)).toEqual(["user:ann", "user:bob"]);
    expect(stored.admission.results.find((r) => r.check === "approvals")).toMatchObject({ allowed: true });
    // Every approval is kept as evidence: the signed token and the approver's certificate.
    expect(tg.gw.store.pendingRequests.approvals(p.requestId).map((a) => [a.approver, a.jws.split(".").length])).toEqual([["user:ann", 3], ["user:bob", 3]]);
    expect(JSON.parse((await cli(ann, ["approvals", "list", "-n", NS])).stdout)).toEqual([]);

    // Decided: a late approval is refused.
    const late = await apiCall(tg.api, devClient, "POST", approvalsPath(p.requestId), { approval: await approvalFor(devClient, p) });
    expect(late.status).toBe(400);
  }, {}, 90_000);

  itDocker("an approval replayed on another pending request, or sent over another connection, is refused; an empty one too", async () => {
    const a = await deployPending("a.yaml", "a");
    const b = await deployPending("b.yaml", "b");
    const forA = await approvalFor(annClient, a);
    const replayed = await apiCall(tg.api, annClient, "POST", approvalsPath(b.requestId), { approval: forA });
    expect(replayed.status).toBe(400);
    expect(JSON.parse(replayed.body!)).toMatchObject({ code: "PC_ADMISSION_APPROVAL_INVALID" });
    const stolen = await apiCall(tg.api, bobClient, "POST", approvalsPath(a.requestId), { approval: forA });
    expect(stolen.status).toBe(400);
    const empty = await apiCall(tg.api, bobClient, "POST", approvalsPath(a.requestId), { approval: "" });
    expect(empty.status).toBe(400);
    const unknown = await apiCall(tg.api, bobClient, "POST", approvalsPath("no-such-request"), { approval: forA });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body!)).toMatchObject({ code: "PC_ADMISSION_PENDING_NOT_FOUND" });
    // The same approval where it belongs counts.
    const ok = await apiCall(tg.api, annClient, "POST", approvalsPath(a.requestId), { approval: forA });
    expect(ok.status, ok.body).toBe(200);
    expect(JSON.parse(ok.body!)).toMatchObject({ pending: true, approvals: ["user:ann"] });
    const view = JSON.parse((await apiCall(tg.api, annClient, "GET", approvalsPath(b.requestId))).body!) as Pending;
    expect(view.approvals).toEqual([]);
    // A developer who is no approver cannot approve at all.
    expect(tg.gw.policy.decide("user:dev2", NS, "approvals", "approve").allowed).toBe(false);
    expect(tg.gw.store.deployments.get(NS, "a")).toBeUndefined();
    expect(tg.gw.store.deployments.get(NS, "b")).toBeUndefined();
  }, {}, 60_000);

  itDocker("approvals expire with the request: after its exp they are refused and nothing runs", async () => {
    const manifest = busyboxManifest(NS, "brief", imageRef) as unknown as Manifest;
    const jws = await signDeployRequest({ op: "create", manifest, trustDomain: devClient.trustDomain, privateKeyPem: devClient.keyPem, certificatePem: devClient.certPem, lifetimeSeconds: 4 });
    const sent = await postSigned(tg.api, devClient, NS, jws);
    expect(sent.status, sent.body).toBe(202);
    const p = JSON.parse(sent.body!) as Pending;
    expect(p).toMatchObject({ pending: true, required: 2 });
    const first = await apiCall(tg.api, annClient, "POST", approvalsPath(p.requestId), { approval: await approvalFor(annClient, p) });
    expect(first.status, first.body).toBe(200);
    const approval = await approvalFor(bobClient, p);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(p.expiresAt) - Date.now()) + 500));
    const afterExp = await apiCall(tg.api, bobClient, "POST", approvalsPath(p.requestId), { approval });
    expect(afterExp.status).toBe(400);
    expect(JSON.parse(afterExp.body!)).toMatchObject({ code: "PC_ADMISSION_APPROVAL_INVALID" });
    expect(JSON.parse((await apiCall(tg.api, annClient, "GET", approvalsPath(p.requestId))).body!)).toMatchObject({ state: "expired" });
    expect((JSON.parse((await cli(ann, ["approvals", "list", "-n", NS])).stdout) as Pending[]).map((x) => x.requestId)).not.toContain(p.requestId);
    expect(tg.gw.store.deployments.get(NS, "brief")).toBeUndefined();
    expect(tg.gw.store.deployRequests.get(p.jti)).toBeUndefined();
    expect((await gatewayContainers(tg.gw.deployments.gatewayId)).filter((c) => c.name.includes("brief"))).toEqual([]);
  }, {}, 60_000);
});
