import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { formatIdentity, parseIdentity, pcError } from "../../core/index.js";
import { FastEnforcer, formatPolicyTestReport, runPolicyTestFile, type PolicyTestReport } from "../../rbac/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const collect = (v: string, prev: string[]) => [...prev, v];
const enc = encodeURIComponent;

/** Parses `k=v` labels; a repeated key is refused. */
export function parseLabels(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const i = it.indexOf("=");
    if (i <= 0) throw pcError("PC_CLI_USAGE", `label ${JSON.stringify(it)} must be key=value`);
    const k = it.slice(0, i);
    if (k in out) throw pcError("PC_CLI_USAGE", `label ${k} given twice`);
    out[k] = it.slice(i + 1);
  }
  return out;
}

interface Change {
  version: number;
  added: string[];
  removed: string[];
}

function printChange(format: OutputFormat, c: Change): void {
  if (format === "json") return print(format, c);
  process.stdout.write(`policy version ${c.version}\n`);
  for (const l of c.removed) process.stdout.write(`- ${l}\n`);
  for (const l of c.added) process.stdout.write(`+ ${l}\n`);
}

/**
 * namespace, policy, role and can-i: the security team's commands. `answer(false)` makes
 * a command that ran fine exit 1: a `can-i` no, or a failing policy test.
 */
export function registerRbacCommands(program: Command, globals: Globals, open: Open, answer: (yes: boolean) => void): void {
  const ns = program.command("namespace").description("namespaces (RBAC domains)");
  ns.command("create <name>")
    .option("--label <k=v>", "label (repeatable)", collect, [])
    .action(async (name: string, o: { label: string[] }) => {
      const s = await open();
      print(globals().output, await s.call("POST", "/v1/namespaces", { name, labels: parseLabels(o.label) }));
    });
  ns.command("list").action(async () => {
    const s = await open();
    const r = await s.call<{ items: { name: string; labels: Record<string, string>; createdBy: string; createdAt: string }[] }>("GET", "/v1/namespaces");
    const f = globals().output;
    print(f, r.items, f === "json" ? undefined : ["name", "labels", "createdBy", "createdAt"]);
  });
  ns.command("get <name>").action(async (name: string) => {
    const s = await open();
    print(globals().output, await s.call("GET", `/v1/namespaces/${enc(name)}`));
  });
  ns.command("delete <name>").action(async (name: string) => {
    const s = await open();
    print(globals().output, await s.call("DELETE", `/v1/namespaces/${enc(name)}`));
  });

  const policy = program.command("policy").description("the RBAC policy: get, apply, history, rollback, test");
  policy
    .command("get")
    .description("print the policy in force (-o csv: the CSV alone, ready to edit and apply)")
    .action(async () => {
      const s = await open();
      const r = await s.call<{ version: number; csv: string }>("GET", "/v1/policy");
      const f = globals().output;
      if (f === "json") print("json", r);
      else if (f === "csv") process.stdout.write(r.csv);
      else process.stdout.write(`# policy version ${r.version}\n${r.csv}`);
    });
  policy
    .command("apply")
    .description("apply a whole policy file, validated as a whole and applied atomically")
    .requiredOption("-f, --file <file>", "policy CSV")
    .option("--message <text>", "why", "")
    .action(async (o: { file: string; message: string }) => {
      const csv = readFileSync(o.file, "utf8");
      const s = await open();
      printChange(globals().output, await s.call<Change>("PUT", "/v1/policy", { csv, message: o.message }));
    });
  policy
    .command("history")
    .description("every version with author, time, message and diff")
    .action(async () => {
      const s = await open();
      const r = await s.call<{ items: (Change & { author: string; time: string; message: string; rollbackOf: number | null })[] }>("GET", "/v1/policy/history");
      if (globals().output === "json") return print("json", r.items);
      for (const v of r.items) {
        process.stdout.write(`version ${v.version}  ${v.time}  ${v.author}${v.rollbackOf ? `  (rollback to ${v.rollbackOf})` : ""}\n    ${v.message || "-"}\n`);
        for (const l of v.removed) process.stdout.write(`    - ${l}\n`);
        for (const l of v.added) process.stdout.write(`    + ${l}\n`);
      }
    });
  policy
    .command("rollback <version>")
    .description("return to an earlier version (recorded as a new version)")
    .option("--message <text>", "why")
    .action(async (version: string, o: { message?: string }) => {
      const v = Number(version);
      if (!Number.isInteger(v) || v < 1) throw pcError("PC_CLI_USAGE", "VERSION is a positive whole number");
      const s = await open();
      printChange(globals().output, await s.call<Change>("POST", "/v1/policy/rollback", { version: v, ...(o.message ? { message: o.message } : {}) }));
    });

  policy
    .command("test <files...>")
    .description("run policy test files (YAML) offline, against the policy they name or --policy")
    .option("--policy <file>", "candidate policy CSV to test instead of the one each file names")
    .action((files: string[], o: { policy?: string }) => {
      const policyCsv = o.policy ? readFileSync(o.policy, "utf8") : undefined;
      const reports: { file: string; report: PolicyTestReport }[] = files.map((file) => ({
        file,
        report: runPolicyTestFile(file, { ...(policyCsv !== undefined ? { policyCsv } : {}), makeEnforcer: (p) => new FastEnforcer(p) }),
      }));
      if (globals().output === "json") print("json", reports);
      else for (const r of reports) process.stdout.write(`# ${r.file}\n${formatPolicyTestReport(r.report)}`);
      if (reports.some((r) => r.report.failed > 0)) answer(false);
    });

  const role = program.command("role").description("role bindings, one at a time");
  for (const [verb, path] of [["bind", "role-bindings"], ["unbind", "role-bindings/remove"]] as const) {
    role
      .command(`${verb} <identity> <role>`)
      .requiredOption("-n, --namespace <ns>", "namespace, or * for cluster-wide")
      .action(async (identity: string, roleName: string, o: { namespace: string }) => {
        const id = formatIdentity(parseIdentity(identity));
        const s = await open();
        printChange(globals().output, await s.call<Change>("POST", `/v1/namespaces/${enc(o.namespace)}/${path}`, { identity: id, role: roleName }));
      });
  }

  program
    .command("can-i <action> <resource>")
    .description("would the gateway allow it? exits 0 for yes, 1 for no")
    .requiredOption("-n, --namespace <ns>", "namespace, or * for cluster-wide")
    .option("--as <identity>", "ask for another identity (needs policies:read)")
    .action(async (action: string, resource: string, o: { namespace: string; as?: string }) => {
      const q = new URLSearchParams({ action, resource, namespace: o.namespace });
      if (o.as) q.set("as", formatIdentity(parseIdentity(o.as)));
      const s = await open();
      const d = await s.call<{ allowed: boolean; rule: string; subject: string }>("GET", `/v1/can-i?${q.toString()}`);
      if (globals().output === "json") print("json", d);
      else process.stdout.write(`${d.allowed ? "yes" : "no"}  (${d.rule})\n`);
      answer(d.allowed);
    });
}
