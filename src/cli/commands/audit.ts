import { createWriteStream } from "node:fs";
import { once } from "node:events";
import type { Command } from "commander";
import { formatIdentity, parseDuration, parseIdentity, pcError } from "../../core/index.js";
import { formatVerifyReport, verifyBundleFile } from "../../audit/index.js";
import { httpsStream } from "../client.js";
import { tlsOf, type Session } from "../session.js";
import { verifyDataDir } from "../offline.js";

type Open = () => Promise<Session>;

/** Durations such as 1h or 30m before now, or an ISO 8601 time. */
export function parseTimeArg(text: string, now = new Date()): string {
  let ago: number | undefined;
  try {
    ago = parseDuration(text, "time");
  } catch {
    ago = undefined; // not a duration: an ISO 8601 time, then
  }
  if (ago !== undefined) return new Date(now.getTime() - ago).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw pcError("PC_CLI_USAGE", `${JSON.stringify(text)} is neither a duration (1h) nor an ISO 8601 time`);
  return new Date(t).toISOString();
}

/** audit export (needs audit:export) and audit verify (offline). */
export function registerAuditCommands(program: Command, open: Open, outputFile: () => string | undefined, answer: (ok: boolean) => void): void {
  const audit = program.command("audit").description("the hash-chained audit log: export, verify offline");
  audit
    .command("export")
    .description("stream the log: a verifiable JSONL bundle (default) or CSV for people; -o FILE writes to a file")
    .option("--since <time>", "ISO 8601 time, or a duration before now (1h, 30m)")
    .option("--until <time>", "ISO 8601 time, or a duration before now")
    .option("--actor <id>", "only this identity's entries")
    .option("--action <action>", "only this action (an event type or a route such as 'GET /v1/whoami')")
    .option("--namespace <ns>", "only this namespace")
    .option("--outcome <outcome>", "allowed, denied or error")
    .option("--format <format>", "jsonl or csv", "jsonl")
    .action(async (o: { since?: string; until?: string; actor?: string; action?: string; namespace?: string; outcome?: string; format: string }) => {
      if (o.format !== "jsonl" && o.format !== "csv") throw pcError("PC_CLI_USAGE", "--format is jsonl or csv");
      if (o.outcome !== undefined && !["allowed", "denied", "error"].includes(o.outcome)) throw pcError("PC_CLI_USAGE", "--outcome is allowed, denied or error");
      const q = new URLSearchParams({ format: o.format });
      if (o.since) q.set("since", parseTimeArg(o.since));
      if (o.until) q.set("until", parseTimeArg(o.until));
      if (o.actor) q.set("actor", formatIdentity(parseIdentity(o.actor)));
      if (o.action) q.set("action", o.action);
      if (o.namespace) q.set("namespace", o.namespace);
      if (o.outcome) q.set("outcome", o.outcome);
      const s = await open();
      const file = outputFile();
      const out = file && file !== "-" ? createWriteStream(file, { mode: 0o600 }) : process.stdout;
      await httpsStream(s.profile.server, `/v1/audit/export?${q.toString()}`, tlsOf(s.profile), out);
      if (out !== process.stdout) {
        out.end();
        await once(out, "finish");
      }
    });
  audit
    .command("verify [file]")
    .description("verify a bundle offline (no server, no data dir), or the live log with --data-dir; exits 0 or 1")
    .option("--ca-fingerprint <SHA256:hex>", "the root CA fingerprint you trust (otherwise the bundle's own, printed for you to compare)")
    .option("--data-dir <dir>", "verify the whole live log of a data directory in place")
    .action(async (file: string | undefined, o: { caFingerprint?: string; dataDir?: string }) => {
      if ((file === undefined) === (o.dataDir === undefined)) throw pcError("PC_CLI_USAGE", "give a FILE or --data-dir, not both");
      const opts = o.caFingerprint ? { caFingerprint: o.caFingerprint } : {};
      const report = file !== undefined ? await verifyBundleFile(file, opts) : await verifyDataDir(o.dataDir as string, opts);
      process.stdout.write(`${formatVerifyReport(report)}\n`);
      answer(report.ok);
    });
}
