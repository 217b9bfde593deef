/**
 * Secret values leak nowhere. A real gateway (`portcullis serve` in its own process, at
 * debug log level), the real CLI and the real engine: three secrets with distinctive
 * random values are created through the CLI (from files and from standard input), two
 * deployments mount them (one under runsc, one under runc), and a developer is refused a
 * read and a deploy. Then each value, its base64, base64url and hex are looked for in:
 * the gateway's logs; the audit log (an export and the table itself); every API answer
 * seen (errors included); `docker inspect` of the containers and their environment
 * (/proc/1/environ); the SQLite file and its WAL; and the process list, sampled while
 * `secret create` runs. Each place is its own test, which fails if a value is found there.
 * A positive test reads each value inside its container, so the search is not vacuous.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { stringify } from "yaml";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { runCli, type CliResult } from "../support/cli.js";
import { FIXTURE_OSV_DIR } from "../support/vulndb.js";
import { dockerCliResult, freePort } from "../support/containers.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, newTestRun } from "../support/docker.js";
import { apiCall, busyboxManifest, signRequest, type ApiClient } from "../runtime/deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const ROOT = resolve(import.meta.dirname, "../..");
const NS = `leak-${run.id}`;
const TMPFS_ROOT = `/dev/shm/portcullis-leak-${run.id}`;

interface Secret {
  readonly name: string;
  readonly value: Buffer;
  /** The value as text, base64, base64url, hex (and the text without a trailing newline). */
  readonly forms: string[];
}

function secret(name: string, trailingNewline = false): Secret {
  const text = `pcleak-${name}-${randomBytes(16).toString("hex")}`;
  const value = Buffer.from(trailingNewline ? `${text}\n` : text);
  return { name, value, forms: [text, value.toString("base64"), value.toString("base64url"), value.toString("hex"), Buffer.from(text).toString("base64")] };
}

const SECRETS = [secret("db-password"), secret("api-token", true), secret("tls-key")];
/** Where each deployment mounts what: [deployment, runtime, [secret, path][]]. */
const MOUNTS: [string, "sandboxed" | "standard", [Secret, string][]][] = [
  ["leak-gvisor", "sandboxed", [[SECRETS[0]!, "/run/secrets/db-password"], [SECRETS[1]!, "/run/secrets/api/token"]]],
  ["leak-runc", "standard", [[SECRETS[1]!, "/run/secrets/token"], [SECRETS[2]!, "/run/secrets/tls/key.pem"]]],
];

let root = "";
let dataDir = "";
let gateway: ChildProcess | undefined;
let gatewayLog = "";
let adminProfile = "";
let devProfile = "";
let image = "";
/** Every answer of the API seen: CLI output (stdout and stderr) and raw bodies. */
const answers: string[] = [];
/** `ps -eo args` samples taken while `secret create` ran. */
const psSamples: string[] = [];
let auditExport = "";
let containers: { id: string; deployment: string }[] = [];

function found(haystack: string | Buffer, secrets = SECRETS): string[] {
  const hits: string[] = [];
  for (const s of secrets) {
    for (const f of s.forms) if (haystack.includes(f)) hits.push(`${s.name} as ${f.slice(0, 12)}…`);
  }
  return hits;
}

async function cli(profile: string, args: readonly string[], input?: string): Promise<CliResult> {
  const r = await runCli(args, { env: { PORTCULLIS_PROFILE: profile }, timeoutMs: 180_000, ...(input !== undefined ? { input } : {}) });
  answers.push(r.stdout, r.stderr);
  return r;
}

/** Runs `secret create` while sampling the process list as often as it can. */
async function createWhileSampling(args: readonly string[], input?: string): Promise<CliResult> {
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const { stdout } = await promisify(execFile)("ps", ["-eo", "args"], { maxBuffer: 8 * 1024 * 1024 });
      psSamples.push(stdout);
    }
  })();
  try {
    return await cli(adminProfile, args, input);
  } finally {
    done = true;
    await sampler;
  }
}

function devClient(): ApiClient {
  const p = JSON.parse(readFileSync(devProfile, "utf8")) as { trustDomain: string; caBundle: string; certificate: string; privateKey: string; server: string };
  return { trustDomain: p.trustDomain, caPem: p.caBundle, certPem: p.certificate, keyPem: p.privateKey };
}

