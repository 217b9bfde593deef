import type { FastifyRequest } from "fastify";
import type { GatewayConfig } from "../../core/index.js";
import type { Actor, PkiService } from "../../pki/index.js";
import type { NamespaceService, PolicyService } from "../../rbac/index.js";
import type { AdmissionPolicyService, WaiverService } from "../../admission/index.js";
import type { AuditLog, AuditSource } from "../../audit/index.js";
import type { NodeRegistry, ReplicaCount } from "../../runtime/index.js";
import type { DeployPipeline } from "../deploy-pipeline.js";
import type { DeploymentViews } from "../../runtime/index.js";
import type { SecretActor, SecretService } from "../../secrets/index.js";
import type { MonitoringRulesService, MonitorEvent } from "../../monitoring/index.js";
import type { AlertService, QuarantineService } from "../../monitoring/index.js";
import { requireCaller } from "../server.js";

export interface RouteContext {
  readonly pki: PkiService;
  readonly policy: PolicyService;
  readonly namespaces: NamespaceService;
  readonly nodes: NodeRegistry;
  /** A node's event stream as monitoring sees it; undefined before it watched the node. */
  readonly nodeEvents: (node: string) => "connecting" | "up" | "degraded" | undefined;
  /** Replicas placed on a node; `node remove` is refused while there are any (default: the replicas table). */
  readonly nodeReplicas?: ReplicaCount;
  readonly audit: AuditLog;
  /** A reader on its own connection, for exports; closed when the export ends. */
  readonly openAuditReader: () => { source: AuditSource; close: () => void };
  readonly config: GatewayConfig;
  readonly version: string;
  /** Called after a revocation so the TLS context reloads at once. */
  readonly onRevocation: () => void;
  /** The address clients should use for the API, told to them at enrollment. */
  readonly apiAddress: () => string;
  readonly health: () => Promise<Record<string, unknown>>;
  /** Signed deploys, and the reads of deployments. */
  readonly deployments: {
    readonly pipeline: DeployPipeline;
    readonly views: DeploymentViews;
    /** A stored decision record of the namespace, parsed; PC_DEPLOY_DECISION_NOT_FOUND otherwise. */
    readonly decision: (namespace: string, id: string) => unknown;
  };
  /** The admission policies in force, their versions and history. */
  readonly admissionPolicy: AdmissionPolicyService;
  /** The monitoring rules in force, their versions and history. */
  readonly monitoringRules: MonitoringRulesService;
  /** The events monitoring recorded (GET /v1/monitoring/events), oldest first. */
  readonly recordedEvents: {
    list(filter: { node?: string; sinceMs?: number; untilMs?: number; type?: string; limit?: number }): readonly MonitorEvent[];
  };
  /** Waivers: create, list, get, revoke. */
  readonly waivers: WaiverService;
  /** Secrets: values in and (an explicit read) out, metadata, the keyring. */
  readonly secrets: Pick<SecretService, "create" | "update" | "list" | "get" | "read" | "delete" | "kekStatus" | "rotateKek" | "retireKek">;
  /** Alerts: list, get, acknowledge; and their webhook deliveries. */
  readonly alerts: AlertService;
  /** Containers held in quarantine: list, release. */
  readonly quarantines: QuarantineService;
  /** The image scanner's side: the database status, images' SBOMs. */
  readonly scan: {
    readonly status: () => { scanner: string; active?: Record<string, unknown>; imports: Record<string, unknown>[] };
    /** PC_RUNTIME_NODE_NOT_FOUND / PC_SCAN_IMAGE_UNREADABLE when the node does not hold the image. */
    readonly sbom: (node: string, image: string) => Promise<unknown>;
  };
  /** The gateway's metrics, rendered in the Prometheus text format for GET /metrics. */
  readonly metrics: { render(): Promise<{ contentType: string; body: string }> };
  /** The deployments that use secrets: whether one is running, and stopping it (secret delete --force). */
  readonly secretUsers: {
    readonly running: (namespace: string, deployment: string) => boolean;
    readonly stopUsing: (namespace: string, deployment: string, reason: string, actor: SecretActor) => Promise<unknown>;
  };
}

export function actorOf(req: FastifyRequest): Actor {
  const c = requireCaller(req);
  return { identity: c.id, serial: c.serial, sourceAddress: req.ip, requestId: req.id };
}
