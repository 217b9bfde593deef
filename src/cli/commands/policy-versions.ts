import type { Command } from "commander";
import { pcError } from "../../core/index.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";

/** A version of a versioned policy document, as the gateway lists it. */
interface HistoryEntry {
  version: number;
  author: string;
  createdAt: string;
  message: string;
  sha256: string;
  rollbackOf: number | null;
}

/** A version number on the command line: 1 to 999,999,999. */
export function versionArgument(text: string, what = "VERSION"): number {
  const v = Number(text);
  if (!/^[1-9][0-9]{0,8}$/.test(text) || !Number.isSafeInteger(v)) throw pcError("PC_CLI_USAGE", `${what} is a positive whole number`);
  return v;
}

/**
 * `history` and `rollback VERSION [-m MSG]` of a versioned policy document (the admission
 * policies, the monitoring rules) under `group`, against `<path>/history` and
 * `<path>/rollback`.
 */
export function registerPolicyVersionCommands<C>(
  group: Command,
  opts: {
    readonly path: string;
    /** What rollback returns to ("files", "rules"). */
    readonly contents: string;
    readonly output: () => OutputFormat;
    readonly open: () => Promise<Session>;
    readonly printChange: (format: OutputFormat, change: C) => void;
  },
): void {
  group
    .command("history")
    .description("every version with author, time, message and checksum")
    .action(async () => {
      const s = await opts.open();
      const r = await s.call<{ items: HistoryEntry[] }>("GET", `${opts.path}/history`);
      if (opts.output() === "json") return print("json", r.items);
      for (const v of r.items) {
        process.stdout.write(`version ${v.version}  ${v.createdAt}  ${v.author}${v.rollbackOf ? `  (rollback to ${v.rollbackOf})` : ""}  sha256:${v.sha256.slice(0, 12)}\n    ${v.message || "-"}\n`);
      }
    });
  group
    .command("rollback <version>")
    .description(`return to the ${opts.contents} of an earlier version (recorded as a new version)`)
    .option("-m, --message <text>", "why")
    .action(async (version: string, o: { message?: string }) => {
      const v = versionArgument(version);
      const s = await opts.open();
      opts.printChange(opts.output(), await s.call<C>("POST", `${opts.path}/rollback`, { version: v, ...(o.message ? { message: o.message } : {}) }));
    });
}
