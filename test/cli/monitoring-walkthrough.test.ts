/**
 * The README's monitoring walkthrough, as written, through the real CLI, a real gateway
 * and the real engine under gVisor: the security team makes an exec quarantine, someone
 * execs into a replica, the alert is there with its evidence, the container ends paused
 * and off every network, the deployment says quarantined; the alert is acknowledged and
 * the quarantine released, and a fresh replica takes the held one's place.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import { describeDocker, itDocker, newTestRun } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { cleanupDeployments, cli, eventually, writeFile, writeProfile } from "../runtime/deploy-support.js";

const sh = promisify(execFile);
const run = newTestRun();
const engine = new DockerEngine();
const NS = `watch-${run.id}`;
const TAG = `portcullis-test/hello:${run.id}`;
const ROOT = resolve(import.meta.dirname, "../..");
let tg: TestGateway;
let dev: string;
let sec: string;
let imageId = "";

/** Runs a line of the walkthrough with bash, in the test's directory, with the namespace of this test. */
async function bash(line: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await sh("bash", ["-c", line.replaceAll("payments", NS)], { cwd: tg.root, env: { ...process.env, ...env } });
  return stdout;
}

describeDocker("the README's monitoring walkthrough", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { reconcileIntervalMs: 500, rollout: { pollMs: 100, settleMs: 500 } } });
    tg.gw.namespaces.create(NS, { "portcullis.io/runtime": "sandboxed" }, { identity: "user:admin" });
    tg.gw.policy.bind("user:alice", "developer", NS, { identity: "user:admin" });
    tg.gw.policy.bind("user:sec", "security-admin", "*", { identity: "user:admin" });
    dev = writeProfile(tg, "alice", tg.issueClient("user:alice"), "user:alice");
    sec = writeProfile(tg, "sec", tg.issueClient("user:sec"), "user:sec");
    imageId = (await sh("bash", [resolve(ROOT, "scripts/demo-image.sh"), TAG])).stdout.trim();
    const manifest = readFileSync(resolve(ROOT, "examples/hello.yaml"), "utf8").replace("namespace: payments", `namespace: ${NS}`).replaceAll("local/hello:1", `portcullis-test/hello@${imageId}`);
    writeFile(tg, "hello.yaml", manifest);
  }, 120_000);

  afterAll(async () => {
    await tg?.close();
    await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [NS], run).catch(() => undefined);
    await engine.removeImage(imageId).catch(() => undefined);
  }, 60_000);

  itDocker("exec into a container, see the alert, see it quarantined, release it", async () => {
    const deployed = await cli(dev, ["deploy", "-f", join(tg.root, "hello.yaml")]);
    expect(deployed.code, deployed.stderr).toBe(0);
    // The engine runs the admitted healthcheck as an exec every 2 s: that is no exec into the container.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(tg.gw.store.monitorEvents.list({ type: "container", limit: 10_000 }).some((e) => e.action.startsWith("exec_start: /bin/test -f /tmp/ready"))).toBe(true);
    expect(tg.gw.alerts.list({ rule: "exec-into-container" })).toEqual([]);

    // The security team: the rules in force, exec made a quarantine, applied.
    const got = await cli(sec, ["-o", "yaml", "monitoring", "rules", "get"]);
    expect(got.code, got.stderr).toBe(0);
    writeFileSync(join(tg.root, "rules.yaml"), got.stdout);
    await bash(`sed -i '/name: exec-into-container/,/^    actions:/s/^    actions: \\[alert\\]/    actions: [alert, quarantine]/' rules.yaml`);
    const applied = await cli(sec, ["monitoring", "rules", "apply", "-f", join(tg.root, "rules.yaml"), "-m", "quarantine on exec"]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(tg.gw.monitoringRules.current().set.rules.find((r) => r.name === "exec-into-container")?.actions).toEqual(["alert", "quarantine"]);

    // Someone with access to the engine execs into a replica.
    const container = (await bash(`docker ps --filter label=io.portcullis.namespace=payments --filter label=io.portcullis.deployment=hello --format '{{.Names}}' | head -1`)).trim();
    expect(container).toMatch(new RegExp(`^pc-[0-9a-f]+-${NS}-hello-r1-[01]$`));
    await bash(`docker exec "$C" id`, { C: container });

    const listed = await eventually(async () => {
      const r = await cli(sec, ["alerts", "list", "--open", "--severity", "critical"]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { id: string; rule: string; container: string }[]).find((a) => a.container === container);
    }, 10_000, "the exec alert listed");
    expect(listed.rule).toBe("exec-into-container");

    const alert = await eventually(async () => {
      const r = await cli(sec, ["alerts", "get", listed.id]);
      expect(r.code, r.stderr).toBe(0);
      const a = JSON.parse(r.stdout) as { actions: { action: string; state: string }[]; evidence: { first: { event: { action: string } } } };
      return a.actions.some((x) => x.action === "quarantine" && x.state === "done") ? a : undefined;
    }, 15_000, "the quarantine done");
    expect(alert.evidence.first.event.action.trim()).toMatch(/^exec_(create|start): id$/);

    expect((await bash(`docker inspect -f '{{.State.Status}} {{len .NetworkSettings.Networks}}' "$C"`, { C: container })).trim()).toBe("paused 0");
    const d = await cli(dev, ["get", "deployment", "hello", "-n", NS]);
    expect(d.code, d.stderr).toBe(0);
    const view = JSON.parse(d.stdout) as { quarantined: { container: string; rule: string }[]; containers: { container: string; state: string }[] };
    expect(view.quarantined).toEqual([expect.objectContaining({ container, rule: "exec-into-container" })]);
    expect(view.containers.find((c) => c.container === container)?.state).toBe("quarantined");
    // The developer reads no alerts.
    const devAlerts = await cli(dev, ["alerts", "get", listed.id]);
    expect(devAlerts.code).not.toBe(0);
    expect(devAlerts.stderr).toContain("PC_MONITOR_ALERT_NOT_FOUND");

    const acked = await cli(sec, ["alerts", "ack", listed.id, "--note", "on-call debugging, ticket SEC-301"]);
    expect(acked.code, acked.stderr).toBe(0);
    expect(JSON.parse(acked.stdout)).toMatchObject({ status: "acked", ack: { by: "user:sec", note: "on-call debugging, ticket SEC-301" } });
    const released = await cli(sec, ["quarantine", "release", container, "--note", "memory and filesystem captured"]);
    expect(released.code, released.stderr).toBe(0);
    await eventually(async () => {
      const r = JSON.parse((await cli(dev, ["get", "deployment", "hello", "-n", NS])).stdout) as typeof view & { ready: number };
      return r.quarantined.length === 0 && r.containers.length === 2 && r.containers.every((c) => c.state === "running") ? true : undefined;
    }, 60_000, "two running replicas again, none held");
  }, { runtimes: ["runsc"] }, 240_000);
});
