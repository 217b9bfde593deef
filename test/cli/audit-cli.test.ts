/**
 * The auditor's walkthrough of the README through the real CLI process: an administrator
 * binds user:aud to auditor and hands out a token, the auditor enrolls, exports the last
 * hour of denied requests to a file, and verifies it offline, with no profile, no data
 * dir and no server running. A one-field edit, a wrong pinned CA, and the live log of
 * the stopped gateway's data dir.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatFingerprint, writeProfile } from "../../src/pki/index.js";
import { call } from "../api/rbac-support.js";
import { runCli } from "../support/cli.js";
import { startTestGateway, tempDir, type TestGateway } from "../support/gateway.js";
import { buildDeployLog, JTI_BOB } from "../audit/signed-request-support.js";
import { exportLines } from "../audit/support.js";

const OK = /^ok: (\d+) entries, seq (\d+)\.\.(\d+), last checkpoint at seq (\d+), (\d+) signed requests$/m;

describe("auditor walkthrough: audit export, then audit verify offline", () => {
  let t: TestGateway;
  const elsewhere = tempDir("portcullis-auditor-");
  const bundle = join(elsewhere.dir, "denied.jsonl");
  let fingerprint = "";
  let exported = "";

  beforeAll(async () => {
    t = await startTestGateway();
    fingerprint = formatFingerprint(t.rootFingerprint);
    const adminEnv = { PORTCULLIS_PROFILE: join(t.root, "admin.profile.json") };
    writeProfile(adminEnv.PORTCULLIS_PROFILE, t.adminProfile);

    const [token, bind] = await Promise.all([
      runCli(["enroll-token", "create", "user:aud", "-o", "json"], { env: adminEnv }),
      runCli(["role", "bind", "user:aud", "auditor", "-n", "*"], { env: adminEnv }),
    ]);
    expect(token.code, token.stderr).toBe(0);
    expect(bind.code, bind.stderr).toBe(0);
    const audProfile = join(elsewhere.dir, "aud.profile.json");
    const enrolled = await runCli(
      ["enroll", (JSON.parse(token.stdout) as { token: string }).token, "--server", t.bootstrap, "--ca-fingerprint", fingerprint, "--profile-out", audProfile],
    );
    expect(enrolled.code, enrolled.stderr).toBe(0);

    // Denied requests to find: an enrolled identity bound to no role.
    const nobody = t.issueClient("user:nobody");
    for (const path of ["/v1/namespaces", "/v1/audit/export", "/v1/policy"]) expect((await call(t, nobody, "GET", path)).status).toBe(403);

    const ex = await runCli(["audit", "export", "--since", "1h", "--outcome", "denied", "-o", bundle], { env: { PORTCULLIS_PROFILE: audProfile } });
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toBe("");
    expect(existsSync(bundle)).toBe(true);
    expect(statSync(bundle).mode & 0o077).toBe(0);
    exported = readFileSync(bundle, "utf8");
    // The auditor's export is in the log, by user:aud.
    const log = [...t.gw.audit.entries(0, t.gw.audit.head().seq)];
    expect(log.filter((e) => e.head.type === "audit.export" && e.head.actor === "user:aud")).toHaveLength(1);
    // From here on there is no server.
    await t.stop();
  });
  afterAll(async () => {
    await t?.close();
    elsewhere.cleanup();
  });

  /** No profile, no data dir, no server: only the file and the pinned fingerprint. */
  const offline = () => ({ env: { PORTCULLIS_PROFILE: join(elsewhere.dir, "no-such.profile.json"), PORTCULLIS_DATA_DIR: join(elsewhere.dir, "no-such-dir") } });

  it("verifies the bundle (exit 0, ok: N entries, seq A..B, last checkpoint at seq C); one edited field, or a wrong CA, fails with exit 1", async () => {
    const lines = exported.split("\n").filter(Boolean);
    const entryLines = lines.map((l, i) => ({ i, o: JSON.parse(l) as { kind: string; entry?: { head: { seq: number; outcome: string }; body?: { status?: number } } } })).filter((x) => x.o.kind === "entry");
    expect(entryLines.length).toBeGreaterThanOrEqual(6); // three requests, each with its RBAC decision
    expect(entryLines.every((x) => x.o.entry?.head.outcome === "denied")).toBe(true);

    // One field of one entry line edited: 403 becomes 200.
    const victim = entryLines.find((x) => x.o.entry?.body?.status === 403);
    expect(victim).toBeDefined();
    const tampered = [...lines];
    tampered[victim?.i as number] = (lines[victim?.i as number] as string).replace('"status":403', '"status":200');
    expect(tampered[victim?.i as number]).not.toBe(lines[victim?.i as number]);
    const tamperedFile = join(elsewhere.dir, "tampered.jsonl");
    writeFileSync(tamperedFile, `${tampered.join("\n")}\n`);

    const [ok, bad, wrongCa] = await Promise.all([
      runCli(["audit", "verify", bundle, "--ca-fingerprint", fingerprint], offline()),
      runCli(["audit", "verify", tamperedFile, "--ca-fingerprint", fingerprint], offline()),
      runCli(["audit", "verify", bundle, "--ca-fingerprint", `SHA256:${"ab".repeat(32)}`], offline()),
    ]);

    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const m = OK.exec(ok.stdout);
    expect(m, ok.stdout).not.toBeNull();
    const [n, from, to, last, signed] = (m as RegExpExecArray).slice(1).map(Number);
    expect(n).toBe(entryLines.length);
    expect(signed).toBe(0); // no deploys in this log
    expect(from).toBe(0); // the log is younger than an hour
    expect(to).toBe(last);
    expect(to).toBeGreaterThanOrEqual(Math.max(...entryLines.map((x) => x.o.entry?.head.seq as number)));
    expect(ok.stdout).toContain(`root CA: ${fingerprint} (pinned)`);

    expect(bad.code, bad.stdout + bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`^FAIL at seq ${victim?.o.entry?.head.seq}: hash mismatch`, "m"));

    expect(wrongCa.code, wrongCa.stdout + wrongCa.stderr).toBe(1);
    expect(wrongCa.stdout).toMatch(/^FAIL/m);
    expect(wrongCa.stdout).not.toMatch(/^ok:/m);
  });

  it("audit verify --data-dir verifies the stopped gateway's whole log in place", async () => {
    const r = await runCli(["audit", "verify", "--data-dir", t.dataDir, "--ca-fingerprint", fingerprint], offline());
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const m = OK.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const [n, from, to, last] = (m as RegExpExecArray).slice(1).map(Number);
    expect(from).toBe(0);
    expect(to).toBe(last);
    expect(n).toBe((to as number) + 1);
  });
});

