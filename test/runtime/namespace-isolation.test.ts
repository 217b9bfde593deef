/**
 * Namespace networks, end to end: deployments with `network.mode: namespace` made through
 * the gateway in two namespaces. From inside a container of namespace A, the other
 * containers of A answer on their addresses on A's network; those of namespace B do not.
 * Checked from a runc container and from a runsc (gVisor) one.
 */
import { request } from "node:https";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseHostPort } from "../../src/core/index.js";
import { signDeployRequest, type Manifest } from "../../src/deploy/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { fetchInContainer, fetchInContainerEventually } from "../support/containers.js";
import { buildBusyboxImage, describeDocker, dockerCli, newTestRun } from "../support/docker.js";
import { startTestGateway, type ClientFiles, type TestGateway } from "../support/gateway.js";
import { busyboxManifest, cleanupDeployments } from "./deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const A = `nsa-${run.id}`;
const B = `nsb-${run.id}`;

/** Serves its own deployment name on port 8080. */
const serve = (name: string): string[] => ["/bin/sh", "-c", `echo hello-${name} > /tmp/index.html && exec httpd -f -p 8080 -h /tmp`];

interface Target {
  readonly ns: string;
  readonly name: string;
  readonly runtime: "standard" | "sandboxed";
  id?: string;
  ip?: string;
}

const TARGETS: Target[] = [
  { ns: A, name: "a-std", runtime: "standard" },
  { ns: A, name: "a-sbx", runtime: "sandboxed" },
  { ns: B, name: "b-std", runtime: "standard" },
  { ns: B, name: "b-sbx", runtime: "sandboxed" },
];
const byName = (n: string): Target => TARGETS.find((t) => t.name === n) as Target;

let tg: TestGateway;
let image: string;
/** The image by digest (`repo@<image id>`), as admission requires. */
let imageRef: string;
let dev: ClientFiles;

/** A signed request over mutual TLS, waiting as long as a rollout may take. */
async function deploy(ns: string, m: Manifest, op: "create" | "delete" = "create"): Promise<{ status: number; body: string }> {
  const jws = await signDeployRequest({ op, manifest: m, trustDomain: tg.gw.config.trustDomain, privateKeyPem: dev.keyPem, certificatePem: dev.certPem });
  const payload = JSON.stringify({ request: jws });
  const { host, port } = parseHostPort(tg.api);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host, port, method: "POST", path: `/v1/namespaces/${ns}/deployments`, agent: false, timeout: 60_000,
        ca: tg.caPem, cert: dev.certPem, key: dev.keyPem,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(payload);
  });
}

describeDocker(
  "namespace networks: a namespace reaches its own containers, never another namespace's",
  () => {
    beforeAll(async () => {
      tg = await startTestGateway({ start: { rollout: { pollMs: 100, settleMs: 300 } } });
      image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
      imageRef = `portcullis-test/busybox@${(await engine.inspectImage(image))!.id}`;
      dev = tg.issueClient("user:dev1");
      for (const ns of [A, B]) {
        tg.gw.namespaces.create(ns, {}, { identity: "user:admin" });
        tg.gw.policy.bind("user:dev1", "developer", ns, { identity: "user:admin" });
      }
      for (const t of TARGETS) {
        const m = busyboxManifest(t.ns, t.name, imageRef, { runtime: t.runtime, command: serve(t.name), network: { mode: "namespace" } });
        const r = await deploy(t.ns, m as unknown as Manifest);
        expect(r.status, `${t.name}: ${r.body}`).toBe(200);
        t.id = (JSON.parse(r.body) as { placement: { containerId: string }[] }).placement[0]?.containerId;
        const [info] = JSON.parse(await dockerCli(["inspect", t.id as string])) as [
          { HostConfig: { NetworkMode: string; Runtime: string }; NetworkSettings: { Networks: Record<string, { IPAddress: string }> } },
        ];
        expect(info.HostConfig.NetworkMode).toBe(`pc-ns-${t.ns}`);
        expect(info.HostConfig.Runtime).toBe(t.runtime === "sandboxed" ? "runsc" : "runc");
        expect(Object.keys(info.NetworkSettings.Networks)).toEqual([`pc-ns-${t.ns}`]);
        t.ip = info.NetworkSettings.Networks[`pc-ns-${t.ns}`]?.IPAddress;
        expect(t.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      }
    }, 90_000);

    afterAll(async () => {
      await tg?.close();
      if (tg !== undefined) await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [A, B], run).catch(() => undefined);
      if (image !== undefined) await engine.removeImage(image).catch(() => undefined);
    });

    it("each namespace has its own network, on its own subnet", async () => {
      const subnets = await Promise.all(
        [A, B].map(async (ns) => {
          const [n] = JSON.parse(await dockerCli(["network", "inspect", `pc-ns-${ns}`])) as [{ Driver: string; IPAM: { Config: { Subnet: string }[] } }];
          expect(n.Driver).toBe("bridge");
          return n.IPAM.Config[0]?.Subnet;
        }),
      );
      expect(subnets[0]).not.toBe(subnets[1]);
    });

    it.each([
      ["a-std", "runc"],
      ["a-sbx", "runsc"],
    ])("from %s (%s): A's other container answers, B's containers do not", async (from, _oci) => {
      const peer = from === "a-std" ? byName("a-sbx") : byName("a-std");
      const source = byName(from).id as string;
      const [own, bStd, bSbx] = await Promise.all([
        fetchInContainerEventually(source, peer.ip as string, `hello-${peer.name}`),
        fetchInContainer(source, byName("b-std").ip as string),
        fetchInContainer(source, byName("b-sbx").ip as string),
      ]);
      expect(own).toContain(`hello-${peer.name}`);
      expect(bStd).not.toContain("hello-");
      expect(bSbx).not.toContain("hello-");
    }, 60_000);

    it("the same holds from B towards A", async () => {
      const source = byName("b-std").id as string;
      const [own, aStd] = await Promise.all([fetchInContainerEventually(source, byName("b-sbx").ip as string, "hello-b-sbx"), fetchInContainer(source, byName("a-std").ip as string)]);
      expect(own).toContain("hello-b-sbx");
      expect(aStd).not.toContain("hello-");
    }, 30_000);

    it("deleting a namespace's last deployment removes its network; the other namespace keeps its own", async () => {
      for (const t of TARGETS.filter((x) => x.ns === B)) {
        const rev = tg.gw.store.deployments.revisions(B, t.name)[0];
        const m = JSON.parse(rev?.manifest ?? "{}") as Manifest;
        const r = await deploy(B, m, "delete");
        expect(r.status, r.body).toBe(200);
      }
      const nets = (await dockerCli(["network", "ls", "--format", "{{.Name}}"])).split("\n");
      expect(nets).not.toContain(`pc-ns-${B}`);
      expect(nets).toContain(`pc-ns-${A}`);
    }, 60_000);
  },
  { runtimes: ["runc", "runsc"] },
);
