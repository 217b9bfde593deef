/**
 * The containers of deployments made through the gateway (a signed request over mutual
 * TLS, RBAC, the controller), checked with an outside client, `docker inspect` from the
 * docker CLI, against every hardening rule, and from inside the running container. Under
 * runc and under runsc (gVisor), with a namespace network and a published port, and
 * without any network.
 */
import { execFile } from "node:child_process";
import { request } from "node:https";
import { networkInterfaces } from "node:os";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHostPort } from "../../src/core/index.js";
import { signDeployRequest, type Manifest } from "../../src/deploy/index.js";
import { DockerEngine, RUNSC_OVERHEAD } from "../../src/runtime/index.js";
import { dockerCliResult, freePort } from "../support/containers.js";
import { buildBusyboxImage, describeDocker, dockerCli, newTestRun } from "../support/docker.js";
import { startTestGateway, type ClientFiles, type TestGateway } from "../support/gateway.js";
import { busyboxManifest, cleanupDeployments } from "./deploy-support.js";

const execFileAsync = promisify(execFile);
const run = newTestRun();
const engine = new DockerEngine();
const NS = `hard-${run.id}`;
const MiB = 1024 * 1024;
const HTTPD = ["/bin/sh", "-c", "echo hello-portcullis > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"];

interface Decision {
  outcome: string;
  jti: string;
  manifestDigest: string;
  imageId: string;
  runtime: { requested: string; actual: string[] };
  placement: { container: string; node: string; runtime: string | null; containerId: string | null }[];
}

interface Inspected {
  Id: string;
  Image: string;
  Mounts: unknown[];
  Config: { User: string; Image: string; Labels: Record<string, string> };
  HostConfig: Record<string, unknown> & { Runtime: string; NetworkMode: string };
  NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null> };
}

interface Case {
  readonly name: string;
  readonly runtime: "standard" | "sandboxed";
  readonly oci: "runc" | "runsc";
  readonly network: "namespace" | "none";
  /** The manifest's user; undefined means the image's own (10002:10002). */
  readonly user: string | undefined;
  port?: number;
  decision?: Decision;
  info?: Inspected;
}

const CASES: Case[] = [
  { name: "web-std", runtime: "standard", oci: "runc", network: "namespace", user: "10001:10001" },
  { name: "web-sbx", runtime: "sandboxed", oci: "runsc", network: "namespace", user: "10001:10001" },
  { name: "quiet-sbx", runtime: "sandboxed", oci: "runsc", network: "none", user: undefined },
];

let tg: TestGateway;
let image: string;
/** The image by digest (`repo@<image id>`), as admission requires. */
let imageRef: string;
let dev: ClientFiles;

