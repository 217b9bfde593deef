/**
 * Crash safety of deploys with a real process: `portcullis serve` is killed with SIGKILL
 * at three points of a deploy, seen from outside on the engine (its events and its
 * container list): (a) as soon as the signed request is written, before any container
 * exists; (b) when the first container of a new deployment is created; (c) in a rolling
 * update, when a new revision's container is created while the old revision's still run.
 *
 * After each kill `serve` starts again on the same data directory, and then: no orphan
 * and no duplicate (one container per ordinal, all of the desired revision), the
 * deployment reaches its desired state, the same signed request (same bytes, same jti)
 * sent again is answered with its decision record and creates nothing; another request
 * with that jti is refused (PC_DEPLOY_REPLAYED), and the audit log verifies offline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import Docker from "dockerode";
import { afterAll, beforeAll, expect } from "vitest";
import { initGateway } from "../../src/app.js";
import { importFixtureVulnDbInto } from "../support/vulndb.js";
import { identityToSpiffe, parseIdentity } from "../../src/core/index.js";
import { formatFingerprint, readProfile, type ClientProfile } from "../../src/pki/index.js";
import { DockerEngine } from "../../src/runtime/index.js";
import { runCli } from "../support/cli.js";
import { buildBusyboxImage, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { tempDir } from "../support/gateway.js";
import { csrFor, freePort, spawnServe } from "../api/api-support.js";
import {
  apiCall,
  busyboxManifest,
  cli,
  convergenceProblem,
  deploymentContainers,
  eventually,
  getDeployment,
  postSigned,
  signRequest,
  type ApiAnswer,
  type ApiClient,
  type EngineContainer,
} from "./deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const docker = new Docker();
const NS = `crash-${run.id}`;
const REPLICAS = 3;
/** Small enough that two deployments and a rolling update's new revision fit on one 2-core node. */
const RESOURCES = { cpus: 0.1, memory: "32Mi", pids: 32 };

interface Decision {
  outcome: string;
  revision: number;
  replicas: number;
  jti: string;
  placement: { container: string; ordinal: number; revision: number; containerId: string | null }[];
}

