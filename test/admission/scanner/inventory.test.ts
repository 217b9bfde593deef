/**
 * The inventory's readers, on files given directly (a view over a map): dpkg status and
 * status.d, apk, npm package.json and lockfiles, Python metadata, os-release, and the
 * set of files it asks the image reader for.
 */
import { describe, expect, it } from "vitest";
import { globToRegExp } from "../../../src/admission/scanner/image-layers-union.js";
import { inventoryOf, inventoryWanted, normalizePypiName, type InventoryFiles } from "../../../src/admission/scanner/inventory.js";
import { deb822Paragraphs } from "../../../src/admission/scanner/inventory-dpkg.js";
import { parseOsRelease } from "../../../src/admission/scanner/inventory-os.js";

function filesOf(map: Record<string, string>): InventoryFiles {
  const paths = Object.keys(map).sort();
  return {
    read: (p) => (map[p] === undefined ? undefined : Buffer.from(map[p] as string)),
    list: (pattern) => {
      if (/[*?]/.test(pattern)) {
        const re = globToRegExp(pattern);
        return paths.filter((p) => re.test(p));
      }
      return paths.filter((p) => p.startsWith(pattern));
    },
  };
}

const brief = (files: Record<string, string>) =>
  inventoryOf(filesOf(files)).packages.map((p) =>
    `${p.ecosystem}:${p.name}@${p.version}${p.sourcePackage ? ` (${p.sourcePackage.name} ${p.sourcePackage.version})` : ""}`);

describe("inventoryWanted", () => {
  const table: [string, boolean][] = [
    ["/etc/os-release", true],
    ["/usr/lib/os-release", true],
    ["/etc/os-release.d/x", false],
    ["/var/lib/dpkg/status", true],
    ["/var/lib/dpkg/status-old", false],
    ["/var/lib/dpkg/status.d/base-files", true],
    ["/var/lib/dpkg/status.d/sub/x", false],
    ["/lib/apk/db/installed", true],
    ["/usr/lib/apk/db/installed", true],
    ["/app/node_modules/lodash/package.json", true],
    ["/app/node_modules/@scope/pkg/package.json", true],
    ["/app/node_modules/a/node_modules/b/package.json", true],
    ["/app/node_modules/.pnpm/lodash@4.17.20/node_modules/lodash/package.json", true],
    ["/app/node_modules/lodash/test/package.json", false],
    ["/app/node_modules/@scope/package.json", false],
    ["/app/node_modules/.bin/package.json", false],
    ["/app/package.json", false],
    ["/app/package-lock.json", true],
    ["/app/node_modules/x/package-lock.json", false],
    ["/usr/lib/python3/dist-packages/requests-2.30.0.dist-info/METADATA", true],
    ["/usr/lib/python3/dist-packages/requests.egg-info/PKG-INFO", false],
    ["/srv/METADATA", false],
  ];
  for (const [path, wanted] of table) {
    it(`${wanted ? "reads" : "skips"} ${path}`, () => expect(inventoryWanted(path)).toBe(wanted));
  }
});

