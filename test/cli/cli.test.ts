import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/core/index.js";
import { formatFingerprint, writeProfile, type ClientProfile } from "../../src/pki/index.js";
import { Store } from "../../src/store/index.js";
import { runCli } from "../support/cli.js";
import { startTestGateway, tempDir, type TestGateway } from "../support/gateway.js";

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase();

describe("portcullis init (CLI)", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it("creates a data dir, prints the CA fingerprint, and refuses to touch it again", async () => {
    const dir = join(tmp.dir, "d");
    const r = await runCli(["init", "--data-dir", dir, "--trust-domain", "example.test", "--san", "gw.example.test", "-o", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { caFingerprint: string; adminProfile: string; trustDomain: string };
    expect(out.caFingerprint).toMatch(/^SHA256:[0-9a-f]{64}$/);
    expect(out.trustDomain).toBe("example.test");
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(out.adminProfile).mode & 0o777).toBe(0o600);
    const before = readFileSync(join(dir, "ca", "root.crt"), "utf8");
    const again = await runCli(["init", "--data-dir", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("PC_STORE_DATA_DIR_EXISTS");
    expect(readFileSync(join(dir, "ca", "root.crt"), "utf8")).toBe(before);
  });

  it("takes the data dir from PORTCULLIS_DATA_DIR", async () => {
    const dir = join(tmp.dir, "from-env");
    const r = await runCli(["init", "-o", "json"], { env: { PORTCULLIS_DATA_DIR: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(dir, "portcullis-data.json"))).toBe(true);
  });

  it("seeds the RBAC policy from --rbac-policy (a first secret-reader binding), and refuses an invalid one leaving nothing", async () => {
    const shipped = readFileSync(join(import.meta.dirname, "../../policies/rbac/policy.csv"), "utf8");
    const file = join(tmp.dir, "policy.csv");
    writeFileSync(file, `${shipped}\ng, user:vault-op, secret-reader, payments\n`);
    const dir = join(tmp.dir, "with-policy");
    const r = await runCli(["init", "--data-dir", dir, "--rbac-policy", file, "-o", "json"]);
    expect(r.code, r.stderr).toBe(0);
    const store = Store.open(dir);
    try {
      expect(store.policyVersions.latest()?.csv).toContain("g, user:vault-op, secret-reader, payments");
    } finally {
      store.close();
    }
    const bad = join(tmp.dir, "bad.csv");
    writeFileSync(bad, "p, developer, *, deployments, fly, allow\n");
    const refused = await runCli(["init", "--data-dir", join(tmp.dir, "bad-policy"), "--rbac-policy", bad]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("PC_RBAC_POLICY_INVALID");
    expect(existsSync(join(tmp.dir, "bad-policy"))).toBe(false);
  });

  it("exits 2 on bad usage", async () => {
    for (const args of [["nosuch"], ["init", "--trust-domain", "Bad_Domain", "--data-dir", join(tmp.dir, "x")], ["cert", "revoke"]]) {
      const r = await runCli(args, { env: { PORTCULLIS_PROFILE: join(tmp.dir, "none.json") } });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
    }
    expect(existsSync(join(tmp.dir, "x"))).toBe(false);
  });
});

describe("enrollment, whoami, renewal and revocation through the CLI", () => {
  let t: TestGateway;
  let adminProfile: string;
  const env = () => ({ PORTCULLIS_PROFILE: adminProfile });

  beforeAll(async () => {
    t = await startTestGateway();
    adminProfile = join(t.root, "admin-live.json");
    writeProfile(adminProfile, t.adminProfile);
  });
  afterAll(async () => {
    await t.close();
  });

  async function newToken(identity: string): Promise<string> {
    const r = await runCli(["enroll-token", "create", identity, "--ttl", "10m", "-o", "json"], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { token: string; identity: string };
    expect(out.identity).toBe(identity);
    return out.token;
  }

  it("enrolls alice with a pinned fingerprint; the key never leaves; whoami sees user:alice", async () => {
    const token = await newToken("user:alice");
    const profile = join(t.root, "alice.json");
    const r = await runCli(["enroll", token, "--server", t.bootstrap, "--ca-fingerprint", formatFingerprint(t.rootFingerprint), "--profile-out", profile, "-o", "json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(profile).mode & 0o777).toBe(0o600);
    const p = JSON.parse(readFileSync(profile, "utf8")) as ClientProfile;
    expect(p.identity).toBe("user:alice");
    expect(p.server).toBe(t.api);
    // The private key in the profile was generated locally: the server never stored it.
    const db = readFileSync(join(t.dataDir, "portcullis.db")).toString("latin1") + (existsSync(join(t.dataDir, "portcullis.db-wal")) ? readFileSync(join(t.dataDir, "portcullis.db-wal")).toString("latin1") : "");
    const keyBody = p.privateKey.split("\n").slice(1, 3).join("");
    expect(db.includes(keyBody)).toBe(false);
    const who = await runCli(["whoami", "-o", "json"], { env: { PORTCULLIS_PROFILE: profile } });
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout).identity).toBe("user:alice");

    const reuse = await runCli(["enroll", token, "--server", t.bootstrap, "--ca-fingerprint", formatFingerprint(t.rootFingerprint), "--profile-out", join(t.root, "alice-again.json")]);
    expect(reuse.code).toBe(1);
    expect(reuse.stderr).toContain("PC_PKI_TOKEN_USED");
    expect(existsSync(join(t.root, "alice-again.json"))).toBe(false);
  });

  it("refuses a server whose CA does not match the pinned fingerprint, writing nothing", async () => {
    const token = await newToken("user:mallory");
    const out = join(t.root, "mallory.json");
    const r = await runCli(["enroll", token, "--server", t.bootstrap, "--ca-fingerprint", `SHA256:${"ab".repeat(32)}`, "--profile-out", out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PC_PKI_CA_FINGERPRINT_MISMATCH");
    expect(existsSync(out)).toBe(false);
    // The token was not consumed by the refused attempt.
    const ok = await runCli(["enroll", token, "--server", t.bootstrap, "--ca-fingerprint", formatFingerprint(t.rootFingerprint), "--profile-out", out]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("renews on request with a new key and a new serial", async () => {
    const token = await newToken("user:bob");
    const profile = join(t.root, "bob.json");
    expect((await runCli(["enroll", token, "--server", t.bootstrap, "--ca-fingerprint", t.rootFingerprint, "--profile-out", profile])).code).toBe(0);
    const before = JSON.parse(readFileSync(profile, "utf8")) as ClientProfile;
    const r = await runCli(["cert", "renew", "-o", "json"], { env: { PORTCULLIS_PROFILE: profile } });
    expect(r.code, r.stderr).toBe(0);
    const after = JSON.parse(readFileSync(profile, "utf8")) as ClientProfile;
    expect(serialOf(after.certificate)).not.toBe(serialOf(before.certificate));
    expect(after.privateKey).not.toBe(before.privateKey);
    expect(JSON.parse(r.stdout).serial).toBe(serialOf(after.certificate));
    const who = await runCli(["whoami", "-o", "json"], { env: { PORTCULLIS_PROFILE: profile } });
    expect(JSON.parse(who.stdout).serial).toBe(serialOf(after.certificate));
  });

  it("renews by itself once two thirds of the lifetime have passed", async () => {
    // A 24 h certificate issued 17 h ago: valid, but past two thirds of its life.
    const issuedAt = new ManualClock(Date.now() - 17 * 3_600_000);
    const c = t.issueClient("user:carol", { clock: issuedAt, lifetimeMs: 24 * 3_600_000 });
    const profile = join(t.root, "carol.json");
    writeProfile(profile, { ...t.adminProfile, identity: "user:carol", certificate: c.certPem, privateKey: c.keyPem });
    const who = await runCli(["whoami", "-o", "json"], { env: { PORTCULLIS_PROFILE: profile } });
    expect(who.code, who.stderr).toBe(0);
    const after = JSON.parse(readFileSync(profile, "utf8")) as ClientProfile;
    expect(serialOf(after.certificate)).not.toBe(c.serial);
    expect(JSON.parse(who.stdout).serial).toBe(serialOf(after.certificate));
    const x = new X509Certificate(after.certificate);
    expect(new Date(x.validTo).getTime() - Date.now()).toBeGreaterThan(23 * 3_600_000);
  });

  it("does not renew a fresh certificate", async () => {
    const c = t.issueClient("user:dave");
    const profile = join(t.root, "dave.json");
    writeProfile(profile, { ...t.adminProfile, identity: "user:dave", certificate: c.certPem, privateKey: c.keyPem });
    const who = await runCli(["whoami", "-o", "json"], { env: { PORTCULLIS_PROFILE: profile } });
    expect(who.code, who.stderr).toBe(0);
    expect(JSON.parse(who.stdout).serial).toBe(c.serial);
  });

  it("revokes by serial and by identity; the revoked profile is refused at the handshake", async () => {
    const c = t.issueClient("user:erin");
    const profile = join(t.root, "erin.json");
    writeProfile(profile, { ...t.adminProfile, identity: "user:erin", certificate: c.certPem, privateKey: c.keyPem });
    expect((await runCli(["whoami"], { env: { PORTCULLIS_PROFILE: profile } })).code).toBe(0);

    const r = await runCli(["cert", "revoke", c.serial, "--reason", "keyCompromise", "-o", "json"], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).revoked).toEqual([c.serial]);
    const denied = await runCli(["whoami"], { env: { PORTCULLIS_PROFILE: profile } });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("PC_CLI_TLS_FAILED");

    const f1 = t.issueClient("user:frank");
    const f2 = t.issueClient("user:frank");
    const pending = await newToken("user:frank");
    const byId = await runCli(["cert", "revoke", "--identity", "user:frank", "-o", "json"], { env: env() });
    expect(byId.code, byId.stderr).toBe(0);
    const out = JSON.parse(byId.stdout) as { revoked: string[]; tokensRevoked: number };
    expect(out.revoked.sort()).toEqual([f1.serial, f2.serial].sort());
    expect(out.tokensRevoked).toBe(1);
    const late = await runCli(["enroll", pending, "--server", t.bootstrap, "--ca-fingerprint", t.rootFingerprint, "--profile-out", join(t.root, "frank.json")]);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain("PC_PKI_TOKEN_REVOKED");

    const list = await runCli(["cert", "list", "--identity", "user:frank", "-o", "json"], { env: env() });
    const items = JSON.parse(list.stdout) as { serial: string; status: string }[];
    expect(items.map((i) => i.status)).toEqual(["revoked", "revoked"]);
  });

  it("refuses admin commands for a non-admin with PC_API_FORBIDDEN", async () => {
    const c = t.issueClient("user:gina");
    const profile = join(t.root, "gina.json");
    writeProfile(profile, { ...t.adminProfile, identity: "user:gina", certificate: c.certPem, privateKey: c.keyPem });
    const r = await runCli(["enroll-token", "create", "user:x"], { env: { PORTCULLIS_PROFILE: profile } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PC_API_FORBIDDEN");
  });

  it("refuses a profile readable by others, and a missing one", async () => {
    const loose = join(t.root, "loose.json");
    writeFileSync(loose, JSON.stringify(t.adminProfile), { mode: 0o644 });
    const r = await runCli(["whoami"], { env: { PORTCULLIS_PROFILE: loose } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("PC_CLI_PROFILE_INVALID");
    const m = await runCli(["whoami"], { env: { PORTCULLIS_PROFILE: join(t.root, "missing.json") } });
    expect(m.code).toBe(1);
    expect(m.stderr).toContain("PC_CLI_PROFILE_MISSING");
  });
});
