import type { AuditSink, Clock } from "../core/index.js";
import { labelsReason, pcError, sortedLabels } from "../core/index.js";
import type { NamespaceRecord, Store } from "../store/index.js";

/** A namespace name is a DNS label (RFC 1123), like a Kubernetes namespace. */
export const NAMESPACE_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function assertNamespaceName(name: string): string {
  if (typeof name !== "string" || !NAMESPACE_RE.test(name)) {
    throw pcError("PC_RBAC_NAMESPACE_INVALID", JSON.stringify(String(name).slice(0, 70)));
  }
  return name;
}

export function assertLabels(labels: Record<string, string>): Record<string, string> {
  const reason = labelsReason(labels);
  if (reason !== undefined) throw pcError("PC_RBAC_LABEL_INVALID", reason);
  return sortedLabels(labels);
}

/** What else lives in a namespace; later domains report their deployments and secrets. */
export interface NamespaceUsage {
  count(namespace: string): { deployments: number; secrets: number };
}

export const NO_USAGE: NamespaceUsage = { count: () => ({ deployments: 0, secrets: 0 }) };

export interface NamespaceActor {
  readonly identity: string;
  readonly serial?: string | undefined;
  readonly requestId?: string | undefined;
  readonly sourceAddress?: string | undefined;
}

export class NamespaceService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly usage: NamespaceUsage = NO_USAGE,
  ) {}

  create(name: string, labels: Record<string, string>, actor: NamespaceActor): NamespaceRecord {
    const rec: NamespaceRecord = {
      name: assertNamespaceName(name),
      labels: assertLabels(labels),
      createdAt: this.clock.now().getTime(),
      createdBy: actor.identity,
    };
    this.store.transaction(() => {
      if (!this.store.namespaces.insert(rec)) throw pcError("PC_RBAC_NAMESPACE_EXISTS", name);
      this.audit.record({ type: "rbac.namespace_created", outcome: "allowed", actor: actor.identity, actorSerial: actor.serial, requestId: actor.requestId, sourceAddress: actor.sourceAddress, target: name });
    });
    return rec;
  }

  get(name: string): NamespaceRecord {
    const rec = this.store.namespaces.get(assertNamespaceName(name));
    if (!rec) throw pcError("PC_RBAC_NAMESPACE_NOT_FOUND", name);
    return rec;
  }

  exists(name: string): boolean {
    return this.store.namespaces.get(name) !== undefined;
  }

  list(): NamespaceRecord[] {
    return this.store.namespaces.list();
  }

  /** Refused while the namespace still holds deployments or secrets. */
  delete(name: string, actor: NamespaceActor): void {
    this.get(name);
    const used = this.usage.count(name);
    if (used.deployments > 0 || used.secrets > 0) {
      throw pcError("PC_RBAC_NAMESPACE_IN_USE", `${used.deployments} deployments, ${used.secrets} secrets`);
    }
    this.store.transaction(() => {
      if (!this.store.namespaces.delete(name)) throw pcError("PC_RBAC_NAMESPACE_NOT_FOUND", name);
      this.audit.record({ type: "rbac.namespace_deleted", outcome: "allowed", actor: actor.identity, actorSerial: actor.serial, requestId: actor.requestId, sourceAddress: actor.sourceAddress, target: name });
    });
  }
}
