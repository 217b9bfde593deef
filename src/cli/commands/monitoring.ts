import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { isPortcullisError, pcError, type PortcullisError } from "../../core/index.js";
import {
  formatMonitoringTestReport,
  formatReplayReport,
  replayMonitoringEvents,
  runMonitoringTestFile,
  shippedMonitoringRules,
  type MonitoringTestReport,
  type ReplayReport,
} from "../../monitoring/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";
import { registerPolicyVersionCommands, versionArgument } from "./policy-versions.js";
import { parseTimeArg } from "./audit.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

interface Change {
  version: number;
  unchanged: boolean;
}

/** The codes of a file `rules test` cannot use: reported, exit 2. */
const BAD_FILE_CODES = new Set(["PC_MONITOR_TEST_INVALID", "PC_MONITOR_RULES_INVALID", "PC_MONITOR_EVENTS_INVALID"]);

function readText(path: string, code: "PC_CLI_USAGE" | "PC_MONITOR_EVENTS_INVALID" | "PC_MONITOR_RULES_INVALID", what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    throw pcError(code, `cannot read the ${what} ${path}`);
  }
}

function printChange(format: OutputFormat, c: Change): void {
  if (format === "json") return print(format, c);
  process.stdout.write(c.unchanged ? `monitoring rules unchanged: version ${c.version} is in force with this text\n` : `monitoring rules version ${c.version}\n`);
}

/** `monitoring rules get | apply | history | rollback | test`, and `monitoring events`. */
function registerRulesCommands(monitoring: Command, globals: Globals, open: Open, answer: (ok: boolean) => void, badFile: (e: PortcullisError) => void): void {
  const rules = monitoring.command("rules").description("the monitoring rules: get, apply, history, rollback, and offline tests");
  rules
    .command("get")
    .description("print the rules file in force (or of --version N); -o yaml prints the file alone, -o json with its parsed rules")
    .option("--version <n>", "an earlier version instead of the one in force")
    .action(async (o: { version?: string }) => {
      const q = o.version !== undefined ? `?version=${versionArgument(o.version, "--version")}` : "";
      const s = await open();
      const r = await s.call<{ version: number; text: string; rules: unknown[] }>("GET", `/v1/monitoring/rules${q}`);
      const format: string = globals().output;
      if (format === "json") return print("json", r);
      const text = r.text.endsWith("\n") || r.text === "" ? r.text : `${r.text}\n`;
      if (format === "yaml") process.stdout.write(text);
      else process.stdout.write(`# monitoring rules version ${r.version}\n${text}`);
    });
  rules
    .command("apply")
    .description("apply a rules file: validated whole, versioned (the text in force already changes nothing)")
    .requiredOption("-f, --file <file>", "the rules file (YAML)")
    .option("-m, --message <text>", "why")
    .action(async (o: { file: string; message?: string }) => {
      const text = readText(o.file, "PC_CLI_USAGE", "rules file");
      const s = await open();
      const body = { text, ...(o.message !== undefined && o.message.trim() !== "" ? { message: o.message } : {}) };
      printChange(globals().output, await s.call<Change>("PUT", "/v1/monitoring/rules", body));
    });
  registerPolicyVersionCommands(rules, { path: "/v1/monitoring/rules", contents: "rules", output: () => globals().output, open, printChange });
  rules
    .command("test [files...]")
    .description("offline: run test files (YAML) against the rules each names (or --rules, or the shipped ones); --events replays recorded events (JSON lines)")
    .option("--rules <file>", "candidate rules file, tested instead of the one each test file names")
    .option("--events <file>", "recorded events, one JSON object a line (docker events --format '{{json .}}', or `monitoring events`): prints the hits")
    .action(async (files: string[], o: { rules?: string; events?: string }) => {
      if (files.length === 0 && o.events === undefined) throw pcError("PC_CLI_USAGE", "give a TESTFILE, --events FILE, or both");
      const tests: { file: string; report: MonitoringTestReport }[] = [];
      let replay: ReplayReport | undefined;
      try {
        const rulesText = o.rules !== undefined ? readText(o.rules, "PC_MONITOR_RULES_INVALID", "rules file") : undefined;
        for (const file of files) tests.push({ file, report: runMonitoringTestFile(file, rulesText !== undefined ? { rulesText } : {}) });
        if (o.events !== undefined) replay = replayMonitoringEvents(rulesText ?? shippedMonitoringRules(), readText(o.events, "PC_MONITOR_EVENTS_INVALID", "events file"));
      } catch (e) {
        if (isPortcullisError(e) && BAD_FILE_CODES.has(e.code)) {
          badFile(e);
          return;
        }
        throw e;
      }
      if (globals().output === "json") print("json", { ...(files.length > 0 ? { tests } : {}), ...(replay !== undefined ? { replay } : {}) });
      else {
        for (const r of tests) process.stdout.write(`# ${r.file}\n${formatMonitoringTestReport(r.report)}`);
        if (replay !== undefined) process.stdout.write(`# ${o.events as string}\n${formatReplayReport(replay)}`);
      }
      if (tests.some((r) => r.report.failed > 0)) answer(false);
    });
}

/**
 * `monitoring rules ...` (against the gateway; `rules test` offline: no server, no
 * profile) and `monitoring events`. `answer(false)` makes a test run with a failing case
 * exit 1; `badFile(e)` reports a file that cannot be used and makes it exit 2.
 */
export function registerMonitoringCommands(
  program: Command,
  globals: Globals,
  open: Open,
  answer: (ok: boolean) => void,
  badFile: (e: PortcullisError) => void,
): void {
  const monitoring =
    program.commands.find((c) => c.name() === "monitoring") ?? program.command("monitoring").description("runtime monitoring: rules and recorded events");
  registerRulesCommands(monitoring, globals, open, answer, badFile);
  monitoring
    .command("events")
    .description("the events monitoring recorded, oldest first, as JSON lines (what `rules test --events` replays)")
    .option("--node <name>", "only this node's")
    .option("--since <time>", "ISO 8601 time, or a duration before now (1h, 30m)")
    .option("--until <time>", "ISO 8601 time, or a duration before now")
    .option("--type <type>", "only this event type (container, image, portcullis...)")
    .option("--limit <n>", "at most this many (default 1000, at most 10000)")
    .action(async (o: { node?: string; since?: string; until?: string; type?: string; limit?: string }) => {
      const q = new URLSearchParams();
      if (o.node !== undefined) q.set("node", o.node);
      if (o.since !== undefined) q.set("since", parseTimeArg(o.since));
      if (o.until !== undefined) q.set("until", parseTimeArg(o.until));
      if (o.type !== undefined) q.set("type", o.type);
      if (o.limit !== undefined) {
        const n = versionArgument(o.limit, "--limit");
        if (n > 10_000) throw pcError("PC_CLI_USAGE", "--limit is at most 10000");
        q.set("limit", String(n));
      }
      const s = await open();
      const qs = q.toString();
      const r = await s.call<{ items: unknown[] }>("GET", `/v1/monitoring/events${qs ? `?${qs}` : ""}`);
      for (const ev of r.items) process.stdout.write(`${JSON.stringify(ev)}\n`);
    });
}