describe("dpkg", () => {
  it("counts entries whose files are on disk, with their source package", () => {
    const status = [
      "Package: a\nStatus: install ok installed\nVersion: 1.0-1\n",
      "Package: b\nStatus: install ok unpacked\nVersion: 2.0-1\nSource: bsrc\n",
      "Package: c\nStatus: install reinstreq half-installed\nVersion: 3\nSource: csrc (3.0)\n",
      "Package: d\nStatus: deinstall ok installed\nVersion: 4\n",
      "Package: e\nStatus: deinstall ok config-files\nVersion: 5\n",
      "Package: f\nStatus: purge ok not-installed\n",
      "Package: g\nStatus: install ok triggers-pending\nVersion: 7\n",
    ].join("\n");
    expect(brief({ "/var/lib/dpkg/status": status })).toEqual([
      "Debian:a@1.0-1 (a 1.0-1)",
      "Debian:b@2.0-1 (bsrc 2.0-1)",
      "Debian:c@3 (csrc 3.0)",
      "Debian:d@4 (d 4)",
      "Debian:g@7 (g 7)",
    ]);
  });

  it("reads CRLF files, ignores continuation lines and keeps the first of a repeated field", () => {
    const status = "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\nDescription: x\r\n Package: evil\r\nVersion: 2\r\n\r\n";
    expect(brief({ "/var/lib/dpkg/status": status })).toEqual(["Debian:a@1 (a 1)"]);
    expect([...deb822Paragraphs("A: 1\n \n\t\nB: 2\n\n\n\nC: 3")].map((m) => Object.fromEntries(m))).toEqual([
      { a: "1" }, { b: "2" }, { c: "3" },
    ]);
  });

  it("reports a status entry without Status, and one without Version, as unread", () => {
    const inv = inventoryOf(filesOf({ "/var/lib/dpkg/status": "Package: a\nVersion: 1\n\nPackage: b\nStatus: install ok installed\n" }));
    expect(inv.packages).toEqual([]);
    expect(inv.unread).toEqual([
      { file: "/var/lib/dpkg/status", reason: "entry 1 has no Status" },
      { file: "/var/lib/dpkg/status", reason: "entry 2 lacks a usable Package or Version" },
    ]);
  });

  it("reads status.d files without Status, skipping md5sums and dot files", () => {
    expect(brief({
      "/var/lib/dpkg/status.d/libc6": "Package: libc6\nVersion: 2.36-9+deb12u4\nSource: glibc\n",
      "/var/lib/dpkg/status.d/libc6.md5sums": "Package: nope\nVersion: 1\n",
      "/var/lib/dpkg/status.d/.hidden": "Package: nope2\nVersion: 1\n",
      "/var/lib/dpkg/status.d/old": "Package: old\nStatus: deinstall ok config-files\nVersion: 1\n",
    })).toEqual(["Debian:libc6@2.36-9+deb12u4 (glibc 2.36-9+deb12u4)"]);
  });

  it("reports an unreadable Source", () => {
    const inv = inventoryOf(filesOf({ "/var/lib/dpkg/status": "Package: a\nStatus: install ok installed\nVersion: 1\nSource: a b c\n" }));
    expect(inv.packages).toEqual([]);
    expect(inv.unread).toEqual([{ file: "/var/lib/dpkg/status", reason: "entry 1 (a) has an unreadable Source" }]);
  });

  it("counts a package stated twice (multi-arch) once", () => {
    const e = "Package: libc6\nStatus: install ok installed\nVersion: 2.36\nArchitecture: amd64\n";
    expect(brief({ "/var/lib/dpkg/status": `${e}\n${e.replace("amd64", "i386")}` })).toEqual(["Debian:libc6@2.36 (libc6 2.36)"]);
  });
});

describe("apk", () => {
  it("reads P:, V: and the origin o:", () => {
    expect(brief({
      "/lib/apk/db/installed": "P:musl\nV:1.2.4-r2\nA:x86_64\n\nP:libssl3\nV:3.1.4-r1\no:openssl\n\nP:broken\n",
    })).toEqual(["Alpine:libssl3@3.1.4-r1 (openssl 3.1.4-r1)", "Alpine:musl@1.2.4-r2 (musl 1.2.4-r2)"]);
  });

  it("reads /usr/lib/apk/db/installed when /lib has none", () => {
    expect(brief({ "/usr/lib/apk/db/installed": "P:zlib\nV:1.3-r0\n" })).toEqual(["Alpine:zlib@1.3-r0 (zlib 1.3-r0)"]);
  });
});

