/**
 * Runtime monitoring of a real gateway watching the real local engine: a `docker exec`
 * into a managed container, a stray `docker run`, a memory bomb, a crash loop, a
 * replaced container on another runtime, a gateway restart between two events.
 */
import Docker from "dockerode";
import { afterAll, beforeAll, expect } from "vitest";
import { DockerEngine } from "../../src/runtime/index.js";
import type { Alert } from "../../src/monitoring/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun, RUN_LABEL, TEST_LABEL } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import {
  apiCall,
  busyboxManifest,
  cleanupDeployments,
  deploymentContainers,
  developerIn,
  eventually,
  getDeployment,
  pinnedRef,
  postSigned,
  signRequest,
  type ApiClient,
} from "../runtime/deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const docker = new Docker();
const NS = `mon-${run.id}`;
const RESOURCES = { cpus: 0.25, memory: "32Mi", pids: 64 };

let tg: TestGateway;
let dev: ApiClient;
let image = "";
let imageRef = "";
let gatewayId = "";
const strays: string[] = [];

async function deploy(name: string, spec: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  const m = busyboxManifest(NS, name, imageRef, { resources: RESOURCES, ...spec });
  const r = await postSigned(tg.api, dev, NS, await signRequest(dev, "create", m));
  expect(r.status, r.body ?? r.error).toBe(200);
  return m;
}

async function runningContainer(name: string): Promise<string> {
  return eventually(
    async () => (await deploymentContainers(docker, gatewayId, name)).find((c) => c.state === "running")?.name,
    30_000,
    `a running container of ${name}`,
  );
}

function alertsOf(rule: string, container?: string): Alert[] {
  return tg.gw.alerts.list({ rule }).filter((a) => container === undefined || a.container === container);
}

function alertOf(rule: string, container: string | undefined, timeoutMs: number): Promise<Alert> {
  return eventually(async () => alertsOf(rule, container)[0], timeoutMs, `an alert of ${rule} for ${container ?? "any container"}`, 50);
}

async function inspect(name: string): Promise<{ Id: string; State: { Paused: boolean; Running: boolean; Status: string }; NetworkSettings: { Networks: Record<string, unknown> } }> {
  return (JSON.parse(await dockerCli(["inspect", "--type", "container", name])) as never[])[0]!;
}

const rulesText = (execActions: string): string => `apiVersion: portcullis.io/v1
kind: MonitoringRules
rules:
  - name: exec-into-container
    description: Someone ran a command inside a managed container.
    severity: critical
    scope: { managed: true }
    match:
      event: { type: container, actions: [exec_create, exec_start] }
    actions: [${execActions}]
  - name: container-drift
    description: A container the gateway did not create.
    severity: high
    match:
      event: { type: portcullis, actions: [drift] }
  - name: runtime-mismatch
    description: A managed container on another runtime than the admitted one.
    severity: critical
    match:
      event: { type: portcullis, actions: [runtime_mismatch] }
  - name: oom-killed
    description: The kernel killed a process of a managed container for memory.
    severity: medium
    scope: { managed: true }
    match:
      event: { type: container, actions: [oom] }
  - name: crash-loop
    description: A managed container that keeps dying.
    severity: medium
    scope: { managed: true }
    match:
      restarts: { count: 3, within: 10m }
`;

