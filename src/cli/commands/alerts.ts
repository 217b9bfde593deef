import type { Command } from "commander";
import { pcError } from "../../core/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const enc = encodeURIComponent;
const SEVERITIES = ["low", "medium", "high", "critical"];

interface ActionRecord {
  id: string;
  action: string;
  state: string;
  attempts: number;
  result: string | null;
  updatedAt: string;
}

interface Alert {
  id: string;
  rule: string;
  severity: string;
  namespace: string | null;
  deployment: string | null;
  node: string | null;
  container: string | null;
  summary: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  status: "open" | "acked";
  evidence: { first: unknown; last: unknown };
  ack?: { by: string; at: string; note: string };
  actions: ActionRecord[];
}

interface Delivery {
  id: string;
  alertId: string;
  sink: string;
  state: string;
  attempts: number;
  nextAt: string;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Quarantine {
  id: string;
  container: string;
  containerId: string | null;
  node: string;
  namespace: string | null;
  deployment: string | null;
  alert: string | null;
  rule: string;
  networks: string[];
  since: string;
  releasedAt?: string;
  releasedBy?: string;
}

function needNote(note: string | undefined): string {
  if (note === undefined || note.trim() === "") throw pcError("PC_CLI_USAGE", "--note TEXT is required");
  return note;
}

function printAlerts(format: OutputFormat, items: Alert[]): void {
  if (format === "json") return print("json", items);
  if (items.length === 0) {
    process.stdout.write("no alerts\n");
    return;
  }
  const rows = items.map((a) => ({
    id: a.id,
    severity: a.severity,
    rule: a.rule,
    where: a.deployment !== null ? `${a.namespace ?? "-"}/${a.deployment}` : (a.container ?? a.node ?? "-"),
    count: a.count,
    lastSeen: a.lastSeen,
    status: a.status,
    summary: a.summary.length > 80 ? `${a.summary.slice(0, 79)}…` : a.summary,
  }));
  print(format, rows, ["id", "severity", "rule", "where", "count", "lastSeen", "status", "summary"]);
}

function printAlert(format: OutputFormat, a: Alert): void {
  if (format === "json") return print("json", a);
  print(format, {
    id: a.id,
    rule: a.rule,
    severity: a.severity,
    status: a.status,
    summary: a.summary,
    namespace: a.namespace,
    deployment: a.deployment,
    node: a.node,
    container: a.container,
    count: a.count,
    firstSeen: a.firstSeen,
    lastSeen: a.lastSeen,
    ...(a.ack !== undefined ? { ackedBy: a.ack.by, ackedAt: a.ack.at, ackNote: a.ack.note } : {}),
  });
  if (a.actions.length > 0) {
    process.stdout.write("\nresponse actions:\n");
    print(format, a.actions.map((x) => ({ action: x.action, state: x.state, attempts: x.attempts, updatedAt: x.updatedAt, result: x.result })), ["action", "state", "attempts", "updatedAt", "result"]);
  }
  process.stdout.write(`\nevidence (first):\n${JSON.stringify(a.evidence.first, null, 2)}\n`);
  if (a.count > 1) process.stdout.write(`evidence (last):\n${JSON.stringify(a.evidence.last, null, 2)}\n`);
}

function printQuarantines(format: OutputFormat, items: Quarantine[]): void {
  if (format === "json") return print("json", items);
  if (items.length === 0) {
    process.stdout.write("no quarantined containers\n");
    return;
  }
  const rows = items.map((q) => ({
    container: q.container,
    node: q.node,
    deployment: q.deployment !== null ? `${q.namespace ?? "-"}/${q.deployment}` : "-",
    rule: q.rule,
    alert: q.alert,
    since: q.since,
    networks: q.networks.length > 0 ? q.networks : "-",
    released: q.releasedAt !== undefined ? `${q.releasedAt} by ${q.releasedBy ?? "?"}` : "-",
  }));
  print(format, rows, ["container", "node", "deployment", "rule", "alert", "since", "networks", "released"]);
}

/** `alerts list | get | ack | deliveries`, `quarantine list | release`. */
export function registerAlertCommands(program: Command, globals: Globals, open: Open): void {
  const alerts = program.command("alerts").description("alerts raised by the monitoring rules: list, get, acknowledge; webhook deliveries");
  alerts
    .command("list")
    .description("alerts, newest last sighting first: those of a namespace, or every one you may read")
    .option("-n, --namespace <ns>", "only this namespace's")
    .option("--severity <level>", "this severity or higher (low, medium, high, critical)")
    .option("--open", "only alerts not yet acknowledged")
    .option("--rule <name>", "only this rule's")
    .option("--limit <n>", "at most this many (1..1000, default 100)")
    .action(async (o: { namespace?: string; severity?: string; open?: boolean; rule?: string; limit?: string }) => {
      if (o.severity !== undefined && !SEVERITIES.includes(o.severity)) throw pcError("PC_CLI_USAGE", `--severity ${o.severity}: one of ${SEVERITIES.join(", ")}`);
      if (o.limit !== undefined && !/^[1-9][0-9]{0,3}$/.test(o.limit)) throw pcError("PC_CLI_USAGE", "--limit is a number from 1 to 1000");
      const q = new URLSearchParams();
      if (o.namespace !== undefined) q.set("namespace", o.namespace);
      if (o.severity !== undefined) q.set("severity", o.severity);
      if (o.open) q.set("open", "true");
      if (o.rule !== undefined) q.set("rule", o.rule);
      if (o.limit !== undefined) q.set("limit", o.limit);
      const qs = q.toString();
      const s = await open();
      printAlerts(globals().output, (await s.call<{ items: Alert[] }>("GET", `/v1/alerts${qs ? `?${qs}` : ""}`)).items);
    });
  alerts
    .command("get <id>")
    .description("one alert: where, how often, its evidence and its response actions")
    .action(async (id: string) => {
      const s = await open();
      printAlert(globals().output, await s.call<Alert>("GET", `/v1/alerts/${enc(id)}`));
    });
  alerts
    .command("ack <id>")
    .description("acknowledge an alert, with a note (who and when are recorded)")
    .requiredOption("--note <text>", "what was found or done (1 to 1000 characters)")
    .action(async (id: string, o: { note?: string }) => {
      const note = needNote(o.note);
      const s = await open();
      printAlert(globals().output, await s.call<Alert>("POST", `/v1/alerts/${enc(id)}/ack`, { note }));
    });
  alerts
    .command("deliveries")
    .description("deliveries of alerts to the webhook, newest first")
    .option("--dead", "only those that ran out of attempts (the dead-letter record)")
    .option("--state <state>", "only pending, delivered or dead ones")
    .action(async (o: { dead?: boolean; state?: string }) => {
      if (o.state !== undefined && !["pending", "delivered", "dead"].includes(o.state)) throw pcError("PC_CLI_USAGE", "--state is pending, delivered or dead");
      if (o.dead && o.state !== undefined && o.state !== "dead") throw pcError("PC_CLI_USAGE", "--dead and --state disagree");
      const state = o.dead ? "dead" : o.state;
      const s = await open();
      const r = await s.call<{ items: Delivery[] }>("GET", `/v1/alerts/deliveries${state !== undefined ? `?state=${state}` : ""}`);
      const fmt = globals().output;
      if (fmt === "json") return print("json", r.items);
      if (r.items.length === 0) {
        process.stdout.write(state === "dead" ? "no dead deliveries\n" : "no deliveries\n");
        return;
      }
      print(fmt, r.items.map((d) => ({ id: d.id, alert: d.alertId, state: d.state, attempts: d.attempts, updatedAt: d.updatedAt, lastError: d.lastError })), [
        "id", "alert", "state", "attempts", "updatedAt", "lastError",
      ]);
    });

  const quarantine = program.command("quarantine").description("containers held for forensics (paused, off every network): list, release");
  quarantine
    .command("list")
    .description("the containers held now: those of a namespace, or every one you may read")
    .option("-n, --namespace <ns>", "only this namespace's")
    .option("--all", "also the released ones")
    .action(async (o: { namespace?: string; all?: boolean }) => {
      const q = new URLSearchParams();
      if (o.namespace !== undefined) q.set("namespace", o.namespace);
      if (o.all) q.set("all", "true");
      const qs = q.toString();
      const s = await open();
      printQuarantines(globals().output, (await s.call<{ items: Quarantine[] }>("GET", `/v1/quarantines${qs ? `?${qs}` : ""}`)).items);
    });
  quarantine
    .command("release <container>")
    .description("end a quarantine: the held container is removed, and a fresh replica takes its place")
    .requiredOption("--note <text>", "why it may go (1 to 1000 characters)")
    .action(async (container: string, o: { note?: string }) => {
      const note = needNote(o.note);
      const s = await open();
      const q = await s.call<Quarantine>("DELETE", `/v1/quarantines/${enc(container)}`, { note });
      const fmt = globals().output;
      if (fmt === "json") return print("json", q);
      process.stdout.write(`quarantine of ${q.container} released by ${q.releasedBy ?? "?"} at ${q.releasedAt ?? "?"}; the container was removed\n`);
    });
}
