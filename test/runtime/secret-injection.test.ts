/**
 * Secret injection end to end, through a real gateway (signed requests over mTLS,
 * admission, the secret store with envelope encryption) and the real engine, under runc
 * and under runsc: each pinned value is a file below /run/secrets in its container
 * (0400, the container's uid), on a read-only mount backed by a tmpfs on the gateway's
 * host, and nowhere else (not in the environment, not in `docker inspect`). Directories
 * go with their containers (deleted, removed behind the gateway's back, stopped for
 * good, gone while the gateway was down), pinned versions hold until a redeploy, and a
 * secret that cannot be opened at start leaves nothing behind.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { DockerEngine, TMPFS_MAGIC, replicaContainerName } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, itDocker, newTestRun } from "../support/docker.js";
import { dockerCliResult } from "../support/containers.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { auditEntries, busyboxManifest, developerIn, eventually, pinnedRef, postSigned, signRequest, type ApiClient } from "./deploy-support.js";

const run = newTestRun();
const engine = new DockerEngine();
const NS = `sec-${run.id}`;
const ADMIN = { id: "user:admin" };
/** On the disk (ext4 here): the gateway mounts a tmpfs there on the first deploy with secrets. */
const TMPFS_ROOT = mkdtempSync(join(tmpdir(), "portcullis-secrets-e2e-"));
const RUNTIMES = [["standard", "runc"], ["sandboxed", "runsc"]] as const;

let tg: TestGateway;
let dev: ApiClient;
let imageRef = "";
let image = "";
let gatewayId = "";
const root = () => join(TMPFS_ROOT, gatewayId);

/** A value that is easy to look for, in every encoding someone might leak it in. */
function secretValue(tag: string): { text: string; forms: string[] } {
  const text = `pc-secret-${tag}-${randomBytes(12).toString("hex")}`;
  const b = Buffer.from(text);
  return { text, forms: [text, b.toString("base64"), b.toString("base64url"), b.toString("hex")] };
}

async function deploy(op: "create" | "update" | "delete", manifest: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await postSigned(tg.api, dev, NS, await signRequest(dev, op, manifest));
  if (r.error !== undefined) throw new Error(r.error);
  return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
}

async function exec(container: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return dockerCliResult(["exec", container, ...args], 30_000);
}

const cat = async (container: string, path: string) => (await exec(container, ["/bin/cat", path])).stdout;

/**
 * Reconcile passes until the container runs again (a replica repaired a moment ago waits
 * out the reconciler's back-off first); what the passes removed and started, in total.
 */
async function reconcileUntilRunning(container: string): Promise<{ secretDirsRemoved: number; replicasStarted: number; errors: number }> {
  const total = { secretDirsRemoved: 0, replicasStarted: 0, errors: 0 };
  await eventually(async () => {
    const r = await tg.gw.reconciler.reconcileOnce();
    total.secretDirsRemoved += r.secretDirsRemoved;
    total.replicasStarted += r.replicasStarted;
    total.errors += r.errors;
    return (await engine.inspectContainer(container))?.running === true ? true : undefined;
  }, 30_000, `${container} to run again`, 250);
  return total;
}

