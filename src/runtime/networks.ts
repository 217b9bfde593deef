/**
 * One user-defined bridge network per namespace. Containers of a namespace reach each
 * other on it (inter-container traffic is enabled inside the network); the engine's own
 * isolation rules keep different bridge networks apart, so a namespace cannot reach
 * another's containers.
 *
 * The engine allows two networks of one name, so creation is made race-safe here: the
 * network has a deterministic name (NAMESPACE_NETWORK_PREFIX + namespace), it is looked up
 * by its labels, created with the engine's duplicate-name check, and afterwards the
 * labelled networks of that name are read again: the oldest is kept, any younger twin
 * that a concurrent call created is removed. Every caller so ends on the same network.
 */
import { pcError } from "../core/index.js";
import type { NetworkDetails } from "./engine-resources.js";
import type { DockerEngine } from "./engine.js";
import { MANAGED_LABEL } from "./hardened-spec.js";
import { specInvalid } from "./runtime-errors.js";

export const NAMESPACE_NETWORK_PREFIX = "pc-ns-";
/** The label naming the namespace a network (or container) belongs to. */
export const NETWORK_NAMESPACE_LABEL = "io.portcullis.namespace";
/** Driver options of a namespace network. */
export const NAMESPACE_NETWORK_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  "com.docker.network.bridge.enable_icc": "true",
  "com.docker.network.bridge.enable_ip_masquerade": "true",
});

const NAMESPACE_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const EXTRA_LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const EXTRA_LABEL_VALUE_RE = /^[A-Za-z0-9._:/@+-]{0,256}$/;

export interface NamespaceNetworkOptions {
  /** Further labels for a network this call creates (not the reserved ones). */
  readonly labels?: Readonly<Record<string, string>>;
}

function checkNamespace(namespace: string): void {
  if (typeof namespace !== "string" || !NAMESPACE_RE.test(namespace)) {
    throw specInvalid("namespace", "must be a DNS label");
  }
}

/** The deterministic network name of a namespace. */
export function namespaceNetworkName(namespace: string): string {
  checkNamespace(namespace);
  return `${NAMESPACE_NETWORK_PREFIX}${namespace}`;
}

function selectors(namespace: string): string[] {
  return [`${MANAGED_LABEL}=true`, `${NETWORK_NAMESPACE_LABEL}=${namespace}`];
}

function oldestFirst(a: NetworkDetails, b: NetworkDetails): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The labelled networks of the namespace's name, oldest first. */
async function namespaceNetworks(engine: DockerEngine, namespace: string): Promise<NetworkDetails[]> {
  const name = namespaceNetworkName(namespace);
  const list = await engine.listNetworks(selectors(namespace));
  return list.filter((n) => n.name === name && n.driver === "bridge").sort(oldestFirst);
}

/** Keeps the oldest network, removes its younger twins (when nothing uses them). */
async function settle(engine: DockerEngine, namespace: string): Promise<NetworkDetails | undefined> {
  const [keep, ...twins] = await namespaceNetworks(engine, namespace);
  for (const twin of twins) {
    if ((await engine.containersOnNetwork(twin.id)).length === 0) await engine.removeNetwork(twin.id);
  }
  return keep;
}

function checkExtraLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (!EXTRA_LABEL_KEY_RE.test(k) || !EXTRA_LABEL_VALUE_RE.test(v)) throw specInvalid(`labels.${k}`, "is not a valid label");
    if (k === MANAGED_LABEL || k === NETWORK_NAMESPACE_LABEL) throw specInvalid(`labels.${k}`, "is reserved");
    out[k] = v;
  }
  return out;
}

/** The calls in flight per engine and namespace (see ensureNamespaceNetwork). */
const inFlight = new WeakMap<DockerEngine, Map<string, Promise<string>>>();

/**
 * The name of the namespace's network, created when it does not exist yet. Concurrent
 * calls end with one network, whose name they all return.
 *
 * Calls of this process for one engine and namespace run one after the other: the
 * engine's duplicate-name check does not stop two concurrent creates, and a container
 * created (not yet started) on the younger twin is not seen as using it, so settling
 * would remove the network under it and its start would fail.
 */
export function ensureNamespaceNetwork(
  engine: DockerEngine,
  namespace: string,
  options: NamespaceNetworkOptions = {},
): Promise<string> {
  let calls = inFlight.get(engine);
  if (calls === undefined) {
    calls = new Map();
    inFlight.set(engine, calls);
  }
  const perEngine = calls;
  const prev = perEngine.get(namespace) ?? Promise.resolve("");
  const next = prev.catch(() => "").then(() => ensureNamespaceNetworkNow(engine, namespace, options));
  perEngine.set(namespace, next);
  void next.catch(() => undefined).then(() => {
    if (perEngine.get(namespace) === next) perEngine.delete(namespace);
  });
  return next;
}

async function ensureNamespaceNetworkNow(
  engine: DockerEngine,
  namespace: string,
  options: NamespaceNetworkOptions,
): Promise<string> {
  const name = namespaceNetworkName(namespace);
  const extra = checkExtraLabels(options.labels ?? {});
  const existing = await namespaceNetworks(engine, namespace);
  if (existing.length === 1) return name;
  if (existing.length === 0) {
    await engine.createBridgeNetwork({
      name,
      labels: { ...extra, [MANAGED_LABEL]: "true", [NETWORK_NAMESPACE_LABEL]: namespace },
      options: NAMESPACE_NETWORK_OPTIONS,
    });
  }
  const kept = await settle(engine, namespace);
  if (kept === undefined) {
    // A network of that name exists but is not a managed one of this namespace.
    throw pcError("PC_RUNTIME_ENGINE_FAILED", `network ${name} exists and is not managed by portcullis`);
  }
  return name;
}

/**
 * Removes the namespace's network when no container, running or stopped, is attached to
 * it. Returns whether a network was removed.
 */
export async function removeNamespaceNetworkIfUnused(engine: DockerEngine, namespace: string): Promise<boolean> {
  let removed = false;
  for (const network of await namespaceNetworks(engine, namespace)) {
    if ((await engine.containersOnNetwork(network.id)).length > 0) continue;
    if ((await engine.removeNetwork(network.id)) === "removed") removed = true;
  }
  return removed;
}
