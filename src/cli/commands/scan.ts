import { resolve } from "node:path";
import type { Command } from "commander";
import { resolveDataDir } from "../../core/index.js";
import { importVulnDbIntoDataDir } from "../offline.js";
import { print, type OutputFormat } from "../output.js";
import type { Session } from "../session.js";

type Globals = () => { output: OutputFormat };
type Open = () => Promise<Session>;

const enc = encodeURIComponent;

/** `vulndb import|status`, `image sbom`. */
export function registerScanCommands(program: Command, globals: Globals, session: Open): void {
  const vulndb = program.command("vulndb").description("the offline vulnerability database the image scanner matches against");
  vulndb
    .command("import <input...>")
    .description("import OSV records (FILE.zip or a directory of OSV JSON files, several at once) into a data directory, in place; a running gateway rescans what runs")
    .option("--data-dir <dir>", "data directory (env PORTCULLIS_DATA_DIR; default .portcullis)")
    .action(async (inputs: string[], o: { dataDir?: string }) => {
      const r = await importVulnDbIntoDataDir(resolveDataDir(o.dataDir), inputs.map((i) => resolve(i)));
      const fmt = globals().output;
      if (fmt === "json") print("json", r);
      else process.stdout.write(`imported ${r.records} record(s) as version ${r.version} (newest ${r.newestModified}) from ${r.source}\n`);
    });
  vulndb
    .command("status")
    .description("the database in force (version, sources, records, newest record) and the imports before it")
    .action(async () => {
      const s = await session();
      const r = await s.call<{ scanner: string; active?: Record<string, unknown>; imports: Record<string, unknown>[] }>("GET", "/v1/vulndb");
      const fmt = globals().output;
      if (fmt === "json") return print("json", r);
      if (r.active === undefined) process.stdout.write(`scanner ${r.scanner}; no vulnerability database is loaded (portcullis vulndb import)\n`);
      else {
        const a = r.active;
        process.stdout.write(`scanner ${r.scanner}; version ${String(a.version)}: ${String(a.records)} record(s), newest ${String(a.newestModified)}, imported ${String(a.importedAt)} by ${String(a.importedBy)} from ${String(a.source)}\n`);
      }
      print(fmt, r.imports, ["version", "state", "records", "newestModified", "importedAt", "importedBy"]);
    });

  const image = program.command("image").description("images the nodes hold");
  image
    .command("sbom <image>")
    .description("the CycloneDX 1.5 SBOM of an image a node holds (JSON on stdout)")
    .option("--node <name>", "the node that holds it", "local")
    .action(async (ref: string, o: { node: string }) => {
      const s = await session();
      const bom = await s.call<unknown>("GET", `/v1/nodes/${enc(o.node)}/image-sbom?image=${enc(ref)}`);
      process.stdout.write(`${JSON.stringify(bom, null, 2)}\n`);
    });
}