describe("npm", () => {
  it("reads package roots with both name and version", () => {
    const inv = inventoryOf(filesOf({
      "/a/node_modules/x/package.json": '{"name":"x","version":"1.0.0"}',
      "/a/node_modules/@s/y/package.json": '{"name":"@s/y","version":"2.0.0"}',
      "/a/node_modules/z/package.json": '{"name":"z"}',
      "/a/node_modules/v/package.json": '{"version":"1.0.0"}',
      "/a/node_modules/n/package.json": '{"name":"n","version":7}',
      "/a/node_modules/bad/package.json": "{not json",
      "/a/node_modules/arr/package.json": "[]",
    }));
    expect(inv.packages.map((p) => `${p.name}@${p.version}`)).toEqual(["@s/y@2.0.0", "x@1.0.0"]);
    expect(inv.unread).toEqual([
      { file: "/a/node_modules/arr/package.json", reason: "not a JSON object" },
      { file: "/a/node_modules/bad/package.json", reason: "not valid JSON" },
    ]);
  });

  it("reads v2/v3 lockfiles: not dev, not links, not where the package is installed", () => {
    const lock = JSON.stringify({
      lockfileVersion: 2,
      packages: {
        "": { name: "app", version: "1.0.0" },
        "node_modules/a": { version: "1.0.0" },
        "node_modules/b": { version: "2.0.0" },
        "node_modules/b/node_modules/c": { version: "3.0.0" },
        "node_modules/@s/d": { version: "4.0.0" },
        "node_modules/alias": { name: "real-name", version: "5.0.0" },
        "node_modules/dev": { version: "6.0.0", dev: true },
        "node_modules/opt": { version: "7.0.0", devOptional: true },
        "node_modules/ws": { resolved: "packages/ws", link: true },
        "packages/ws": { name: "ws", version: "0.0.1" },
      },
      dependencies: { ignored: { version: "9.9.9" } },
    });
    const inv = inventoryOf(filesOf({
      "/app/package-lock.json": lock,
      "/app/node_modules/a/package.json": '{"name":"a","version":"1.0.1"}',
    }));
    expect(inv.packages.map((p) => `${p.name}@${p.version} ${p.sourceFile}`)).toEqual([
      "@s/d@4.0.0 /app/package-lock.json",
      "a@1.0.1 /app/node_modules/a/package.json",
      "b@2.0.0 /app/package-lock.json",
      "c@3.0.0 /app/package-lock.json",
      "opt@7.0.0 /app/package-lock.json",
      "real-name@5.0.0 /app/package-lock.json",
    ]);
  });

  it("reads v1 lockfiles, nested dependencies included", () => {
    const lock = JSON.stringify({
      lockfileVersion: 1,
      dependencies: {
        a: { version: "1.0.0", dependencies: { b: { version: "2.0.0", dependencies: { c: { version: "3.0.0" } } } } },
        d: { version: "4.0.0", dev: true, dependencies: { e: { version: "5.0.0" } } },
      },
    });
    const inv = inventoryOf(filesOf({
      "/srv/package-lock.json": lock,
      "/srv/node_modules/a/node_modules/b/package.json": '{"name":"b","version":"2.0.0"}',
    }));
    expect(inv.packages.map((p) => `${p.name}@${p.version} ${p.sourceFile}`)).toEqual([
      "a@1.0.0 /srv/package-lock.json",
      "b@2.0.0 /srv/node_modules/a/node_modules/b/package.json",
      "c@3.0.0 /srv/package-lock.json",
      "e@5.0.0 /srv/package-lock.json",
    ]);
  });

  it("reports a lockfile with neither packages nor dependencies", () => {
    expect(inventoryOf(filesOf({ "/x/package-lock.json": "{}" })).unread).toEqual([
      { file: "/x/package-lock.json", reason: "neither packages nor dependencies" },
    ]);
  });
});

describe("python", () => {
  it("reads Name and Version from the header, normalized per PEP 503", () => {
    const inv = inventoryOf(filesOf({
      "/usr/lib/python3/site-packages/Zope.Interface-6.0.dist-info/METADATA": "Metadata-Version: 2.1\r\nName: Zope.Interface\r\nVersion: 6.0\r\n\r\nName: other\r\n",
      "/usr/lib/python3/site-packages/a-1.dist-info/METADATA": "Metadata-Version: 2.1\n\nName: a\nVersion: 1\n",
    }));
    expect(inv.packages.map((p) => `${p.ecosystem}:${p.name}@${p.version}`)).toEqual(["PyPI:zope-interface@6.0"]);
    expect(inv.unread).toEqual([{ file: "/usr/lib/python3/site-packages/a-1.dist-info/METADATA", reason: "no usable Name or Version" }]);
    expect(normalizePypiName("Foo__Bar.-baz")).toBe("foo-bar-baz");
  });
});

describe("os-release", () => {
  it("reads ID, VERSION_ID, NAME and PRETTY_NAME, unquoting values", () => {
    const fields = parseOsRelease('# comment\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nPRETTY_NAME=\'Ubuntu 22.04.3 LTS\'\nX="a \\"q\\" \\$b"\nbad line\n');
    expect(Object.fromEntries(fields)).toEqual({ NAME: "Ubuntu", VERSION_ID: "22.04", ID: "ubuntu", PRETTY_NAME: "Ubuntu 22.04.3 LTS", X: 'a "q" $b' });
    expect(inventoryOf(filesOf({ "/usr/lib/os-release": 'ID=ubuntu\nVERSION_ID="22.04"\nNAME="Ubuntu"\n' })).os).toEqual({ id: "ubuntu", versionId: "22.04", name: "Ubuntu" });
  });

  it("prefers /etc/os-release and defaults ID to linux", () => {
    expect(inventoryOf(filesOf({ "/etc/os-release": "NAME=x\n", "/usr/lib/os-release": "ID=debian\n" })).os).toEqual({ id: "linux", name: "x" });
    expect(inventoryOf(filesOf({})).os).toBeUndefined();
  });

  it("reports an ID that is not an identifier", () => {
    const inv = inventoryOf(filesOf({ "/etc/os-release": "ID=\"Not An Id\"\n" }));
    expect(inv.os).toBeUndefined();
    expect(inv.unread).toEqual([{ file: "/etc/os-release", reason: "ID is not a valid os-release identifier" }]);
  });
});
