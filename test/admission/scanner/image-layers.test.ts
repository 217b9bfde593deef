/**
 * readImageFiles on crafted `docker save` archives, read directly (no engine): entry
 * order, layer stacking (whiteouts, opaque directories, replacements), links, and the
 * archives it refuses.
 */
import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { readImageFiles, type ImageFileView, type ImageReadOptions } from "../../../src/admission/scanner/image-layers.js";
import { inventoryOf, inventoryWanted } from "../../../src/admission/scanner/inventory.js";
import type { ErrorCode } from "../../../src/core/index.js";
import {
  chunked,
  dir,
  file,
  hardlink,
  saveArchiveOf,
  symlink,
  tarOf,
  type FixtureEntry,
  type LayerSpec,
  type SaveOptions,
} from "./fixtures/images/build.js";
import { EXPECTED_OS, EXPECTED_PACKAGES, ROOTFS_ENTRIES } from "./fixtures/images/rootfs.js";

const pkgJson = (name: string, version: string) => JSON.stringify({ name, version });

async function view(layers: readonly LayerSpec[], save: SaveOptions = {}, options: Partial<ImageReadOptions> = {}): Promise<ImageFileView> {
  const { archive } = await saveArchiveOf(layers, save);
  return readImageFiles(chunked(archive), { wanted: inventoryWanted, ...options });
}

async function refusal(p: Promise<unknown>): Promise<{ code: ErrorCode; detail: string }> {
  try {
    await p;
  } catch (e) {
    const { code, detail } = e as { code: ErrorCode; detail?: string };
    return { code, detail: detail ?? "" };
  }
  throw new Error("expected a refusal");
}

const layersOf = (...entries: FixtureEntry[][]): LayerSpec[] => entries.map((e) => ({ entries: e }));

