import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { isPortcullisError, pcError } from "../../core/index.js";
import { parseManifest, signDeployRequest, type DeployOperation, type Manifest } from "../../deploy/index.js";
import { DEPLOY_TIMEOUT_MS } from "../client.js";
import { formatDenial, print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";
import { pendingLine, type PendingRequest } from "./approvals.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const enc = encodeURIComponent;

interface Revision {
  revision: number;
  status: string;
  current: boolean;
  digest: string;
  requester: string;
  createdAt: string;
  runtime: string;
  manifest: Manifest;
}

interface Decision {
  outcome: string;
  namespace: string;
  name: string;
  revision: number;
  replicas: number;
  jti: string;
  manifestDigest: string;
  imageId: string;
  runtime: { requested: string; actual: string[] };
  placement: { container: string; node: string; runtime: string | null }[];
}

/**
 * Signs and sends one deploy request. The same signed request is sent again, byte for
 * byte, when the connection fails before an answer arrives: the gateway answers a retry
 * of an accepted request with its first answer, so it never runs twice.
 */
export async function sendSigned(s: Session, op: DeployOperation, manifest: Manifest): Promise<Decision | PendingRequest> {
  const jws = await sign(s, op, manifest);
  const path = `/v1/namespaces/${enc(manifest.metadata.namespace)}/deployments`;
  for (let attempt = 1; ; attempt++) {
    try {
      return await s.call<Decision | PendingRequest>("POST", path, { request: jws }, DEPLOY_TIMEOUT_MS);
    } catch (e) {
      const transient = isPortcullisError(e) && (e.code === "PC_CLI_SERVER_UNREACHABLE" || e.code === "PC_CLI_TLS_FAILED");
      if (!transient || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 1_000 * attempt));
    }
  }
}

function sign(s: Session, op: DeployOperation, manifest: Manifest): Promise<string> {
  return signDeployRequest({
    op,
    manifest,
    trustDomain: s.profile.trustDomain,
    privateKeyPem: s.profile.privateKey,
    certificatePem: s.profile.certificate,
  });
}

interface Review {
  outcome: string;
  admission: { allowed: boolean; denials: unknown[]; warnings: unknown[] };
  placement: { feasible: boolean; nodes: string[]; reason?: string } | null;
}

function printReview(format: OutputFormat, r: Review): void {
  if (format === "json") return print("json", r);
  process.stdout.write(`dry run: ${r.outcome}\n`);
  process.stdout.write(formatDenial(r));
  if (r.placement) process.stdout.write(`placement: ${r.placement.feasible ? `fits on ${r.placement.nodes.join(", ")}` : `does not fit: ${r.placement.reason ?? ""}`}\n`);
}

async function exists(s: Session, ns: string, name: string): Promise<boolean> {
  try {
    await s.call("GET", `/v1/namespaces/${enc(ns)}/deployments/${enc(name)}`);
    return true;
  } catch (e) {
    if (isPortcullisError(e) && e.code === "PC_DEPLOY_NOT_FOUND") return false;
    throw e;
  }
}

async function revisions(s: Session, ns: string, name: string): Promise<Revision[]> {
  return s.call<Revision[]>("GET", `/v1/namespaces/${enc(ns)}/deployments/${enc(name)}/revisions`);
}

async function currentManifest(s: Session, ns: string, name: string): Promise<Manifest> {
  const cur = (await revisions(s, ns, name)).find((r) => r.current);
  if (cur === undefined) throw pcError("PC_DEPLOY_NOT_FOUND", `${ns}/${name}`);
  return cur.manifest;
}

function printDecision(format: OutputFormat, answer: Decision | PendingRequest): void {
  if ("pending" in answer) {
    // Accepted, not yet run: it runs when the namespace's approvers have approved it.
    if (format === "json") {
      process.stderr.write(`${pendingLine(answer)}\n`);
      return print("json", answer);
    }
    process.stdout.write(`${pendingLine(answer)}\n`);
    return;
  }
  const d = answer;
  if (format === "json") return print("json", d);
  process.stdout.write(
    `deployment ${d.namespace}/${d.name} ${d.outcome}: revision ${d.revision}, ${d.replicas} replica(s)\n` +
      `  request  ${d.jti}\n  manifest ${d.manifestDigest}\n  image    ${d.imageId || "-"}\n` +
      `  runtime  ${d.runtime.requested} requested, ${d.runtime.actual.join(",") || "-"} running\n`,
  );
  for (const p of d.placement) process.stdout.write(`  ${p.container} on ${p.node} (${p.runtime ?? "-"})\n`);
  process.stdout.write(formatDenial(d));
}

