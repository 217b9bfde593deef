import type { Command } from "commander";
import { pcError } from "../../core/index.js";
import { signApproval } from "../../deploy/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const enc = encodeURIComponent;

/** A deploy request waiting for approvals, as the gateway answers it. */
export interface PendingRequest {
  pending: true;
  requestId: string;
  namespace: string;
  name: string;
  requester: string;
  jti: string;
  manifestDigest: string;
  required: number;
  approvals: string[];
  expiresAt: string;
  state?: string;
}

/** The line a waiting request is reported with. */
export function pendingLine(p: PendingRequest): string {
  const left = Math.max(0, p.required - p.approvals.length);
  return `waiting for ${left} approval${left === 1 ? "" : "s"}: request ${p.requestId}`;
}

function needNamespace(ns: string | undefined): string {
  if (ns === undefined) throw pcError("PC_CLI_USAGE", "-n NAMESPACE is required");
  return ns;
}

/** `approvals list` and `approve`: the approvers' commands (the two-person rule). */
export function registerApprovalCommands(program: Command, globals: Globals, open: Open): void {
  program
    .command("approvals")
    .description("deploy requests waiting for approvals")
    .command("list")
    .description("the deploy requests of a namespace waiting for approvals")
    .option("-n, --namespace <ns>")
    .action(async (o: { namespace?: string }) => {
      const s = await open();
      const list = await s.call<PendingRequest[]>("GET", `/v1/namespaces/${enc(needNamespace(o.namespace))}/approvals`);
      const f = globals().output;
      if (f === "json") return print(f, list);
      const rows = list.map((p) => ({
        id: p.requestId, requester: p.requester, name: p.name, digest: p.manifestDigest, required: p.required,
        approvals: p.approvals.length, expires: p.expiresAt,
      }));
      print(f, rows, ["id", "requester", "name", "digest", "required", "approvals", "expires"]);
    });

  program
    .command("approve")
    .description("approve a deploy request waiting for approvals: signs its manifest digest with your certificate's key")
    .argument("<request-id>")
    .option("-n, --namespace <ns>")
    .action(async (id: string, o: { namespace?: string }) => {
      const ns = needNamespace(o.namespace);
      const s = await open();
      const path = `/v1/namespaces/${enc(ns)}/approvals/${enc(id)}`;
      const p = await s.call<PendingRequest>("GET", path);
      const f = globals().output;
      // What is being approved, before it is signed.
      const shown = `request  ${p.requestId}\n  deployment ${p.namespace}/${p.name} by ${p.requester}\n  manifest   ${p.manifestDigest}\n  jti        ${p.jti}\n  approvals  ${p.approvals.length} of ${p.required}, expires ${p.expiresAt}\n`;
      (f === "json" ? process.stderr : process.stdout).write(shown);
      const approval = await signApproval({
        requestId: p.requestId,
        jti: p.jti,
        manifestDigest: p.manifestDigest,
        namespace: ns,
        trustDomain: s.profile.trustDomain,
        privateKeyPem: s.profile.privateKey,
        certificatePem: s.profile.certificate,
      });
      const answer = await s.call<Record<string, unknown>>("POST", path, { approval });
      if (f === "json") return print(f, answer);
      if (answer.pending === true) {
        process.stdout.write(`approved; ${pendingLine(answer as unknown as PendingRequest)}\n`);
        return;
      }
      process.stdout.write(`approved; deployment ${String(answer.namespace)}/${String(answer.name)} ${String(answer.outcome)}: revision ${String(answer.revision)}\n`);
    });
}
