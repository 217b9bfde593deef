import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { Command } from "commander";
import { pcError } from "../../core/index.js";
import { MAX_SECRET_BYTES, SECRET_NAME_RE } from "../../secrets/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";

/**
 * `secret create|update|list|get|delete|read` and `secrets kek-status|rotate-kek|retire-kek`.
 *
 * A value comes only from a file (`--from-file`) or from standard input (`--from-stdin`),
 * byte for byte: never from an argument or an environment variable, which other processes
 * and logs can see (there is no `--value`). It is checked here before anything is sent:
 * not empty, at most 64 KiB. `secret read` writes the value, raw, to standard output and
 * nothing else.
 */

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const enc = encodeURIComponent;

interface SecretMeta {
  namespace: string;
  name: string;
  createdAt: string;
  createdBy: string;
  latest: number;
  versions: { version: number; size: number; createdAt: string; createdBy: string }[];
  usedBy: { deployment: string; revision: number; version: number; path: string }[];
}

interface KekStatus {
  active: string;
  rewrapping: boolean;
  keks: { id: string; createdAt: string; active: boolean; dataKeys: number }[];
}

function needNamespace(ns: string | undefined): string {
  if (ns === undefined || ns === "") throw pcError("PC_CLI_USAGE", "-n NAMESPACE is required");
  return ns;
}

function needName(name: string): string {
  if (!SECRET_NAME_RE.test(name)) throw pcError("PC_CLI_USAGE", `${JSON.stringify(name.slice(0, 70))} is not a secret name (lower-case letters, digits, '-' and '.', at most 63)`);
  return name;
}

const tooLarge = (what: string) =>
  pcError("PC_SECRETS_TOO_LARGE", `${what} is larger than ${MAX_SECRET_BYTES} bytes (64 KiB), the most a secret holds; nothing was sent`);
const empty = (what: string) => pcError("PC_SECRETS_VALUE_INVALID", `${what} is empty; a secret holds 1 to ${MAX_SECRET_BYTES} bytes; nothing was sent`);

