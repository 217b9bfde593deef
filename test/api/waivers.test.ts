/**
 * Waivers end to end, through the real CLI, the real gateway and the local Docker
 * engine, under the shipped baseline admission policy (image-reference requires a
 * digest, so a tagged image is denied):
 * - a security admin's waiver for image-reference, scoped to one deployment, lets that
 *   deployment's tagged deploy through, and the decision record names the waiver;
 * - revoked or expired, the same request is denied again at once (deploy, update, dry
 *   run), and `waiver list` no longer shows it, though `--all` does;
 * - a developer cannot create one, nor can someone who holds waivers:create only in
 *   another namespace: a waiver never widens the policy of a namespace from outside it;
 * - bad inputs are refused with their code; `--expiring 7d` lists what lapses soon;
 * - a waiver scoped to another deployment or another image digest does not apply.
 */
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { runCli } from "../support/cli.js";
import { buildBusyboxImage, describeDocker, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { busyboxManifest, cleanupDeployments, cli, gatewayContainers, writeManifest, writeProfile } from "../runtime/deploy-support.js";
import { call, expectCode } from "./rbac-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `wv-${run.id}`;
const OTHER = `wvo-${run.id}`;
const QUIET = `wvq-${run.id}`;
let tg: TestGateway;
let image: string;
let digest: string;
let dev: string;
let dev2: string;
let sec: string;
let secFiles: { certPem: string; keyPem: string };

interface Waiver {
  id: string;
  namespace: string;
  check: string;
  deployment?: string;
  expiresAt: string;
  status: string;
}
interface Judged {
  outcome: string;
  admission: { allowed: boolean; denials: { check: string }[]; warnings: { check: string; mode: string; waiver?: string }[]; results: { check: string; allowed: boolean; waiver?: string }[] };
}

const JUSTIFICATION = "vendor image ships tags only; pinned by digest in SEC-42";

async function createWaiver(profile: string, ns: string, extra: string[], expires = "30d"): Promise<{ code: number | null; stderr: string; waiver?: Waiver }> {
  const r = await cli(profile, ["waiver", "create", "-n", ns, "--owner", "user:sec", "--justification", JUSTIFICATION, "--ticket", "SEC-42", "--expires", expires, ...extra]);
  return { code: r.code, stderr: r.stderr, ...(r.code === 0 ? { waiver: JSON.parse(r.stdout) as Waiver } : {}) };
}

async function listWaivers(ns: string, ...flags: string[]): Promise<Waiver[]> {
  const r = await cli(sec, ["waiver", "list", "-n", ns, ...flags]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Waiver[];
}

async function dryRun(file: string): Promise<{ code: number | null; review: Judged }> {
  const r = await cli(dev, ["deploy", "-f", file, "--dry-run"]);
  return { code: r.code, review: JSON.parse(r.stdout) as Judged };
}

describeDocker("waivers", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { rollout: { pollMs: 100, settleMs: 300 } } });
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    digest = (await engine.inspectImage(image))!.id;
    for (const ns of [NS, OTHER, QUIET]) tg.gw.namespaces.create(ns, {}, { identity: "user:admin" });
    const admin = { identity: "user:admin" };
    tg.gw.policy.bind("user:dev1", "developer", NS, admin);
    // dev2 develops in OTHER and may grant waivers there, and only there.
    tg.gw.policy.bind("user:dev2", "developer", OTHER, admin);
    tg.gw.policy.bind("user:dev2", "security-admin", OTHER, admin);
    tg.gw.policy.bind("user:sec", "security-admin", "*", admin);
    dev = writeProfile(tg, "dev1", tg.issueClient("user:dev1"), "user:dev1");
    dev2 = writeProfile(tg, "dev2", tg.issueClient("user:dev2"), "user:dev2");
    secFiles = tg.issueClient("user:sec");
    sec = writeProfile(tg, "sec", secFiles, "user:sec");
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [NS, OTHER, QUIET], run).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
  });

  itDocker("a tagged deploy denied by image-reference passes under a waiver for its deployment; the decision record names the waiver", async () => {
    const m = writeManifest(tg, "web.yaml", busyboxManifest(NS, "web", image));
    const denied = await cli(dev, ["deploy", "-f", m]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("PC_ADMISSION_DENIED");
    expect(denied.stderr).toMatch(/image-reference \(spec\.image\)/);
    expect(tg.gw.store.deployments.get(NS, "web")).toBeUndefined();

    const { code, stderr, waiver } = await createWaiver(sec, NS, ["--check", "image-reference", "--deployment", "web"]);
    expect(code, stderr).toBe(0);
    expect(waiver).toMatchObject({ namespace: NS, check: "image-reference", deployment: "web", status: "active" });
    const id = waiver!.id;

    const ok = await cli(dev, ["deploy", "-f", m]);
    expect(ok.code, ok.stderr).toBe(0);
    const d = JSON.parse(ok.stdout) as Judged;
    expect(d.admission.allowed).toBe(true);
    expect(d.admission.denials).toEqual([]);
    expect(d.admission.warnings.map((w) => [w.check, w.mode, w.waiver])).toEqual([["image-reference", "enforce", id]]);
    expect(d.admission.results.filter((r) => r.waiver !== undefined).map((r) => [r.check, r.allowed])).toEqual([["image-reference", false]]);
    expect((await gatewayContainers(tg.gw.deployments.gatewayId)).length).toBe(1);

    // The stored decision record is the one returned: it names the waiver too.
    const stored = tg.gw.store.decisionRecords.list(NS, 10).find((r) => r.allowed && r.name === "web");
    expect(stored).toBeDefined();
    const got = await cli(dev, ["decision", "get", stored!.id, "-n", NS]);
    expect(got.code, got.stderr).toBe(0);
    expect((JSON.parse(got.stdout) as Judged).admission.warnings.map((w) => w.waiver)).toEqual([id]);
    // The table output says which waiver let it through.
    const table = await runCli(["deploy", "-f", m, "--dry-run"], { env: { PORTCULLIS_PROFILE: dev } });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain("dry run: admissible");
    expect(table.stdout).toContain(`[waived by ${id}]`);
  }, {}, 90_000);

  itDocker("revoked, the waiver stops applying at once: an update and a dry run are denied, and listings show it only with --all", async () => {
    const [w] = await listWaivers(NS);
    expect(w).toMatchObject({ check: "image-reference", deployment: "web", status: "active" });
    const rev = await cli(sec, ["waiver", "revoke", w!.id, "-n", NS]);
    expect(rev.code, rev.stderr).toBe(0);
    expect(JSON.parse(rev.stdout)).toMatchObject({ id: w!.id, status: "revoked", revokedBy: "user:sec" });

    const m = writeManifest(tg, "web.yaml", busyboxManifest(NS, "web", image));
    const dry = await dryRun(m);
    expect(dry.code).toBe(1);
    expect(dry.review.outcome).toBe("inadmissible");
    expect(dry.review.admission.denials.map((x) => x.check)).toEqual(["image-reference"]);
    const scale = await cli(dev, ["scale", "deployment", "web", "--replicas", "2", "-n", NS]);
    expect(scale.code).toBe(1);
    expect(scale.stderr).toContain("PC_ADMISSION_DENIED");
    expect(tg.gw.store.deployments.get(NS, "web")?.replicas).toBe(1);

    expect(await listWaivers(NS)).toEqual([]);
    expect((await listWaivers(NS, "--all")).map((x) => [x.id, x.status])).toEqual([[w!.id, "revoked"]]);
    const again = await cli(sec, ["waiver", "revoke", w!.id, "-n", NS]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("PC_ADMISSION_WAIVER_NOT_FOUND");
    expect((await cli(dev, ["delete", "deployment", "web", "-n", NS])).code).toBe(0);
  }, {}, 90_000);

  itDocker("expired, the waiver stops applying at once: deploy and dry run are denied; list drops it, --all shows it expired", async () => {
    const m = writeManifest(tg, "brief.yaml", busyboxManifest(NS, "brief", image));
    const expires = new Date(Date.now() + 15_000).toISOString();
    const { code, stderr, waiver } = await createWaiver(sec, NS, ["--check", "image-reference", "--deployment", "brief"], expires);
    expect(code, stderr).toBe(0);
    const before = await dryRun(m);
    expect(Date.now()).toBeLessThan(Date.parse(waiver!.expiresAt));
    expect(before.code).toBe(0);
    expect(before.review.admission.warnings.map((x) => x.waiver)).toEqual([waiver!.id]);

    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(waiver!.expiresAt) - Date.now() + 50)));
    const after = await dryRun(m);
    expect(after.code).toBe(1);
    expect(after.review.admission.denials.map((x) => x.check)).toEqual(["image-reference"]);
    expect(after.review.admission.results.some((r) => r.waiver !== undefined)).toBe(false);
    const deploy = await cli(dev, ["deploy", "-f", m]);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toContain("PC_ADMISSION_DENIED");
    expect(tg.gw.store.deployments.get(NS, "brief")).toBeUndefined();
    expect((await listWaivers(NS)).map((x) => x.id)).not.toContain(waiver!.id);
    expect((await listWaivers(NS, "--all")).find((x) => x.id === waiver!.id)?.status).toBe("expired");
    const got = await cli(sec, ["waiver", "get", waiver!.id, "-n", NS]);
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ id: waiver!.id, status: "expired" });
  }, {}, 90_000);

  itDocker("a developer cannot create a waiver, nor can a holder of waivers:create in another namespace; neither widens this namespace's policy", async () => {
    const mine = await createWaiver(dev, NS, ["--check", "image-reference"]);
    expect(mine.code).toBe(1);
    expect(mine.stderr).toContain("PC_API_FORBIDDEN");
    const foreign = await createWaiver(dev2, NS, ["--check", "image-reference"]);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain("PC_API_FORBIDDEN");
    // dev2 does hold the permission in its own namespace: the refusal is about the namespace.
    const own = await createWaiver(dev2, OTHER, ["--check", "image-reference"]);
    expect(own.code, own.stderr).toBe(0);
    expect(own.waiver).toMatchObject({ namespace: OTHER, check: "image-reference" });
    expect(await listWaivers(NS)).toEqual([]);
    // The namespace comes from the path alone: a body cannot name another one.
    const smuggled = await call(tg, secFiles, "POST", `/v1/namespaces/${OTHER}/waivers`, {
      namespace: NS, check: "image-reference", owner: "user:sec", justification: JUSTIFICATION, ticket: "SEC-42", expires: "1d",
    });
    expectCode(smuggled, 400, "PC_API_INVALID_BODY");
    // A namespace-wide waiver in OTHER does not let a tagged deploy through in NS.
    const m = writeManifest(tg, "elsewhere.yaml", busyboxManifest(NS, "elsewhere", image));
    const dry = await dryRun(m);
    expect(dry.code).toBe(1);
    expect(dry.review.admission.denials.map((x) => x.check)).toEqual(["image-reference"]);
  }, {}, 90_000);

  itDocker("bad inputs are refused, each with its code and field", async () => {
    const cases: [string[], string, string][] = [
      [["--check", "image-reference", "--expires", "91d"], "PC_ADMISSION_WAIVER_INVALID", "expires: at most 90 days away"],
      [["--check", "image-reference", "--expires", "2020-01-01T00:00:00Z"], "PC_ADMISSION_WAIVER_INVALID", "expires: must be in the future"],
      [["--check", "no-such-check"], "PC_ADMISSION_WAIVER_INVALID", "check: not a known check"],
      [["--check", "image-reference", "--image", "sha256:1234"], "PC_ADMISSION_WAIVER_INVALID", "imageDigest: sha256:"],
      [["--check", "image-reference", "--justification", ""], "PC_ADMISSION_WAIVER_INVALID", "justification: required"],
      [["--check", "image-scan", "--finding", "not a cve"], "PC_ADMISSION_WAIVER_INVALID", "findings: each an id"],
    ];
    for (const [args, want, detail] of cases) {
      // Options given again after the defaults replace them (--expires, --justification).
      const r = await createWaiver(sec, NS, args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toContain(want);
      expect(r.stderr, args.join(" ")).toContain(detail);
    }
    const nowhere = await createWaiver(sec, "nowhere", ["--check", "image-reference"]);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toContain("PC_ADMISSION_WAIVER_INVALID");
    expect(nowhere.stderr).toContain("namespace: no namespace nowhere");
    const badOwner = await cli(sec, ["waiver", "create", "-n", NS, "--check", "image-reference", "--owner", "alice", "--justification", JUSTIFICATION, "--ticket", "SEC-42", "--expires", "1d"]);
    expect(badOwner.code).toBe(1);
    expect(badOwner.stderr).toContain("PC_API_INVALID_BODY");
    expect(await listWaivers(NS)).toEqual([]);
  }, {}, 120_000);

  itDocker("--expiring 7d lists only the waivers that lapse within 7 days", async () => {
    const soon = await createWaiver(sec, QUIET, ["--check", "hardening"], "3d");
    const later = await createWaiver(sec, QUIET, ["--check", "resources"], "20d");
    expect([soon.code, later.code]).toEqual([0, 0]);
    expect((await listWaivers(QUIET, "--expiring", "7d")).map((w) => w.id)).toEqual([soon.waiver!.id]);
    expect((await listWaivers(QUIET)).map((w) => w.id)).toEqual([soon.waiver!.id, later.waiver!.id]);
    const table = await runCli(["waiver", "list", "-n", QUIET, "--expiring", "7d"], { env: { PORTCULLIS_PROFILE: sec } });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+CHECK\s+SCOPE\s+OWNER\s+TICKET\s+EXPIRES\s+STATUS\n/);
    expect(table.stdout).toContain(soon.waiver!.id);
    expect(table.stdout).not.toContain(later.waiver!.id);
  }, {}, 60_000);

  itDocker("a waiver scoped to another deployment or another image digest does not apply; one for this image digest does", async () => {
    const m = writeManifest(tg, "scoped.yaml", busyboxManifest(NS, "scoped", image));
    const other = await createWaiver(sec, NS, ["--check", "image-reference", "--deployment", "not-scoped"]);
    const otherImage = await createWaiver(sec, NS, ["--check", "image-reference", "--image", `sha256:${"0".repeat(64)}`]);
    expect([other.code, otherImage.code]).toEqual([0, 0]);
    const dry = await dryRun(m);
    expect(dry.code).toBe(1);
    expect(dry.review.admission.denials.map((x) => x.check)).toEqual(["image-reference"]);
    expect(dry.review.admission.results.some((r) => r.waiver !== undefined)).toBe(false);

    const mine = await createWaiver(sec, NS, ["--check", "image-reference", "--image", digest]);
    expect(mine.code, mine.stderr).toBe(0);
    const ok = await dryRun(m);
    expect(ok.code).toBe(0);
    expect(ok.review.admission.warnings.map((x) => x.waiver)).toEqual([mine.waiver!.id]);
  }, {}, 90_000);
});
