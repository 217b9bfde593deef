import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { identityToSpiffe, parseIdentity, pcError } from "../../core/index.js";
import { buildCsr, certificatesFromPem, derToPem, generateKeyPair, privateKeyPem, type IssuedBundle } from "../../pki/index.js";
import { writeFileAtomic } from "../../store/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";
import { parseLabels } from "./rbac.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const collect = (v: string, prev: string[]) => [...prev, v];
const enc = encodeURIComponent;
const COLUMNS = ["name", "endpoint", "state", "events", "labels", "publishHost", "createdBy"] as const;

interface NodeView {
  name: string;
  endpoint: string;
  state: string;
  labels: Record<string, string>;
  publishHost: string;
  createdBy: string;
  createdAt: string;
  /** The node's event stream, as monitoring sees it: up, connecting, degraded. */
  events?: string;
  status?: { health: string; runtimes: string[]; capacity: { nanoCpus: number; memoryBytes: number; pids: number }; version: string };
}

/** Flattens a node and its status for the table view. */
function tableOf(n: NodeView): Record<string, unknown> {
  const { status, ...rest } = n;
  if (!status) return rest;
  return {
    ...rest,
    health: status.health,
    version: status.version || "-",
    runtimes: status.runtimes,
    cpus: status.capacity.nanoCpus / 1e9,
    memory: `${Math.round(status.capacity.memoryBytes / 2 ** 20)} MiB`,
    pids: status.capacity.pids,
  };
}

/**
 * Writes an engine's TLS material for `dockerd --tlsverify`:
 * - key.pem (0600, made here and never sent) and cert.pem (the engine's certificate and
 *   our issuing CA), for `--tlskey` and `--tlscert`;
 * - ca.pem, for `--tlscacert`: the engine-client CA alone, which issues nothing but the
 *   gateway's client certificate, so the gateway is the only client the engine lets in;
 * - gateway-ca.pem: our root CA, which cert.pem chains to and the gateway checks the
 *   engine against; not for dockerd.
 * Existing files are never overwritten.
 */
export async function nodeCertificate(s: Session, name: string, sans: readonly string[], outDir: string): Promise<{ node: string; serial: string; notAfter: string; files: string[] }> {
  if (sans.length === 0) throw pcError("PC_CLI_USAGE", "give at least one --san (the engine's DNS name or IP address)");
  const files = { key: join(outDir, "key.pem"), cert: join(outDir, "cert.pem"), ca: join(outDir, "ca.pem"), gatewayCa: join(outDir, "gateway-ca.pem") };
  for (const f of Object.values(files)) if (existsSync(f)) throw pcError("PC_CLI_USAGE", `${f} exists; choose another --out-dir`);
  const kp = generateKeyPair("ec-p256");
  const spiffe = identityToSpiffe(parseIdentity(`node:${name}`), s.profile.trustDomain);
  const { pem } = buildCsr({ key: kp.privateKey, publicKey: kp.publicKey, commonName: `node:${name}`, san: [{ uri: spiffe }] });
  const issued = await s.call<IssuedBundle & { engineClientCa: string }>("POST", `/v1/nodes/${enc(name)}/certificate`, { csr: pem, sans });
  const leaf = new X509Certificate(issued.certificate);
  if (!leaf.checkPrivateKey(kp.privateKey)) throw pcError("PC_CLI_BAD_RESPONSE", "issued certificate is not for our key");
  if (!(leaf.subjectAltName ?? "").split(", ").includes(`URI:${spiffe}`)) throw pcError("PC_CLI_BAD_RESPONSE", "issued certificate names another node");
  const root = certificatesFromPem(issued.caBundle)
    .map((der) => new X509Certificate(der))
    .find((x) => x.ca && x.checkIssued(x));
  if (!root) throw pcError("PC_CLI_BAD_RESPONSE", "the CA bundle holds no root");
  const clientCa = engineClientCaOf(issued, root);
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(files.key, privateKeyPem(kp.privateKey), 0o600);
  writeFileAtomic(files.cert, issued.certificate + issued.chain, 0o644);
  writeFileAtomic(files.ca, derToPem(clientCa.raw, "CERTIFICATE"), 0o644);
  writeFileAtomic(files.gatewayCa, derToPem(root.raw, "CERTIFICATE"), 0o644);
  return { node: name, serial: issued.serial, notAfter: issued.notAfter, files: [files.key, files.cert, files.ca, files.gatewayCa] };
}

