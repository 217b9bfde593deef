/**
 * Nodes: the Docker engines the gateway schedules onto. A node is reached through its
 * local socket (`unix:///path/to/docker.sock`) or over TCP with mutual TLS
 * (`tcp://HOST:PORT`): the gateway presents its `service:gateway` client certificate
 * from the engine-client CA (the only CA an engine trusts for clients) and accepts only
 * an engine certificate from our CA that names the node
 * (`spiffe://<trust domain>/node/<name>`) and the host. Plain TCP does not exist here.
 *
 * Capacity: CPUs and memory are what the engine reports (NCPU, MemTotal); engines do
 * not report a process limit, so every node gets a fixed budget of PIDS_BUDGET.
 */
import { isIP } from "node:net";
import type { AuditSink, Clock } from "../core/index.js";
import { labelsReason, pcError, sortedLabels, type PortcullisError } from "../core/index.js";
import type { NodeRecord, NodeState, Store } from "../store/index.js";
import { DockerEngine } from "./engine.js";

/** A node name is a DNS label (RFC 1123). */
export const NODE_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const LOCAL_NODE = "local";
export const LOCAL_ENDPOINT = "unix:///var/run/docker.sock";
export const DEFAULT_PUBLISH_HOST = "127.0.0.1";
/** Processes per node that placement may hand out (engines report no limit). */
export const PIDS_BUDGET = 32_768;
/** A health check gives up after this long. */
export const HEALTH_TIMEOUT_MS = 2_000;
/** A health result is reused for this long unless a fresh one is asked for. */
export const HEALTH_TTL_MS = 10_000;

const DNS_NAME_RE = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const MAX_SOCKET_PATH = 107;

/** The gateway's client credentials for TCP engines. */
export interface NodeCredentials {
  /** Trust anchors for engine certificates (our CA: root and issuing intermediate). */
  readonly caPem: string;
  /** The `service:gateway` client certificate and its issuer, the engine-client CA. */
  readonly certPem: string;
  readonly keyPem: string;
}

export interface NodeActor {
  readonly identity: string;
  readonly serial?: string | undefined;
  readonly requestId?: string | undefined;
  readonly sourceAddress?: string | undefined;
}

export interface NodeCapacity {
  readonly nanoCpus: number;
  readonly memoryBytes: number;
  readonly pids: number;
}

export interface NodeStatus {
  readonly health: "ok" | "unreachable";
  readonly runtimes: readonly string[];
  readonly capacity: NodeCapacity;
  /** The engine's version; empty when unreachable. */
  readonly version: string;
  readonly checkedAt: string;
}