describe("readImageFiles: one layer", () => {
  for (const manifestFirst of [false, true]) {
    it(`reads the wanted files and inventories them (manifest.json ${manifestFirst ? "first" : "last"})`, async () => {
      const { archive, diffIds } = await saveArchiveOf([{ entries: ROOTFS_ENTRIES }], { manifestFirst });
      const v = await readImageFiles(chunked(archive), { wanted: inventoryWanted });
      expect(v.os).toBe("linux");
      expect(v.architecture).toBe("amd64");
      expect(v.layers).toEqual([{ index: 0, id: diffIds[0] }]);
      // Only wanted files are kept: /etc/shadow is in the image, not in the view.
      expect(v.read("/etc/shadow")).toBeUndefined();
      expect(v.list("/etc/")).toEqual(["/etc/os-release"]);
      // /etc/os-release is a relative link to /usr/lib/os-release.
      expect(v.read("/etc/os-release")?.toString()).toContain('VERSION_ID="12"');
      expect(v.file("/etc/os-release")).toEqual({ path: "/etc/os-release", size: v.read("/usr/lib/os-release")?.length, layer: { index: 0, id: diffIds[0] } });
      expect(v.list("/var/lib/dpkg/status.d/")).toEqual([
        "/var/lib/dpkg/status.d/base-files",
        "/var/lib/dpkg/status.d/base-files.md5sums",
        "/var/lib/dpkg/status.d/tzdata",
      ]);
      expect(v.list("/**/node_modules/**/package.json")).toEqual([
        "/usr/src/app/node_modules/@types/node/package.json",
        "/usr/src/app/node_modules/lodash/package.json",
        "/usr/src/app/node_modules/no-version/package.json",
        "/usr/src/app/node_modules/resolve/test/resolver/nested/node_modules/fixture-pkg/package.json",
      ]);
      const inv = inventoryOf(v);
      expect(inv.os).toEqual(EXPECTED_OS);
      expect(inv.packages).toEqual(EXPECTED_PACKAGES);
    });
  }

  it("reads an archive that is gzip-compressed as a whole, and gzip layers", async () => {
    const { archive } = await saveArchiveOf([{ entries: ROOTFS_ENTRIES, gzip: true }]);
    const v = await readImageFiles(chunked(gzipSync(archive)), { wanted: inventoryWanted });
    expect(inventoryOf(v).packages).toEqual(EXPECTED_PACKAGES);
  });

  it("reads a Node.js stream as well as an async iterable", async () => {
    const { Readable } = await import("node:stream");
    const { archive } = await saveArchiveOf([{ entries: ROOTFS_ENTRIES }]);
    const v = await readImageFiles(Readable.from([archive]), { wanted: inventoryWanted });
    expect(inventoryOf(v).packages).toEqual(EXPECTED_PACKAGES);
  });

  it("reads empty layers", async () => {
    const v = await view([{ entries: [] }, { entries: [file("etc/os-release", "ID=debian\n")] }, { entries: [], gzip: true }]);
    expect(v.layers).toHaveLength(3);
    expect(v.file("/etc/os-release")?.layer.index).toBe(1);
  });

  it("lists by directory prefix, by path, and by glob", async () => {
    const v = await view(layersOf([
      file("app/node_modules/a/package.json", pkgJson("a", "1.0.0")),
      file("app/node_modules/ab/package.json", pkgJson("ab", "1.0.0")),
      file("app/node_modules/a/node_modules/b/package.json", pkgJson("b", "1.0.0")),
      file("app2/package-lock.json", "{}"),
    ]));
    expect(v.list("/app/node_modules/a")).toEqual(["/app/node_modules/a/node_modules/b/package.json", "/app/node_modules/a/package.json"]);
    expect(v.list("app/node_modules/a/")).toEqual(["/app/node_modules/a/node_modules/b/package.json", "/app/node_modules/a/package.json"]);
    expect(v.list("/app/node_modules/?/package.json")).toEqual(["/app/node_modules/a/package.json"]);
    expect(v.list("/app/node_modules/*/package.json")).toEqual(["/app/node_modules/a/package.json", "/app/node_modules/ab/package.json"]);
    expect(v.list("**/package-lock.json")).toEqual(["/app2/package-lock.json"]);
    expect(v.list("/app/**")).toHaveLength(3);
  });

  it("gives an empty inventory for an image without package databases", async () => {
    const v = await view(layersOf([dir("bin/"), file("bin/app", "#!/bin/sh\n")]));
    expect(inventoryOf(v)).toEqual({ packages: [], unread: [] });
  });
});