describeDocker("a deploy survives SIGKILL of the gateway", () => {
  const tmp = tempDir("portcullis-crash-");
  const dataDir = join(tmp.dir, "data");
  let serve: ChildProcess | undefined;
  let api = "";
  let gatewayId = "";
  let fingerprint = "";
  let admin: ApiClient;
  let dev: ApiClient;
  let devProfile = "";
  let image = "";
  let imageRef = "";

  const start = async () => {
    serve = (await spawnServe(dataDir)).child;
  };
  const kill = async () => {
    const child = serve as ChildProcess;
    expect(child.kill("SIGKILL")).toBe(true);
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once("exit", r));
    expect(child.signalCode).toBe("SIGKILL");
    serve = undefined;
  };
  const containers = (name?: string) => deploymentContainers(docker, gatewayId, name);
  const ids = async (name: string) => (await containers(name)).map((c) => c.id).sort();

  /** Waits until the deployment and its containers are exactly the desired state. */
  const converged = (name: string, revision: number) =>
    eventually(
      async () => {
        const cs = await containers(name);
        if (convergenceProblem(cs, revision, REPLICAS) !== undefined) return undefined;
        const d = await getDeployment(api, dev, NS, name);
        return d !== undefined && d.revision === revision && d.ready === REPLICAS ? cs : undefined;
      },
      45_000,
      `${name} to converge on revision ${revision}`,
      250,
    ).catch(async (e: unknown) => {
      const cs = await containers(name);
      throw new Error(`${String(e)}; engine: ${cs.map((c) => `${c.name} ${c.state}`).join(", ")}; ${convergenceProblem(cs, revision, REPLICAS) ?? ""}`);
    });

  /**
   * Starts watching the engine's create events of this gateway; `onCreate` sees each
   * created container's name and labels and returns true to stop watching.
   */
  const watchCreates = (onCreate: (name: string, labels: Record<string, string>) => boolean): { done: Promise<void>; stop: () => void } => {
    const w = spawn("docker", [
      "events", "--since", String(Math.floor(Date.now() / 1000) - 1), "--format", "{{json .}}",
      "--filter", "type=container", "--filter", "event=create", "--filter", `label=io.portcullis.gateway=${gatewayId}`,
    ], { stdio: ["ignore", "pipe", "ignore"] });
    let buf = "";
    const done = new Promise<void>((resolve) => {
      w.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() === "") continue;
          const ev = JSON.parse(line) as { Actor: { Attributes: Record<string, string> } };
          const { name, ...labels } = ev.Actor.Attributes;
          if (onCreate(name ?? "", labels)) {
            w.kill();
            resolve();
          }
        }
      });
      w.on("exit", () => resolve());
    });
    return { done, stop: () => w.kill() };
  };

  const decision = (a: ApiAnswer): Decision => {
    expect(a.error, "no answer").toBeUndefined();
    expect(a.status, a.body).toBe(200);
    return JSON.parse(a.body ?? "") as Decision;
  };

  /** Sends the same signed request again and checks that it is answered and changes nothing. */
  const retryChangesNothing = async (name: string, jws: string, jti: string, revision: number): Promise<Decision> => {
    const before = await ids(name);
    const d = decision(await postSigned(api, dev, NS, jws));
    expect(d).toMatchObject({ jti, revision, replicas: REPLICAS });
    expect(d.placement.map((p) => [p.ordinal, p.revision]).sort()).toEqual([...Array(REPLICAS).keys()].map((o) => [o, revision]));
    expect(await ids(name)).toEqual(before);
    expect(d.placement.map((p) => p.containerId).sort()).toEqual(before);
    // And again: the stored answer, word for word.
    const again = decision(await postSigned(api, dev, NS, jws));
    expect(again).toEqual(d);
    expect(await ids(name)).toEqual(before);
    return d;
  };

  beforeAll(async () => {
    const [apiPort, bootPort] = [await freePort(), await freePort()];
    const init = initGateway({ dataDir, listen: `127.0.0.1:${apiPort}`, bootstrapListen: `127.0.0.1:${bootPort}` });
    await importFixtureVulnDbInto(dataDir);
    api = `127.0.0.1:${apiPort}`;
    gatewayId = init.rootFingerprint.slice(0, 12);
    fingerprint = formatFingerprint(init.rootFingerprint);
    const p = readProfile(init.adminProfile);
    admin = { trustDomain: p.trustDomain, caPem: p.caBundle, certPem: p.certificate, keyPem: p.privateKey };
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = `portcullis-test/busybox@${(JSON.parse(await dockerCli(["image", "inspect", image])) as { Id: string }[])[0]!.Id}`;
    await start();

    // The namespace, a developer enrolled with a one-time token, and its binding: as the administrator.
    expect((await apiCall(api, admin, "POST", "/v1/namespaces", { name: NS })).status).toBe(201);
    const tok = await apiCall(api, admin, "POST", "/v1/enroll-tokens", { identity: "user:dev1" });
    expect(tok.status, tok.body).toBe(201);
    const csr = csrFor(identityToSpiffe(parseIdentity("user:dev1"), p.trustDomain));
    const enrolled = await apiCall(`127.0.0.1:${bootPort}`, admin, "POST", "/v1/enroll", { token: (JSON.parse(tok.body ?? "") as { token: string }).token, csr: csr.pem });
    expect(enrolled.status, enrolled.body).toBe(201);
    const b = JSON.parse(enrolled.body ?? "") as { certificate: string; chain: string };
    dev = { trustDomain: p.trustDomain, caPem: p.caBundle, certPem: b.certificate + b.chain, keyPem: csr.keyPem };
    const bind = await apiCall(api, admin, "POST", `/v1/namespaces/${NS}/role-bindings`, { identity: "user:dev1", role: "developer" });
    expect(bind.status, bind.body).toBe(200);
    const profile: ClientProfile = { version: 1, identity: "user:dev1", server: api, trustDomain: p.trustDomain, caBundle: p.caBundle, certificate: dev.certPem, privateKey: dev.keyPem };
    devProfile = join(tmp.dir, "dev1.profile.json");
    writeFileSync(devProfile, JSON.stringify(profile), { mode: 0o600 });
  }, 90_000);

  afterAll(async () => {
    if (serve && serve.exitCode === null && serve.signalCode === null) serve.kill("SIGKILL");
    await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`).catch(() => undefined);
    await engine.removeImage(image).catch(() => undefined);
    tmp.cleanup();
  }, 60_000);

  let alphaJti = "";
  itDocker("(a) killed as soon as the request is written: the same request is answered once, and runs once", async () => {
    const jws = await signRequest(dev, "create", busyboxManifest(NS, "alpha", imageRef, { replicas: REPLICAS, resources: RESOURCES }));
    const jti = (JSON.parse(Buffer.from(jws.split(".")[1]!, "base64url").toString()) as { jti: string }).jti;
    alphaJti = jti;
    let killing: Promise<void> | undefined;
    const lost = await postSigned(api, dev, NS, jws, { onSent: () => (killing = kill()) });
    await killing;
    expect(lost.status, "the killed gateway answered").toBeUndefined();
    await start();
    // The request was either never recorded (nothing exists) or recorded: then the engine
    // gets its containers without the client's help. Either way, the same request is
    // answered now and the deployment is there once.
    const d = decision(await postSigned(api, dev, NS, jws));
    expect(d).toMatchObject({ outcome: "deployed", revision: 1, replicas: REPLICAS, jti });
    await converged("alpha", 1);
    await retryChangesNothing("alpha", jws, jti, 1);
    const hist = JSON.parse((await apiCall(api, dev, "GET", `/v1/namespaces/${NS}/deployments/alpha/revisions`)).body ?? "[]") as { revision: number; status: string }[];
    expect(hist.map((h) => [h.revision, h.status])).toEqual([[1, "complete"]]);
  }, {}, 120_000);

  let betaCreate = { jws: "", jti: "" };
  itDocker("(b) killed when the first container exists: the store finishes the job, without duplicates", async () => {
    const jws = await signRequest(dev, "create", busyboxManifest(NS, "beta", imageRef, { replicas: REPLICAS, resources: RESOURCES }));
    const jti = (JSON.parse(Buffer.from(jws.split(".")[1]!, "base64url").toString()) as { jti: string }).jti;
    betaCreate = { jws, jti };
    let killing: Promise<void> | undefined;
    const watch = watchCreates((_n, labels) => {
      if (labels["io.portcullis.deployment"] !== "beta") return false;
      killing = kill();
      return true;
    });
    await new Promise((r) => setTimeout(r, 300)); // the event stream is open
    const lost = await postSigned(api, dev, NS, jws);
    if (lost.status !== undefined) watch.stop();
    await watch.done;
    await killing;
    expect(lost.status, `the request was answered before the kill: ${lost.body ?? ""}`).toBeUndefined();
    const atKill = await containers("beta");
    expect(atKill.length).toBeGreaterThanOrEqual(1);
    expect(atKill.length).toBeLessThan(REPLICAS + 1);

    await start();
    // No client help: the reconciler brings the engine to what the store recorded.
    const cs = await converged("beta", 1);
    expect(new Set(cs.map((c) => c.name)).size).toBe(REPLICAS);
    // A container that existed at the kill was adopted, not duplicated or replaced.
    for (const c of atKill) expect(cs.find((x) => x.name === c.name)?.id).toBe(c.id);
    const d = await retryChangesNothing("beta", jws, jti, 1);
    expect(d.outcome).toBe("deployed");
  }, {}, 120_000);

  let update = { jws: "", jti: "" };
  itDocker("(c) killed mid rolling update: the rollout resumes and completes, old revision gone", async () => {
    const m2 = busyboxManifest(NS, "beta", imageRef, {
      replicas: REPLICAS,
      resources: RESOURCES,
      command: ["/bin/sh", "-c", "echo revision-two; trap 'exit 0' TERM; while true; do sleep 1; done"],
    });
    const jws = await signRequest(dev, "update", m2);
    const jti = (JSON.parse(Buffer.from(jws.split(".")[1]!, "base64url").toString()) as { jti: string }).jti;
    update = { jws, jti };
    let killing: Promise<void> | undefined;
    let created = 0;
    const watch = watchCreates((_n, labels) => {
      if (labels["io.portcullis.deployment"] !== "beta" || labels["io.portcullis.revision"] !== "2") return false;
      // The second new container: one old replica is already gone, the others still run.
      if (++created < 2) return false;
      killing = kill();
      return true;
    });
    await new Promise((r) => setTimeout(r, 300));
    const lost = await postSigned(api, dev, NS, jws);
    if (lost.status !== undefined) watch.stop();
    await watch.done;
    await killing;
    expect(lost.status, `the request was answered before the kill: ${lost.body ?? ""}`).toBeUndefined();
    const atKill: EngineContainer[] = await containers("beta");
    expect(atKill.filter((c) => c.revision === 1).length, "old replicas at the kill").toBeGreaterThan(0);
    expect(atKill.filter((c) => c.revision === 2).length, "new replicas at the kill").toBe(2);
    expect(atKill.length).toBeLessThanOrEqual(REPLICAS + 1);

    await start();
    const cs = await converged("beta", 2);
    for (const c of atKill.filter((x) => x.revision === 2)) expect(cs.find((x) => x.name === c.name)?.id).toBe(c.id);
    const d = await retryChangesNothing("beta", jws, jti, 2);
    expect(d.outcome).toBe("updated");
    // The first request of beta, sent again, is answered with its own record and changes nothing.
    const before = await ids("beta");
    const first = decision(await postSigned(api, dev, NS, betaCreate.jws));
    expect(first).toMatchObject({ jti: betaCreate.jti, outcome: "deployed", revision: 1 });
    expect(await ids("beta")).toEqual(before);
    const got = await cli(devProfile, ["get", "deployment", "beta", "-n", NS]);
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ revision: 2, replicas: REPLICAS, ready: REPLICAS });
  }, {}, 120_000);

  itDocker("another request with a used jti is refused and changes nothing; the audit log verifies", async () => {
    const before = await ids("beta");
    const other = await signRequest(dev, "scale", busyboxManifest(NS, "beta", imageRef, {
      replicas: 1,
      resources: RESOURCES,
      command: ["/bin/sh", "-c", "echo revision-two; trap 'exit 0' TERM; while true; do sleep 1; done"],
    }), update.jti);
    const r = await postSigned(api, dev, NS, other);
    expect(r.status, r.body).toBe(409);
    expect((JSON.parse(r.body ?? "") as { code: string }).code).toBe("PC_DEPLOY_REPLAYED");
    expect(await ids("beta")).toEqual(before);
    expect((await getDeployment(api, dev, NS, "beta"))?.replicas).toBe(REPLICAS);

    // Every container of this gateway belongs to a deployment's desired state.
    const all = await containers();
    expect(all.map((c) => c.deployment).sort()).toEqual([...Array(REPLICAS).fill("alpha"), ...Array(REPLICAS).fill("beta")]);

    const child = serve as ChildProcess;
    child.kill("SIGTERM");
    if (child.exitCode === null && child.signalCode === null) await new Promise((res) => child.once("exit", res));
    serve = undefined;
    const v = await runCli(["audit", "verify", "--data-dir", dataDir, "--ca-fingerprint", fingerprint], {
      env: { PORTCULLIS_PROFILE: join(tmp.dir, "no-such.profile.json") },
    });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^ok: \d+ entries, seq 0\.\.\d+, last checkpoint at seq \d+/m);

    // Each of the three requests was accepted once and completed once, whatever the retries.
    const db = new Database(join(dataDir, "portcullis.db"), { readonly: true, fileMustExist: true });
    try {
      const count = (type: string) =>
        (db.prepare("SELECT body FROM audit_log WHERE type = ?").all(type) as { body: string }[]).map((r) => (JSON.parse(r.body) as { target?: string }).target).sort();
      const jtis = [alphaJti, betaCreate.jti, update.jti].sort();
      expect(count("deploy.request_accepted")).toEqual(jtis);
      expect(count("deploy.completed")).toEqual(jtis);
    } finally {
      db.close();
    }
  }, {}, 60_000);
});
