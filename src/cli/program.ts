import { Command, CommanderError, Option } from "commander";
import { VERSION, createLogger, formatIdentity, parseDuration, parseIdentity, PortcullisError, pcError, resolveDataDir, toPortcullisError } from "../core/index.js";
import { formatFingerprint, type IssuedBundle } from "../pki/index.js";
import { initGateway, startGateway } from "../app.js";
import { parseMetricsListen } from "../api/index.js";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { enroll } from "./commands/enroll.js";
import { registerRbacCommands } from "./commands/rbac.js";
import { registerAuditCommands } from "./commands/audit.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerDeployCommands } from "./commands/deploy.js";
import { registerAdmissionCommands } from "./commands/admission.js";
import { registerApprovalCommands } from "./commands/approvals.js";
import { registerWaiverCommands } from "./commands/waiver.js";
import { registerSecretCommands } from "./commands/secret.js";
import { registerScanCommands } from "./commands/scan.js";
import { registerAlertCommands } from "./commands/alerts.js";
import { registerMonitoringCommands } from "./commands/monitoring.js";
import { formatDenial, print, type OutputFormat } from "./output.js";
import { resolveProfilePath, Session } from "./session.js";

/** Exit codes: 0 ok, 1 refused or failed, 2 bad usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

interface Globals {
  profile?: string;
  output: OutputFormat;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function buildProgram(): Command {
  const program = new Command("portcullis")
    .description("Security-first orchestration gateway (portcullis --version prints the version)")
    .addOption(new Option("--profile <file>", "client profile (env PORTCULLIS_PROFILE; default: the admin profile of the data dir)"))
    .addOption(new Option("-o, --output <format>", "output format: table, json, csv (policy get only), yaml (monitoring rules get only); for audit export, the output file").default("table"))
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const globals = (): Globals => program.opts<Globals>();
  // Refused before the command runs, so nothing is done that could not be printed.
  program.hook("preAction", (_program, action) => {
    const o = program.opts<{ output: string }>().output;
    if (isAuditExport(action)) return; // there, -o names the output file
    if (o === "yaml" && isMonitoringRulesGet(action)) return; // the rules file alone
    if (!["table", "json", "csv"].includes(o)) throw pcError("PC_CLI_USAGE", `-o ${o}: the format is table, json or csv`);
    if (o === "csv" && !(action.name() === "get" && action.parent?.name() === "policy")) {
      throw pcError("PC_CLI_USAGE", "-o csv is only for policy get");
    }
  });
  const session = () => Session.open(resolveProfilePath(globals().profile));

  program
    .command("init")
    .description("create a data directory: root CA, issuing CA, server certificate, first admin")
    .option("--data-dir <dir>", "data directory (env PORTCULLIS_DATA_DIR; default .portcullis)")
    .option("--trust-domain <name>", "SPIFFE trust domain", "portcullis.local")
    .option("--listen <host:port>", "API listener (mTLS)", "127.0.0.1:8443")
    .option("--bootstrap-listen <host:port>", "bootstrap listener (enrollment, CA bundle, CRL)", "127.0.0.1:8444")
    .option("--san <name>", "extra DNS name or IP for the server certificate (repeatable)", collect, [])
    .option("--rbac-policy <file>", "the initial RBAC policy (CSV) instead of the shipped one, e.g. with a first secret-reader binding")
    .action((o: { dataDir?: string; trustDomain: string; listen: string; bootstrapListen: string; san: string[]; rbacPolicy?: string }) => {
      const r = initGateway({
        dataDir: resolveDataDir(o.dataDir),
        trustDomain: o.trustDomain,
        listen: o.listen,
        bootstrapListen: o.bootstrapListen,
        sans: o.san,
        ...(o.rbacPolicy !== undefined ? { policyCsv: readFileSync(o.rbacPolicy, "utf8") } : {}),
      });
      print(globals().output, {
        dataDir: r.dataDir,
        trustDomain: r.config.trustDomain,
        caFingerprint: formatFingerprint(r.rootFingerprint),
        adminProfile: r.adminProfile,
        api: r.config.listen,
        bootstrap: r.config.bootstrapListen,
      });
    });

  const METRICS_LISTEN_HELP = "also serve GET /metrics over plain HTTP on this loopback address (127.0.0.1, ::1 or localhost only)";
  const serve = (o: { dataDir?: string; metricsListen?: string }) => runServer(resolveDataDir(o.dataDir), o.metricsListen);
  program
    .command("serve")
    .description("run the gateway")
    .option("--data-dir <dir>", "data directory")
    .option("--metrics-listen <host:port>", METRICS_LISTEN_HELP)
    .action(serve);
  program
    .command("up")
    .description("initialise the data directory with the embedded defaults if it does not exist, then serve")
    .option("--data-dir <dir>", "data directory")
    .option("--metrics-listen <host:port>", METRICS_LISTEN_HELP)
    .action(async (o: { dataDir?: string; metricsListen?: string }) => {
      // A refused address is refused before anything is created.
      if (o.metricsListen !== undefined) parseMetricsListen(o.metricsListen);
      const dir = resolveDataDir(o.dataDir);
      if (!existsSync(join(dir, "portcullis-data.json"))) {
        const r = initGateway({ dataDir: dir });
        process.stderr.write(`initialised ${dir}\nCA fingerprint ${formatFingerprint(r.rootFingerprint)}\nadmin profile ${r.adminProfile}\n`);
      }
      await runServer(dir, o.metricsListen);
    });

  const tokens = program.command("enroll-token").description("one-time enrollment tokens");
  tokens
    .command("create <identity>")
    .description("create a token bound to an identity (user:NAME, node:NAME, service:NAME)")
    .option("--ttl <duration>", "token lifetime", "15m")
    .option("--cert-ttl <duration>", "lifetime of the certificate it yields (users only, up to the configured maximum)")
    .action(async (identity: string, o: { ttl: string; certTtl?: string }) => {
      const id = formatIdentity(parseIdentity(identity));
      parseDuration(o.ttl, "--ttl");
      if (o.certTtl) parseDuration(o.certTtl, "--cert-ttl");
      const s = await session();
      const r = await s.call<{ id: string; token: string; identity: string; expiresAt: string }>("POST", "/v1/enroll-tokens", {
        identity: id,
        ttl: o.ttl,
        ...(o.certTtl ? { certTtl: o.certTtl } : {}),
      });
      print(globals().output, r);
    });

  program
    .command("enroll <token>")
    .description("enroll with a one-time token: the key is generated here and never leaves")
    .requiredOption("--server <host:port>", "the gateway's bootstrap address")
    .requiredOption("--ca-fingerprint <SHA256:hex>", "the root CA fingerprint that init printed")
    .option("--profile-out <file>", "where to write the profile (default ./KIND-NAME.profile.json)")
    .action(async (token: string, o: { server: string; caFingerprint: string; profileOut?: string }) => {
      const r = await enroll({ token, server: o.server, caFingerprint: o.caFingerprint, ...(o.profileOut ? { profileOut: o.profileOut } : {}) });
      print(globals().output, r);
    });

  program
    .command("whoami")
    .description("the identity the gateway sees")
    .action(async () => {
      const s = await session();
      print(globals().output, await s.call("GET", "/v1/whoami"));
    });

  const cert = program.command("cert").description("certificates");
  cert
    .command("renew")
    .description("renew this profile's certificate for a new key")
    .action(async () => {
      const s = await Session.open(resolveProfilePath(globals().profile), new Date(0));
      const r: IssuedBundle = await s.renew();
      print(globals().output, { identity: r.identity, serial: r.serial, notAfter: r.notAfter, profile: s.path });
    });
  cert
    .command("revoke [serial]")
    .description("revoke a certificate, or every certificate of an identity")
    .option("--identity <id>", "revoke every certificate of this identity and its unused enrollment tokens")
    .option("--reason <reason>", "unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn", "unspecified")
    .action(async (serial: string | undefined, o: { identity?: string; reason: string }) => {
      if ((serial === undefined) === (o.identity === undefined)) throw pcError("PC_CLI_USAGE", "give a SERIAL or --identity, not both");
      const s = await session();
      const body = serial ? { serial, reason: o.reason } : { identity: formatIdentity(parseIdentity(o.identity as string)), reason: o.reason };
      print(globals().output, await s.call("POST", "/v1/certificates/revoke", body));
    });
  cert
    .command("list")
    .description("list certificates")
    .option("--identity <id>", "only this identity's")
    .action(async (o: { identity?: string }) => {
      const s = await session();
      const q = o.identity ? `?identity=${encodeURIComponent(formatIdentity(parseIdentity(o.identity)))}` : "";
      const r = await s.call<{ items: Record<string, unknown>[] }>("GET", `/v1/certificates${q}`);
      const fmt = globals().output;
      print(fmt, fmt === "json" ? r.items : r.items, fmt === "json" ? undefined : ["serial", "identity", "profile", "status", "notAfter"]);
    });

  registerRbacCommands(program, globals, session, (allowed) => {
    if (!allowed) answeredNo = true;
  });
  registerNodeCommands(program, globals, session);
  registerDeployCommands(program, globals, session);
  registerApprovalCommands(program, globals, session);
  registerWaiverCommands(program, globals, session);
  registerSecretCommands(program, globals, session);
  registerScanCommands(program, globals, session);
  registerAlertCommands(program, globals, session);
  registerAdmissionCommands(
    program,
    globals,
    session,
    (ok) => {
      if (!ok) answeredNo = true;
    },
    (e) => {
      process.stderr.write(`error: ${e.code}: ${e.publicMessage}\n`);
      badInputFile = true;
    },
  );
  registerMonitoringCommands(
    program,
    globals,
    session,
    (ok) => {
      if (!ok) answeredNo = true;
    },
    (e) => {
      process.stderr.write(`error: ${e.code}: ${e.publicMessage}\n`);
      badInputFile = true;
    },
  );
  registerAuditCommands(
    program,
    session,
    () => {
      const o = program.opts<{ output: string }>().output;
      return o === "table" ? undefined : o;
    },
    (ok) => {
      if (!ok) answeredNo = true;
    },
  );

  return program;
}

function isAuditExport(c: Command): boolean {
  return c.name() === "export" && c.parent?.name() === "audit";
}

function isMonitoringRulesGet(c: Command): boolean {
  return c.name() === "get" && c.parent?.name() === "rules" && c.parent.parent?.name() === "monitoring";
}

/** Set by can-i when the answer is no: the command succeeded, and exits 1. */
let answeredNo = false;
/** Set when an offline command was given a file it cannot use: exits 2. */
let badInputFile = false;