describe("readImageFiles: stacking layers", () => {
  const base = [
    file("etc/os-release", "ID=debian\nVERSION_ID=11\n"),
    file("usr/src/app/node_modules/lodash/package.json", pkgJson("lodash", "4.17.20")),
    file("usr/src/app/node_modules/minimist/package.json", pkgJson("minimist", "1.2.5")),
    file("usr/src/app/node_modules/minimist/index.js", "x"),
    file("opt/old/node_modules/left-pad/package.json", pkgJson("left-pad", "1.3.0")),
    file("usr/lib/python3/dist-packages/oldpkg-1.0.dist-info/METADATA", "Name: oldpkg\nVersion: 1.0\n"),
    file("usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA", "Name: requests\nVersion: 2.30.0\n"),
  ];
  const middle = [
    file("usr/src/app/node_modules/.wh.minimist", ""),
    file("usr/src/app/node_modules/lodash/package.json", pkgJson("lodash", "4.17.21")),
    dir("opt/old/"),
    file("opt/old/.wh..wh..opq", ""),
    file("opt/old/node_modules/right-pad/package.json", pkgJson("right-pad", "1.0.0")),
    file("usr/lib/python3/dist-packages/.wh.oldpkg-1.0.dist-info", ""),
  ];
  const top = [
    file("usr/lib/python3/dist-packages/.wh.requests-2.30.0.dist-info", ""),
    file("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA", "Name: requests\nVersion: 2.31.0\n"),
    file("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
  ];

  for (const manifestFirst of [false, true]) {
    it(`applies whiteouts, opaque directories and replacements in the manifest's order (manifest ${manifestFirst ? "first" : "last"})`, async () => {
      const v = await view([{ entries: base }, { entries: middle }, { entries: top, gzip: true }], { manifestFirst });
      expect(inventoryOf(v).packages.map((p) => `${p.name}@${p.version} ${p.sourceFile}`)).toEqual([
        "lodash@4.17.21 /usr/src/app/node_modules/lodash/package.json",
        "right-pad@1.0.0 /opt/old/node_modules/right-pad/package.json",
        "requests@2.31.0 /usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
      ]);
      expect(v.file("/usr/src/app/node_modules/lodash/package.json")?.layer.index).toBe(1);
      expect(v.file("/opt/old/node_modules/right-pad/package.json")?.layer.index).toBe(1);
      expect(v.file("/etc/os-release")?.layer.index).toBe(2);
      expect(v.read("/usr/src/app/node_modules/minimist/package.json")).toBeUndefined();
      expect(v.read("/opt/old/node_modules/left-pad/package.json")).toBeUndefined();
      expect(v.list("/usr/lib/python3/")).toEqual(["/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"]);
    });
  }

  it("orders layers by the manifest, not by the archive", async () => {
    // The same two layers, listed top first in the manifest: the base's file wins.
    const a = [file("etc/os-release", "ID=alpine\nVERSION_ID=3.18.4\n")];
    const b = [file("etc/os-release", "ID=debian\nVERSION_ID=12\n")];
    const { archive } = await saveArchiveOf([{ entries: a }, { entries: b }]);
    const normal = await readImageFiles(chunked(archive), { wanted: inventoryWanted });
    expect(inventoryOf(normal).os?.id).toBe("debian");
    const saved = await saveArchiveOf([{ entries: a }, { entries: b }]);
    const { archive: reversed } = await saveArchiveOf([{ entries: a }, { entries: b }], {
      manifest: [{ Config: saved.configName, RepoTags: null, Layers: layerPaths(saved.diffIds).reverse() }],
    });
    const v = await readImageFiles(chunked(reversed), { wanted: inventoryWanted });
    expect(inventoryOf(v).os?.id).toBe("alpine");
  });

  it("keeps what a layer adds beside its own whiteout and opaque marker", async () => {
    const v = await view(layersOf(
      [file("var/lib/dpkg/status", "Package: a\nStatus: install ok installed\nVersion: 1\n")],
      [
        file("var/lib/dpkg/status", "Package: b\nStatus: install ok installed\nVersion: 2\n"),
        file("var/lib/.wh.dpkg", ""), // listed after, hides only the lower layer's
      ],
    ));
    expect(v.read("/var/lib/dpkg/status")?.toString()).toContain("Package: b");
    const opq = await view(layersOf(
      [file("opt/x/node_modules/a/package.json", pkgJson("a", "1.0.0"))],
      [file("opt/x/node_modules/b/package.json", pkgJson("b", "1.0.0")), file("opt/x/.wh..wh..opq", "")],
    ));
    expect(opq.list("/opt/")).toEqual(["/opt/x/node_modules/b/package.json"]);
  });

  it("replaces a directory by a file and a file or link by a directory", async () => {
    const v = await view(layersOf(
      [
        file("usr/src/app/node_modules/a/package.json", pkgJson("a", "1.0.0")),
        file("etc/os-release", "ID=debian\n"),
        file("usr/lib/os-release", "ID=ubuntu\nVERSION_ID=22.04\n"),
        symlink("lib", "usr/lib"),
      ],
      [
        file("usr/src/app/node_modules", "now a file"),
        dir("etc/os-release/"),
        dir("lib/"),
        file("lib/apk/db/installed", "P:zlib\nV:1.2.12-r1\no:zlib\n"),
      ],
    ));
    expect(v.list("/usr/src/")).toEqual([]);
    expect(v.read("/etc/os-release")).toBeUndefined();
    const inv = inventoryOf(v);
    expect(inv.os).toEqual({ id: "ubuntu", versionId: "22.04", name: "Linux" });
    expect(inv.packages.map((p) => `${p.ecosystem}:${p.name}@${p.version} ${p.sourceFile}`)).toEqual([
      "Alpine:zlib@1.2.12-r1 /lib/apk/db/installed",
    ]);
  });

  it("follows links in directories inside the image", async () => {
    const v = await view(layersOf([
      file("usr/lib/apk/db/installed", "P:zlib\nV:1.2.12-r1\no:zlib\n"),
      symlink("lib", "usr/lib"),
      symlink("etc/os-release", "/usr/lib/os-release"),
      file("usr/lib/os-release", "ID=alpine\nVERSION_ID=3.16.2\nNAME=\"Alpine Linux\"\n"),
    ]));
    expect(v.read("/lib/apk/db/installed")?.toString()).toContain("P:zlib");
    expect(v.file("/lib/apk/db/installed")?.layer.index).toBe(0);
    const inv = inventoryOf(v);
    expect(inv.os).toEqual({ id: "alpine", versionId: "3.16.2", name: "Alpine Linux" });
    expect(inv.packages).toEqual([
      { ecosystem: "Alpine", name: "zlib", version: "1.2.12-r1", sourceFile: "/lib/apk/db/installed", sourcePackage: { name: "zlib", version: "1.2.12-r1" } },
    ]);
  });

  it("gives a hard link the content of its wanted target", async () => {
    const v = await view(layersOf([
      file("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
      hardlink("usr/lib/os-release", "etc/os-release"),
    ]));
    expect(v.read("/usr/lib/os-release")?.toString()).toBe("ID=debian\nVERSION_ID=12\n");
  });

  it("reads Docker's repeated layers, linked in the archive to their first copy", async () => {
    const same = [file("opt/a/node_modules/x/package.json", pkgJson("x", "1.0.0"))];
    const v = await view(
      [{ entries: same }, { entries: [file("opt/a/node_modules/.wh.x", "")] }, { entries: same }],
      { linkRepeated: true },
    );
    expect(v.list("/opt/")).toEqual(["/opt/a/node_modules/x/package.json"]);
    expect(v.file("/opt/a/node_modules/x/package.json")?.layer.index).toBe(2);
  });

  it("reads layers of an OCI layout (blobs without names), told apart by their content", async () => {
    const layer = await tarOf([file("etc/os-release", "ID=debian\nVERSION_ID=12\n")]);
    const gz = gzipSync(layer);
    const h = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "arm64", rootfs: { type: "layers", diff_ids: [`sha256:${h(layer)}`] } }));
    const archive = await tarOf([
      file("oci-layout", '{"imageLayoutVersion":"1.0.0"}'),
      file(`blobs/sha256/${h(gz)}`, gz),
      file(`blobs/sha256/${h(config)}`, config),
      file("manifest.json", JSON.stringify([{ Config: `blobs/sha256/${h(config)}`, Layers: [`blobs/sha256/${h(gz)}`] }])),
    ]);
    const v = await readImageFiles(chunked(archive), { wanted: inventoryWanted });
    expect(v.architecture).toBe("arm64");
    expect(v.read("/etc/os-release")?.toString()).toContain("debian");
  });
});

