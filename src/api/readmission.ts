/**
 * Re-admission of what runs: each running deployment's current revision is judged again
 * against the policies (and waivers) in force, as a new request would be. A deployment
 * that no longer complies (a policy tightened, a waiver expired) is not stopped: it is
 * reported, once per deployment, revision and verdict, as an `admission.noncompliant`
 * audit entry naming the checks that would deny it now. Fail closed for reporting: a
 * deployment that cannot be judged is reported too.
 */
import { createHash } from "node:crypto";
import type { AuditSink, Logger } from "../core/index.js";
import type { DeploymentController } from "../runtime/index.js";
import type { Store } from "../store/index.js";
import type { AdmissionGate } from "./deploy-pipeline.js";
import { BackgroundPass, runningAttributes } from "./running-deployments.js";

export class Readmission {
  /** ns/name → the verdict last reported, so that each is reported once. */
  private readonly reported = new Map<string, string>();
  private readonly loop: BackgroundPass;
  private running: Promise<number> | undefined;

  constructor(
    private readonly store: Store,
    private readonly controller: DeploymentController,
    private readonly gate: AdmissionGate,
    private readonly mayDeploy: (identity: string, namespace: string) => boolean,
    private readonly audit: AuditSink,
    logger: Logger,
  ) {
    this.loop = new BackgroundPass(() => this.pass(), logger, "re-admission pass failed");
  }

  start(intervalMs: number): void {
    this.loop.start(intervalMs);
  }

  async stop(): Promise<void> {
    this.loop.stop();
    await this.running?.catch(() => undefined);
  }

  /** One pass over every running deployment; returns how many were newly reported. */
  pass(): Promise<number> {
    this.running ??= this.judgeAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async judgeAll(): Promise<number> {
    let reported = 0;
    for (const d of this.store.deployments.list()) {
      if (d.state !== "active") continue;
      const key = `${d.namespace}/${d.name}`;
      const rev = this.store.deployments.revision(d.namespace, d.name, d.revision);
      const ns = this.store.namespaces.get(d.namespace);
      if (rev === undefined || ns === undefined) continue;
      let verdict: string;
      let reasons: string;
      try {
        const { attrs } = await runningAttributes(this.controller, rev, ns, d.replicas, this.mayDeploy);
        const decision = await this.gate.evaluate(attrs);
        reasons = decision.denials.map((x) => `${x.check}${x.field ? ` (${x.field})` : ""}: ${x.reason}`).join("; ");
        verdict = decision.allowed ? "ok" : `denied v${decision.policyVersion}: ${reasons}`;
      } catch (e) {
        reasons = "the deployment could not be judged";
        verdict = `error: ${String(e).slice(0, 200)}`;
      }
      const mark = `${rev.revision}:${createHash("sha256").update(verdict).digest("hex")}`;
      if (this.reported.get(key) === mark) continue;
      this.reported.set(key, mark);
      if (verdict === "ok") continue;
      reported++;
      this.audit.recordAfter({
        type: "admission.noncompliant",
        outcome: verdict.startsWith("error") ? "error" : "denied",
        actor: "service:gateway",
        resource: "deployments",
        namespace: d.namespace,
        target: d.name,
        reason: reasons.slice(0, 500),
        deploy: { revision: rev.revision, jti: rev.jti, digest: rev.digest },
      });
    }
    return reported;
  }
}
