/**
 * Rescan on a new vulnerability database. The gateway watches the version in force (an
 * import may come from `portcullis vulndb import` in another process); when it changes,
 * every image of every running deployment is judged again, as a new request would be,
 * with the new database. A blocking finding that did not block under the previous
 * database (judged by the same policies) is new: the rescan's finding is audited once
 * per namespace (`scan.new_findings`, naming the deployments), and each deployment with
 * one is handed to monitoring as an event (`portcullis`/`scan_new_findings`), where the
 * rules in force (shipped: `scan-new-findings`) raise its alert. Nothing is stopped unless an image-scan check
 * that selects the namespace says `onNewFindings: stop`: then those deployments are
 * stopped (desired replicas 0, `deploy.stopped`).
 *
 * The last version rescanned is kept in the store (`scan_rescans`), so an import made
 * while the gateway was down is rescanned at its first check after the start. A previous
 * result that is no longer kept counts as empty: every blocking finding is then new (an
 * alert too many, never one too few; for a deployment that was admitted, its blocking
 * findings under the old database were waived or none). A deployment that cannot be judged is
 * logged and left as it is; the periodic re-admission reports it.
 */
import type { AuditSink, Clock, Logger } from "../core/index.js";
import {
  IMAGE_SCAN_CHECK,
  judgeScan,
  policySelects,
  type AdmissionPolicySet,
  type ImageScanParams,
  type ScanResult,
} from "../admission/index.js";
import type { DeploymentController } from "../runtime/index.js";
import type { Store } from "../store/index.js";
import type { AdmissionGate } from "./deploy-pipeline.js";
import { BackgroundPass, runningAttributes } from "./running-deployments.js";

export const NEW_FINDINGS_ALERT = "scan.new_findings";
const ACTOR = "service:gateway";

export interface RescanDeps {
  readonly store: Store;
  readonly controller: DeploymentController;
  readonly gate: AdmissionGate;
  /** The admission policies in force. */
  readonly policies: () => AdmissionPolicySet;
  /** The version of the database in force; undefined when there is none. */
  readonly databaseVersion: () => number | undefined;
  /** The result of an image under an earlier database version, when still kept. */
  readonly previousResult: (imageId: string, version: number) => ScanResult | undefined;
  readonly mayDeploy: (identity: string, namespace: string) => boolean;
  /**
   * Hands one deployment's new findings to monitoring (an event the rules judge); returns
   * the ids of the alerts it raised or added to. `cause` is unique per rescan and
   * deployment, so a rescan repeated after a crash raises nothing twice.
   */
  readonly newFindings: (input: { readonly namespace: string; readonly deployment: string; readonly findings: readonly string[]; readonly databaseVersion: number; readonly previousVersion: number; readonly cause: string }) => readonly string[];
  readonly audit: AuditSink;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** What one rescan found: per namespace, the deployments with new blocking findings. */
export interface RescanReport {
  readonly version: number;
  readonly previous: number;
  readonly alerts: readonly { readonly ids: readonly string[]; readonly namespace: string; readonly deployments: readonly string[]; readonly stopped: readonly string[] }[];
}

interface Found {
  readonly name: string;
  readonly findings: readonly string[];
  readonly stop: boolean;
}

export class VulnRescan {
  private seen: number | undefined;
  private readonly loop: BackgroundPass;
  private running: Promise<RescanReport | undefined> | undefined;

  constructor(private readonly deps: RescanDeps) {
    this.loop = new BackgroundPass(() => this.check(), deps.logger, "rescan after a database import failed");
    // Where the last rescan ended, kept across restarts: an import made while the gateway
    // was down is rescanned at its first check. A first database is the baseline.
    this.seen = safe(() => deps.store.alerts.lastRescan());
    if (this.seen === undefined) {
      this.seen = safe(() => deps.databaseVersion());
      if (this.seen !== undefined) deps.store.alerts.rescanDone(this.seen, deps.clock.now().getTime());
    }
  }

  /** Checks the version in force every `intervalMs`. */
  start(intervalMs: number): void {
    this.loop.start(intervalMs);
  }

  async stop(): Promise<void> {
    this.loop.stop();
    await this.running?.catch(() => undefined);
  }