function layerPaths(diffIds: readonly string[]): string[] {
  // The paths saveArchiveOf gives its layers.
  return diffIds.map((_, i) => `${createHash("sha256").update(diffIds.slice(0, i + 1).join(" ")).digest("hex")}/layer.tar`);
}

describe("readImageFiles: refusals", () => {
  const cases: { name: string; layers: FixtureEntry[][]; code: ErrorCode; detail: RegExp }[] = [
    { name: "an absolute path", layers: [[file("/etc/passwd", "root::0:0::/:/bin/sh\n")]], code: "PC_SCAN_ARCHIVE_UNSAFE", detail: /absolute path/ },
    { name: "a .. segment", layers: [[file("var/../../etc/cron.d/x", "* * * * * root sh\n")]], code: "PC_SCAN_ARCHIVE_UNSAFE", detail: /"\.\." segment/ },
    { name: "a hard link with a .. target", layers: [[hardlink("var/lib/dpkg/status", "../../etc/shadow")]], code: "PC_SCAN_ARCHIVE_UNSAFE", detail: /"\.\." segment/ },
    { name: "a hard link with an absolute target", layers: [[hardlink("var/lib/dpkg/status", "/etc/shadow")]], code: "PC_SCAN_ARCHIVE_UNSAFE", detail: /absolute path/ },
    {
      name: "a wanted link climbing out of the root",
      layers: [[file("etc/shadow", "secret"), symlink("var/lib/dpkg/status", "../../../../etc/shadow")]],
      code: "PC_SCAN_ARCHIVE_UNSAFE",
      detail: /leads outside the image/,
    },
    {
      name: "a wanted link with an absolute target to a file the scan does not read",
      layers: [[file("etc/shadow", "secret"), symlink("var/lib/dpkg/status", "/etc/shadow")]],
      code: "PC_SCAN_ARCHIVE_UNSAFE",
      detail: /\/var\/lib\/dpkg\/status leads to \/etc\/shadow, which the scan does not read/,
    },
    {
      name: "a wanted hard link to a file the scan does not read",
      layers: [[file("opt/real-status", "Package: hidden\n"), hardlink("var/lib/dpkg/status", "opt/real-status")]],
      code: "PC_SCAN_ARCHIVE_UNSAFE",
      detail: /hard link to a file the scan does not read/,
    },
    {
      name: "a link loop on a wanted path",
      layers: [[symlink("var/lib/dpkg/status", "status2"), symlink("var/lib/dpkg/status2", "status")]],
      code: "PC_SCAN_ARCHIVE_UNSAFE",
      detail: /loop/,
    },
    {
      name: "a device at a wanted path",
      layers: [[{ name: "var/lib/dpkg/status", type: "character-device" }]],
      code: "PC_SCAN_ARCHIVE_UNSAFE",
      detail: /not a regular file/,
    },
    { name: "a whiteout of ..", layers: [[file("var/.wh...", "")]], code: "PC_SCAN_ARCHIVE_UNSAFE", detail: /names no file/ },
    { name: "a path longer than PATH_MAX", layers: [[file(`${"d/".repeat(2100)}x`, "")]], code: "PC_SCAN_ARCHIVE_UNSAFE", detail: /longer than 4096/ },
    { name: "a link target longer than PATH_MAX", layers: [[symlink("opt/x", "t/".repeat(2100))]], code: "PC_SCAN_ARCHIVE_UNSAFE", detail: /impossible target/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, async () => {
      const r = await refusal(view(layersOf(...c.layers)));
      expect(r.code).toBe(c.code);
      expect(r.detail).toMatch(c.detail);
    });
  }

  it("never reads outside the image for an absolute link target, and a dangling link is absent", async () => {
    const v = await view(layersOf([symlink("var/lib/dpkg/status", "/etc/shadow"), symlink("etc/os-release", "/etc/hostname")]));
    expect(v.read("/var/lib/dpkg/status")).toBeUndefined();
    expect(v.read("/etc/os-release")).toBeUndefined();
    expect(inventoryOf(v).packages).toEqual([]);
  });

  it("refuses a wanted path reached through a directory link to files the scan does not read", async () => {
    const v = await view(layersOf([
      file("opt/dpkgdb/status", "Package: hidden\nStatus: install ok installed\nVersion: 1\n"),
      symlink("var/lib/dpkg", "/opt/dpkgdb"),
    ]));
    const r = await refusal(Promise.resolve().then(() => inventoryOf(v)));
    expect(r).toEqual({ code: "PC_SCAN_ARCHIVE_UNSAFE", detail: "/var/lib/dpkg/status leads to /opt/dpkgdb/status, which the scan does not read" });
  });

  it("refuses a wanted file over maxFileBytes, and reads a larger unwanted one", async () => {
    const big = "Package: x\nStatus: install ok installed\nVersion: 1\nDescription: " + "y".repeat(4096) + "\n";
    const r = await refusal(view(layersOf([file("var/lib/dpkg/status", big)]), {}, { maxFileBytes: 1024 }));
    expect(r.code).toBe("PC_SCAN_FILE_TOO_LARGE");
    expect(r.detail).toMatch(/^\/var\/lib\/dpkg\/status has \d+ bytes \(at most 1024\)$/);
    const ok = await view(layersOf([file("usr/share/doc/big", big)]), {}, { maxFileBytes: 1024 });
    expect(ok.list("/")).toEqual([]);
  });

  it("refuses an archive that names an entry twice", async () => {
    const { archive } = await saveArchiveOf([{ entries: ROOTFS_ENTRIES }], {
      extra: [file("manifest.json", JSON.stringify([{ Config: "other.json", Layers: [] }]))],
    });
    const r = await refusal(readImageFiles(chunked(archive), { wanted: inventoryWanted }));
    expect(r).toEqual({ code: "PC_SCAN_ARCHIVE_UNSAFE", detail: 'archive entry "manifest.json" appears twice' });
  });

  it("refuses more entries than maxEntries", async () => {
    const many = Array.from({ length: 50 }, (_, i) => file(`opt/f${i}`, "x"));
    const r = await refusal(view(layersOf(many), {}, { maxEntries: 40 }));
    expect(r).toEqual({ code: "PC_SCAN_ARCHIVE_UNSAFE", detail: "the archive has more than 40 entries" });
  });

  it("refuses a decompression bomb past maxTotalBytes", async () => {
    const zeros = Buffer.alloc(32 * 1024 * 1024);
    const { archive } = await saveArchiveOf([{ entries: [file("opt/zeros", zeros)], gzip: true }]);
    expect(archive.length).toBeLessThan(1024 * 1024);
    const r = await refusal(readImageFiles(chunked(archive, 65536), { wanted: inventoryWanted, maxTotalBytes: 8 * 1024 * 1024 }));
    expect(r.code).toBe("PC_SCAN_FILE_TOO_LARGE");
    expect(r.detail).toMatch(/more than 8388608 bytes of layer content/);
  });

  const unreadable: { name: string; archive: () => Promise<Buffer> }[] = [
    { name: "random bytes", archive: async () => randomBytes(8192) },
    { name: "an empty stream", archive: async () => Buffer.alloc(0) },
    { name: "a tar without manifest.json", archive: () => tarOf([file("etc/os-release", "ID=debian\n")]) },
    { name: "a truncated archive", archive: async () => (await saveArchiveOf([{ entries: ROOTFS_ENTRIES }])).archive.subarray(0, 5000) },
    {
      name: "a manifest naming a missing layer",
      archive: async () => (await saveArchiveOf([{ entries: ROOTFS_ENTRIES }], { manifest: [{ Config: "x.json", Layers: ["nope/layer.tar"] }] })).archive,
    },
    {
      name: "a manifest of two images",
      archive: async () => (await saveArchiveOf([{ entries: [] }], { manifest: [{ Config: "a", Layers: [] }, { Config: "b", Layers: [] }] })).archive,
    },
    { name: "a manifest that is not JSON", archive: () => tarOf([file("manifest.json", "{nope")]) },
    {
      name: "a corrupt gzip layer",
      archive: async () => {
        const gz = gzipSync(await tarOf(ROOTFS_ENTRIES));
        gz.fill(0x55, 200, 400);
        return (await saveArchiveOf([], {
          extra: [file("l/layer.tar", gz), file("c.json", '{"rootfs":{"diff_ids":[]}}')],
          manifest: [{ Config: "c.json", Layers: ["l/layer.tar"] }],
        })).archive;
      },
    },
    {
      name: "a zstd layer",
      archive: async () => (await saveArchiveOf([], {
        extra: [file("l/layer.tar", Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(600)])), file("c.json", "{}")],
        manifest: [{ Config: "c.json", Layers: ["l/layer.tar"] }],
      })).archive,
    },
  ];
  for (const u of unreadable) {
    it(`refuses ${u.name} as unreadable`, async () => {
      const r = await refusal(readImageFiles(chunked(await u.archive()), { wanted: inventoryWanted }));
      expect(r.code).toBe("PC_SCAN_IMAGE_UNREADABLE");
    });
  }
});