async function startServe(): Promise<void> {
  gateway = spawn(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), "serve", "--data-dir", dataDir], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_LOG_LEVEL: "debug" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  gateway.stdout?.on("data", (c: Buffer) => (gatewayLog += c.toString()));
  gateway.stderr?.on("data", (c: Buffer) => (gatewayLog += c.toString()));
  const deadline = Date.now() + 60_000;
  while (!gatewayLog.includes("portcullis serving")) {
    if (Date.now() > deadline || gateway.exitCode !== null) throw new Error(`the gateway did not start:\n${gatewayLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describeDocker("secret values leak nowhere", () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "portcullis-leak-"));
    dataDir = join(root, "data");
    const [api, boot] = [await freePort(), await freePort()];
    const init = await runCli(["-o", "json", "init", "--data-dir", dataDir, "--listen", `127.0.0.1:${api}`, "--bootstrap-listen", `127.0.0.1:${boot}`]);
    expect(init.code, init.stderr).toBe(0);
    const initOut = JSON.parse(init.stdout) as { caFingerprint: string; adminProfile: string };
    adminProfile = initOut.adminProfile;
    // The scanner's database, as an operator imports it on the gateway's host.
    const imported = await runCli(["vulndb", "import", FIXTURE_OSV_DIR, "--data-dir", dataDir]);
    expect(imported.code, imported.stderr).toBe(0);
    const configPath = join(dataDir, "config.json");
    const config = JSON.parse(readFileSync(configPath, "utf8")) as Record<string, unknown>;
    writeFileSync(configPath, JSON.stringify({ ...config, secrets: { keyring: "file", tmpfsRoot: TMPFS_ROOT } }, null, 2), { mode: 0o600 });
    await startServe();

    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    const imageId = (JSON.parse(await dockerCli(["image", "inspect", image])) as { Id: string }[])[0]!.Id;

    // A developer, enrolled the real way.
    expect((await cli(adminProfile, ["namespace", "create", NS])).code).toBe(0);
    const tok = await cli(adminProfile, ["-o", "json", "enroll-token", "create", "user:dev1"]);
    expect(tok.code, tok.stderr).toBe(0);
    devProfile = join(root, "dev1.profile.json");
    const enrolled = await cli(adminProfile, ["enroll", (JSON.parse(tok.stdout) as { token: string }).token, "--server", `127.0.0.1:${boot}`, "--ca-fingerprint", initOut.caFingerprint, "--profile-out", devProfile]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect((await cli(adminProfile, ["role", "bind", "user:dev1", "developer", "-n", NS])).code).toBe(0);

    // The secrets, through the CLI: from files and from standard input, with ps watching.
    for (const [i, s] of SECRETS.entries()) {
      let r: CliResult;
      if (i === 1) {
        r = await createWhileSampling(["secret", "create", s.name, "-n", NS, "--from-stdin"], s.value.toString());
      } else {
        const file = join(root, `${s.name}.value`);
        writeFileSync(file, s.value, { mode: 0o600 });
        r = await createWhileSampling(["secret", "create", s.name, "-n", NS, "--from-file", file]);
        rmSync(file);
      }
      expect(r.code, r.stderr).toBe(0);
    }
    expect(psSamples.length).toBeGreaterThan(3);
    expect(psSamples.some((p) => p.includes("secret create"))).toBe(true);

    // The developer deploys (runsc and runc) and is refused a read.
    for (const [name, runtime, mounts] of MOUNTS) {
      const manifest = busyboxManifest(NS, name, `portcullis-test/busybox@${imageId}`, { runtime, secrets: mounts.map(([s, path]) => ({ name: s.name, path })) });
      const file = join(root, `${name}.yaml`);
      writeFileSync(file, stringify(manifest));
      const r = await cli(devProfile, ["-o", "json", "deploy", "-f", file]);
      expect(r.code, r.stderr).toBe(0);
    }
    const refusedRead = await cli(devProfile, ["secret", "read", SECRETS[0]!.name, "-n", NS]);
    expect(refusedRead.code).toBe(1);
    expect(refusedRead.stderr).toContain("PC_API_FORBIDDEN");
    const dev = devClient();
    const api2 = `127.0.0.1:${api}`;
    const raw = await apiCall(api2, dev, "POST", `/v1/namespaces/${NS}/secrets/${SECRETS[0]!.name}/read`, {});
    expect(raw.status).toBe(403);
    answers.push(raw.body ?? "");
    // A refused deploy: a missing secret and a path outside /run/secrets.
    const bad = busyboxManifest(NS, "leak-refused", `portcullis-test/busybox@${imageId}`, {
      secrets: [{ name: SECRETS[0]!.name, path: "/etc/db-password" }, { name: "missing", path: "/run/secrets/missing" }],
    });
    const refusedDeploy = await apiCall(api2, dev, "POST", `/v1/namespaces/${NS}/deployments`, { request: await signRequest(dev, "create", bad) });
    expect(refusedDeploy.status).toBe(403);
    expect(refusedDeploy.body).toContain("secret path not allowed");
    expect(refusedDeploy.body).toContain("secret not found");
    answers.push(refusedDeploy.body ?? "");
    // Everything else a client sees: metadata, the deployments, the keyring.
    for (const args of [["secret", "list", "-n", NS], ["secret", "get", SECRETS[1]!.name, "-n", NS], ["secrets", "kek-status"]]) {
      expect((await cli(adminProfile, ["-o", "json", ...args])).code).toBe(0);
    }
    for (const [name] of MOUNTS) {
      expect((await cli(devProfile, ["-o", "json", "get", "deployment", name, "-n", NS])).code).toBe(0);
      expect((await cli(devProfile, ["logs", name, "-n", NS])).code).toBe(0);
    }
    for (const path of [`/v1/namespaces/${NS}/secrets`, `/v1/namespaces/${NS}/deployments`, "/v1/keyring"]) {
      const a = await apiCall(api2, dev, "GET", path);
      answers.push(a.body ?? "");
    }

    const exportFile = join(root, "audit.jsonl");
    const ex = await cli(adminProfile, ["audit", "export", "-o", exportFile]);
    expect(ex.code, ex.stderr).toBe(0);
    auditExport = readFileSync(exportFile, "utf8");

    const ps = await dockerCli(["ps", "--filter", `label=io.portcullis.namespace=${NS}`, "--format", '{{.ID}} {{.Label "io.portcullis.deployment"}}']);
    containers = ps.split("\n").filter((l) => l.trim() !== "").map((l) => ({ id: l.split(" ")[0]!, deployment: l.split(" ")[1]! }));
  }, 300_000);

  afterAll(async () => {
    if (gateway !== undefined && gateway.exitCode === null) {
      const exited = new Promise((r) => gateway!.once("exit", r));
      gateway.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (gateway.exitCode === null) {
        gateway.kill("SIGKILL");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      }
    }
    await engine.removeByLabel(`io.portcullis.namespace=${NS}`).catch(() => undefined);
    await dockerCli(["network", "rm", `pc-ns-${NS}`]).catch(() => undefined);
    await cleanupTestRun(engine, run, image).catch(() => undefined);
    await promisify(execFile)("rm", ["-rf", TMPFS_ROOT]).catch(() => undefined);
    if (root !== "") rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it("each value is readable inside its containers, at its path (so the searches below can fail)", async () => {
    expect(containers.map((c) => c.deployment).sort()).toEqual(["leak-gvisor", "leak-runc"]);
    for (const c of containers) {
      const [, runtime, mounts] = MOUNTS.find(([name]) => name === c.deployment)!;
      const inspect = JSON.parse(await dockerCli(["inspect", c.id])) as { HostConfig: { Runtime: string } }[];
      expect(inspect[0]!.HostConfig.Runtime).toBe(runtime === "sandboxed" ? "runsc" : "runc");
      for (const [s, path] of mounts) {
        const r = await dockerCliResult(["exec", c.id, "/bin/cat", path]);
        expect(r.code, r.stderr).toBe(0);
        expect(Buffer.from(r.stdout).equals(s.value)).toBe(true);
        expect(found(r.stdout, [s])).not.toEqual([]);
      }
    }
  });

  it("not in the gateway's logs (debug level)", () => {
    expect(gatewayLog.length).toBeGreaterThan(1000);
    expect(gatewayLog).toContain("incoming request");
    expect(found(gatewayLog)).toEqual([]);
  });

  it("not in the audit log: the export, and the audit_log table", () => {
    expect(auditExport).toContain("secret.created");
    expect(found(auditExport)).toEqual([]);
    const db = new Database(join(dataDir, "portcullis.db"), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("SELECT * FROM audit_log").all();
      expect(rows.length).toBeGreaterThan(20);
      expect(found(JSON.stringify(rows))).toEqual([]);
    } finally {
      db.close();
    }
  });

  it("not in any API answer seen, errors included", () => {
    const all = answers.join("\n");
    expect(all).toContain("PC_API_FORBIDDEN");
    expect(all).toContain("secret not found");
    expect(found(all)).toEqual([]);
  });

  it("not in docker inspect, nor in the containers' environment", async () => {
    for (const c of containers) {
      const inspect = await dockerCli(["inspect", c.id]);
      expect(inspect).toContain("/run/secrets");
      expect(found(inspect), `docker inspect ${c.deployment}`).toEqual([]);
      const env = await dockerCliResult(["exec", c.id, "/bin/cat", "/proc/1/environ"]);
      expect(env.code, env.stderr).toBe(0);
      expect(env.stdout).toContain("PATH=");
      expect(found(env.stdout), `environ of ${c.deployment}`).toEqual([]);
    }
  });

  it("not in the SQLite file nor its WAL, in any table or as raw bytes", () => {
    const files = ["portcullis.db", "portcullis.db-wal"].map((f) => join(dataDir, f)).filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = readFileSync(f);
      expect(found(bytes), f).toEqual([]);
      for (const s of SECRETS) expect(bytes.includes(s.value), `${f}: ${s.name} as raw bytes`).toBe(false);
    }
    const db = new Database(join(dataDir, "portcullis.db"), { readonly: true, fileMustExist: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
      expect(tables).toContain("secret_versions");
      const versions = db.prepare("SELECT COUNT(*) AS n FROM secret_versions").get() as { n: number };
      expect(versions.n).toBe(SECRETS.length);
      for (const t of tables) expect(found(JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).all())), t).toEqual([]);
    } finally {
      db.close();
    }
  });

  it("not in the process list while `secret create` runs", () => {
    expect(found(psSamples.join("\n"))).toEqual([]);
  });
});