/** A signed deploy over mutual TLS, waiting as long as a rollout may take. */
async function deploy(m: Manifest): Promise<{ status: number; body: string }> {
  const jws = await signDeployRequest({
    op: "create",
    manifest: m,
    trustDomain: tg.gw.config.trustDomain,
    privateKeyPem: dev.keyPem,
    certificatePem: dev.certPem,
  });
  const payload = JSON.stringify({ request: jws });
  const { host, port } = parseHostPort(tg.api);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host, port, method: "POST", path: `/v1/namespaces/${NS}/deployments`, agent: false, timeout: 60_000,
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

async function curl(url: string): Promise<{ ok: boolean; body: string }> {
  try {
    const { stdout } = await execFileAsync("curl", ["-sS", "--max-time", "3", url]);
    return { ok: true, body: stdout };
  } catch {
    return { ok: false, body: "" };
  }
}

function otherHostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

describeDocker(
  "deployments made through the gateway, inspected by the docker CLI",
  () => {
    beforeAll(async () => {
      tg = await startTestGateway({ start: { rollout: { pollMs: 100, settleMs: 300 } } });
      image = await buildBusyboxImage(engine, run, { user: "10002:10002" });
      imageRef = `portcullis-test/busybox@${(await engine.inspectImage(image))!.id}`;
      tg.gw.namespaces.create(NS, {}, { identity: "user:admin" });
      dev = tg.issueClient("user:dev1");
      tg.gw.policy.bind("user:dev1", "developer", NS, { identity: "user:admin" });
      for (const c of CASES) if (c.network === "namespace") c.port = await freePort();
      const answers = await Promise.all(
        CASES.map((c) => {
          const m = busyboxManifest(NS, c.name, imageRef, {
            runtime: c.runtime,
            resources: { cpus: 0.5, memory: "64Mi", pids: 48 },
            ...(c.network === "namespace"
              ? { command: HTTPD, network: { mode: "namespace", ports: [{ container: 8080, host: c.port }] } }
              : {}),
          }) as { spec: Record<string, unknown> };
          if (c.user === undefined) delete m.spec.user;
          return deploy(m as unknown as Manifest);
        }),
      );
      expect(answers.map((a, i) => `${CASES[i]?.name} ${a.status} ${a.status === 200 ? "" : a.body}`)).toEqual(CASES.map((c) => `${c.name} 200 `));
      for (const [i, c] of CASES.entries()) {
        const a = answers[i] as { status: number; body: string };
        c.decision = JSON.parse(a.body) as Decision;
        const id = c.decision.placement[0]?.containerId;
        expect(id).toMatch(/^[a-f0-9]{64}$/);
        [c.info] = JSON.parse(await dockerCli(["inspect", id as string])) as [Inspected];
      }
    }, 90_000);

    afterAll(async () => {
      await tg?.close();
      if (tg !== undefined) await cleanupDeployments(engine, tg.gw.deployments.gatewayId, [NS], run).catch(() => undefined);
      if (image !== undefined) await engine.removeImage(image).catch(() => undefined);
    });

    describe.each(CASES.map((c) => [c.name, c] as const))("%s", (_name, c) => {
      const info = (): Inspected => c.info as Inspected;
      const h = (): Inspected["HostConfig"] => info().HostConfig;

      it("runs under the runtime the decision record reports, from the image id it names", () => {
        const d = c.decision as Decision;
        expect(d.outcome).toBe("deployed");
        expect(h().Runtime).toBe(c.oci);
        expect(d.runtime).toEqual({ requested: c.oci, actual: [h().Runtime] });
        expect(d.placement).toHaveLength(1);
        expect(d.placement[0]).toMatchObject({ node: "local", runtime: h().Runtime, containerId: info().Id });
        expect(info().Image).toBe(d.imageId);
        expect(info().Config.Image).toBe(d.imageId);
      });

      it("drops every capability, adds none back (NET_BIND_SERVICE at most), and is not privileged", () => {
        expect(h().CapDrop).toEqual(["ALL"]);
        for (const cap of (h().CapAdd as string[] | null) ?? []) expect(cap).toBe("NET_BIND_SERVICE");
        expect(h().Privileged).toBe(false);
      });

      it("sets no-new-privileges and never seccomp=unconfined", () => {
        const opts = h().SecurityOpt as string[];
        expect(opts.some((o) => /^no-new-privileges(:true)?$/.test(o))).toBe(true);
        expect(opts.some((o) => /seccomp[=:]unconfined/.test(o))).toBe(false);
        expect(JSON.stringify(info())).not.toContain("unconfined");
      });

      it("has a read-only root filesystem and a bounded noexec,nosuid,nodev tmpfs at /tmp", () => {
        expect(h().ReadonlyRootfs).toBe(true);
        const tmpfs = h().Tmpfs as Record<string, string>;
        expect(Object.keys(tmpfs)).toEqual(["/tmp"]);
        const opts = (tmpfs["/tmp"] as string).split(",");
        for (const o of ["noexec", "nosuid", "nodev"]) expect(opts).toContain(o);
        const size = opts.find((o) => o.startsWith("size="));
        expect(Number(size?.slice(5))).toBeGreaterThan(0);
        expect(Number(size?.slice(5))).toBeLessThanOrEqual(64 * MiB);
      });

      it("shares no host namespace and has no device, bind, mount or engine socket", () => {
        expect(h().NetworkMode).toBe(c.network === "none" ? "none" : `pc-ns-${NS}`);
        for (const k of ["PidMode", "IpcMode", "UTSMode", "UsernsMode"]) expect(h()[k] ?? "").not.toBe("host");
        expect(h().Devices ?? []).toEqual([]);
        expect(h().Binds ?? []).toEqual([]);
        expect(h().Mounts ?? []).toEqual([]);
        expect(info().Mounts).toEqual([]);
        expect(JSON.stringify(info())).not.toContain("docker.sock");
      });

      it("runs as a numeric non-root user: the manifest's, or the image's", () => {
        expect(info().Config.User).toMatch(/^[1-9][0-9]*:[1-9][0-9]*$/);
        expect(info().Config.User).toBe(c.user ?? "10002:10002");
      });

      it("bounds pids, memory (without swap) and CPU", () => {
        expect(h().PidsLimit).toBe(48 + (c.oci === "runsc" ? RUNSC_OVERHEAD.pids : 0));
        expect(h().Memory).toBe(64 * MiB);
        expect(h().MemorySwap).toBe(h().Memory);
        expect(h().NanoCpus).toBe(500_000_000);
      });

      it("restarts on failure at most 5 times and rotates a bounded json-file log", () => {
        expect(h().RestartPolicy).toEqual({ Name: "on-failure", MaximumRetryCount: 5 });
        const log = h().LogConfig as { Type: string; Config: Record<string, string> };
        expect(log.Type).toBe("json-file");
        expect(log.Config["max-size"]).toMatch(/^[0-9]+[kmg]?$/);
        expect(Number(log.Config["max-file"])).toBeGreaterThan(0);
      });

      it("carries the gateway's labels, matching the decision record", () => {
        const d = c.decision as Decision;
        expect(info().Config.Labels).toMatchObject({
          "io.portcullis.managed": "true",
          "io.portcullis.namespace": NS,
          "io.portcullis.deployment": c.name,
          "io.portcullis.revision": "1",
          "io.portcullis.jti": d.jti,
          "io.portcullis.digest": d.manifestDigest,
          "io.portcullis.gateway": tg.gw.deployments.gatewayId,
        });
      });

      it("cannot write to its root filesystem but can write to /tmp, as the configured uid", async () => {
        const id = info().Id;
        const root = await dockerCliResult(["exec", id, "/bin/touch", "/probe"]);
        expect(root.code).not.toBe(0);
        const scratch = await dockerCliResult(["exec", id, "/bin/touch", "/scratch/probe"]);
        expect(scratch.code).not.toBe(0);
        expect(scratch.stderr).toMatch(/Read-only file system/);
        const tmp = await dockerCliResult(["exec", id, "/bin/sh", "-c", "echo ok > /tmp/probe && cat /tmp/probe"]);
        expect(tmp, tmp.stderr).toMatchObject({ code: 0, stdout: "ok\n" });
        const uid = await dockerCliResult(["exec", id, "/bin/id", "-u"]);
        expect(uid.stdout.trim()).toBe((c.user ?? "10002:10002").split(":")[0]);
      });

      if (c.oci === "runsc") {
        it("runs inside gVisor (its dmesg says so)", async () => {
          const dmesg = await dockerCliResult(["exec", info().Id, "/bin/dmesg"]);
          expect(dmesg.stdout).toMatch(/gVisor/);
        });
      } else {
        it("runs under the engine's seccomp filter with no_new_privs and no effective capability", async () => {
          const status = await dockerCliResult(["exec", info().Id, "/bin/cat", "/proc/self/status"]);
          expect(status.stdout).toMatch(/^Seccomp:\s+2$/m);
          expect(status.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
          expect(status.stdout).toMatch(/^CapEff:\s+0000000000000000$/m);
        });
      }

      if (c.network === "namespace") {
        it("publishes its port on 127.0.0.1 only, where curl from the host reaches busybox httpd", async () => {
          const binding = [{ HostIp: "127.0.0.1", HostPort: String(c.port) }];
          expect(h().PortBindings).toEqual({ "8080/tcp": binding });
          expect(info().NetworkSettings.Ports).toEqual({ "8080/tcp": binding });
          let got = { ok: false, body: "" };
          for (let i = 0; i < 20 && !got.ok; i++) {
            got = await curl(`http://127.0.0.1:${c.port}/`);
            if (!got.ok) await new Promise((r) => setTimeout(r, 250));
          }
          expect(got).toEqual({ ok: true, body: "hello-portcullis\n" });
          const other = otherHostAddress();
          if (other !== undefined) expect((await curl(`http://${other}:${c.port}/`)).ok).toBe(false);
        });
      } else {
        it("publishes nothing", () => {
          expect(h().PortBindings ?? {}).toEqual({});
          expect(info().NetworkSettings.Ports ?? {}).toEqual({});
        });
      }
    });
  },
  { runtimes: ["runc", "runsc"] },
);
