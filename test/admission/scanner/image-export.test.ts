/**
 * Images made by the real engine, exported with DockerEngine.exportImage and read back:
 * a root filesystem brought in with `docker import` (a tar written with tar-stream), and a
 * multi-layer image with whiteouts and opaque directories brought in with `docker load`
 * (a crafted `docker save` archive, one layer gzip-compressed). Everything is labelled
 * with the run and removed afterwards.
 */
import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { afterAll, beforeAll, expect } from "vitest";
import { readImageFiles } from "../../../src/admission/scanner/image-layers.js";
import { inventoryImage, inventoryOf, inventoryWanted } from "../../../src/admission/scanner/inventory.js";
import { sbomOf } from "../../../src/admission/scanner/sbom.js";
import { isPortcullisError } from "../../../src/core/index.js";
import { describeDocker, dockerCli, itDocker, newTestRun, testEngine } from "../../support/docker.js";
import { dir, file, saveArchiveOf, tarOf, type FixtureEntry } from "./fixtures/images/build.js";
import { EXPECTED_OS, EXPECTED_PACKAGES, ROOTFS_ENTRIES } from "./fixtures/images/rootfs.js";

const engine = testEngine();
const run = newTestRun();
const tags: string[] = [];

async function importRootfs(entries: readonly FixtureEntry[], variant: string): Promise<string> {
  const tag = `portcullis-test/scan-${variant}:${run.id}`;
  tags.push(tag);
  return engine.importImage(Readable.from([await tarOf(entries)]), tag, run.labels);
}

