/**
 * Namespace networks on the real engine: containers of one namespace reach each other,
 * and never a container of another namespace (under runc and under runsc); ensuring a
 * namespace's network is idempotent under concurrent calls; an unused network is removed.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentSpec } from "../../src/deploy/index.js";
import {
  MANAGED_LABEL,
  NAMESPACE_NETWORK_OPTIONS,
  NETWORK_NAMESPACE_LABEL,
  containerSpecFor,
  ensureNamespaceNetwork,
  namespaceNetworkName,
  removeNamespaceNetworkIfUnused,
  resolveImage,
  type DockerEngine,
  type ResolvedImage,
} from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, newTestRun, testEngine } from "../support/docker.js";
import { dockerCliResult, fetchInContainer, fetchInContainerEventually, waitRunning } from "../support/containers.js";
import { rejection } from "../support/refusal.js";

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const DIGEST = `sha256:${"12".repeat(32)}`;

describeDocker(
  "namespace networks on a real engine",
  () => {
    const run = newTestRun();
    let engine: DockerEngine;
    let tag: string;
    let image: ResolvedImage;
    let counter = 0;

    beforeAll(async () => {
      engine = testEngine();
      tag = await buildBusyboxImage(engine, run, { variant: "net", user: "10001:10001" });
      image = (await resolveImage(engine, tag))!;
    });

    afterAll(async () => {
      if (engine !== undefined) await cleanupTestRun(engine, run, tag);
    });

    async function startIn(namespace: string, network: string, runtime: DeploymentSpec["runtime"], args: string[]): Promise<string> {
      const spec: DeploymentSpec = {
        name: `app${counter}`, namespace, labels: run.labels, image: tag, args, env: {}, replicas: 1,
        resources: { nanoCpus: 250_000_000, memoryBytes: 48 * MiB, pids: 16 }, runtime,
        network: { mode: "namespace", ports: [] }, placement: { nodeLabels: {}, spread: false },
        update: { maxSurge: 1, maxUnavailable: 0 }, secrets: [],
      };
      const create = containerSpecFor(spec, {
        containerName: `pc-test-${run.id}-${counter++}`, gatewayId: `test-${run.id}`, revision: 1, ordinal: 0,
        jti: `jti-${run.id}`, manifestDigest: DIGEST, imageId: image.id, user: image.user, publishHost: "127.0.0.1",
        allowPublicBind: false, networkName: network,
      });
      const id = await engine.create(create);
      await engine.start(id);
      await waitRunning(engine, id);
      return id;
    }

    async function ipOf(id: string, network: string): Promise<string> {
      const info = await engine.inspectContainerConfig(id);
      const ip = info?.NetworkSettings.Networks[network]?.IPAddress;
      if (ip === undefined || ip === "") throw new Error(`container ${id} has no address on ${network}`);
      return ip;
    }

    const server = (text: string) => ["/bin/sh", "-c", `echo ${text} > /tmp/index.html && exec httpd -f -p 8080 -h /tmp`];

    describe.each(["standard", "sandboxed"] as const)("runtime class %s", (runtime) => {
      const nsA = `a-${runtime}-${run.id}`;
      const nsB = `b-${runtime}-${run.id}`;
      let netA: string;
      let netB: string;
      let a1: string;
      let a2: string;
      let b1: string;

      beforeAll(async () => {
        netA = await ensureNamespaceNetwork(engine, nsA, { labels: run.labels });
        netB = await ensureNamespaceNetwork(engine, nsB, { labels: run.labels });
        [a1, a2, b1] = await Promise.all([
          startIn(nsA, netA, runtime, server(`from-${nsA}`)),
          startIn(nsA, netA, runtime, ["/bin/sleep", "600"]),
          startIn(nsB, netB, runtime, server(`from-${nsB}`)),
        ]);
      });

      it("puts each namespace on its own bridge network", async () => {
        expect(netA).toBe(namespaceNetworkName(nsA));
        const [info] = JSON.parse(await dockerCli(["network", "inspect", netA])) as [
          { Driver: string; Labels: Record<string, string>; Options: Record<string, string>; Containers: Record<string, unknown> },
        ];
        expect(info.Driver).toBe("bridge");
        expect(info.Labels).toMatchObject({ [MANAGED_LABEL]: "true", [NETWORK_NAMESPACE_LABEL]: nsA });
        expect(info.Options).toMatchObject(NAMESPACE_NETWORK_OPTIONS);
        expect(Object.keys(info.Containers).sort()).toEqual([a1, a2].sort());
        expect(await ipOf(b1, netB)).not.toBe(await ipOf(a1, netA));
      });

      it("lets a container reach another of its namespace by IP", async () => {
        const got = await fetchInContainerEventually(a2, await ipOf(a1, netA), `from-${nsA}`);
        expect(got.trim().split("\n").at(-1)).toBe(`from-${nsA}`);
      });

      it("keeps a container from reaching a container of another namespace", async () => {
        const ipA = await ipOf(a1, netA);
        const ipB = await ipOf(b1, netB);
        // The controls first: both servers answer inside their own namespace, so a silence
        // below is the network's doing, not a server still starting.
        expect(await fetchInContainerEventually(b1, ipB, `from-${nsB}`)).toContain(`from-${nsB}`);
        expect(await fetchInContainerEventually(a2, ipA, `from-${nsA}`)).toContain(`from-${nsA}`);
        expect(await fetchInContainer(a2, ipB)).not.toContain(`from-${nsB}`);
        expect(await fetchInContainer(b1, ipA)).not.toContain(`from-${nsA}`);
      });

      if (runtime === "standard") {
        it("cannot ping even its own namespace: without NET_RAW there is no raw socket", async () => {
          const same = await dockerCliResult(["exec", a2, "/bin/ping", "-c", "1", "-W", "2", await ipOf(a1, netA)]);
          expect(same.code).not.toBe(0);
          expect(same.stderr).toMatch(/permission denied/);
        });
      }

      it("keeps a network while a container uses it, and removes it once unused", async () => {
        expect(await removeNamespaceNetworkIfUnused(engine, nsB)).toBe(false);
        expect(await engine.inspectNetwork(netB)).toBeDefined();
        await engine.stopAndRemove(b1, 1);
        expect(await removeNamespaceNetworkIfUnused(engine, nsB)).toBe(true);
        expect(await engine.inspectNetwork(netB)).toBeUndefined();
        expect(await removeNamespaceNetworkIfUnused(engine, nsB)).toBe(false);
      });
    });

    it("ends with one network when many calls ensure it at once", async () => {
      const ns = `c-${run.id}`;
      const names = await Promise.all(Array.from({ length: 8 }, () => ensureNamespaceNetwork(engine, ns, { labels: run.labels })));
      expect(new Set(names)).toEqual(new Set([`pc-ns-${ns}`]));
      const listed = await engine.listNetworks([`${NETWORK_NAMESPACE_LABEL}=${ns}`]);
      expect(listed).toHaveLength(1);
      expect(await ensureNamespaceNetwork(engine, ns)).toBe(`pc-ns-${ns}`);
      expect((await engine.listNetworks([`${NETWORK_NAMESPACE_LABEL}=${ns}`])).map((n) => n.id)).toEqual([listed[0]!.id]);
    });

    it("removes a younger twin of the same name and keeps the oldest", async () => {
      const ns = `d-${run.id}`;
      await ensureNamespaceNetwork(engine, ns, { labels: run.labels });
      const [first] = await engine.listNetworks([`${NETWORK_NAMESPACE_LABEL}=${ns}`]);
      // The engine takes a second network of one name when the duplicate check is off.
      const body = JSON.stringify({
        Name: `pc-ns-${ns}`, CheckDuplicate: false, Driver: "bridge",
        Labels: { ...run.labels, [MANAGED_LABEL]: "true", [NETWORK_NAMESPACE_LABEL]: ns },
      });
      await execFileAsync("curl", ["-sS", "--fail", "--unix-socket", "/var/run/docker.sock", "-H", "Content-Type: application/json",
        "-X", "POST", "-d", body, "http://localhost/v1.41/networks/create"]);
      expect(await engine.listNetworks([`${NETWORK_NAMESPACE_LABEL}=${ns}`])).toHaveLength(2);
      expect(await ensureNamespaceNetwork(engine, ns)).toBe(`pc-ns-${ns}`);
      expect((await engine.listNetworks([`${NETWORK_NAMESPACE_LABEL}=${ns}`])).map((n) => n.id)).toEqual([first!.id]);
    });

    it("refuses a network of that name that portcullis does not manage", async () => {
      const ns = `e-${run.id}`;
      await dockerCli(["network", "create", "--label", `${Object.keys(run.labels)[1]}=${run.id}`, "--label", "io.portcullis.test=1", `pc-ns-${ns}`]);
      const e = await rejection(ensureNamespaceNetwork(engine, ns));
      expect({ code: e.code, detail: e.detail }).toEqual({
        code: "PC_RUNTIME_ENGINE_FAILED",
        detail: `network pc-ns-${ns} exists and is not managed by portcullis`,
      });
    });

    it("refuses a namespace that is not a DNS label", async () => {
      const e = await rejection(ensureNamespaceNetwork(engine, "Bad_NS"));
      expect(e.detail).toBe("container spec namespace: must be a DNS label");
    });

    it("leaves no network of the run behind but those cleanup removes", async () => {
      const left = await engine.listNetworks([run.selector]);
      for (const n of left) expect(n.name.startsWith("pc-ns-")).toBe(true);
    });
  },
  { runtimes: ["runc", "runsc"] },
);
