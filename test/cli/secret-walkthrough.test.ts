/**
 * The README's secrets walkthrough, run as written: its two shell blocks are taken from
 * README.md and run with bash against a real gateway and the real engine (under gVisor),
 * with only these substitutions, each of which must match the README: the namespace,
 * the developer's profile, the demo image's tag, and absolute paths to the repository's
 * scripts and examples. `portcullis` is the real CLI. Then `secret delete` is refused
 * while the deployment runs and `--force` stops it first.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { cli, gatewayContainers, writeProfile } from "../runtime/deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `rs-${run.id}`;
const ROOT = resolve(import.meta.dirname, "../..");
const DEMO_REPO = `portcullis-test/hello-${run.id}`;
/** The tsx loader by URL, so that the CLI runs from any working directory. */
const TSX = pathToFileURL(join(ROOT, "node_modules/tsx/dist/loader.mjs")).href;
const TMPFS_ROOT = `/dev/shm/portcullis-walkthrough-${run.id}`;
let tg: TestGateway;
let admin: string;
let dev: string;

/** The fenced sh blocks of the README section that starts with `heading`, up to the next heading. */
function readmeBlocks(heading: string): string[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = readme.indexOf(heading);
  expect(start, `README has ${heading}`).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf("\n### ", start + heading.length);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

function substitute(text: string, pairs: [string, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    expect(out, `the README block has ${JSON.stringify(from)}`).toContain(from);
    out = out.replaceAll(from, to);
  }
  return out;
}

/** Runs a block with bash, `portcullis` being the real CLI; every call's exit code and arguments go to a log. */
async function runBlock(script: string, profile: string, rcLog: string): Promise<{ stdout: string; stderr: string }> {
  const prelude = [
    `portcullis() { ${JSON.stringify(process.execPath)} --import ${JSON.stringify(TSX)} ${JSON.stringify(join(ROOT, "src/cli/main.ts"))} "$@"; local rc=$?; echo "$rc $*" >> ${JSON.stringify(rcLog)}; return $rc; }`,
    "",
  ].join("\n");
  const file = join(tg.root, `block-${Date.now()}.sh`);
  writeFileSync(file, prelude + script);
  try {
    return await promisify(execFile)("bash", [file], {
      cwd: tg.root,
      env: { ...process.env, PORTCULLIS_PROFILE: profile, PORTCULLIS_LOG_LEVEL: "warn" },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 300_000,
    });
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number };
    return { stdout: x.stdout ?? "", stderr: `${x.stderr ?? ""}\n(bash exited ${x.code})` };
  }
}

function rcLines(rcLog: string): [number, string][] {
  return readFileSync(rcLog, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => [Number(l.slice(0, l.indexOf(" "))), l.slice(l.indexOf(" ") + 1)]);
}