/** `docker load` of an archive on stdin; returns the loaded image's id. */
async function dockerLoad(archive: Buffer, tag: string): Promise<string> {
  tags.push(tag);
  const child = spawn("docker", ["load"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on("close", resolve));
  child.stdin.end(archive);
  const code = await exit;
  if (code !== 0) throw new Error(`docker load exited with ${code}: ${out}`);
  const info = await engine.inspectImage(tag);
  if (info === undefined) throw new Error(`docker load did not create ${tag}: ${out}`);
  return info.id;
}

afterAll(async () => {
  for (const tag of tags) await engine.removeImage(tag);
  const left = (await dockerCli(["images", "-q", "--filter", `label=${run.selector}`])).split("\n").filter((s) => s !== "");
  for (const id of new Set(left)) await engine.removeImage(id);
});

const pkgJson = (name: string, version: string) => JSON.stringify({ name, version });

describeDocker("exportImage and readImageFiles on the engine's images", () => {
  let rootfsId = "";
  beforeAll(async () => {
    rootfsId = await importRootfs(ROOTFS_ENTRIES, "rootfs");
  });

  itDocker("inventories an imported root filesystem exactly", async () => {
    const { view, inventory } = await inventoryImage(await engine.exportImage(rootfsId));
    expect(view.os).toBe("linux");
    expect(view.layers).toHaveLength(1);
    expect(view.layers[0]?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(inventory.os).toEqual(EXPECTED_OS);
    expect(inventory.packages).toEqual(EXPECTED_PACKAGES);
    expect(inventory.unread).toEqual([]);
    expect(view.read("/etc/shadow")).toBeUndefined();
    const bom = sbomOf(rootfsId, inventory, { imageName: tags[0] as string });
    expect(bom.metadata.component["bom-ref"]).toBe(rootfsId);
    expect(bom.components.map((c) => c.purl)).toContain("pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12");
    expect(bom.components.map((c) => c.purl)).toContain("pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?distro=debian-12");
    expect(bom.components.map((c) => c.purl)).toContain("pkg:npm/lodash@4.17.20");
  });

  itDocker("exports by repo:tag too, and refuses a reference that is neither", async () => {
    const v = await readImageFiles(await engine.exportImage(tags[0] as string), { wanted: inventoryWanted });
    expect(inventoryOf(v).packages).toEqual(EXPECTED_PACKAGES);
    await expect(engine.exportImage("../containers/json")).rejects.toMatchObject({ code: "PC_RUNTIME_SPEC_INVALID" });
    const missing = await engine.exportImage(`sha256:${"0".repeat(64)}`).then(() => undefined, (e: unknown) => e);
    expect(isPortcullisError(missing)).toBe(true);
  });

  itDocker("reads a multi-layer image after docker load: whiteouts and opaque directories applied", async () => {
    const tag = `portcullis-test/scan-layers:${run.id}`;
    const base = [
      dir("etc/"),
      file("etc/os-release", "ID=debian\nVERSION_ID=11\n"),
      file("var/lib/dpkg/status", "Package: openssl\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u1\n\nPackage: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n"),
      file("usr/src/app/node_modules/lodash/package.json", pkgJson("lodash", "4.17.20")),
      file("usr/src/app/node_modules/minimist/package.json", pkgJson("minimist", "1.2.5")),
      file("usr/src/app/node_modules/minimist/index.js", "module.exports = 1;\n"),
      file("opt/old/node_modules/left-pad/package.json", pkgJson("left-pad", "1.3.0")),
      file("usr/lib/python3/dist-packages/oldpkg-1.0.dist-info/METADATA", "Name: oldpkg\nVersion: 1.0\n"),
      file("usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA", "Name: requests\nVersion: 2.30.0\n"),
    ];
    const middle = [
      dir("usr/src/app/node_modules/"),
      file("usr/src/app/node_modules/.wh.minimist", ""),
      file("usr/src/app/node_modules/lodash/package.json", pkgJson("lodash", "4.17.21")),
      dir("opt/old/"),
      file("opt/old/.wh..wh..opq", ""),
      file("opt/old/node_modules/right-pad/package.json", pkgJson("right-pad", "1.0.0")),
      file("usr/lib/python3/dist-packages/.wh.oldpkg-1.0.dist-info", ""),
    ];
    const top = [
      file("var/lib/dpkg/status", "Package: openssl\nStatus: install ok installed\nVersion: 3.0.13-1~deb12u1\n\nPackage: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n"),
      file("usr/lib/python3/dist-packages/.wh.requests-2.30.0.dist-info", ""),
      file("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", "Name: requests\nVersion: 2.31.0\n"),
      file("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
    ];
    const { archive, diffIds } = await saveArchiveOf(
      [{ entries: base }, { entries: middle }, { entries: top, gzip: true }],
      { repoTag: tag, labels: run.labels },
    );
    const id = await dockerLoad(archive, tag);
    const { view, inventory } = await inventoryImage(await engine.exportImage(id));
    expect(view.layers.map((l) => l.id)).toEqual(diffIds);
    expect(inventory.os).toEqual({ id: "debian", versionId: "12", name: "Linux" });
    expect(inventory.packages.map((p) => `${p.ecosystem}:${p.name}@${p.version} ${p.sourceFile} [${view.file(p.sourceFile)?.layer.index}]`)).toEqual([
      "Debian:openssl@3.0.13-1~deb12u1 /var/lib/dpkg/status [2]",
      "Debian:zlib1g@1:1.2.13.dfsg-1 /var/lib/dpkg/status [2]",
      "npm:lodash@4.17.21 /usr/src/app/node_modules/lodash/package.json [1]",
      "npm:right-pad@1.0.0 /opt/old/node_modules/right-pad/package.json [1]",
      "PyPI:requests@2.31.0 /usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA [2]",
    ]);
    expect(view.read("/usr/src/app/node_modules/minimist/package.json")).toBeUndefined();
    expect(view.read("/opt/old/node_modules/left-pad/package.json")).toBeUndefined();
    expect(view.list("/usr/lib/python3/")).toEqual(["/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"]);
  });

  itDocker("inventories 500 dpkg packages and 300 npm packages quickly (measured)", async () => {
    const paragraphs: string[] = [];
    for (let i = 0; i < 500; i++) {
      paragraphs.push(
        `Package: pkg${i}\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: ${100 + i}\n` +
        `Maintainer: Someone <someone@example.org>\nArchitecture: amd64\nSource: src${i % 97}\nVersion: 1.${i}-1+deb12u1\n` +
        `Depends: libc6 (>= 2.34)\nDescription: package ${i}\n a longer description line for package ${i}\n .\n another line\n`,
      );
    }
    const entries: FixtureEntry[] = [
      file("etc/os-release", 'ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n'),
      file("var/lib/dpkg/status", paragraphs.join("\n")),
    ];
    for (let i = 0; i < 300; i++) {
      const root = `usr/src/app/node_modules/${i % 3 === 0 ? `@scope${i % 7}/` : ""}mod${i}`;
      entries.push(file(`${root}/package.json`, JSON.stringify({ name: `${i % 3 === 0 ? `@scope${i % 7}/` : ""}mod${i}`, version: `${i % 10}.${i}.0`, description: "x".repeat(200), main: "index.js" })));
      entries.push(file(`${root}/index.js`, `module.exports = ${i};\n`.repeat(20)));
      entries.push(file(`${root}/README.md`, "readme\n".repeat(50)));
    }
    const id = await importRootfs(entries, "speed");
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
    const fromEngine: number[] = [];
    const fromMemory: number[] = [];
    let archive = Buffer.alloc(0);
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      const view = await readImageFiles(await engine.exportImage(id), { wanted: inventoryWanted });
      expect(inventoryOf(view).packages).toHaveLength(800);
      fromEngine.push(ms(t0));
    }
    const parts: Buffer[] = [];
    for await (const chunk of await engine.exportImage(id)) parts.push(chunk as Buffer);
    archive = Buffer.concat(parts);
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      const view = await readImageFiles(Readable.from([archive]), { wanted: inventoryWanted });
      expect(inventoryOf(view).packages).toHaveLength(800);
      fromMemory.push(ms(t0));
    }
    const show = (xs: number[]) => `median ${median(xs).toFixed(1)} ms (runs ${xs.map((t) => t.toFixed(1)).join(", ")})`;
    console.log(
      `inventory of 500 dpkg + 300 npm packages (${entries.length} files, archive ${(archive.length / 1024).toFixed(0)} KiB): ` +
      `exported from the engine ${show(fromEngine)}; from memory ${show(fromMemory)}`,
    );
  });
});
