/**
 * What re-admission and the rescan after a database import share: judging a running
 * deployment's revision in force again, as an update by the requester who signed it
 * would be judged now, and running such a pass every interval in the background.
 */
import type { Logger } from "../core/index.js";
import type { AdmissionAttributes, ImageFacts } from "../admission/index.js";
import type { DeploymentController } from "../runtime/index.js";
import type { NamespaceRecord, RevisionRecord } from "../store/index.js";

/** The admission attributes of a running revision (with its desired replicas), and the image facts they hold. */
export async function runningAttributes(
  controller: DeploymentController,
  rev: RevisionRecord,
  ns: NamespaceRecord,
  replicas: number,
  mayDeploy: (identity: string, namespace: string) => boolean,
): Promise<{ attrs: AdmissionAttributes; image: ImageFacts }> {
  const spec = { ...controller.specOf(rev), replicas };
  const facts = await controller.admissionFacts(spec);
  const attrs: AdmissionAttributes = {
    operation: "update",
    requester: rev.requester,
    namespace: { name: ns.name, labels: ns.labels },
    manifest: JSON.parse(rev.manifest) as AdmissionAttributes["manifest"],
    spec,
    manifestDigest: rev.digest,
    image: facts.image,
    signer: { identity: rev.requester, verified: true, mayDeploy: mayDeploy(rev.requester, ns.name) },
    previous: { revision: rev.revision, spec, manifestDigest: rev.digest },
  };
  return { attrs, image: facts.image };
}

/**
 * Runs `pass` every `intervalMs`, each run starting `intervalMs` after the previous one
 * ended (never two at once); a failure is logged as `what` and the next run still comes.
 */
export class BackgroundPass {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pass: () => Promise<unknown>,
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  start(intervalMs: number): void {
    if (this.timer !== undefined) return;
    const tick = () => {
      void this.pass()
        .catch((e: unknown) => this.logger.error({ err: String(e) }, this.what))
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, intervalMs).unref();
  }

  /** No run starts after this; one under way is the caller's to await. */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