describeDocker("the README's secrets walkthrough", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { secretsTmpfsRoot: TMPFS_ROOT, reconcileIntervalMs: 3_600_000, rollout: { pollMs: 100, settleMs: 500 } } });
    tg.gw.namespaces.create(NS, {}, { identity: "user:admin" });
    tg.gw.policy.bind("user:alice", "developer", NS, { identity: "user:admin" });
    admin = writeProfile(tg, "admin", tg.admin, "user:admin");
    dev = writeProfile(tg, "alice", tg.issueClient("user:alice"), "user:alice");
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await engine.removeByLabel(`io.portcullis.namespace=${NS}`).catch(() => undefined);
    await dockerCli(["network", "rm", `pc-ns-${NS}`]).catch(() => undefined);
    await dockerCli(["image", "rm", "-f", `${DEMO_REPO}:1`]).catch(() => undefined);
    await promisify(execFile)("rm", ["-rf", TMPFS_ROOT]).catch(() => undefined);
  });

  itDocker("admin stores a secret from a file; a developer mounts it, reads it in the container, not through the gateway", async () => {
    const blocks = readmeBlocks("### Secrets: the administrator stores one, a developer mounts it");
    expect(blocks).toHaveLength(2);
    const rcLog = join(tg.root, "rc.log");
    const ns: [string, string] = ["-n payments", `-n ${NS}`];

    // 1. As the administrator.
    const b1 = await runBlock(substitute(blocks[0]!, [ns]), admin, rcLog);
    const first = rcLines(rcLog);
    expect(first.map(([rc, args]) => [rc, args.split(" ").slice(0, 2).join(" ")]), b1.stderr).toEqual([[0, "secret create"], [0, "secret list"]]);
    expect(b1.stdout).toMatch(/^name\s+db-password$/m);
    expect(b1.stdout).toMatch(/^size\s+25$/m);
    const value = (await tg.gw.secrets.read(NS, "db-password", undefined, { id: "service:test" })).value.toString("utf8");
    expect(value).toMatch(/^[A-Za-z0-9+/]{24}\n$/);
    expect(b1.stdout + b1.stderr).not.toContain(value.trim());

    // 2. As the developer.
    const b2 = await runBlock(
      substitute(blocks[1]!, [
        ns,
        ["~/.portcullis-alice.json", dev],
        ["bash scripts/demo-image.sh", `bash ${join(ROOT, "scripts/demo-image.sh")} ${DEMO_REPO}:1`],
        ['sed "s|local/hello:1|local/hello@$ID|" examples/hello.yaml', `sed -e "s|local/hello:1|${DEMO_REPO}@$ID|" -e "s|namespace: payments|namespace: ${NS}|" ${join(ROOT, "examples/hello.yaml")}`],
        ["label=io.portcullis.namespace=payments", `label=io.portcullis.namespace=${NS}`],
      ]),
      admin,
      rcLog,
    );
    const second = rcLines(rcLog).slice(first.length);
    expect(second.map(([rc, args]) => [rc, args.split(" ").slice(0, 2).join(" ")]), `${b2.stdout}\n${b2.stderr}`).toEqual([
      [0, "deploy -f"],
      [0, "secret get"],
      [1, "secret read"],
    ]);
    // The value, read in the container by `docker exec ... cat`, and nowhere else in the output.
    expect(b2.stdout.split(value).length - 1).toBe(1);
    expect(b2.stdout).toMatch(/^usedBy\s+hello \(revision 1, version 1, \/run\/secrets\/db-password\)$/m);
    expect(b2.stderr).toContain("error: PC_API_FORBIDDEN: not allowed");
    expect(b2.stderr).not.toContain(value.trim());

    // The containers run under gVisor, with the secret pinned.
    const running = await gatewayContainers(tg.gw.deployments.gatewayId);
    expect(running.map((c) => c.state)).toEqual(["running", "running"]);
    for (const c of running) {
      const inspect = JSON.parse(await dockerCli(["inspect", c.name])) as { HostConfig: { Runtime: string } }[];
      expect(inspect[0]!.HostConfig.Runtime).toBe("runsc");
    }

    // Deleting the secret is refused while hello runs; --force stops hello first.
    const refused = await cli(admin, ["secret", "delete", "db-password", "-n", NS]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("PC_SECRETS_IN_USE");
    expect(refused.stderr).toContain("hello");
    const forced = await cli(admin, ["secret", "delete", "db-password", "-n", NS, "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ namespace: NS, name: "db-password", deleted: true, stopped: ["hello"] });
    expect(await gatewayContainers(tg.gw.deployments.gatewayId)).toEqual([]);
    const got = JSON.parse((await cli(dev, ["get", "deployment", "hello", "-n", NS])).stdout) as { replicas: number };
    expect(got.replicas).toBe(0);
    const stopped = tg.gw.store.db.prepare("SELECT body FROM audit_log WHERE type = 'deploy.stopped'").all() as { body: string }[];
    expect(stopped.map((r) => (JSON.parse(r.body) as { reasons?: string[] }).reasons?.[0])).toContain("secret db-password deleted with --force by user:admin");
  }, { runtimes: ["runsc"] }, 300_000);
});
