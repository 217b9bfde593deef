import { readFileSync, rmSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import type { AddressInfo } from "node:net";
import { AuditLog, auditSignerFrom, issueAuditCredentials, loadAuditCredentials, loadOrCreateHmacKey, renewAuditCredentialsIfDue, type AuditSource } from "./audit/index.js";
import type { Clock, GatewayConfig, Logger } from "./core/index.js";
import { monitoringConfigOf } from "./core/index.js";
import { VERSION, assertTrustDomain, createLogger, formatIdentity, defaultConfig, formatHostPort, parseConfig, parseHostPort, parseIdentity, pcError, scanConfigOf, secretsConfigOf, systemClock } from "./core/index.js";
import {
  apiRoutes,
  apiTlsOptions,
  auditRefusedHandshakes,
  bootstrapRoutes,
  bootstrapTlsOptions,
  buildServer,
  RevocationEnforcer,
  DeployPipeline,
  Readmission,
  VulnRescan,
  type AdmissionGate,
  tlsServerOf,
  parseMetricsListen,
  startMetricsListener,
  type MetricsListener,
  type Authorizer,
  type RouteContext,
  type ServerCredentials,
} from "./api/index.js";
import {
  certificateInfo,
  certificatesFromPem,
  CertificateAuthority,
  derToPem,
  ensureGatewayClientCredentials,
  generateKeyPair,
  issueGatewayClientCredentials,
  newServerKey,
  pkiPaths,
  PkiService,
  privateKeyPem,
  renewalDue,
  spkiDer,
  writeProfile,
  writeServerCredentials,
  type Actor,
} from "./pki/index.js";
import { NamespaceService, PolicyService, shippedPolicyCsv } from "./rbac/index.js";
import {
  AdmissionPolicyService,
  cachedScanHook,
  cleanupVulnDb,
  evaluate as evaluateAdmission,
  IMAGE_SCAN_CHECK,
  ScanCache,
  secretReferencesHook,
  inventoryImage,
  sbomOf,
  selectScanner,
  shippedAdmissionPolicyFiles,
  VulnDb,
  WaiverService,
  type AdmissionPolicyFile,
  type Scanner,
} from "./admission/index.js";
import { DeploymentController, DeploymentViews, DockerEngine, LOCAL_ENDPOINT, LOCAL_NODE, NodeRegistry, Reconciler, SecretFiles } from "./runtime/index.js";
import { DeployRequestVerifier, ReplayGuard } from "./deploy/index.js";
import { createDataDir, openDataDir, readKeyFile, Store, writeFileAtomic, writeKeyFile } from "./store/index.js";
import { createKeyringFile, Keyring, kekSourceFor, keyringPath, SecretService } from "./secrets/index.js";
import { GatewayMetrics, MonitoringRulesService, MonitoringService, shippedMonitoringRules, DERIVED_ACTIONS, composeMonitoring } from "./monitoring/index.js";
import { AlertService, QuarantineService, ResponseActions, WebhookSink, loadWebhookKey } from "./monitoring/index.js";

/**
 * The composition root: builds the domains from a data directory and wires them into
 * the two listeners.
 */

export interface InitOptions {
  readonly dataDir: string;
  readonly trustDomain?: string;
  readonly listen?: string;
  readonly bootstrapListen?: string;
  readonly sans?: readonly string[];
  readonly clock?: Clock;
  readonly lifetimes?: Partial<GatewayConfig["lifetimes"]>;
  /** The initial RBAC policy (CSV); the shipped `policies/rbac/policy.csv` by default. */
  readonly policyCsv?: string;
  /** The initial admission policy files; the shipped `policies/admission/*.yaml` by default. */
  readonly admissionPolicyFiles?: readonly AdmissionPolicyFile[];
}

export interface InitResult {
  readonly dataDir: string;
  readonly rootFingerprint: string;
  readonly adminProfile: string;
  readonly config: GatewayConfig;
}

const SYSTEM_ACTOR: Actor = { identity: "service:portcullis-init" };

/** The first administrator: gets a profile at init, and its powers from the shipped policy. */
export const FIRST_ADMIN = "user:admin";

/**
 * Creates a data directory with a root CA, an issuing intermediate, the engine-client
 * CA and the gateway's client certificate for engines, the gateway's server
 * certificate and the first administrator's profile. Refuses an existing
 * directory; on any failure removes what it created, so nothing is half-made.
 */
export function initGateway(opts: InitOptions): InitResult {
  const clock = opts.clock ?? systemClock;
  const config = defaultConfig({
    trustDomain: assertTrustDomain(opts.trustDomain ?? defaultConfig().trustDomain),
    ...(opts.listen ? { listen: opts.listen } : {}),
    ...(opts.bootstrapListen ? { bootstrapListen: opts.bootstrapListen } : {}),
    sans: [...(opts.sans ?? [])],
    lifetimes: { ...defaultConfig().lifetimes, ...(opts.lifetimes ?? {}) },
  });
  parseConfig(config);
  createDataDir(opts.dataDir, { createdAt: clock.now().toISOString(), trustDomain: config.trustDomain });
  let store: Store | undefined;
  try {
    const p = pkiPaths(opts.dataDir);
    writeFileAtomic(p.config, `${JSON.stringify(config, null, 2)}\n`, 0o600);
    const ca = CertificateAuthority.create(config.trustDomain, clock, config.lifetimes);
    writeKeyFile(p.rootKey, privateKeyPem(ca.material.rootKey));
    writeKeyFile(p.intermediateKey, privateKeyPem(ca.material.intermediateKey));
    writeFileAtomic(p.rootCert, derToPem(ca.material.rootDer, "CERTIFICATE"), 0o644);
    writeFileAtomic(p.intermediateCert, ca.intermediatePem, 0o644);
    // The secret store's keyring, with its first key-encryption key.
    createKeyringFile(keyringPath(opts.dataDir), clock);

    store = Store.open(opts.dataDir);
    const audit = new AuditLog(store, clock, {
      trustDomain: config.trustDomain,
      hmacKey: loadOrCreateHmacKey(opts.dataDir),
      caBundlePem: ca.bundlePem,
      caFingerprint: ca.rootFingerprint,
    });
    audit.genesis(config.trustDomain, ca.rootFingerprint);
    const pki = new PkiService(ca, store, audit, clock, config);
    for (const [der, profile] of [[ca.material.rootDer, "root"], [ca.material.intermediateDer, "intermediate"]] as const) {
      const info = certificateInfo(der);
      store.certificates.insert({
        serial: info.serialHex,
        identity: `ca:${profile}`,
        kind: "ca",
        profile: "ca",
        fingerprint: info.fingerprint,
        notBefore: info.notBefore.getTime(),
        notAfter: info.notAfter.getTime(),
        issuedAt: clock.now().getTime(),
        pem: derToPem(der, "CERTIFICATE"),
      });
    }
    const server = newServerKey();
    const leaf = pki.issueServer(server.spki, SYSTEM_ACTOR);
    writeServerCredentials(opts.dataDir, server.keyPem, leaf.pem, ca.intermediatePem);

    issueAuditCredentials(pki, opts.dataDir, SYSTEM_ACTOR);
    pki.ensureEngineClientAuthority(opts.dataDir, SYSTEM_ACTOR);
    issueGatewayClientCredentials(pki, opts.dataDir, SYSTEM_ACTOR);
    new NodeRegistry(store, audit, clock).add(LOCAL_NODE, LOCAL_ENDPOINT, {}, SYSTEM_ACTOR);
    new PolicyService(store, audit, clock).seed(opts.policyCsv ?? shippedPolicyCsv(), SYSTEM_ACTOR.identity);
    new AdmissionPolicyService(store, audit, clock).seed(opts.admissionPolicyFiles ?? shippedAdmissionPolicyFiles(), SYSTEM_ACTOR.identity);
    new MonitoringRulesService(store, audit, clock).seed(shippedMonitoringRules(), SYSTEM_ACTOR.identity);
    const admin = parseIdentity(FIRST_ADMIN);
    const kp = generateKeyPair("ec-p256");
    const issued = pki.issueClient(admin, spkiDer(kp.publicKey), SYSTEM_ACTOR);
    writeProfile(p.adminProfile, {
      version: 1,
      identity: issued.identity,
      server: config.listen,
      trustDomain: config.trustDomain,
      caBundle: ca.bundlePem,
      certificate: issued.certificate + issued.chain,
      privateKey: privateKeyPem(kp.privateKey),
    });
    store.close();
    return { dataDir: opts.dataDir, rootFingerprint: ca.rootFingerprint, adminProfile: p.adminProfile, config };
  } catch (e) {
    store?.close();
    rmSync(opts.dataDir, { recursive: true, force: true });
    throw e;
  }
}

export interface GatewayOptions {
  readonly dataDir: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Overrides the configured listen addresses (tests use port 0). */
  readonly listen?: string;
  readonly bootstrapListen?: string;
  readonly authorizer?: Authorizer;
  /** How often the server certificate is checked for renewal. */
  readonly serverRenewCheckMs?: number;
  readonly health?: () => Promise<Record<string, unknown>>;
  /** How often the reconciler compares what runs with what should (default 5 s). */
  readonly reconcileIntervalMs?: number;
  /** How often running deployments are judged again against the policies in force (default 60 s). */
  readonly readmitIntervalMs?: number;
  /** How often the vulnerability database version is checked for a new import, which rescans what runs (default 5 s). */
  readonly rescanCheckMs?: number;
  /** Rollout timing: status poll interval, and how long a replica without a healthcheck must run to count as ready. */
  readonly rollout?: { readonly pollMs?: number; readonly settleMs?: number };
  /** Overrides config.secrets.tmpfsRoot (tests use their own). */
  readonly secretsTmpfsRoot?: string;
  /** Overrides config.scan.timeoutMs: how long one admission waits for an image's scan. */
  readonly scanTimeoutMs?: number;
  /** PATH the scanner looks for trivy in (default the process's); "" uses the built-in scanner unless config.scan.trivyPath is set. */
  readonly scannerPathEnv?: string;
  /**
   * HOST:PORT of a plain-HTTP listener serving only GET /metrics; a loopback address
   * only (PC_CONFIG_INVALID otherwise). Absent: metrics only on the API port.
   */
  readonly metricsListen?: string;
  /** Overrides of config.monitoring, and stream timing (tests shorten them). */
  readonly monitoring?: { readonly statsIntervalMs?: number; readonly reconnectBaseMs?: number; readonly pollNodesMs?: number };
}

export interface Gateway {
  readonly api: FastifyInstance;
  readonly bootstrap: FastifyInstance;
  readonly apiAddress: string;
  readonly bootstrapAddress: string;
  readonly pki: PkiService;
  readonly policy: PolicyService;
  /** The admission policies in force, versioned. */
  readonly admissionPolicy: AdmissionPolicyService;
  /** The monitoring rules in force, versioned. */
  readonly monitoringRules: MonitoringRulesService;
  /** Runtime monitoring: each node's event stream, stats sampling, the monitor. */
  readonly monitoring: MonitoringService;
  /** Time-bound exemptions from admission checks. */
  readonly waivers: WaiverService;
  readonly namespaces: NamespaceService;
  readonly nodes: NodeRegistry;
  readonly deployments: DeploymentController;
  /** What the deployment routes use: the signed-request pipeline and the read views. */
  readonly deploy: RouteContext["deployments"];
  readonly reconciler: Reconciler;
  /** Judges running deployments against the policies in force and reports those that no longer comply. */
  readonly readmission: Readmission;
  readonly openAuditReader: () => { source: AuditSource; close: () => void };
  readonly store: Store;
  readonly audit: AuditLog;
  readonly config: GatewayConfig;
  readonly enforcer: RevocationEnforcer;
  /** The secret store (envelope-encrypted versions, the keyring, KEK rotation). */
  readonly secrets: SecretService;
  /** The offline vulnerability database in force. */
  readonly vulndb: VulnDb;
  /** The image scanner admission uses (trivy when configured or found, else the built-in one). */
  readonly scanner: Scanner;
  /** Scan results by (image id, database version). */
  readonly scanCache: ScanCache;
  /** What the scan routes read: the database status, images' SBOMs, alerts. */
  readonly scanViews: RouteContext["scan"];
  /** Rescans what runs when a new vulnerability database is in force, and raises alerts. */
  readonly rescan: VulnRescan;
  /** Alerts raised by the monitoring rules: raise (inside a transaction), list, get, ack. */
  readonly alerts: AlertService;
  /** Carries out the response actions of alerts (stop, pause, quarantine, revoke). */
  readonly responseActions: ResponseActions;
  /** Containers held in quarantine: list, release. */
  readonly quarantines: QuarantineService;
  /** The alert webhook, when config.monitoring.webhook names one. */
  readonly webhook: WebhookSink | undefined;
  /** The gateway's Prometheus metrics (GET /metrics). */
  readonly metrics: GatewayMetrics;
  /** host:port of the plain metrics listener, when `metricsListen` was given. */
  readonly metricsAddress: string | undefined;
  /** Renews the server certificate if two thirds of its life have passed. */
  renewServerCertificateIfDue(): boolean;
  close(): Promise<void>;
}

export function loadConfig(dataDir: string): GatewayConfig {
  try {
    return parseConfig(JSON.parse(readFileSync(pkiPaths(dataDir).config, "utf8")));
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") throw pcError("PC_STORE_CORRUPT", "config.json is missing", e);
    if (e instanceof SyntaxError) throw pcError("PC_STORE_CORRUPT", "config.json is not JSON", e);
    throw e;
  }
}

function loadServerCredentials(dataDir: string): ServerCredentials & { notBefore: Date; notAfter: Date } {
  const p = pkiPaths(dataDir);
  const certPem = readFileSync(p.serverCert, "utf8");
  const first = certificatesFromPem(certPem)[0];
  if (!first) throw pcError("PC_STORE_CORRUPT", "server certificate missing");
  const info = certificateInfo(first);
  return { keyPem: readKeyFile(p.serverKey), certPem, notBefore: info.notBefore, notAfter: info.notAfter };
}

/**
 * Liveness: the store and the local Docker engine (the default engine). The gateway
 * serves without an engine, and says so here.
 */
async function localHealth(store: Store, engine: DockerEngine): Promise<Record<string, unknown>> {
  let engineStatus: Record<string, unknown>;
  try {
    const v = await Promise.race([
      engine.version(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), 2000).unref()),
    ]);
    const runtimes = await engine.runtimes();
    engineStatus = { status: "ok", version: v.version, apiVersion: v.apiVersion, runtimes };
  } catch {
    engineStatus = { status: "unreachable" };
  }
  return { status: store.isOpen ? "ok" : "unavailable", version: VERSION, store: store.isOpen ? "ok" : "closed", engine: engineStatus };
}