/** Reads a file's bytes, refusing one over the limit before reading it whole. */
function readValueFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw pcError("PC_CLI_USAGE", `--from-file ${path}: ${(e as NodeJS.ErrnoException).code ?? "cannot open"}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw pcError("PC_CLI_USAGE", `--from-file ${path}: not a regular file`);
    if (st.size > MAX_SECRET_BYTES) throw tooLarge(`--from-file ${path}`);
    const buf = Buffer.alloc(MAX_SECRET_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > MAX_SECRET_BYTES) {
        buf.fill(0);
        throw tooLarge(`--from-file ${path}`);
      }
    }
    const value = Buffer.from(buf.subarray(0, n));
    buf.fill(0);
    if (value.length === 0) throw empty(`--from-file ${path}`);
    return value;
  } finally {
    closeSync(fd);
  }
}

/** Reads standard input to its end, refusing more than the limit. */
async function readValueStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const wipe = () => {
    for (const c of chunks) c.fill(0);
  };
  for await (const chunk of process.stdin) {
    const c = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    chunks.push(c);
    n += c.length;
    if (n > MAX_SECRET_BYTES) {
      wipe();
      process.stdin.destroy();
      throw tooLarge("standard input");
    }
  }
  const value = Buffer.concat(chunks);
  wipe();
  if (value.length === 0) throw empty("standard input");
  return value;
}

async function valueFrom(o: { fromFile?: string; fromStdin?: boolean }): Promise<Buffer> {
  if ((o.fromFile === undefined) === (o.fromStdin !== true)) throw pcError("PC_CLI_USAGE", "give the value with exactly one of --from-file FILE or --from-stdin");
  return o.fromFile !== undefined ? readValueFile(o.fromFile) : readValueStdin();
}

function printMeta(format: OutputFormat, m: SecretMeta): void {
  if (format === "json") return print("json", m);
  const latest = m.versions.find((v) => v.version === m.latest);
  print(format, {
    namespace: m.namespace,
    name: m.name,
    latest: m.latest,
    size: latest?.size,
    createdBy: m.createdBy,
    createdAt: m.createdAt,
    versions: m.versions.map((v) => `${v.version} (${v.size} bytes, ${v.createdBy}, ${v.createdAt})`).join("; "),
    usedBy: m.usedBy.length === 0 ? "-" : m.usedBy.map((u) => `${u.deployment} (revision ${u.revision}, version ${u.version}, ${u.path})`).join("; "),
  });
}

function printKeks(format: OutputFormat, s: KekStatus): void {
  if (format === "json") return print("json", s);
  print(format, s.keks.map((k) => ({ kek: k.id, active: k.active ? "yes" : "no", dataKeys: k.dataKeys, createdAt: k.createdAt })), ["kek", "active", "dataKeys", "createdAt"]);
  process.stdout.write(s.rewrapping ? "rewrapping: data keys remain under a KEK that is not active\n" : "rewrapping: done, every data key is under the active KEK\n");
}

async function sendValue(open: Open, method: string, path: string, body: (value: string) => Record<string, unknown>, value: Buffer): Promise<SecretMeta> {
  const text = value.toString("base64");
  value.fill(0);
  const s = await open();
  return s.call<SecretMeta>(method, path, body(text));
}

/**
 * Usage errors of the value-taking commands echo no option value (`--value=…` is the
 * caller's secret), and say where a value comes from.
 */
function quietErrors(cmd: Command): Command {
  return cmd.configureOutput({
    writeErr: (s) => process.stderr.write(s),
    outputError: (str, write) => {
      const redacted = str.replace(/(unknown option '[^'=]*)=[^']*'/g, "$1=…'");
      write(/unknown option '--value/.test(str) ? `${redacted.trimEnd()} (there is no --value: give the value with --from-file FILE or --from-stdin)\n` : redacted);
    },
  });
}

export function registerSecretCommands(program: Command, globals: Globals, open: Open): void {
  const secret = program
    .command("secret")
    .description("secrets of a namespace: values from a file or standard input only, metadata, explicit reads");
  const valueCommand = (
    verb: "create" | "update",
    description: string,
    send: (ns: string, name: string, value: Buffer) => Promise<SecretMeta>,
  ) =>
    quietErrors(secret.command(`${verb} <name>`))
      .description(description)
      .option("-n, --namespace <ns>", "namespace")
      .option("--from-file <file>", "read the value from this file, byte for byte")
      .option("--from-stdin", "read the value from standard input, byte for byte")
      .action(async (name: string, o: { namespace?: string; fromFile?: string; fromStdin?: boolean }) => {
        const ns = needNamespace(o.namespace);
        needName(name);
        printMeta(globals().output, await send(ns, name, await valueFrom(o)));
      });
  valueCommand(
    "create",
    "create a secret; the value is the bytes of --from-file FILE or of standard input (--from-stdin), at most 64 KiB",
    (ns, name, value) => sendValue(open, "POST", `/v1/namespaces/${enc(ns)}/secrets`, (v) => ({ name, value: v }), value),
  );
  valueCommand(
    "update",
    "add a new version of a secret, from --from-file FILE or --from-stdin; deployments keep their pinned version until redeployed",
    (ns, name, value) => sendValue(open, "PUT", `/v1/namespaces/${enc(ns)}/secrets/${enc(name)}`, (v) => ({ value: v }), value),
  );
  secret
    .command("list")
    .description("the secrets of a namespace: name, latest version, size, creator, users (never a value)")
    .option("-n, --namespace <ns>", "namespace")
    .action(async (o: { namespace?: string }) => {
      const s = await open();
      const r = await s.call<{ items: SecretMeta[] }>("GET", `/v1/namespaces/${enc(needNamespace(o.namespace))}/secrets`);
      const format = globals().output;
      if (format === "json") return print("json", r.items);
      if (r.items.length === 0) {
        process.stdout.write("no secrets\n");
        return;
      }
      const rows = r.items.map((m) => ({
        name: m.name,
        latest: m.latest,
        size: m.versions.find((v) => v.version === m.latest)?.size,
        createdBy: m.createdBy,
        createdAt: m.createdAt,
        usedBy: m.usedBy.length === 0 ? "-" : [...new Set(m.usedBy.map((u) => u.deployment))].join(","),
      }));
      print(format, rows, ["name", "latest", "size", "createdBy", "createdAt", "usedBy"]);
    });
  secret
    .command("get <name>")
    .description("one secret's metadata: its versions (size, creator, time) and the deployments using it (never a value)")
    .option("-n, --namespace <ns>", "namespace")
    .action(async (name: string, o: { namespace?: string }) => {
      const ns = needNamespace(o.namespace);
      const s = await open();
      printMeta(globals().output, await s.call<SecretMeta>("GET", `/v1/namespaces/${enc(ns)}/secrets/${enc(needName(name))}`));
    });
  secret
    .command("delete <name>")
    .description("delete a secret and every version; refused while a running deployment uses it, unless --force, which stops those deployments first")
    .option("-n, --namespace <ns>", "namespace")
    .option("--force", "stop the running deployments that use it (replicas 0, audited), then delete")
    .action(async (name: string, o: { namespace?: string; force?: boolean }) => {
      const ns = needNamespace(o.namespace);
      const s = await open();
      const r = await s.call<{ namespace: string; name: string; deleted: boolean; stopped: string[] }>(
        "DELETE",
        `/v1/namespaces/${enc(ns)}/secrets/${enc(needName(name))}${o.force ? "?force=true" : ""}`,
      );
      if (globals().output === "json") return print("json", r);
      process.stdout.write(`secret ${r.namespace}/${r.name} deleted\n`);
      if (r.stopped.length > 0) process.stdout.write(`stopped (replicas 0): ${r.stopped.join(", ")}\n`);
    });
  secret
    .command("read <name>")
    .description("read a secret's value (needs secrets:read): written raw to standard output, nothing else")
    .option("-n, --namespace <ns>", "namespace")
    .option("--version <n>", "this version instead of the latest")
    .action(async (name: string, o: { namespace?: string; version?: string }) => {
      const ns = needNamespace(o.namespace);
      let version: number | undefined;
      if (o.version !== undefined) {
        if (!/^[1-9][0-9]{0,9}$/.test(o.version) || Number(o.version) > 2_147_483_647) throw pcError("PC_CLI_USAGE", "--version must be a whole number from 1");
        version = Number(o.version);
      }
      const s = await open();
      const r = await s.call<{ name: string; version: number; value: string }>("POST", `/v1/namespaces/${enc(ns)}/secrets/${enc(needName(name))}/read`, version !== undefined ? { version } : {});
      const value = Buffer.from(r.value, "base64");
      process.stdout.write(value);
    });

  const secrets = program.command("secrets").description("the keyring that protects every secret (cluster-wide)");
  secrets
    .command("kek-status")
    .description("the key-encryption keys: which is active, how many data keys each wraps, whether a rotation is still rewrapping")
    .action(async () => {
      const s = await open();
      printKeks(globals().output, await s.call<KekStatus>("GET", "/v1/keyring"));
    });
  secrets
    .command("rotate-kek")
    .description("make a new key-encryption key active; data keys are rewrapped under it in the background")
    .action(async () => {
      const s = await open();
      printKeks(globals().output, await s.call<KekStatus>("POST", "/v1/keyring/rotate", {}));
    });
  secrets
    .command("retire-kek <kek>")
    .description("remove a key-encryption key once it wraps no data key (see kek-status)")
    .action(async (kek: string) => {
      const s = await open();
      printKeks(globals().output, await s.call<KekStatus>("POST", "/v1/keyring/retire", { kek }));
    });
}