describeDocker("secret injection", () => {
  beforeAll(async () => {
    tg = await startTestGateway({ start: { secretsTmpfsRoot: TMPFS_ROOT, reconcileIntervalMs: 3_600_000, rollout: { pollMs: 100, settleMs: 300 } } });
    gatewayId = tg.gw.deployments.gatewayId;
    image = await buildBusyboxImage(engine, run, { user: "10001:10001" });
    imageRef = await pinnedRef(image);
    dev = developerIn(tg, NS);
  }, 60_000);

  afterAll(async () => {
    await tg?.close();
    await engine.removeByLabel(`io.portcullis.gateway=${gatewayId}`).catch(() => undefined);
    await dockerCli(["network", "rm", `pc-ns-${NS}`]).catch(() => undefined);
    await cleanupTestRun(engine, run, image).catch(() => undefined);
    rmSync(root(), { recursive: true, force: true });
    try {
      execFileSync("umount", [TMPFS_ROOT]);
    } catch {
      // never mounted
    }
    rmSync(TMPFS_ROOT, { recursive: true, force: true });
  }, 60_000);

  for (const [runtime, oci] of RUNTIMES) {
    describe(`under ${oci}`, () => {
      const name = `app-${oci}`;
      const db = secretValue(`db-${oci}`);
      const db2 = secretValue(`db2-${oci}`);
      const tls = secretValue(`tls-${oci}`);
      const manifest = (env: Record<string, string> = {}) =>
        busyboxManifest(NS, name, imageRef, {
          runtime,
          env,
          secrets: [
            { name: `db-${oci}`, path: "/run/secrets/db-password" },
            { name: `tls-${oci}`, path: "/run/secrets/tls/key.pem" },
          ],
        });
      const c1 = () => replicaContainerName(gatewayId, NS, name, 1, 0);

      itDocker("puts each value in a 0400 file of the container's uid on a read-only tmpfs mount, and nowhere else", async () => {
        await tg.gw.secrets.create(NS, `db-${oci}`, Buffer.from(db.text), ADMIN);
        await tg.gw.secrets.create(NS, `tls-${oci}`, Buffer.from(tls.text), ADMIN);
        const r = await deploy("create", manifest());
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        const c = c1();
        const inspect = JSON.parse(await dockerCli(["inspect", c])) as { HostConfig: { Runtime: string; Binds: unknown }; Mounts: { Type: string; Source: string; Destination: string; RW: boolean; Propagation: string }[] }[];
        expect(inspect[0]!.HostConfig.Runtime).toBe(oci);

        // Inside: the values, as files of the container's user, 0400, in a 0700 directory.
        expect(await cat(c, "/run/secrets/db-password")).toBe(db.text);
        expect(await cat(c, "/run/secrets/tls/key.pem")).toBe(tls.text);
        const st = await exec(c, ["/bin/busybox", "stat", "-c", "%a %u %g %F", "/run/secrets/db-password", "/run/secrets/tls/key.pem", "/run/secrets/tls", "/run/secrets"]);
        expect(st.stdout.trim().split("\n")).toEqual(["400 10001 10001 regular file", "400 10001 10001 regular file", "500 10001 10001 directory", "700 10001 10001 directory"]);
        expect((await exec(c, ["/bin/id", "-u"])).stdout.trim()).toBe("10001");

        // Read-only: no new file, no change to one, even for their owner.
        for (const cmd of ["echo x > /run/secrets/new", "echo x >> /run/secrets/db-password", "rm /run/secrets/db-password", "touch /run/secrets/tls/x"]) {
          const w = await exec(c, ["/bin/sh", "-c", cmd]);
          expect(w.code, cmd).not.toBe(0);
          expect(w.stderr, cmd).toMatch(/Read-only file system|Permission denied/);
        }
        expect(await cat(c, "/run/secrets/db-password")).toBe(db.text);

        // Not in the environment of the container's process, nor in what the engine shows.
        const environ = (await exec(c, ["/bin/cat", "/proc/1/environ"])).stdout;
        expect(environ).toContain("PATH=");
        const shown = await dockerCli(["inspect", c]);
        for (const form of [...db.forms, ...tls.forms]) {
          expect(environ).not.toContain(form);
          expect(shown).not.toContain(form);
        }
        expect(inspect[0]!.Mounts).toEqual([
          { Type: "bind", Source: join(root(), c), Destination: "/run/secrets", Mode: "", RW: false, Propagation: "rprivate" },
        ]);

        // On the host: a tmpfs, the directory 0700 and the files 0400 of the container's uid.
        const dir = join(root(), c);
        expect(statfsSync(dir).type).toBe(TMPFS_MAGIC);
        expect(statfsSync(TMPFS_ROOT).type).toBe(TMPFS_MAGIC);
        expect([lstatSync(dir).mode & 0o7777, lstatSync(dir).uid]).toEqual([0o700, 10001]);
        for (const f of ["db-password", "tls/key.pem"]) expect([lstatSync(join(dir, f)).mode & 0o7777, lstatSync(join(dir, f)).uid, lstatSync(join(dir, f)).gid]).toEqual([0o400, 10001, 10001]);
        expect([lstatSync(root()).mode & 0o7777, lstatSync(TMPFS_ROOT).mode & 0o7777]).toEqual([0o700, 0o700]);
      }, { runtimes: [oci] }, 120_000);

      itDocker("a container removed behind the gateway's back loses its directory; the replica comes back with a fresh one", async () => {
        const c = c1();
        await dockerCli(["rm", "-f", c]);
        expect(existsSync(join(root(), c))).toBe(true);
        expect(await reconcileUntilRunning(c)).toEqual({ secretDirsRemoved: 1, replicasStarted: 1, errors: 0 });
        expect(await cat(c, "/run/secrets/db-password")).toBe(db.text);
        expect(await cat(c, "/run/secrets/tls/key.pem")).toBe(tls.text);
      }, { runtimes: [oci] }, 120_000);

      itDocker("a container stopped for good loses its directory; the replica started again gets it back", async () => {
        const c = c1();
        await dockerCli(["stop", "-t", "1", c]);
        // Stopped by hand: the engine does not restart it.
        expect(existsSync(join(root(), c))).toBe(true);
        expect(await reconcileUntilRunning(c)).toEqual({ secretDirsRemoved: 1, replicasStarted: 1, errors: 0 });
        expect(await cat(c, "/run/secrets/db-password")).toBe(db.text);
      }, { runtimes: [oci] }, 120_000);

      itDocker("keeps the pinned version after the secret changes, in the running replica and in one recreated later; a redeploy gets the new one", async () => {
        const c = c1();
        await tg.gw.secrets.update(NS, `db-${oci}`, Buffer.from(db2.text), ADMIN);
        expect(await cat(c, "/run/secrets/db-password")).toBe(db.text);
        await dockerCli(["rm", "-f", c]);
        expect(await reconcileUntilRunning(c)).toEqual({ secretDirsRemoved: 1, replicasStarted: 1, errors: 0 });
        expect(await cat(c, "/run/secrets/db-password")).toBe(db.text);

        const r = await deploy("update", manifest({ REDEPLOY: "1" }));
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body).toMatchObject({ outcome: "updated", revision: 2 });
        const c2 = replicaContainerName(gatewayId, NS, name, 2, 0);
        expect(await cat(c2, "/run/secrets/db-password")).toBe(db2.text);
        expect(await cat(c2, "/run/secrets/tls/key.pem")).toBe(tls.text);
        // The replaced replica's container and directory are gone.
        expect(existsSync(join(root(), c))).toBe(false);
        expect(readdirSync(root())).toEqual([c2]);
      }, { runtimes: [oci] }, 120_000);

      itDocker("deleting the deployment removes the directory", async () => {
        const r = await deploy("delete", manifest({ REDEPLOY: "1" }));
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(readdirSync(root())).toEqual([]);
        expect((await dockerCliResult(["inspect", replicaContainerName(gatewayId, NS, name, 2, 0)])).code).not.toBe(0);
      }, { runtimes: [oci] }, 120_000);
    });
  }

  itDocker("at gateway start, directories of containers that no longer exist are removed; those of running containers stay", async () => {
    const v = secretValue("keep");
    await tg.gw.secrets.create(NS, "keep", Buffer.from(v.text), ADMIN);
    const m = busyboxManifest(NS, "keeper", imageRef, { secrets: [{ name: "keep", path: "/run/secrets/keep" }] });
    expect((await deploy("create", m)).status).toBe(200);
    const keeper = replicaContainerName(gatewayId, NS, "keeper", 1, 0);
    // A directory left by a container that went away while the gateway was down.
    const ghost = replicaContainerName(gatewayId, NS, "ghost", 1, 0);
    mkdirSync(join(root(), ghost), { mode: 0o700 });
    writeFileSync(join(root(), ghost, "old"), "left behind", { mode: 0o400 });
    tg = await tg.restart();
    await eventually(async () => (existsSync(join(root(), ghost)) ? undefined : true), 20_000, "the ghost directory to go");
    expect(readdirSync(root())).toEqual([keeper]);
    expect(await cat(keeper, "/run/secrets/keep")).toBe(v.text);
    expect((await deploy("delete", m)).status).toBe(200);
    expect(readdirSync(root())).toEqual([]);
  }, { runtimes: ["runc"] }, 120_000);

  itDocker("stopUsing (a forced secret delete) stops every replica, removes their directories and records why", async () => {
    await tg.gw.secrets.create(NS, "forced", Buffer.from(secretValue("forced").text), ADMIN);
    const m = busyboxManifest(NS, "user", imageRef, { replicas: 2, secrets: [{ name: "forced", path: "/run/secrets/forced" }] });
    expect((await deploy("create", m)).status).toBe(200);
    expect(readdirSync(root()).sort()).toEqual([0, 1].map((o) => replicaContainerName(gatewayId, NS, "user", 1, o)).sort());
    await tg.gw.deployments.stopUsing(NS, "user", "secret forced deleted", "user:admin");
    expect(readdirSync(root())).toEqual([]);
    expect(tg.gw.store.deployments.get(NS, "user")).toMatchObject({ replicas: 0, state: "active" });
    expect(tg.gw.store.deployments.replicasOf(NS, "user")).toEqual([]);
    for (const o of [0, 1]) expect((await dockerCliResult(["inspect", replicaContainerName(gatewayId, NS, "user", 1, o)])).code).not.toBe(0);
    const stopped = auditEntries(tg, "deploy.stopped").at(-1);
    expect(stopped?.body).toMatchObject({ target: "user" });
    expect(stopped?.reason).toBe("secret forced deleted");
    const row = [...tg.gw.store.auditLog.iterate(stopped!.seq, stopped!.seq)][0];
    expect([row?.actor, row?.namespace, row?.outcome]).toEqual(["user:admin", NS, "allowed"]);
    // The reconciler keeps it at zero.
    await tg.gw.reconciler.reconcileOnce();
    expect(readdirSync(root())).toEqual([]);
    expect((await deploy("delete", m)).status).toBe(200);
  }, { runtimes: ["runc"] }, 120_000);

  itDocker("where no tmpfs can be had, a gateway starts and deploys without secrets; a deploy with secrets is refused with PC_SECRETS_TMPFS_UNAVAILABLE and nothing is recorded", async () => {
    // A root where nothing can be created, let alone mounted.
    const other = await startTestGateway({ start: { secretsTmpfsRoot: "/proc/portcullis-no-tmpfs", reconcileIntervalMs: 3_600_000, rollout: { pollMs: 100, settleMs: 300 } } });
    try {
      other.gw.namespaces.create(NS, {}, { identity: "user:admin" });
      other.gw.policy.bind("user:dev1", "developer", NS, { identity: "user:admin" });
      const c = other.issueClient("user:dev1");
      const client: ApiClient = { trustDomain: other.gw.config.trustDomain, caPem: other.caPem, certPem: c.certPem, keyPem: c.keyPem };
      await other.gw.secrets.create(NS, "db", Buffer.from("never-written"), ADMIN);
      const post = async (op: "create" | "delete", m: Record<string, unknown>) => {
        const r = await postSigned(other.api, client, NS, await signRequest(client, op, m));
        return { status: r.status, body: JSON.parse(r.body ?? "{}") as Record<string, unknown> };
      };
      const plain = busyboxManifest(NS, "plain", imageRef);
      expect((await post("create", plain)).status).toBe(200);
      const r = await post("create", busyboxManifest(NS, "with-secrets", imageRef, { secrets: [{ name: "db", path: "/run/secrets/db" }] }));
      expect([r.status, r.body.code]).toEqual([503, "PC_SECRETS_TMPFS_UNAVAILABLE"]);
      expect(other.gw.store.deployments.get(NS, "with-secrets")).toBeUndefined();
      expect(other.gw.store.deployments.revisions(NS, "with-secrets")).toEqual([]);
      expect((await dockerCliResult(["inspect", replicaContainerName(other.gw.deployments.gatewayId, NS, "with-secrets", 1, 0)])).code).not.toBe(0);
      expect((await post("delete", plain)).status).toBe(200);
    } finally {
      const id = other.gw.deployments.gatewayId;
      await other.close();
      await engine.removeByLabel(`io.portcullis.gateway=${id}`).catch(() => undefined);
    }
  }, { runtimes: ["runc"] }, 120_000);

  itDocker("a secret that cannot be opened at start (deleted after admission) fails the deploy with its code and leaves nothing", async () => {
    await tg.gw.secrets.create(NS, "fleeting", Buffer.from("short-lived"), ADMIN);
    const secrets = tg.gw.secrets;
    const pin = secrets.pin.bind(secrets);
    // Admission saw the secret; it is deleted right after the controller pinned it.
    secrets.pin = (ns, refs) => {
      const pins = pin(ns, refs);
      secrets.delete(ns, "fleeting", ADMIN);
      return pins;
    };
    try {
      const m = busyboxManifest(NS, "fleeting", imageRef, { secrets: [{ name: "fleeting", path: "/run/secrets/f" }] });
      const r = await deploy("create", m);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe("PC_SECRETS_NOT_FOUND");
      expect(JSON.stringify(r.body)).not.toContain("short-lived");
    } finally {
      secrets.pin = pin;
    }
    expect(tg.gw.store.deployments.get(NS, "fleeting")).toBeUndefined();
    expect((await dockerCliResult(["inspect", replicaContainerName(gatewayId, NS, "fleeting", 1, 0)])).code).not.toBe(0);
    expect(readdirSync(root())).toEqual([]);
  }, { runtimes: ["runc"] }, 120_000);

  itDocker("a version whose ciphertext was tampered with (a bit flipped, another secret's wrapped key swapped in) refuses the deploy with PC_SECRETS_DECRYPT_FAILED and leaves nothing", async () => {
    const a = secretValue("tamper-a");
    const b = secretValue("tamper-b");
    await tg.gw.secrets.create(NS, "tamper-a", Buffer.from(a.text), ADMIN);
    await tg.gw.secrets.create(NS, "tamper-b", Buffer.from(b.text), ADMIN);
    const db = tg.gw.store.db;
    const row = (name: string) => db.prepare("SELECT wrapped_key FROM secret_versions WHERE namespace = ? AND name = ? AND version = 1").get(NS, name) as { wrapped_key: string };
    const setKey = (name: string, key: string) => db.prepare("UPDATE secret_versions SET wrapped_key = ? WHERE namespace = ? AND name = ? AND version = 1").run(key, NS, name);
    const original = row("tamper-a").wrapped_key;
    // One bit of the wrapped key's ciphertext part flipped (the 4th of 5 compact parts).
    const parts = original.split(".");
    const ct = Buffer.from(parts[3] as string, "base64url");
    ct[0] = (ct[0] as number) ^ 0x01;
    parts[3] = ct.toString("base64url");
    const cases: [string, string][] = [["flipped", parts.join(".")], ["swapped", row("tamper-b").wrapped_key]];
    for (const [what, tampered] of cases) {
      setKey("tamper-a", tampered);
      const name = `tamper-${what}`;
      const r = await deploy("create", busyboxManifest(NS, name, imageRef, { secrets: [{ name: "tamper-a", path: "/run/secrets/a" }] }));
      expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(500);
      expect(r.body.code).toBe("PC_SECRETS_DECRYPT_FAILED");
      for (const form of [...a.forms, ...b.forms]) expect(JSON.stringify(r.body)).not.toContain(form);
      expect(tg.gw.store.deployments.get(NS, name)).toBeUndefined();
      expect((await dockerCliResult(["inspect", replicaContainerName(gatewayId, NS, name, 1, 0)])).code).not.toBe(0);
      expect(readdirSync(root())).toEqual([]);
    }
    // Restored, the same secret opens again: the refusal was the tampering's doing.
    setKey("tamper-a", original);
    expect((await tg.gw.secrets.open(NS, [{ name: "tamper-a", path: "/run/secrets/a", version: 1 }]))[0]?.value.toString()).toBe(a.text);
  }, { runtimes: ["runc"] }, 120_000);
});