/**
 * A `docker save` stream of an image id from the first node (in the registry's order)
 * whose engine holds it; PC_SCAN_IMAGE_UNREADABLE when none does or none answers.
 */
async function exportFromNodes(nodes: NodeRegistry, imageId: string): Promise<NodeJS.ReadableStream> {
  for (const n of nodes.list()) {
    try {
      const engine = nodes.engine(n.name);
      if ((await engine.inspectImage(imageId)) !== undefined) return await engine.exportImage(imageId);
    } catch {
      // an unreachable node: the next one may hold the image
    }
  }
  throw pcError("PC_SCAN_IMAGE_UNREADABLE", `no node holds ${imageId}`);
}

/** Opens the data directory and starts both listeners. */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger();
  // Refused before anything is opened: metrics are not served in the clear off the host.
  const metricsListen = opts.metricsListen !== undefined ? parseMetricsListen(opts.metricsListen) : undefined;
  openDataDir(opts.dataDir);
  const config = loadConfig(opts.dataDir);
  // The keyring first: without it the gateway does not start (no plaintext fallback, no
  // key made at start-up).
  const keyring = Keyring.open(kekSourceFor(secretsConfigOf(config).keyring, opts.dataDir));
  // The alert webhook's signing key: a gateway configured with a webhook does not start without a valid one.
  const webhookConfig = monitoringConfigOf(config).webhook;
  const webhookKey = webhookConfig !== undefined ? loadWebhookKey(webhookConfig.keyFile) : undefined;
  const store = Store.open(opts.dataDir);
  const metrics = new GatewayMetrics({ certificateCounts: () => store.certificates.counts() });
  const audit = new AuditLog(store, clock, {
    trustDomain: config.trustDomain,
    hmacKey: loadOrCreateHmacKey(opts.dataDir),
    metrics,
    onFlushError: (e, lost) => logger.error({ err: String(e), lost }, "access log group write failed"),
    onCheckpointError: (e) => logger.error({ err: String(e) }, "audit checkpoint failed"),
  });
  const pki = PkiService.load(opts.dataDir, store, audit, clock, config);
  const secrets = new SecretService(store, keyring, audit, clock, logger);
  audit.useCa(pki.ca.bundlePem, pki.ca.rootFingerprint);
  audit.genesis(config.trustDomain, pki.ca.rootFingerprint);
  const systemActor: Actor = { identity: "service:gateway" };
  // The audit key signs checkpoints; its certificate (service:audit) renews like the server's.
  const renewAuditKey = (): boolean => {
    const renewed = renewAuditCredentialsIfDue(pki, opts.dataDir, clock);
    if (renewed) audit.useSigner(auditSignerFrom(renewed, config.trustDomain));
    return renewed !== undefined;
  };
  if (!renewAuditKey()) audit.useSigner(auditSignerFrom(loadAuditCredentials(opts.dataDir), config.trustDomain));
  const hmacKey = loadOrCreateHmacKey(opts.dataDir);
  /** A reader over its own read-only connection, so that a long export holds nobody up. */
  const openAuditReader = (): { source: AuditSource; close: () => void } => {
    const reader = Store.openReader(opts.dataDir);
    const source = new AuditLog(reader, clock, { trustDomain: config.trustDomain, hmacKey, caBundlePem: pki.ca.bundlePem, caFingerprint: pki.ca.rootFingerprint });
    return { source, close: () => reader.close() };
  };
  const engine = new DockerEngine();
  // The client certificate (service:gateway) for TCP engines, from the engine-client CA;
  // both are made here for data directories from before them, the certificate renewed
  // with the others below.
  pki.ensureEngineClientAuthority(opts.dataDir, systemActor);
  let gatewayClient = ensureGatewayClientCredentials(pki, opts.dataDir, clock);
  const nodes = new NodeRegistry(store, audit, clock, () => gatewayClient, { trustDomain: config.trustDomain });
  const replay = new ReplayGuard(store, clock);
  const verifier = new DeployRequestVerifier({ trustDomain: config.trustDomain, clock, replay });
  // Marks this gateway's containers on shared engines: derived from its own root CA.
  const gatewayId = pki.ca.rootFingerprint.slice(0, 12);
  // Secret files go to <tmpfsRoot>/<gatewayId>, an in-memory filesystem made ready on the
  // first deploy that has secrets (a gateway without any needs no right to mount one).
  // They stay when the gateway stops: its running containers keep using them.
  const secretFiles = new SecretFiles({ tmpfsRoot: opts.secretsTmpfsRoot ?? secretsConfigOf(config).tmpfsRoot, gatewayId });
  const deployments = new DeploymentController(store, nodes, replay, audit, clock, logger, {
    gatewayId, ...(opts.rollout ?? {}), secretResolver: secrets, secretFiles,
  });
  const reconciler = new Reconciler(store, nodes, deployments, audit, clock, logger, { intervalMs: opts.reconcileIntervalMs ?? 5_000 });
  const admissionPolicy = new AdmissionPolicyService(store, audit, clock);
  const waivers = new WaiverService(store, audit, clock);
  // The policies in force, read (and cached) per request: an unreadable policy denies.
  // The waivers in force are read at the same instant the chain judges by.
  // The secret references of a request: each secret and pinned version exists, and the
  // requester holds secrets:use in the namespace (any other error of the store denies).
  const secretHook = secretReferencesHook({
    versions: (ns, name) => {
      try {
        return secrets.get(ns, name).versions.map((v) => v.version);
      } catch (e) {
        if ((e as { code?: unknown }).code === "PC_SECRETS_NOT_FOUND") return undefined;
        throw e;
      }
    },
    mayUse: (identity, ns) => policy.decide(identity, ns, "secrets", "use").allowed,
  });
  // The image scanner: an image is exported from a node that holds it (the scan is by
  // image id, the same on every node that has it).
  const scanConfig = scanConfigOf(config);
  const scanTimeoutMs = opts.scanTimeoutMs ?? scanConfig.timeoutMs;
  const vulndb = new VulnDb(store);
  const scanner = selectScanner({
    vulndb,
    exportImage: (imageId) => exportFromNodes(nodes, imageId),
    clock,
    timeoutMs: scanTimeoutMs,
    ...(scanConfig.trivyPath !== undefined ? { trivyPath: scanConfig.trivyPath } : {}),
    ...(scanConfig.trivyServer !== undefined ? { serverUrl: scanConfig.trivyServer } : {}),
    ...(opts.scannerPathEnv !== undefined ? { pathEnv: opts.scannerPathEnv } : {}),
  });
  const scanCache = new ScanCache(store, { clock });
  const scanHook = cachedScanHook(scanner, scanCache, scanTimeoutMs, (hit) => metrics.scanCache(hit));
  // Imports a crash left `loading`, and the rows of replaced imports, are cleared in the background.
  const vulndbCleanup = cleanupVulnDb(store, { clock }).catch((e: unknown) => logger.error({ err: String(e) }, "vulnerability database cleanup failed"));
  const gate: AdmissionGate = {
    evaluate: (attrs) => {
      const now = clock.now();
      return evaluateAdmission(attrs, admissionPolicy.current().set, {
        now,
        waivers: waivers.active(attrs.namespace.name, now),
        hooks: { secrets: secretHook, scan: scanHook },
        // The scan check waits for the scan hook, and a little more.
        checkTimeouts: { [IMAGE_SCAN_CHECK]: scanTimeoutMs + 1_000 },
      });
    },
  };
  const deploy = {
    pipeline: new DeployPipeline(verifier, deployments, gate, store, store.decisionRecords, audit, clock, metrics),
    views: new DeploymentViews(store, nodes),
    decision: (namespace: string, id: string): unknown => {
      const row = store.decisionRecords.get(id);
      if (row === undefined || row.namespace !== namespace) throw pcError("PC_DEPLOY_DECISION_NOT_FOUND", id);
      return JSON.parse(row.record) as unknown;
    },
  };

  let creds = loadServerCredentials(opts.dataDir);
  const renewIfDue = (): boolean => {
    if (!renewalDue(creds.notBefore, creds.notAfter, clock.now())) return false;
    const key = newServerKey();
    const leaf = pki.issueServer(key.spki, systemActor);
    writeServerCredentials(opts.dataDir, key.keyPem, leaf.pem, pki.ca.intermediatePem);
    creds = loadServerCredentials(opts.dataDir);
    return true;
  };
  renewIfDue();

  const apiListen = parseHostPort(opts.listen ?? config.listen, "listen");
  const bootListen = parseHostPort(opts.bootstrapListen ?? config.bootstrapListen, "bootstrap listen");
  let apiAddress = formatHostPort(apiListen);
  let enforcer: RevocationEnforcer | undefined;

  const policy = new PolicyService(store, audit, clock);
  const readmission = new Readmission(store, deployments, gate, (id, ns) => policy.decide(id, ns, "deployments", "deploy").allowed, audit, logger);
  const rescan = new VulnRescan({
    store,
    controller: deployments,
    gate,
    policies: () => admissionPolicy.current().set,
    databaseVersion: () => store.vulndb.activeId(),
    previousResult: (imageId, version) => scanCache.get(scanner.kind, imageId, version, String(version)),
    mayDeploy: (id, ns) => policy.decide(id, ns, "deployments", "deploy").allowed,
    newFindings: (f) =>
      monitoring.monitor.handleGatewayEvent({
        action: DERIVED_ACTIONS.scanNewFindings,
        namespace: f.namespace,
        deployment: f.deployment,
        attributes: { findings: f.findings.join(",").slice(0, 2000), databaseVersion: String(f.databaseVersion), previousVersion: String(f.previousVersion) },
        cause: f.cause,
      }),
    audit,
    clock,
    logger,
  });
  // Runtime monitoring: the rules in force judge every event of every node and the stats
  // of managed containers; alerts, their response actions and the webhook. A data
  // directory from before monitoring gets the shipped rules.
  const { rules: monitoringRules, alerts, responseActions, webhook, service: monitoring } = composeMonitoring({
    store,
    audit,
    clock,
    logger,
    gatewayId,
    config: { ...monitoringConfigOf(config), ...(opts.monitoring?.statsIntervalMs !== undefined ? { statsIntervalMs: opts.monitoring.statsIntervalMs } : {}) },
    nodes: () => nodes.list(),
    engine: (node) => nodes.engine(node),
    stopDeployment: (ns, name, reason) => deployments.stopUsing(ns, name, reason, systemActor.identity),
    revokeIdentity: async (identity, reason) => {
      const r = pki.revokeIdentity(identity, reason, systemActor);
      enforcer?.check();
      return r;
    },
    webhookKey,
    metrics,
    seedAuthor: systemActor.identity,
    reconnectBaseMs: opts.monitoring?.reconnectBaseMs,
    pollNodesMs: opts.monitoring?.pollNodesMs,
  });
  const quarantines = new QuarantineService({
    store,
    audit,
    clock,
    engine: (node) => nodes.engine(node),
    releaseReplica: (ns, name, containerName, commit) => deployments.releaseHeld(ns, name, containerName, commit),
  });
  const namespaces = new NamespaceService(store, audit, clock, {
    count: (ns) => ({ deployments: store.deployments.countInNamespace(ns), secrets: store.secrets.countInNamespace(ns) }),
  });
  const scanViews: RouteContext["scan"] = {
    status: () => {
      const active = vulndb.status();
      const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());
      return {
        scanner: scanner.kind,
        ...(active !== undefined ? { active: { ...active, importedAt: active.importedAt.toISOString() } } : {}),
        imports: vulndb.imports().map((i) => ({
          version: i.id,
          sources: i.sources,
          state: i.state,
          records: i.records,
          newestModified: i.newestModified,
          importedAt: iso(i.importedAt),
          importedBy: i.importedBy,
          activatedAt: iso(i.activatedAt),
          endedAt: iso(i.endedAt),
        })),
      };
    },
    sbom: async (node, image) => {
      const engine = nodes.engine(node);
      const details = await engine.inspectImage(image);
      if (details === undefined) throw pcError("PC_SCAN_IMAGE_UNREADABLE", `node ${node} does not hold ${image}`);
      const { inventory } = await inventoryImage(await engine.exportImage(details.id));
      return sbomOf(details.id, inventory, { imageName: image, clock });
    },
  };
  const ctx: RouteContext = {
    nodeEvents: (node) => monitoring.streams.state(node),
    pki,
    policy,
    admissionPolicy,
    monitoringRules,
    recordedEvents: store.monitorEvents,
    waivers,
    namespaces,
    nodes,
    deployments: deploy,
    audit,
    openAuditReader,
    config,
    version: VERSION,
    onRevocation: () => enforcer?.check(),
    apiAddress: () => apiAddress,
    health: opts.health ?? (() => localHealth(store, engine)),
    secrets,
    scan: scanViews,
    alerts,
    quarantines,
    metrics,
    secretUsers: {
      running: (ns, name) => {
        const d = store.deployments.get(ns, name);
        return d !== undefined && d.state === "active" && d.replicas > 0;
      },
      stopUsing: (ns, name, reason, actor) => deployments.stopUsing(ns, name, reason, actor.id),
    },
  };
  const authorizer: Authorizer = opts.authorizer ?? {
    authorize: (id, resource, action, namespace) => policy.decide(formatIdentity(id), namespace, resource, action),
  };
  const common = { logger, audit, authorizer, trustDomain: config.trustDomain, metrics };
  const api = await buildServer({
    ...common,
    kind: "api",
    https: { ...apiTlsOptions(creds, pki), requestCert: true, rejectUnauthorized: true },
    routes: apiRoutes(ctx),
    isRevoked: (serial) => enforcer?.isRevoked(serial) ?? true,
  });
  const bootstrap = await buildServer({
    ...common,
    kind: "bootstrap",
    https: { ...bootstrapTlsOptions(creds) },
    routes: bootstrapRoutes(ctx),
    isRevoked: () => false,
  });
  enforcer = new RevocationEnforcer(tlsServerOf(api), pki, creds, logger);
  auditRefusedHandshakes(tlsServerOf(api), audit, logger, "api");
  auditRefusedHandshakes(tlsServerOf(bootstrap), audit, logger, "bootstrap");

  let metricsListener: MetricsListener | undefined;
  try {
    await api.listen({ host: apiListen.host, port: apiListen.port });
    await bootstrap.listen({ host: bootListen.host, port: bootListen.port });
    if (metricsListen !== undefined) metricsListener = await startMetricsListener(metricsListen, () => metrics.render(), logger);
  } catch (e) {
    await api.close();
    await bootstrap.close();
    store.close();
    throw e;
  }
  const a = api.server.address() as AddressInfo;
  const b = bootstrap.server.address() as AddressInfo;
  apiAddress = formatHostPort({ host: apiListen.host, port: a.port });
  const bootstrapAddress = formatHostPort({ host: bootListen.host, port: b.port });
  enforcer.start();
  reconciler.start();
  readmission.start(opts.readmitIntervalMs ?? 60_000);
  rescan.start(opts.rescanCheckMs ?? 5_000);
  monitoring.start();
  // Resumes a KEK rotation that a stop or a crash cut short.
  secrets.startRewrap();

  const renewTimer = setInterval(() => {
    try {
      if (renewAuditKey()) logger.info("audit certificate renewed");
    } catch (e) {
      logger.error({ err: String(e) }, "audit certificate renewal failed");
    }
    try {
      gatewayClient = ensureGatewayClientCredentials(pki, opts.dataDir, clock);
    } catch (e) {
      logger.error({ err: String(e) }, "gateway client certificate renewal failed");
    }
    try {
      if (renewIfDue()) {
        enforcer?.reload(creds);
        tlsServerOf(bootstrap).setSecureContext(bootstrapTlsOptions(creds));
        logger.info({ notAfter: creds.notAfter.toISOString() }, "server certificate renewed");
      }
    } catch (e) {
      logger.error({ err: String(e) }, "server certificate renewal failed");
    }
  }, opts.serverRenewCheckMs ?? 3_600_000);
  renewTimer.unref();

  let closing: Promise<void> | undefined;
  const gw: Gateway = {
    api,
    bootstrap,
    apiAddress,
    bootstrapAddress,
    pki,
    policy,
    admissionPolicy,
    monitoringRules,
    monitoring,
    waivers,
    namespaces,
    nodes,
    deployments,
    deploy,
    reconciler,
    readmission,
    openAuditReader,
    store,
    audit,
    config,
    enforcer,
    secrets,
    vulndb,
    scanner,
    scanCache,
    rescan,
    scanViews,
    alerts,
    responseActions,
    quarantines,
    webhook,
    metrics,
    metricsAddress: metricsListener?.address,
    renewServerCertificateIfDue: () => {
      const renewed = renewIfDue();
      if (renewed) {
        enforcer?.reload(creds);
        tlsServerOf(bootstrap).setSecureContext(bootstrapTlsOptions(creds));
      }
      return renewed;
    },
    close: () =>
      (closing ??= (async () => {
        clearInterval(renewTimer);
        enforcer?.stop();
        await Promise.allSettled([api.close(), bootstrap.close(), metricsListener?.close()]);
        await reconciler.stop();
        await readmission.stop();
        await rescan.stop();
        await monitoring.stop();
        await secrets.stop();
        await vulndbCleanup;
        try {
          await audit.close(); // the last group commit, and a checkpoint over the end
        } catch (e) {
          logger.error({ err: String(e) }, "audit log: last write or checkpoint failed");
        }
        store.close();
      })()),
  };
  return gw;
}