function needNamespace(ns: string | undefined): string {
  if (ns === undefined) throw pcError("PC_CLI_USAGE", "-n NAMESPACE is required");
  return ns;
}

/** deploy, scale, delete, get, logs and rollout: the developers' commands. */
export function registerDeployCommands(program: Command, globals: Globals, open: Open): void {
  program
    .command("deploy")
    .description("create or update a deployment from a manifest, signed with your certificate's key")
    .requiredOption("-f, --file <file>", "the manifest (YAML or JSON)")
    .option("--dry-run", "run the signature, every admission check and placement, and change nothing")
    .action(async (o: { file: string; dryRun?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(o.file, "utf8");
      } catch (e) {
        throw pcError("PC_CLI_USAGE", `cannot read ${o.file}`, e);
      }
      const { manifest } = parseManifest(text);
      const s = await open();
      const op: DeployOperation = (await exists(s, manifest.metadata.namespace, manifest.metadata.name)) ? "update" : "create";
      if (o.dryRun) {
        const r = await s.call<Review>("POST", `/v1/namespaces/${enc(manifest.metadata.namespace)}/admission/review`, { request: await sign(s, op, manifest) }, DEPLOY_TIMEOUT_MS);
        printReview(globals().output, r);
        if (r.outcome !== "admissible") throw pcError("PC_ADMISSION_DENIED", "the dry run found the request inadmissible");
        return;
      }
      printDecision(globals().output, await sendSigned(s, op, manifest));
    });

  program
    .command("scale")
    .description("scale a deployment (a signed request that changes spec.replicas only)")
    .argument("<kind>", "deployment")
    .argument("<name>")
    .requiredOption("--replicas <n>", "the number of replicas")
    .option("-n, --namespace <ns>")
    .action(async (kind: string, name: string, o: { replicas: string; namespace?: string }) => {
      if (kind !== "deployment") throw pcError("PC_CLI_USAGE", "only deployments scale");
      if (!/^[0-9]{1,3}$/.test(o.replicas)) throw pcError("PC_CLI_USAGE", "--replicas must be a whole number");
      const ns = needNamespace(o.namespace);
      const s = await open();
      const m = await currentManifest(s, ns, name);
      const scaled = { ...m, spec: { ...m.spec, replicas: Number(o.replicas) } } as Manifest;
      printDecision(globals().output, await sendSigned(s, "scale", scaled));
    });

  program
    .command("delete")
    .description("delete a deployment and every container of it (a signed request)")
    .argument("<kind>", "deployment")
    .argument("<name>")
    .option("-n, --namespace <ns>")
    .action(async (kind: string, name: string, o: { namespace?: string }) => {
      if (kind !== "deployment") throw pcError("PC_CLI_USAGE", "only deployments are deleted with this command");
      const ns = needNamespace(o.namespace);
      const s = await open();
      printDecision(globals().output, await sendSigned(s, "delete", await currentManifest(s, ns, name)));
    });

  program
    .command("get")
    .description("show deployments: replicas, nodes, runtimes, health, revision")
    .argument("<kind>", "deployments | deployment")
    .argument("[name]")
    .option("-n, --namespace <ns>")
    .action(async (kind: string, name: string | undefined, o: { namespace?: string }) => {
      const s = await open();
      const f = globals().output;
      if (kind === "deployments") {
        const path = o.namespace ? `/v1/namespaces/${enc(o.namespace)}/deployments` : "/v1/deployments";
        const list = await s.call<Record<string, unknown>[]>("GET", path);
        return print(f, list, f === "json" ? undefined : ["namespace", "name", "revision", "ready", "replicas", "runtime", "state"]);
      }
      if (kind !== "deployment" || name === undefined) throw pcError("PC_CLI_USAGE", "get deployments [-n NS] | get deployment NAME -n NS");
      const d = await s.call<Record<string, unknown> & { containers: Record<string, unknown>[] }>(
        "GET",
        `/v1/namespaces/${enc(needNamespace(o.namespace))}/deployments/${enc(name)}`,
      );
      if (f === "json") return print(f, d);
      const { containers, ...rest } = d;
      print(f, rest);
      process.stdout.write("\n");
      print(f, containers, ["container", "node", "revision", "runtime", "state", "health", "restarts"]);
    });

  program
    .command("logs")
    .description("the last lines each replica of a deployment wrote")
    .argument("<name>")
    .option("-n, --namespace <ns>")
    .option("--tail <n>", "lines per replica", "100")
    .action(async (name: string, o: { namespace?: string; tail: string }) => {
      if (!/^[0-9]{1,5}$/.test(o.tail) || Number(o.tail) < 1) throw pcError("PC_CLI_USAGE", "--tail must be 1 to 10000");
      const s = await open();
      const logs = await s.call<{ container: string; node: string; stdout: string; stderr: string }[]>(
        "GET",
        `/v1/namespaces/${enc(needNamespace(o.namespace))}/deployments/${enc(name)}/logs?tail=${Number(o.tail)}`,
      );
      if (globals().output === "json") return print("json", logs);
      for (const l of logs) {
        process.stdout.write(`==> ${l.container} (${l.node}) <==\n${l.stdout}`);
        if (l.stderr) process.stderr.write(`==> ${l.container} (${l.node}) stderr <==\n${l.stderr}`);
      }
    });

  program
    .command("decision")
    .description("stored decision records")
    .command("get <id>")
    .description("a deploy request's decision record (every check, waivers, placement, runtime)")
    .option("-n, --namespace <ns>")
    .action(async (id: string, o: { namespace?: string }) => {
      const s = await open();
      const d = await s.call<Record<string, unknown>>("GET", `/v1/namespaces/${enc(needNamespace(o.namespace))}/decisions/${enc(id)}`);
      const f = globals().output;
      if (f === "json") return print(f, d);
      print(f, { id: d.id ?? d.requestId, outcome: d.outcome, operation: d.operation, requester: d.requester, jti: d.jti, at: d.at });
      process.stdout.write(formatDenial(d));
    });

  const rollout = program.command("rollout").description("a deployment's revisions: history, undo");
  rollout
    .command("history <name>")
    .option("-n, --namespace <ns>")
    .action(async (name: string, o: { namespace?: string }) => {
      const s = await open();
      const list = await revisions(s, needNamespace(o.namespace), name);
      const f = globals().output;
      const rows = list.map(({ manifest: _m, ...r }) => r);
      print(f, f === "json" ? list : rows, f === "json" ? undefined : ["revision", "status", "current", "requester", "createdAt", "runtime", "digest"]);
    });
  rollout
    .command("undo <name>")
    .description("roll back to the previous good revision (or --to-revision), as a new signed update")
    .option("-n, --namespace <ns>")
    .option("--to-revision <r>")
    .action(async (name: string, o: { namespace?: string; toRevision?: string }) => {
      const ns = needNamespace(o.namespace);
      const s = await open();
      const list = await revisions(s, ns, name);
      const cur = list.find((r) => r.current);
      let target: Revision | undefined;
      if (o.toRevision !== undefined) {
        target = list.find((r) => String(r.revision) === o.toRevision);
        if (target === undefined) throw pcError("PC_DEPLOY_REVISION_NOT_FOUND", `${ns}/${name} revision ${o.toRevision}`);
      } else {
        target = list.filter((r) => !r.current && r.revision < (cur?.revision ?? Infinity) && r.status !== "failed").pop();
        if (target === undefined) throw pcError("PC_DEPLOY_REVISION_NOT_FOUND", `${ns}/${name} has no earlier good revision`);
      }
      printDecision(globals().output, await sendSigned(s, "update", target.manifest));
    });
}
