/**
 * The README's scan walkthrough, as written, through the real CLI, a real gateway and the
 * real engine: import a database, deploy an image with a known CVE and see it denied with
 * the finding, waive that CVE until a date, see it pass, import a newer database and see
 * the rescan alert (stored, audited, naming the deployment; nothing stopped). Then the
 * same with `onNewFindings: stop`.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { shippedAdmissionPolicyFiles } from "../../src/admission/index.js";
import type { Alert } from "../../src/monitoring/index.js";
import { runCli } from "../support/cli.js";
import { describeDocker, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { cleanupDeployments, cli, writeFile, writeProfile } from "../runtime/deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `scan-${run.id}`;
const STOP_NS = `scanstop-${run.id}`;
const LATER_NS = `scanlater-${run.id}`;
const REPO = "portcullis-test/legacy";
const TAG = `${REPO}:${run.id}`;
const ROOT = resolve(import.meta.dirname, "../..");
/** Demo images this file built, removed by id once their deployments are gone. */
const demoImages: string[] = [];
let tg: TestGateway;
let dev: string;
let sec: string;
let admin: string;

/** The alerts of the rule that rescans raise, newest first. */
function scanAlerts(): Alert[] {
  return tg.gw.alerts.list({ rule: "scan-new-findings" });
}

/** What the rescan's event said: the finding ids and the database versions. */
function findingsOf(a: Alert): Record<string, string> {
  const ev = a.evidence.first;
  if (ev.kind !== "event") throw new Error(`evidence of ${a.id} is not an event`);
  const { findings, databaseVersion, previousVersion } = ev.event.attributes;
  return { findings: findings ?? "", databaseVersion: databaseVersion ?? "", previousVersion: previousVersion ?? "" };
}

