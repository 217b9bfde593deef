import type { Command } from "commander";
import { pcError } from "../../core/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const enc = encodeURIComponent;
const collect = (v: string, prev: string[]) => [...prev, v];

interface Waiver {
  id: string;
  namespace: string;
  check: string;
  deployment?: string;
  imageDigest?: string;
  findings?: string[];
  owner: string;
  justification: string;
  ticket: string;
  createdBy: string;
  createdAt: string;
  expiresAt: string;
  revokedAt?: string;
  revokedBy?: string;
  status: "active" | "expired" | "revoked";
}

function needNamespace(ns: string | undefined): string {
  if (ns === undefined || ns === "") throw pcError("PC_CLI_USAGE", "-n NAMESPACE is required");
  return ns;
}

/** What a waiver covers, in one cell: the namespace, a deployment, an image, findings. */
function scopeOf(w: Waiver): string {
  const parts = [w.deployment !== undefined ? `deployment=${w.deployment}` : "", w.imageDigest !== undefined ? `image=${w.imageDigest.slice(0, 19)}` : ""].filter(Boolean);
  const scope = parts.length > 0 ? parts.join(",") : "namespace";
  return w.findings !== undefined ? `${scope} findings=${w.findings.join(",")}` : scope;
}

function printList(format: OutputFormat, items: Waiver[]): void {
  if (format === "json") return print("json", items);
  if (items.length === 0) {
    process.stdout.write("no waivers\n");
    return;
  }
  const rows = items.map((w) => ({ id: w.id, check: w.check, scope: scopeOf(w), owner: w.owner, ticket: w.ticket, expires: w.expiresAt, status: w.status }));
  print(format, rows, ["id", "check", "scope", "owner", "ticket", "expires", "status"]);
}

function printOne(format: OutputFormat, w: Waiver): void {
  if (format === "json") return print("json", w);
  print(format, {
    id: w.id,
    namespace: w.namespace,
    check: w.check,
    scope: scopeOf(w),
    owner: w.owner,
    justification: w.justification,
    ticket: w.ticket,
    createdBy: w.createdBy,
    createdAt: w.createdAt,
    expiresAt: w.expiresAt,
    status: w.status,
    ...(w.revokedAt !== undefined ? { revokedAt: w.revokedAt, revokedBy: w.revokedBy } : {}),
  });
}

/** `waiver create | list | get | revoke`: time-bound exemptions from admission checks. */
export function registerWaiverCommands(program: Command, globals: Globals, open: Open): void {
  const waiver = program.command("waiver").description("waivers: exempt one admission check (or named findings) for a scope, until an expiry");
  waiver
    .command("create")
    .description("create a waiver for one check in a namespace, a deployment or an image digest; at most 90 days")
    .option("-n, --namespace <ns>", "the namespace it covers")
    .requiredOption("--check <name>", "the admission check it exempts (e.g. image-reference, image-scan)")
    .option("--deployment <name>", "only this deployment")
    .option("--image <digest>", "only this image (sha256:<hex>)")
    .option("--finding <id>", "only this finding of the check, e.g. CVE-2024-1234 (repeatable)", collect, [])
    .requiredOption("--owner <identity>", "who answers for it, e.g. user:alice")
    .requiredOption("--justification <text>", "why (10 to 2000 characters)")
    .requiredOption("--ticket <id>", "the ticket that tracks it, e.g. SEC-123")
    .requiredOption("--expires <when>", "a duration (30d, 12h) or an ISO 8601 time; at most 90 days away")
    .action(async (o: { namespace?: string; check: string; deployment?: string; image?: string; finding: string[]; owner: string; justification: string; ticket: string; expires: string }) => {
      const ns = needNamespace(o.namespace);
      const body = {
        check: o.check,
        ...(o.deployment !== undefined ? { deployment: o.deployment } : {}),
        ...(o.image !== undefined ? { imageDigest: o.image } : {}),
        ...(o.finding.length > 0 ? { findings: o.finding } : {}),
        owner: o.owner,
        justification: o.justification,
        ticket: o.ticket,
        expires: o.expires,
      };
      const s = await open();
      printOne(globals().output, await s.call<Waiver>("POST", `/v1/namespaces/${enc(ns)}/waivers`, body));
    });
  waiver
    .command("list")
    .description("the waivers in force in a namespace, soonest expiry first")
    .option("-n, --namespace <ns>", "namespace")
    .option("--expiring <duration>", "only those that lapse within this long (e.g. 7d)")
    .option("--all", "also the expired and revoked ones")
    .action(async (o: { namespace?: string; expiring?: string; all?: boolean }) => {
      const ns = needNamespace(o.namespace);
      if (o.expiring !== undefined && !/^[1-9][0-9]{0,6}(s|m|h|d)$/.test(o.expiring)) throw pcError("PC_CLI_USAGE", "--expiring must look like 90s, 15m, 24h or 7d");
      const q = new URLSearchParams();
      if (o.expiring !== undefined) q.set("expiring", o.expiring);
      if (o.all) q.set("all", "true");
      const qs = q.toString();
      const s = await open();
      const r = await s.call<{ items: Waiver[] }>("GET", `/v1/namespaces/${enc(ns)}/waivers${qs ? `?${qs}` : ""}`);
      printList(globals().output, r.items);
    });
  waiver
    .command("get <id>")
    .description("one waiver, with its status")
    .option("-n, --namespace <ns>", "namespace")
    .action(async (id: string, o: { namespace?: string }) => {
      const s = await open();
      printOne(globals().output, await s.call<Waiver>("GET", `/v1/namespaces/${enc(needNamespace(o.namespace))}/waivers/${enc(id)}`));
    });
  waiver
    .command("revoke <id>")
    .description("revoke a waiver at once (it is kept, marked revoked)")
    .option("-n, --namespace <ns>", "namespace")
    .action(async (id: string, o: { namespace?: string }) => {
      const s = await open();
      printOne(globals().output, await s.call<Waiver>("POST", `/v1/namespaces/${enc(needNamespace(o.namespace))}/waivers/${enc(id)}/revoke`, {}));
    });
}
