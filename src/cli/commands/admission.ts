import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { Command } from "commander";
import { isPortcullisError, pcError, type PortcullisError } from "../../core/index.js";
import { formatAdmissionTestReport, runAdmissionTestFile, type AdmissionTestReport } from "../../admission/index.js";
import { writeFileAtomic } from "../../store/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";
import { registerPolicyVersionCommands } from "./policy-versions.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const collect = (v: string, prev: string[]) => [...prev, v];
/** The names the gateway accepts: plain YAML file names, never paths. */
const FILE_NAME = /^[a-z0-9][a-z0-9._-]{0,99}\.ya?ml$/;

interface PolicyFile {
  name: string;
  text: string;
}

interface Change {
  version: number;
  changed: string[];
}

/**
 * The files named by `-f`: each file as itself, each directory as its `*.yaml` and
 * `*.yml` files. A file is named by its base name; two with the same name are refused.
 */
export function readPolicyFiles(paths: readonly string[]): PolicyFile[] {
  const out: PolicyFile[] = [];
  const from = new Map<string, string>();
  const add = (path: string) => {
    const name = basename(path);
    if (!FILE_NAME.test(name)) throw pcError("PC_CLI_USAGE", `${path}: a policy file name is lower-case letters, digits, '.', '_' and '-', ending in .yaml or .yml`);
    const prev = from.get(name);
    if (prev !== undefined) throw pcError("PC_CLI_USAGE", `${path} and ${prev} have the same name ${name}`);
    from.set(name, path);
    out.push({ name, text: readFileSync(path, "utf8") });
  };
  for (const p of paths) {
    if (statSync(p).isDirectory()) {
      const names = readdirSync(p).filter((n) => /\.ya?ml$/.test(n)).sort();
      if (names.length === 0) throw pcError("PC_CLI_USAGE", `${p} holds no .yaml files`);
      for (const n of names) add(join(p, n));
    } else add(p);
  }
  if (out.length === 0) throw pcError("PC_CLI_USAGE", "give at least one -f FILE");
  return out;
}

function printChange(format: OutputFormat, c: Change): void {
  if (format === "json") return print(format, c);
  process.stdout.write(`admission policy version ${c.version}\n`);
  for (const n of c.changed) process.stdout.write(`  changed ${n}\n`);
}

/**
 * `admission policy get | apply | history | rollback`: the admission policies on the
 * gateway. (`admission test` runs offline and is registered beside them.)
 */
export function registerAdmissionPolicyCommands(admission: Command, globals: Globals, open: Open): void {
  const policy = admission.command("policy").description("the admission policies: get, apply, history, rollback");
  policy
    .command("get")
    .description("print the admission policy files in force (or of --at N); --out-dir writes them")
    .option("--at <version>", "an earlier version instead of the one in force")
    .option("--out-dir <dir>", "write each file into this directory instead of printing it")
    .action(async (o: { at?: string; outDir?: string }) => {
      let q = "";
      if (o.at !== undefined) {
        const v = Number(o.at);
        if (!Number.isInteger(v) || v < 1) throw pcError("PC_CLI_USAGE", "--at is a positive whole number");
        q = `?version=${v}`;
      }
      const s = await open();
      const r = await s.call<{ version: number; files: PolicyFile[] }>("GET", `/v1/admission/policy${q}`);
      if (o.outDir !== undefined) {
        // Names come from the server: only plain file names are written, never a path.
        for (const f of r.files) if (!FILE_NAME.test(f.name)) throw pcError("PC_CLI_BAD_RESPONSE", `file name ${JSON.stringify(f.name)}`);
        mkdirSync(o.outDir, { recursive: true });
        for (const f of r.files) writeFileAtomic(join(o.outDir, f.name), f.text, 0o644);
        if (globals().output === "json") print("json", { version: r.version, dir: o.outDir, files: r.files.map((f) => f.name) });
        else process.stdout.write(`admission policy version ${r.version}: wrote ${r.files.map((f) => join(o.outDir as string, f.name)).join(", ")}\n`);
        return;
      }
      if (globals().output === "json") return print("json", r);
      process.stdout.write(`# admission policy version ${r.version}\n`);
      for (const f of r.files) process.stdout.write(`# --- ${f.name}\n${f.text}${f.text.endsWith("\n") || f.text === "" ? "" : "\n"}`);
    });
  policy
    .command("apply")
    .description("apply a whole set of policy files: parsed as a whole, applied atomically, versioned")
    .requiredOption("-f, --file <file>", "policy file, or a directory of them (repeatable); the set in force becomes exactly these", collect, [])
    .requiredOption("--message <text>", "why")
    .action(async (o: { file: string[]; message: string }) => {
      if (o.message.trim() === "") throw pcError("PC_CLI_USAGE", "--message is required");
      const files = readPolicyFiles(o.file);
      const s = await open();
      printChange(globals().output, await s.call<Change>("PUT", "/v1/admission/policy", { files, message: o.message }));
    });
  registerPolicyVersionCommands(policy, { path: "/v1/admission/policy", contents: "files", output: () => globals().output, open, printChange });
}

/**
 * `admission policy ...` against the gateway, and `admission test`, which runs offline:
 * no server, no profile. `answer(false)` makes a test run with a failing case exit 1;
 * `badFile(e)` reports a test or policy file that cannot be used and makes it exit 2.
 */
export function registerAdmissionCommands(
  program: Command,
  globals: Globals,
  open: Open,
  answer: (yes: boolean) => void,
  badFile: (e: PortcullisError) => void,
): void {
  const admission = program.command("admission").description("admission policies: get, apply, history, rollback, and offline tests");
  registerAdmissionPolicyCommands(admission, globals, open);
  admission
    .command("test <files...>")
    .description("run admission test files (YAML) offline, against the policies each names, the shipped ones, or --policy")
    .option("--policy <file>", "candidate policy file or directory (repeatable), tested instead of the ones each file names", collect, [])
    .action(async (files: string[], o: { policy: string[] }) => {
      const reports: { file: string; report: AdmissionTestReport }[] = [];
      try {
        const policies = o.policy.length > 0 ? readPolicyFiles(o.policy) : undefined;
        for (const file of files) reports.push({ file, report: await runAdmissionTestFile(file, policies ? { policies } : {}) });
      } catch (e) {
        if (isPortcullisError(e) && (e.code === "PC_ADMISSION_TEST_INVALID" || e.code === "PC_ADMISSION_POLICY_INVALID")) {
          badFile(e);
          return;
        }
        throw e;
      }
      if (globals().output === "json") print("json", reports);
      else for (const r of reports) process.stdout.write(`# ${r.file}\n${formatAdmissionTestReport(r.report)}`);
      if (reports.some((r) => r.report.failed > 0)) answer(false);
    });
}