describe("audit verify FILE with signed deploy requests (offline, real CLI process)", () => {
  const dir = tempDir("portcullis-signed-");
  afterAll(() => dir.cleanup());

  it("counts the re-verified signed requests; a bad one fails with exit 1 at its jti", async () => {
    const d = await buildDeployLog();
    const lines = await exportLines(d.source);
    const good = join(dir.dir, "good.jsonl");
    writeFileSync(good, `${lines.join("\n")}\n`);
    const i = lines.findIndex((l) => (JSON.parse(l) as { jti?: string }).jti === JTI_BOB);
    const bad = join(dir.dir, "bad.jsonl");
    const swapped = { ...(JSON.parse(lines[i] as string) as Record<string, unknown>), signerCertificate: d.alice.certPem };
    writeFileSync(bad, `${[...lines.slice(0, i), JSON.stringify(swapped), ...lines.slice(i + 1)].join("\n")}\n`);
    const fp = formatFingerprint(d.pki.ca.rootFingerprint);
    const env = { env: { PORTCULLIS_PROFILE: join(dir.dir, "no-such.profile.json"), PORTCULLIS_DATA_DIR: join(dir.dir, "no-such-dir") } };
    const [ok, fail] = await Promise.all([runCli(["audit", "verify", good, "--ca-fingerprint", fp], env), runCli(["audit", "verify", bad, "--ca-fingerprint", fp], env)]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(OK.exec(ok.stdout)?.slice(1).map(Number)).toEqual([6, 0, 5, 5, 2]);
    expect(fail.code, fail.stdout + fail.stderr).toBe(1);
    expect(fail.stdout).toMatch(new RegExp(`^FAIL at signed-request ${JTI_BOB}: bad signed request: .*the signer certificate is not the one the header names$`, "m"));
    expect(fail.stdout).not.toMatch(/^ok:/m);
  });
});
