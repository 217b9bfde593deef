/**
 * Admission in the deploy path, end to end through the real CLI and gateway: every
 * reason at once with its field path, the decision record stored and retrievable, a dry
 * run that changes nothing, a policy change judged at once (also for a scale of a running
 * deployment), warn mode, a namespace no policy selects, and a delete that a tightened
 * policy does not block.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, describeDocker, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { busyboxManifest, cleanupDeployments, cli, gatewayContainers, writeManifest, writeProfile } from "../runtime/deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `adm-${run.id}`;
const SANDBOX = `adms-${run.id}`;
let tg: TestGateway;
let image: string;
let imageRef: string;
let dev: string;
let admin: string;

const baselineWith = (checks: string) => `apiVersion: portcullis/v1
kind: AdmissionPolicy
metadata: { name: baseline }
spec:
  checks:
${checks}`;

const STRICT = baselineWith(`    hardening: { mode: enforce }
    resources: { mode: enforce, params: { maxMemory: 32Mi } }
    runtime-class: { mode: enforce }
    image-reference: { mode: enforce }
    image-identity: { mode: enforce }
    signer: { mode: enforce }`);

const WARN_TAGS = baselineWith(`    hardening: { mode: enforce }
    resources: { mode: enforce }
    runtime-class: { mode: enforce }
    image-reference: { mode: warn }
    image-identity: { mode: enforce }
    signer: { mode: enforce }`);

async function applyPolicy(name: string, text: string): Promise<void> {
  const file = join(tg.root, name);
  writeFileSync(file, text);
  const r = await cli(admin, ["admission", "policy", "apply", "-f", file, "--message", name]);
  expect(r.code, r.stderr).toBe(0);
}

describeDocker("admission in the deploy path", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { rollout: { pollMs: 100, settleMs: 300 } } });
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = `portcullis-test/busybox@${(await engine.inspectImage(image))!.id}`;
    tg.gw.namespaces.create(NS, {}, { identity: "user:admin" });
    tg.gw.namespaces.create(SANDBOX, { "portcullis.io/runtime": "sandboxed" }, { identity: "user:admin" });
    const devCert = tg.issueClient("user:dev1");
    for (const ns of [NS, SANDBOX]) tg.gw.policy.bind("user:dev1", "developer", ns, { identity: "user:admin" });
    dev = writeProfile(tg, "dev1", devCert, "user:dev1");
    admin = writeProfile(tg, "admin", tg.admin, "user:admin");
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [NS, SANDBOX], run).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
  });

  itDocker("denies with every reason at once, stores the decision, and the CLI lists the reasons with field paths", async () => {
    const m = writeManifest(tg, "bad.yaml", busyboxManifest(SANDBOX, "bad", "portcullis-test/busybox:v1", { resources: { cpus: 8, memory: "64Mi", pids: 64 } }));
    const r = await cli(dev, ["deploy", "-f", m]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PC_ADMISSION_DENIED");
    expect(r.stderr).toContain("denied because:");
    expect(r.stderr).toMatch(/runtime-class \(spec\.runtime\)/);
    expect(r.stderr).toMatch(/image-reference \(spec\.image\)/);
    expect(r.stderr).toMatch(/resources \(spec\.resources\.cpus\)/);
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);
    // The decision record is stored under the request id, and retrievable.
    const denied = tg.gw.store.decisionRecords.list(SANDBOX, 10).find((d) => !d.allowed);
    expect(denied).toBeDefined();
    const got = await cli(dev, ["decision", "get", denied!.id, "-n", SANDBOX]);
    expect(got.code, got.stderr).toBe(0);
    const record = JSON.parse(got.stdout) as { outcome: string; signature: string; rbac: { rule: string }; admission: { denials: { check: string; field: string; mode: string }[]; results: unknown[] } };
    expect(record.outcome).toBe("denied");
    expect(record.signature).toBe("verified");
    expect(record.rbac.rule).toContain("developer");
    // No node holds the tag: its identity cannot be resolved, nor can it be scanned.
    expect(record.admission.denials.map((d) => d.check).sort()).toEqual(["image-identity", "image-reference", "image-scan", "resources", "runtime-class"]);
    expect((record.admission.denials as unknown as { check: string; reason: string }[]).find((d) => d.check === "image-scan")?.reason).toBe("image not found");
    expect(record.admission.denials.every((d) => d.mode === "enforce")).toBe(true);
    expect(record.admission.results.length).toBeGreaterThan(record.admission.denials.length);
  }, {}, 60_000);

  itDocker("a dry run judges and places without side effects; then the real deploy records the admission in its decision", async () => {
    const m = writeManifest(tg, "web.yaml", busyboxManifest(NS, "web", imageRef, { replicas: 1 }));
    const dry = await cli(dev, ["deploy", "-f", m, "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    const review = JSON.parse(dry.stdout) as { outcome: string; dryRun: boolean; placement: { feasible: boolean; nodes: string[] }; jti: string };
    expect(review).toMatchObject({ outcome: "admissible", dryRun: true, placement: { feasible: true, nodes: ["local"] } });
    expect(tg.gw.store.deployRequests.get(review.jti)).toBeUndefined();
    expect(tg.gw.store.deployments.get(NS, "web")).toBeUndefined();
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);

    const real = await cli(dev, ["deploy", "-f", m]);
    expect(real.code, real.stderr).toBe(0);
    const d = JSON.parse(real.stdout) as { admission: { allowed: boolean; policyVersion: number; results: { check: string }[] } };
    expect(d.admission.allowed).toBe(true);
    expect(d.admission.policyVersion).toBe(1);
    expect(new Set(d.admission.results.map((x) => x.check))).toContain("hardening");
  }, {}, 60_000);

  itDocker("a tightened policy judges new requests at once, a scale of a running deployment too; what runs is reported, not killed; a delete still works", async () => {
    await applyPolicy("strict.yaml", STRICT);
    const scale = await cli(dev, ["scale", "deployment", "web", "--replicas", "2", "-n", NS]);
    expect(scale.code).toBe(1);
    expect(scale.stderr).toContain("PC_ADMISSION_DENIED");
    expect(scale.stderr).toMatch(/resources \(spec\.resources\.memory\)/);
    expect(tg.gw.store.deployments.get(NS, "web")?.replicas).toBe(1);
    // The running deployment no longer complies: reported once, and left running.
    expect(await tg.gw.readmission.pass()).toBe(1);
    expect(await tg.gw.readmission.pass()).toBe(0);
    tg.gw.audit.flush();
    const head = tg.gw.store.auditLog.head()!;
    const noted = [...tg.gw.store.auditLog.iterate(0, head.seq)].filter((r) => r.type === "admission.noncompliant");
    expect(noted).toHaveLength(1);
    expect(JSON.parse(noted[0]!.body) as { reasons: string[]; target: string }).toMatchObject({ target: "web", reasons: [expect.stringContaining("resources (spec.resources.memory)")] });
    expect((await gatewayContainers(tg.gw.deployments.gatewayId)).map((c) => c.state)).toEqual(["running"]);
    const del = await cli(dev, ["delete", "deployment", "web", "-n", NS]);
    expect(del.code, del.stderr).toBe(0);
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);
  }, {}, 60_000);

  itDocker("warn mode admits and returns the warning; a namespace no policy selects is denied", async () => {
    await applyPolicy("warn.yaml", WARN_TAGS);
    const tagged = writeManifest(tg, "tagged.yaml", busyboxManifest(NS, "tagged", image));
    const r = await cli(dev, ["deploy", "-f", tagged]);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as { admission: { allowed: boolean; warnings: { check: string; mode: string }[] } };
    expect(d.admission.allowed).toBe(true);
    expect(d.admission.warnings.map((w) => [w.check, w.mode])).toEqual([["image-reference", "warn"]]);
    expect((await cli(dev, ["delete", "deployment", "tagged", "-n", NS])).code).toBe(0);

    await applyPolicy("elsewhere.yaml", WARN_TAGS.replace("spec:\n", "spec:\n  selector: { namespaces: [elsewhere] }\n"));
    const m = writeManifest(tg, "none.yaml", busyboxManifest(NS, "none", imageRef));
    const none = await cli(dev, ["deploy", "-f", m]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("PC_ADMISSION_POLICY_MISSING");
    expect(tg.gw.store.deployments.get(NS, "none")).toBeUndefined();
  }, {}, 90_000);
});
