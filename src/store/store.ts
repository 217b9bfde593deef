import { join } from "node:path";
import { openDatabase, openReadOnlyDatabase, type Db } from "./db.js";
import { AccessEventRepo } from "./repos/access-events.js";
import { AuditLogRepo } from "./repos/audit-log.js";
import { CertificateRepo } from "./repos/certificates.js";
import { DeployRequestRepo } from "./repos/deploy-requests.js";
import { DeploymentRepo } from "./repos/deployments.js";
import { EnrollTokenRepo } from "./repos/enroll-tokens.js";
import { NamespaceRepo } from "./repos/namespaces.js";
import { NodeRepo } from "./repos/nodes.js";
import { PolicyVersionRepo } from "./repos/policy-versions.js";
import { AdmissionPolicyVersionRepo } from "./repos/admission-policy-versions.js";
import { DecisionRecordRepo } from "./repos/decision-records.js";
import { PendingRequestRepo } from "./repos/pending-requests.js";
import { WaiverRepo } from "./repos/waivers.js";
import { AlertRepo } from "./repos/alerts.js";
import { MonitorActionRepo } from "./repos/monitor-actions.js";
import { QuarantineRepo } from "./repos/quarantines.js";
import { AlertDeliveryRepo } from "./repos/alert-deliveries.js";
import { SecretRepo } from "./repos/secrets.js";
import { VulnDbRepo } from "./repos/vulndb.js";
import { MonitorEventRepo } from "./repos/monitor-events.js";
import { MonitoringRulesVersionRepo } from "./repos/monitoring-rules-versions.js";

export const DB_FILE = "portcullis.db";

/** The store of one data directory: the database and its repositories. */
export class Store {
  readonly certificates: CertificateRepo;
  readonly enrollTokens: EnrollTokenRepo;
  /** Read-only view of the audit log in the shape of the events it records. */
  readonly accessEvents: AccessEventRepo;
  readonly auditLog: AuditLogRepo;
  readonly namespaces: NamespaceRepo;
  readonly policyVersions: PolicyVersionRepo;
  readonly deployRequests: DeployRequestRepo;
  readonly deployments: DeploymentRepo;
  readonly nodes: NodeRepo;
  readonly admissionPolicyVersions: AdmissionPolicyVersionRepo;
  readonly decisionRecords: DecisionRecordRepo;
  /** Deploy requests waiting for approvals, and their approvals. */
  readonly pendingRequests: PendingRequestRepo;
  readonly waivers: WaiverRepo;
  readonly alerts: AlertRepo;
  /** Response actions of alerts, carried out and retried until settled. */
  readonly monitorActions: MonitorActionRepo;
  /** Containers held for forensics. */
  readonly quarantines: QuarantineRepo;
  /** Alerts to deliver to the webhook, and the dead-letter record. */
  readonly alertDeliveries: AlertDeliveryRepo;
  /** Secrets, their encrypted versions, and the versions each revision pinned. */
  readonly secrets: SecretRepo;
  /** The vulnerability database: imports, OSV records by package, the scan result cache. */
  readonly vulndb: VulnDbRepo;
  /** Events monitoring handled (exactly-once handling) and where each node's event stream resumes. */
  readonly monitorEvents: MonitorEventRepo;
  /** The monitoring rules, versioned; the highest version is in force. */
  readonly monitoringRulesVersions: MonitoringRulesVersionRepo;
  private closed = false;

  constructor(readonly db: Db) {
    this.certificates = new CertificateRepo(db);
    this.enrollTokens = new EnrollTokenRepo(db);
    this.accessEvents = new AccessEventRepo(db);
    this.auditLog = new AuditLogRepo(db);
    this.namespaces = new NamespaceRepo(db);
    this.policyVersions = new PolicyVersionRepo(db);
    this.deployRequests = new DeployRequestRepo(db);
    this.deployments = new DeploymentRepo(db);
    this.nodes = new NodeRepo(db);
    this.admissionPolicyVersions = new AdmissionPolicyVersionRepo(db);
    this.decisionRecords = new DecisionRecordRepo(db);
    this.pendingRequests = new PendingRequestRepo(db);
    this.waivers = new WaiverRepo(db);
    this.alerts = new AlertRepo(db);
    this.monitorActions = new MonitorActionRepo(db);
    this.quarantines = new QuarantineRepo(db);
    this.alertDeliveries = new AlertDeliveryRepo(db);
    this.secrets = new SecretRepo(db);
    this.vulndb = new VulnDbRepo(db);
    this.monitorEvents = new MonitorEventRepo(db);
    this.monitoringRulesVersions = new MonitoringRulesVersionRepo(db);
  }

  static open(dataDir: string): Store {
    return new Store(openDatabase(join(dataDir, DB_FILE)));
  }

  /** A read-only store over a second connection (see openReadOnlyDatabase). */
  static openReader(dataDir: string): Store {
    return new Store(openReadOnlyDatabase(join(dataDir, DB_FILE)));
  }

  /**
   * Changes whenever another connection (another process, an outside tool) commits to the
   * database; commits through this connection leave it alone. Cheap enough per request.
   */
  dataVersion(): number {
    return this.db.pragma("data_version", { simple: true }) as number;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  get isOpen(): boolean {
    return !this.closed && this.db.open;
  }
}