describeDocker("runtime monitoring against a real engine", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { reconcileIntervalMs: 500, rollout: { pollMs: 100, settleMs: 500 }, monitoring: { statsIntervalMs: 1_000 } } });
    gatewayId = tg.gw.deployments.gatewayId;
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = await pinnedRef(image);
    dev = developerIn(tg, NS);
    await eventually(async () => (tg.gw.monitoring.streamStates()["local"]?.state === "up" ? true : undefined), 15_000, "the local event stream up");
  }, 90_000);

  afterAll(async () => {
    await tg?.close();
    for (const s of strays) await dockerCli(["rm", "-f", s]).catch(() => undefined);
    await cleanupDeployments(engine, gatewayId, [NS], run).catch(() => undefined);
    await cleanupTestRun(engine, run, image).catch(() => undefined);
  }, 90_000);

  itDocker("raises a critical alert within 2 s of a docker exec into a managed container", async () => {
    await deploy("web");
    const container = await runningContainer("web");
    expect(alertsOf("exec-into-container", container)).toHaveLength(0);
    await dockerCli(["exec", container, "id"]);
    const alert = await alertOf("exec-into-container", container, 10_000);
    expect(alert.severity).toBe("critical");
    expect(alert.namespace).toBe(NS);
    expect(alert.deployment).toBe("web");
    expect(alert.node).toBe("local");
    const first = alert.evidence.first;
    expect(first.kind).toBe("event");
    if (first.kind !== "event") throw new Error("evidence is not an event");
    expect(first.event.action.trim()).toMatch(/^exec_(create|start): id$/);
    // From the engine's event to the stored alert.
    expect(Date.parse(alert.firstSeen) - first.event.timeMs).toBeLessThan(2_000);
    // exec_create and exec_start of one exec are one alert (deduplicated), counted twice.
    const again = await eventually(async () => (alertsOf("exec-into-container", container)[0]!.count >= 2 ? alertsOf("exec-into-container", container)[0] : undefined), 5_000, "both exec events counted");
    expect(alertsOf("exec-into-container", container)).toHaveLength(1);
    expect(again.id).toBe(alert.id);
  });

  itDocker("quarantines on exec when the rules say so: paused, off every network, the deployment says quarantined, nothing replaces it", async () => {
    const applied = tg.gw.monitoringRules.apply(rulesText("alert, quarantine"), { identity: "user:admin" }, "quarantine on exec");
    expect(applied.version).toBeGreaterThan(1);
    await deploy("api", { replicas: 2 });
    const container = await runningContainer("api");
    await eventually(async () => ((await deploymentContainers(docker, gatewayId, "api")).filter((c) => c.state === "running").length === 2 ? true : undefined), 30_000, "two replicas running");
    expect(Object.keys((await inspect(container)).NetworkSettings.Networks)).not.toHaveLength(0);

    await dockerCli(["exec", container, "cat", "/etc/hostname"]);
    const alert = await alertOf("exec-into-container", container, 10_000);
    const st = await eventually(async () => {
      const i = await inspect(container);
      return i.State.Paused && Object.keys(i.NetworkSettings.Networks).length === 0 ? i : undefined;
    }, 15_000, "the container paused and disconnected");
    expect(st.State.Status).toBe("paused");
    const done = await eventually(async () => tg.gw.alerts.get(alert.id).actions.find((a) => a.action === "quarantine" && a.state === "done"), 10_000, "the quarantine action done");
    expect(done.attempts).toBeGreaterThanOrEqual(1);

    const view = await eventually(async () => {
      const r = await apiCall(tg.api, dev, "GET", `/v1/namespaces/${NS}/deployments/api`);
      const body = JSON.parse(r.body ?? "{}") as { quarantined?: { container: string }[] };
      return body.quarantined?.some((q) => q.container === container) ? body : undefined;
    }, 10_000, "the deployment view naming the quarantined container");
    expect(view.quarantined?.[0]?.container).toBe(container);

    // Reconcile passes: the quarantined container stays paused, nothing replaces it.
    await tg.gw.reconciler.reconcileOnce();
    await tg.gw.reconciler.reconcileOnce();
    const after = await deploymentContainers(docker, gatewayId, "api");
    expect(after).toHaveLength(2);
    expect((await inspect(container)).State.Paused).toBe(true);

    // A signed change of the deployment is refused while the quarantine holds.
    const scale = await postSigned(tg.api, dev, NS, await signRequest(dev, "scale", busyboxManifest(NS, "api", imageRef, { resources: RESOURCES, replicas: 3 })));
    expect(scale.status).toBe(409);
    expect(JSON.parse(scale.body ?? "{}").code).toBe("PC_MONITOR_QUARANTINED");

    // Released: the held container goes, a fresh replica takes its place.
    tg.gw.monitoringRules.apply(rulesText("alert"), { identity: "user:admin" }, "alert only");
    await tg.gw.quarantines.release(container, { identity: "user:admin" }, "forensics done");
    await eventually(async () => {
      const cs = await deploymentContainers(docker, gatewayId, "api");
      return cs.length === 2 && cs.every((c) => c.state === "running") && !cs.some((c) => c.id === st.Id) ? true : undefined;
    }, 30_000, "a fresh replica in place of the released one");
    const d = await getDeployment(tg.api, dev, NS, "api");
    expect(d?.containers.every((c) => c.state !== "quarantined")).toBe(true);
  });

  itDocker("raises a drift alert for a stray docker run on a managed node", async () => {
    const name = `pc-stray-${run.id}`;
    strays.push(name);
    await dockerCli(["run", "-d", "--name", name, "--label", TEST_LABEL, "--label", `${RUN_LABEL}=${run.id}`, image, "sleep", "30"]);
    const alert = await alertOf("container-drift", name, 10_000);
    expect(alert.severity).toBe("high");
    expect(alert.namespace).toBeNull();
    // A container the gateway made is no drift.
    expect(tg.gw.alerts.list({ rule: "container-drift" }).some((a) => a.container?.startsWith(`${NS}-`))).toBe(false);
  });

  itDocker("raises a critical alert for a managed replica replaced behind the gateway's back on another runtime", async () => {
    await deploy("sandboxed", { runtime: "sandboxed" });
    const container = await runningContainer("sandboxed");
    const labels = (JSON.parse(await dockerCli(["inspect", "--type", "container", container])) as { Config: { Labels: Record<string, string> } }[])[0]!.Config.Labels;
    // The reconciler would put the replica back first: it waits while the container is swapped.
    await tg.gw.reconciler.stop();
    try {
      await dockerCli(["rm", "-f", container]);
      // Same name, same labels, but runc instead of the admitted runsc.
      const args = ["run", "-d", "--name", container, "--runtime", "runc", "--label", `${RUN_LABEL}=${run.id}`];
      for (const [k, v] of Object.entries(labels)) args.push("--label", `${k}=${v}`);
      await dockerCli([...args, image, "sleep", "60"]);
    } finally {
      tg.gw.reconciler.start();
    }
    const alert = await alertOf("runtime-mismatch", container, 15_000);
    expect(alert.severity).toBe("critical");
    expect(alert.deployment).toBe("sandboxed");
    const first = alert.evidence.first;
    if (first.kind !== "event") throw new Error("evidence is not an event");
    expect(first.event.attributes).toMatchObject({ expected: "runsc", actual: "runc" });
  });

  itDocker("raises an OOM alert for a memory bomb in a 32 MiB container", async () => {
    await deploy("bomb", { command: ["/bin/sh", "-c", "sleep 1; x=$(head -c 200000000 /dev/zero | tr '\\000' a); sleep 600"] });
    const alert = await eventually(async () => tg.gw.alerts.list({ rule: "oom-killed" }).find((a) => a.deployment === "bomb"), 60_000, "an OOM alert");
    expect(alert.severity).toBe("medium");
    expect(alert.namespace).toBe(NS);
  });

  itDocker("raises a crash-loop alert for a command that keeps failing", async () => {
    // Runs long enough to pass its rollout, then keeps dying (the engine restarts it on failure).
    await deploy("crasher", { command: ["/bin/sh", "-c", "sleep 2; exit 3"] });
    const alert = await eventually(async () => tg.gw.alerts.list({ rule: "crash-loop" }).find((a) => a.deployment === "crasher"), 60_000, "a crash-loop alert");
    expect(alert.severity).toBe("medium");
    const first = alert.evidence.first;
    expect(first.kind).toBe("restarts");
    if (first.kind === "restarts") expect(first.count).toBeGreaterThanOrEqual(3);
  });

  itDocker("misses and duplicates nothing across a gateway restart between two events", async () => {
    await deploy("steady");
    const container = await runningContainer("steady");
    const execs = (): string[] =>
      tg.gw.store.monitorEvents
        .list({ type: "container", limit: 10_000 })
        .filter((e) => e.attributes.name === container && e.action.startsWith("exec_start"))
        .map((e) => e.action.trim());
    await dockerCli(["exec", container, "echo", "one"]);
    await eventually(async () => (execs().length === 1 ? true : undefined), 10_000, "the first exec recorded");
    await tg.stop();
    await dockerCli(["exec", container, "echo", "two"]);
    tg = await tg.restart();
    await eventually(async () => (execs().length === 2 ? true : undefined), 15_000, "the exec made while the gateway was down");
    // Give the stream time to deliver anything twice, then check nothing was.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(execs().sort()).toEqual(["exec_start: echo one", "exec_start: echo two"]);
    const alert = alertsOf("exec-into-container", container)[0]!;
    // exec_create + exec_start for each of the two execs.
    expect(alert.count).toBe(4);
  });
});
