/**
 * The inventory against the package managers' own clients, on this machine's real
 * databases put into an image archive: dpkg's status (`dpkg-query`), npm's bundled
 * node_modules tree (`npm query`), and the Python distributions of the system's
 * dist-packages (`importlib.metadata`). Each agrees exactly on names, versions and (where
 * the client says) the source package or the file.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { readImageFiles } from "../../../src/admission/scanner/image-layers.js";
import { inventoryOf, inventoryWanted, type Inventory } from "../../../src/admission/scanner/inventory.js";
import { chunked, file, saveArchiveOf } from "./fixtures/images/build.js";

const run = async (cmd: string, args: string[], cwd?: string) =>
  (await promisify(execFile)(cmd, args, { maxBuffer: 64 * 1024 * 1024, ...(cwd !== undefined ? { cwd } : {}) })).stdout;

/** An image of the given host files at their own paths, inventoried through the layer reader. */
async function inventoryOfHostFiles(paths: readonly string[]): Promise<Inventory> {
  const entries = paths.map((p) => file(p.slice(1), readFileSync(p)));
  const { archive } = await saveArchiveOf([{ entries }]);
  return inventoryOf(await readImageFiles(chunked(archive, 65536), { wanted: inventoryWanted }));
}

const findFiles = async (root: string, name: string) =>
  (await run("find", [root, "-name", name, "-type", "f"])).split("\n").filter((l) => l !== "");

const STATUS = "/var/lib/dpkg/status";
const PRESENT = new Set(["installed", "unpacked", "half-installed", "half-configured", "triggers-awaited", "triggers-pending"]);
const NPM_ROOT = "/usr/lib/node_modules/npm";
const DIST_PACKAGES = "/usr/lib/python3/dist-packages";
const havePython = await run("python3", ["-c", "import importlib.metadata"]).then(() => true, () => false);

describe("inventory, differential against the package managers", () => {
  it.skipIf(!existsSync(STATUS) || !existsSync("/usr/bin/dpkg-query"))("dpkg: agrees with dpkg-query on this machine's status", async () => {
    const out = await run("dpkg-query", [
      "--admindir=/var/lib/dpkg", "-W", "-f", "${db:Status-Status}|${Package}|${Version}|${source:Package}|${source:Version}\\n",
    ]);
    const expected = [...new Set(out.split("\n").filter((l) => l !== "").flatMap((line) => {
      const [state, name, version, sourceName, sourceVersion] = line.split("|");
      return PRESENT.has(state as string) ? [`${name} ${version} ${sourceName} ${sourceVersion}`] : [];
    }))].sort();
    expect(expected.length).toBeGreaterThan(50);
    const inventory = await inventoryOfHostFiles([STATUS]);
    expect(inventory.unread).toEqual([]);
    expect(inventory.packages.map((p) => `${p.name} ${p.version} ${p.sourcePackage?.name} ${p.sourcePackage?.version}`).sort()).toEqual(expected);
  });

  it.skipIf(!existsSync(NPM_ROOT))("npm: agrees with npm query on npm's own node_modules", async () => {
    const listed = JSON.parse(await run("npm", ["query", "*", "--offline"], NPM_ROOT)) as { name: string; version: string; path: string }[];
    const expected = listed.map((p) => `${p.name}@${p.version} ${p.path}/package.json`).sort();
    expect(expected.length).toBeGreaterThan(50);
    const inventory = await inventoryOfHostFiles(await findFiles(NPM_ROOT, "package.json"));
    expect(inventory.packages.map((p) => `${p.name}@${p.version} ${p.sourceFile}`).sort()).toEqual(expected);
  });

  it.skipIf(!existsSync(DIST_PACKAGES) || !havePython)("python: agrees with importlib.metadata on the system's dist-info", async () => {
    const script = [
      "import importlib.metadata as m, json, re",
      `ds = [d for d in m.distributions(path=[${JSON.stringify(DIST_PACKAGES)}]) if str(d._path).endswith('.dist-info')]`,
      "print(json.dumps([re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() + '@' + d.version + ' ' + str(d._path) + '/METADATA' for d in ds]))",
    ].join("\n");
    const expected = (JSON.parse(await run("python3", ["-c", script])) as string[]).sort();
    expect(expected.length).toBeGreaterThan(0);
    const inventory = await inventoryOfHostFiles(await findFiles(DIST_PACKAGES, "METADATA"));
    expect(inventory.packages.map((p) => `${p.name}@${p.version} ${p.sourceFile}`).sort()).toEqual(expected);
  });
});