async function until<T>(f: () => T | undefined, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeDocker("the README's scan walkthrough", () => {
  beforeAll(async () => {
    // No database yet: the walkthrough imports the shipped example one with the CLI.
    tg = await startTestGateway({ vulndb: false, start: { rescanCheckMs: 200, reconcileIntervalMs: 500, rollout: { pollMs: 100, settleMs: 500 } } });
    for (const ns of [NS, STOP_NS, LATER_NS]) tg.gw.namespaces.create(ns, { "portcullis.io/runtime": "sandboxed" }, { identity: "user:admin" });
    for (const ns of [NS, STOP_NS, LATER_NS]) tg.gw.policy.bind("user:dev1", "developer", ns, { identity: "user:admin" });
    tg.gw.policy.bind("user:sec", "security-admin", "*", { identity: "user:admin" });
    dev = writeProfile(tg, "dev1", tg.issueClient("user:dev1"), "user:dev1");
    sec = writeProfile(tg, "sec", tg.issueClient("user:sec"), "user:sec");
    admin = writeProfile(tg, "admin", tg.admin, "user:admin");
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [NS, STOP_NS, LATER_NS], run).catch(() => undefined);
    // By id, once no container uses them: a tag removed while a container still ran would
    // leave the image behind, untagged.
    for (const ref of [TAG, ...demoImages]) await engine.removeImage(ref).catch(() => undefined);
  });

  itDocker("import, denied with the finding, waived until a date, admitted, a newer database, the rescan alert", async () => {
    // Without a database nothing is admitted.
    const status0 = await cli(sec, ["vulndb", "status"]);
    expect(status0.code, status0.stderr).toBe(0);
    expect(JSON.parse(status0.stdout)).toMatchObject({ scanner: "builtin", imports: [] });

    const imported = await runCli(["-o", "json", "vulndb", "import", resolve(ROOT, "examples/osv"), "--data-dir", tg.dataDir]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ version: 1, records: 2 });
    const status1 = JSON.parse((await cli(sec, ["vulndb", "status"])).stdout) as { active: { version: number; records: number } };
    expect(status1.active).toMatchObject({ version: 1, records: 2 });

    const { stdout: id } = await promisify(execFile)("bash", [resolve(ROOT, "scripts/demo-image.sh"), TAG, "--old-zlib"]);
    const imageId = id.trim();
    demoImages.push(imageId);
    expect(imageId).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The SBOM lists what the scanner reads: busybox-static and zlib1g.
    const sbom = await cli(sec, ["image", "sbom", TAG]);
    expect(sbom.code, sbom.stderr).toBe(0);
    const names = (JSON.parse(sbom.stdout) as { components: { name: string }[] }).components.map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(["busybox-static", "zlib1g"]));

    // As the README writes it (sed on examples/hello.yaml), in this run's namespace.
    const manifest = readFileSync(resolve(ROOT, "examples/hello.yaml"), "utf8")
      .replace("namespace: payments", `namespace: ${NS}`)
      .replaceAll("local/hello:1", `${REPO}@${imageId}`)
      .replace("name: hello", "name: legacy");
    const legacy = writeFile(tg, "legacy.yaml", manifest);
    const denied = await runCli(["deploy", "-f", legacy], { env: { PORTCULLIS_PROFILE: dev } });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("PC_ADMISSION_DENIED");
    expect(denied.stderr).toMatch(/image-scan \(spec\.image\): vulnerability — DEBIAN-CVE-2022-37434 \(CVE-2022-37434\) in Debian:12 package zlib 1:1\.2\.11\.dfsg-4 installed as zlib1g, from \/var\/lib\/dpkg\/status: severity unknown \(judged critical\), at or above high; fixed in 1:1\.2\.11\.dfsg-4\.1/);
    // The decision record carries the finding's ids.
    const record = tg.gw.store.decisionRecords.list(NS, 10).find((d) => !d.allowed);
    const parsed = JSON.parse(record!.record) as { admission: { denials: { check: string; findings?: string[] }[] } };
    expect(parsed.admission.denials.find((d) => d.check === "image-scan")?.findings).toEqual(["DEBIAN-CVE-2022-37434", "CVE-2022-37434"]);

    const until30d = new Date(Date.now() + 30 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    const waiver = await cli(sec, [
      "waiver", "create", "-n", NS, "--check", "image-scan", "--finding", "CVE-2022-37434", "--image", imageId,
      "--owner", "user:bob", "--justification", "gzip headers are never parsed by this service", "--ticket", "SEC-200", "--expires", until30d,
    ]);
    expect(waiver.code, waiver.stderr).toBe(0);
    const admitted = await cli(dev, ["deploy", "-f", legacy]);
    expect(admitted.code, admitted.stderr).toBe(0);
    expect(JSON.parse(admitted.stdout)).toMatchObject({ outcome: "deployed" });

    const next = await runCli(["-o", "json", "vulndb", "import", resolve(ROOT, "examples/osv-next"), "--data-dir", tg.dataDir]);
    expect(next.code, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout)).toMatchObject({ version: 2, records: 3 });
    const alert = await until(() => scanAlerts()[0], 60_000);
    expect(alert).toMatchObject({ rule: "scan-new-findings", severity: "high", namespace: NS, deployment: "legacy" });
    expect(findingsOf(alert!)).toEqual({ findings: "PCDEMO-2026-0001", databaseVersion: "2", previousVersion: "1" });
    const listed = await cli(sec, ["alerts", "list"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: alert!.id, rule: "scan-new-findings", namespace: NS, deployment: "legacy" })]);
    const audited = [...tg.gw.audit.entries(0, Number.MAX_SAFE_INTEGER)].filter((e) => e.head.type === "scan.new_findings");
    expect(audited).toHaveLength(1);
    expect(JSON.stringify(audited[0])).toContain("PCDEMO-2026-0001");
    // Nothing stopped: the deployment still runs with its replicas.
    expect(tg.gw.store.deployments.get(NS, "legacy")?.replicas).toBe(2);
    await cli(dev, ["delete", "deployment", "legacy", "-n", NS]);
  }, { runtimes: ["runsc"] }, 240_000);

  itDocker("onNewFindings: stop stops the deployments a newer database finds something in", async () => {
    const files = shippedAdmissionPolicyFiles();
    const stopPolicy = `apiVersion: portcullis/v1
kind: AdmissionPolicy
metadata: { name: stop-on-new-findings }
spec:
  selector: { namespaces: [${STOP_NS}] }
  checks:
    image-scan: { mode: enforce, params: { onNewFindings: stop } }
`;
    const file = join(tg.root, "stop.yaml");
    writeFileSync(file, stopPolicy);
    const applied = await cli(admin, ["admission", "policy", "apply", ...files.flatMap((f) => ["-f", writeFile(tg, f.name, f.text)]), "-f", file, "--message", "stop on new findings"]);
    expect(applied.code, applied.stderr).toBe(0);
    const current = tg.gw.store.vulndb.activeId()!;
    // The plain demo image holds busybox only: clean under examples/osv, found by osv-next.
    const { stdout: id } = await promisify(execFile)("bash", [resolve(ROOT, "scripts/demo-image.sh"), `${REPO}-plain:${run.id}`]);
    demoImages.push(id.trim());
    try {
      const imported = await runCli(["vulndb", "import", resolve(ROOT, "examples/osv"), "--data-dir", tg.dataDir]);
      expect(imported.code, imported.stderr).toBe(0);
      await until(() => (scanAlerts().length > 1 ? true : undefined), 2_000);
      const manifest = readFileSync(resolve(ROOT, "examples/hello.yaml"), "utf8").replace("namespace: payments", `namespace: ${STOP_NS}`).replaceAll("local/hello:1", `${REPO}-plain@${id.trim()}`);
      const r = await cli(dev, ["deploy", "-f", writeFile(tg, "plain.yaml", manifest)]);
      expect(r.code, r.stderr).toBe(0);
      const next = await runCli(["vulndb", "import", resolve(ROOT, "examples/osv-next"), "--data-dir", tg.dataDir]);
      expect(next.code, next.stderr).toBe(0);
      expect(tg.gw.store.vulndb.activeId()).toBe(current + 2);
      const alert = await until(() => scanAlerts().find((a) => a.namespace === STOP_NS), 60_000);
      expect(alert).toMatchObject({ namespace: STOP_NS, deployment: "hello" });
      expect(await until(() => (tg.gw.store.deployments.get(STOP_NS, "hello")?.replicas === 0 ? true : undefined), 30_000)).toBe(true);
    } finally {
      await engine.removeImage(`${REPO}-plain:${run.id}`).catch(() => undefined);
    }
  }, { runtimes: ["runsc"] }, 240_000);

  itDocker("an import made while the gateway is down is rescanned when it starts again", async () => {
    const tag = `${REPO}-later:${run.id}`;
    const { stdout: id } = await promisify(execFile)("bash", [resolve(ROOT, "scripts/demo-image.sh"), tag]);
    demoImages.push(id.trim());
    try {
      // A database under which the plain demo image is clean, then a deploy.
      const imported = await runCli(["vulndb", "import", resolve(ROOT, "examples/osv"), "--data-dir", tg.dataDir]);
      expect(imported.code, imported.stderr).toBe(0);
      const manifest = readFileSync(resolve(ROOT, "examples/hello.yaml"), "utf8").replace("namespace: payments", `namespace: ${LATER_NS}`).replaceAll("local/hello:1", `${REPO}-later@${id.trim()}`);
      const r = await cli(dev, ["deploy", "-f", writeFile(tg, "later.yaml", manifest)]);
      expect(r.code, r.stderr).toBe(0);
      await until(() => (tg.gw.store.alerts.lastRescan() === tg.gw.store.vulndb.activeId() ? true : undefined), 10_000);
      await tg.stop();
      const next = await runCli(["vulndb", "import", resolve(ROOT, "examples/osv-next"), "--data-dir", tg.dataDir]);
      expect(next.code, next.stderr).toBe(0);
      tg = await tg.restart();
      const alert = await until(() => scanAlerts().find((a) => a.namespace === LATER_NS), 60_000);
      expect(alert).toMatchObject({ namespace: LATER_NS, deployment: "hello" });
      expect(findingsOf(alert!).findings).toBe("PCDEMO-2026-0001");
      // Nothing stopped without onNewFindings: stop.
      expect(tg.gw.store.deployments.get(LATER_NS, "hello")?.replicas).toBeGreaterThan(0);
      expect(tg.gw.store.alerts.lastRescan()).toBe(tg.gw.store.vulndb.activeId());
    } finally {
      await engine.removeImage(tag).catch(() => undefined);
    }
  }, { runtimes: ["runsc"] }, 240_000);
});