  /** Rescans when the version in force changed since the last look; returns what it found. */
  check(): Promise<RescanReport | undefined> {
    this.running ??= this.checkOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async checkOnce(): Promise<RescanReport | undefined> {
    const version = safe(() => this.deps.databaseVersion());
    const previous = this.seen;
    if (version === undefined || version === previous) return undefined;
    if (previous === undefined) {
      // The first database: admission scanned nothing against another one.
      this.deps.store.alerts.rescanDone(version, this.deps.clock.now().getTime());
      this.seen = version;
      return undefined;
    }
    const report = await this.rescan(version, previous);
    this.deps.store.alerts.rescanDone(version, this.deps.clock.now().getTime());
    this.seen = version;
    return report;
  }

  private async rescan(version: number, previous: number): Promise<RescanReport> {
    const { store } = this.deps;
    const byNamespace = new Map<string, Found[]>();
    for (const d of store.deployments.list()) {
      if (d.state !== "active" || d.replicas === 0) continue;
      try {
        const found = await this.judge(d.namespace, d.name, d.revision, d.replicas, previous);
        if (found !== undefined) byNamespace.set(d.namespace, [...(byNamespace.get(d.namespace) ?? []), found]);
      } catch (e) {
        this.deps.logger.error({ err: String(e), namespace: d.namespace, deployment: d.name }, "rescan: the deployment could not be judged");
      }
    }
    const alerts: RescanReport["alerts"][number][] = [];
    for (const [namespace, found] of byNamespace) {
      const deployments = found.map((f) => f.name).sort();
      const findings = Object.fromEntries(found.map((f) => [f.name, f.findings]));
      const stopping = found.filter((f) => f.stop).map((f) => f.name).sort();
      const ids = [...new Set(found.flatMap((f) => f.findings))].sort();
      this.deps.audit.recordAfter({
        type: NEW_FINDINGS_ALERT,
        outcome: "denied",
        actor: ACTOR,
        resource: "alerts",
        namespace,
        target: deployments.join(",").slice(0, 500),
        reason: `database version ${version} finds ${ids.join(", ")}`.slice(0, 500),
      });
      const alertIds = new Set<string>();
      for (const f of found) {
        try {
          const raised = this.deps.newFindings({ namespace, deployment: f.name, findings: f.findings, databaseVersion: version, previousVersion: previous, cause: `rescan:${version}:${namespace}/${f.name}` });
          for (const a of raised) alertIds.add(a);
        } catch (e) {
          this.deps.logger.error({ err: String(e), namespace, deployment: f.name }, "rescan: raising the alert failed");
        }
      }
      const stopped: string[] = [];
      for (const name of stopping) {
        try {
          await this.deps.controller.stopUsing(namespace, name, `new blocking findings (database version ${version}): ${(findings[name] ?? []).join(", ")}`, ACTOR);
          stopped.push(name);
        } catch (e) {
          this.deps.logger.error({ err: String(e), namespace, deployment: name }, "rescan: stopping the deployment failed");
        }
      }
      alerts.push({ ids: [...alertIds].sort(), namespace, deployments, stopped });
    }
    return { version, previous, alerts };
  }

  /** A deployment's new blocking findings (ids), or undefined when it has none. */
  private async judge(namespace: string, name: string, revision: number, replicas: number, previous: number): Promise<Found | undefined> {
    const { store, controller } = this.deps;
    const rev = store.deployments.revision(namespace, name, revision);
    const ns = store.namespaces.get(namespace);
    if (rev === undefined || ns === undefined) return undefined;
    const { attrs, image } = await runningAttributes(controller, rev, ns, replicas, this.deps.mayDeploy);
    const decision = await this.deps.gate.evaluate(attrs);
    const blocking = decision.denials.filter((r) => r.check === IMAGE_SCAN_CHECK && r.findings !== undefined && r.findings.length > 0);
    if (blocking.length === 0) return undefined;
    const checks = this.deps
      .policies()
      .policies.filter((p) => policySelects(p, attrs.namespace))
      .flatMap((p) => p.checks.filter((c) => c.check === IMAGE_SCAN_CHECK && c.mode === "enforce"))
      .map((c) => c.params as ImageScanParams);
    const before = new Set<string>();
    for (const imageId of new Set(Object.values(image.idsByNode))) {
      const old = this.deps.previousResult(imageId, previous);
      if (old === undefined) continue;
      for (const params of checks) {
        for (const f of judgeScan(old, { ...params, maxDatabaseAgeMs: undefined }, this.deps.clock.now()).blocking) {
          for (const x of [f.id, ...f.aliases]) before.add(x.toUpperCase());
        }
      }
    }
    const fresh = blocking.filter((r) => !(r.findings ?? []).some((x) => before.has(x.toUpperCase())));
    if (fresh.length === 0) return undefined;
    return {
      name,
      findings: [...new Set(fresh.map((r) => (r.findings ?? [])[0] as string))].sort(),
      stop: checks.some((c) => c.onNewFindings === "stop"),
    };
  }
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