export type NodeEndpoint =
  | { readonly kind: "unix"; readonly socketPath: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

export interface NodeRegistryOptions {
  /** When set, a TCP engine must present `spiffe://<trustDomain>/node/<name>`. */
  readonly trustDomain?: string;
  readonly healthTimeoutMs?: number;
  readonly healthTtlMs?: number;
}

/** How many replicas the gateway has placed on a node. */
export type ReplicaCount = (node: NodeRecord) => number;

function invalid(detail: string): PortcullisError {
  return pcError("PC_RUNTIME_NODE_INVALID", detail);
}

const quote = (s: string): string => JSON.stringify(String(s).slice(0, 70));

export function assertNodeName(name: string): string {
  if (typeof name !== "string" || !NODE_NAME_RE.test(name)) {
    throw invalid(`name ${quote(name)} is not a DNS label (lower-case letters, digits and '-', at most 63)`);
  }
  return name;
}

/** Parses `unix:///absolute/path` or `tcp://HOST:PORT` (IPv6 in brackets); anything else is refused. */
export function parseEndpoint(endpoint: string): NodeEndpoint {
  if (typeof endpoint !== "string" || endpoint.length > 300) throw invalid("endpoint is not a string of at most 300 characters");
  if (endpoint.startsWith("unix://")) {
    const path = endpoint.slice("unix://".length);
    if (!path.startsWith("/") || path.length > MAX_SOCKET_PATH || /[\0\s]/.test(path) || path.split("/").includes("..")) {
      throw invalid("a unix endpoint is unix:///ABSOLUTE/PATH (no '..', at most 107 characters)");
    }
    return { kind: "unix", socketPath: path };
  }
  const m = /^tcp:\/\/(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]\s@?#]+)):([0-9]{1,5})$/.exec(endpoint);
  if (m) {
    const host = (m[1] ?? m[2]) as string;
    const port = Number(m[3]);
    const hostOk = m[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || DNS_NAME_RE.test(host);
    if (hostOk && port >= 1 && port <= 65535) return { kind: "tcp", host, port };
  }
  throw invalid("endpoint must be unix:///PATH or tcp://HOST:PORT (mutual TLS; plain HTTP is not supported)");
}

function assertPublishHost(host: string): string {
  if (typeof host !== "string" || isIP(host) === 0) throw invalid(`publish host ${quote(host)} is not an IP address`);
  return host;
}

function assertNodeLabels(labels: Record<string, string>): Record<string, string> {
  const reason = labelsReason(labels);
  if (reason !== undefined) throw invalid(`label ${reason}`);
  return sortedLabels(labels);
}

const UNREACHABLE = (checkedAt: string): NodeStatus => ({
  health: "unreachable",
  runtimes: [],
  capacity: { nanoCpus: 0, memoryBytes: 0, pids: 0 },
  version: "",
  checkedAt,
});

/**
 * The registry of nodes. Every change and its audit entry commit in one transaction.
 * Engines are built on demand and kept until the node's record or the gateway's
 * client certificate changes.
 */
export class NodeRegistry {
  private readonly engines = new Map<string, { key: string; engine: DockerEngine }>();
  private readonly statuses = new Map<string, { key: string; at: number; status: NodeStatus }>();
  private readonly healthTimeoutMs: number;
  private readonly healthTtlMs: number;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly credentials?: () => NodeCredentials,
    private readonly options: NodeRegistryOptions = {},
  ) {
    this.healthTimeoutMs = options.healthTimeoutMs ?? HEALTH_TIMEOUT_MS;
    this.healthTtlMs = options.healthTtlMs ?? HEALTH_TTL_MS;
  }

  add(
    name: string,
    endpoint: string,
    labels: Record<string, string>,
    actor: NodeActor,
    opts: { publishHost?: string } = {},
  ): NodeRecord {
    parseEndpoint(endpoint);
    const rec: NodeRecord = {
      name: assertNodeName(name),
      endpoint,
      labels: assertNodeLabels(labels),
      state: "active",
      publishHost: assertPublishHost(opts.publishHost ?? DEFAULT_PUBLISH_HOST),
      createdAt: this.clock.now().getTime(),
      createdBy: actor.identity,
    };
    this.store.transaction(() => {
      if (!this.store.nodes.insert(rec)) throw pcError("PC_RUNTIME_NODE_EXISTS", name);
      this.record("runtime.node_added", actor, name);
    });
    return rec;
  }

  list(): NodeRecord[] {
    return this.store.nodes.list();
  }

  get(name: string): NodeRecord {
    const rec = this.store.nodes.get(assertNodeName(name));
    if (!rec) throw pcError("PC_RUNTIME_NODE_NOT_FOUND", name);
    return rec;
  }

  /** No new replicas are placed on a draining node; those it runs stay. */
  drain(name: string, actor: NodeActor): NodeRecord {
    return this.setState(name, "draining", "runtime.node_drained", actor);
  }

  activate(name: string, actor: NodeActor): NodeRecord {
    return this.setState(name, "active", "runtime.node_activated", actor);
  }

  /** Refused while the node holds replicas (by default, the replicas table's count). */
  remove(name: string, actor: NodeActor, replicaCount?: ReplicaCount): void {
    this.store.transaction(() => {
      const rec = this.get(name);
      const n = replicaCount ? replicaCount(rec) : this.store.nodes.replicas(rec.name);
      if (n > 0) throw pcError("PC_RUNTIME_NODE_IN_USE", `${rec.name} holds ${n} replica(s); drain it and move them first`);
      if (!this.store.nodes.delete(rec.name)) throw pcError("PC_RUNTIME_NODE_NOT_FOUND", name);
      this.record("runtime.node_removed", actor, rec.name);
    });
    this.engines.delete(name);
    this.statuses.delete(name);
  }

  /** The node's engine, built once and rebuilt when the record or the credentials change. */
  engine(name: string): DockerEngine {
    const rec = this.get(name);
    const ep = parseEndpoint(rec.endpoint);
    const creds = ep.kind === "tcp" ? this.tcpCredentials() : undefined;
    const key = `${rec.endpoint}\u0000${rec.createdAt}\u0000${creds?.certPem ?? ""}`;
    const cached = this.engines.get(name);
    if (cached && cached.key === key) return cached.engine;
    const engine =
      ep.kind === "unix"
        ? new DockerEngine({ socketPath: ep.socketPath })
        : new DockerEngine({
            host: ep.host,
            port: ep.port,
            ca: creds?.caPem,
            cert: creds?.certPem,
            key: creds?.keyPem,
            ...(this.options.trustDomain ? { serverUri: `spiffe://${this.options.trustDomain}/node/${rec.name}` } : {}),
          });
    this.engines.set(name, { key, engine });
    return engine;
  }

  /**
   * The node's health, runtimes and capacity. A result younger than the TTL is reused
   * unless `fresh` is set; an engine that does not answer within the timeout is
   * reported unreachable.
   */
  async status(name: string, opts: { fresh?: boolean } = {}): Promise<NodeStatus> {
    const rec = this.get(name);
    const key = `${rec.endpoint}\u0000${rec.createdAt}`;
    const now = this.clock.now().getTime();
    const cached = this.statuses.get(name);
    if (!opts.fresh && cached && cached.key === key && now - cached.at < this.healthTtlMs) return cached.status;
    const status = await this.check(name);
    this.statuses.set(name, { key, at: this.clock.now().getTime(), status });
    return status;
  }

  /** Checks every node now; returns their statuses by name. */
  async refresh(): Promise<Map<string, NodeStatus>> {
    const out = new Map<string, NodeStatus>();
    await Promise.all(this.list().map(async (n) => out.set(n.name, await this.status(n.name, { fresh: true }))));
    return out;
  }

  private async check(name: string): Promise<NodeStatus> {
    const checkedAt = this.clock.now().toISOString();
    let timer: NodeJS.Timeout | undefined;
    try {
      const engine = this.engine(name);
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("health check timed out")), this.healthTimeoutMs);
      });
      const info = await Promise.race([engine.info(), timeout]);
      return {
        health: "ok",
        runtimes: info.runtimes,
        capacity: { nanoCpus: info.cpus * 1e9, memoryBytes: info.memoryBytes, pids: PIDS_BUDGET },
        version: info.serverVersion,
        checkedAt,
      };
    } catch {
      return UNREACHABLE(checkedAt);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  private tcpCredentials(): NodeCredentials {
    if (!this.credentials) throw pcError("PC_RUNTIME_ENGINE_UNAVAILABLE", "no client certificate for TCP engines");
    return this.credentials();
  }

  private setState(name: string, state: NodeState, type: string, actor: NodeActor): NodeRecord {
    return this.store.transaction(() => {
      const rec = this.get(name);
      if (!this.store.nodes.updateState(rec.name, state)) throw pcError("PC_RUNTIME_NODE_NOT_FOUND", name);
      this.record(type, actor, rec.name);
      return { ...rec, state };
    });
  }

  private record(type: string, actor: NodeActor, name: string): void {
    this.audit.record({
      type,
      outcome: "allowed",
      actor: actor.identity,
      actorSerial: actor.serial,
      requestId: actor.requestId,
      sourceAddress: actor.sourceAddress,
      resource: "nodes",
      target: name,
    });
  }
}