/**
 * The engine-client CA of a `node cert` answer, checked: exactly one CA certificate,
 * signed by our root, and not the CA that issues users' and nodes' certificates (an
 * engine trusting that one would let every enrolled identity in).
 */
function engineClientCaOf(issued: IssuedBundle & { engineClientCa?: unknown }, root: X509Certificate): X509Certificate {
  if (typeof issued.engineClientCa !== "string") throw pcError("PC_CLI_BAD_RESPONSE", "the answer has no engine-client CA");
  const certs = certificatesFromPem(issued.engineClientCa);
  const ca = certs.length === 1 ? new X509Certificate(certs[0] as Buffer) : undefined;
  if (!ca || !ca.ca || !ca.checkIssued(root) || !ca.verify(root.publicKey) || ca.raw.equals(root.raw)) {
    throw pcError("PC_CLI_BAD_RESPONSE", "the engine-client CA is not one CA certificate under our root");
  }
  if (certificatesFromPem(issued.caBundle + issued.chain).some((der) => der.equals(ca.raw))) {
    throw pcError("PC_CLI_BAD_RESPONSE", "the engine-client CA is the issuing CA of every identity");
  }
  return ca;
}

/** node add, list, get, drain, activate, remove, cert: the engines the gateway schedules onto. */
export function registerNodeCommands(program: Command, globals: Globals, open: Open): void {
  const node = program.command("node").description("nodes: the Docker engines the gateway schedules onto");
  node
    .command("add <name>")
    .description("register an engine: unix:///var/run/docker.sock, or tcp://HOST:PORT (mutual TLS)")
    .requiredOption("--endpoint <url>", "unix:///PATH or tcp://HOST:PORT")
    .option("--label <k=v>", "label (repeatable)", collect, [])
    .option("--publish-host <ip>", "address that published ports bind to on this node (default 127.0.0.1)")
    .action(async (name: string, o: { endpoint: string; label: string[]; publishHost?: string }) => {
      const body = { name, endpoint: o.endpoint, labels: parseLabels(o.label), ...(o.publishHost ? { publishHost: o.publishHost } : {}) };
      const s = await open();
      print(globals().output, await s.call("POST", "/v1/nodes", body));
    });
  node.command("list").action(async () => {
    const s = await open();
    const r = await s.call<{ items: NodeView[] }>("GET", "/v1/nodes");
    const f = globals().output;
    print(f, r.items, f === "json" ? undefined : COLUMNS);
  });
  node
    .command("get <name>")
    .description("a node with its health, runtimes and capacity")
    .action(async (name: string) => {
      const s = await open();
      const r = await s.call<NodeView>("GET", `/v1/nodes/${enc(name)}`);
      const f = globals().output;
      print(f, f === "json" ? r : tableOf(r));
    });
  node
    .command("drain <name>")
    .description("place no new replicas on the node")
    .action(async (name: string) => {
      const s = await open();
      print(globals().output, await s.call("POST", `/v1/nodes/${enc(name)}/drain`, {}));
    });
  node
    .command("activate <name>")
    .description("place replicas on a drained node again")
    .action(async (name: string) => {
      const s = await open();
      print(globals().output, await s.call("POST", `/v1/nodes/${enc(name)}/activate`, {}));
    });
  node
    .command("remove <name>")
    .description("remove a node that holds no replicas")
    .action(async (name: string) => {
      const s = await open();
      print(globals().output, await s.call("DELETE", `/v1/nodes/${enc(name)}`));
    });
  node
    .command("cert <name>")
    .description("issue an engine's server certificate for dockerd --tlsverify; the key is made here")
    .option("--san <name>", "DNS name or IP address the engine is reached at (repeatable)", collect, [])
    .requiredOption("--out-dir <dir>", "where to write key.pem, cert.pem, ca.pem (for --tlscacert) and gateway-ca.pem")
    .action(async (name: string, o: { san: string[]; outDir: string }) => {
      const s = await open();
      print(globals().output, await nodeCertificate(s, name, o.san, o.outDir));
    });
}