/** Runs the gateway until SIGTERM or SIGINT, then drains in-flight requests and closes the store. */
async function runServer(dataDir: string, metricsListen?: string): Promise<void> {
  const logger = createLogger();
  const gw = await startGateway({ dataDir, logger, ...(metricsListen !== undefined ? { metricsListen } : {}) });
  const metrics = gw.metricsAddress !== undefined ? { metrics: gw.metricsAddress } : {};
  logger.info({ api: gw.apiAddress, bootstrap: gw.bootstrapAddress, ...metrics, trustDomain: gw.config.trustDomain }, "portcullis serving");
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig }, "draining");
      void gw.close().then(resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  logger.info("stopped");
}

/** Runs the CLI; returns the exit code. Errors print their code and message. */
export async function runCli(argv: readonly string[]): Promise<number> {
  // The version is answered here, not as an option of the root command: commander would
  // take `--version` out of any command line (`secret read NAME --version 2`).
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  const program = buildProgram();
  try {
    answeredNo = false;
    badInputFile = false;
    await program.parseAsync([...argv], { from: "user" });
    if (badInputFile) return EXIT.usage;
    return answeredNo ? EXIT.failed : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return EXIT.ok;
      return EXIT.usage;
    }
    const err = e instanceof PortcullisError ? e : toPortcullisError(e);
    if (err.code === "PC_INTERNAL" && process.env.PORTCULLIS_DEBUG) process.stderr.write(`${String(err.internal)}\n`);
    process.stderr.write(`error: ${err.code}: ${err.publicMessage}\n`);
    if (err.decision !== undefined) process.stderr.write(formatDenial(err.decision));
    return err.code === "PC_CLI_USAGE" || err.code === "PC_CONFIG_INVALID" || err.code === "PC_PKI_IDENTITY_INVALID" ? EXIT.usage : EXIT.failed;
  }
}
