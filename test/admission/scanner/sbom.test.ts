/**
 * The CycloneDX 1.5 SBOM: its shape against the parts of the 1.5 JSON schema it uses
 * (required fields, enums, patterns), unique bom-refs, and package URLs per the purl
 * specification.
 */
import { describe, expect, it } from "vitest";
import type { Inventory, InventoryPackage, OsRelease } from "../../../src/admission/scanner/inventory.js";
import { purlEncode, purlOf, sbomOf } from "../../../src/admission/scanner/sbom.js";
import { ManualClock } from "../../../src/core/index.js";
import { EXPECTED_OS, EXPECTED_PACKAGES } from "./fixtures/images/rootfs.js";

const IMAGE_ID = "sha256:5b5264f15d54287fd5ee73675d0d3560df9f84e36455b247ede3e68488a8adb4";

// The CycloneDX 1.5 schema's rules for the fields the SBOM writes.
const property = { type: "object", required: ["name", "value"], additionalProperties: false, properties: { name: { type: "string" }, value: { type: "string" } } };
const component = {
  type: "object",
  required: ["type", "name"],
  additionalProperties: false,
  properties: {
    type: { enum: ["application", "framework", "library", "container", "platform", "operating-system", "device", "device-driver", "firmware", "file", "machine-learning-model", "data"] },
    "bom-ref": { type: "string", minLength: 1 },
    name: { type: "string" },
    version: { type: "string" },
    description: { type: "string" },
    purl: { type: "string", pattern: "^pkg:[a-z][a-z0-9.+-]*/" },
    hashes: {
      type: "array",
      items: { type: "object", required: ["alg", "content"], additionalProperties: false, properties: { alg: { enum: ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512", "SHA3-256", "SHA3-384", "SHA3-512", "BLAKE2b-256", "BLAKE2b-384", "BLAKE2b-512", "BLAKE3"] }, content: { type: "string", pattern: "^([a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})$" } } },
    },
    properties: { type: "array", items: property },
    evidence: {
      type: "object",
      additionalProperties: false,
      properties: { occurrences: { type: "array", items: { type: "object", required: ["location"], additionalProperties: false, properties: { location: { type: "string" } } } } },
    },
  },
};
const bomSchema = {
  type: "object",
  required: ["bomFormat", "specVersion"],
  additionalProperties: false,
  properties: {
    bomFormat: { enum: ["CycloneDX"] },
    specVersion: { const: "1.5" },
    serialNumber: { type: "string", pattern: "^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$" },
    version: { type: "integer", minimum: 1 },
    metadata: {
      type: "object",
      additionalProperties: false,
      properties: {
        timestamp: { type: "string", format: "date-time" },
        tools: { type: "object", additionalProperties: false, properties: { components: { type: "array", items: component } } },
        component,
      },
    },
    components: { type: "array", items: component },
  },
};

type Schema = {
  type?: string; required?: string[]; additionalProperties?: boolean; properties?: Record<string, Schema>;
  items?: Schema; enum?: unknown[]; const?: unknown; pattern?: string; minLength?: number; minimum?: number; format?: string;
};

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The JSON-schema keywords the schema above uses; returns the violations with their paths. */
function violations(schema: Schema, value: unknown, path = "$"): string[] {
  const out: string[] = [];
  const isObject = typeof value === "object" && value !== null && !Array.isArray(value);
  if (schema.type === "object" && !isObject) return [`${path}: not an object`];
  if (schema.type === "array" && !Array.isArray(value)) return [`${path}: not an array`];
  if (schema.type === "string" && typeof value !== "string") return [`${path}: not a string`];
  if (schema.type === "integer" && !Number.isInteger(value)) return [`${path}: not an integer`];
  if (schema.enum !== undefined && !schema.enum.includes(value)) out.push(`${path}: not one of the enum`);
  if (schema.const !== undefined && value !== schema.const) out.push(`${path}: not ${String(schema.const)}`);
  if (typeof value === "string") {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) out.push(`${path}: does not match ${schema.pattern}`);
    if (schema.minLength !== undefined && value.length < schema.minLength) out.push(`${path}: too short`);
    if (schema.format === "date-time" && !(DATE_TIME_RE.test(value) && !Number.isNaN(Date.parse(value)))) out.push(`${path}: not a date-time`);
  }
  if (typeof value === "number" && schema.minimum !== undefined && value < schema.minimum) out.push(`${path}: below the minimum`);
  if (isObject) {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in obj)) out.push(`${path}: lacks ${key}`);
    for (const [key, v] of Object.entries(obj)) {
      const sub = schema.properties?.[key];
      if (sub !== undefined) out.push(...violations(sub, v, `${path}.${key}`));
      else if (schema.additionalProperties === false) out.push(`${path}: unknown field ${key}`);
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    value.forEach((v, i) => out.push(...violations(schema.items as Schema, v, `${path}[${i}]`)));
  }
  return out;
}

const validate = (bom: unknown) => violations(bomSchema as Schema, bom);

const inventory: Inventory = { os: EXPECTED_OS, packages: EXPECTED_PACKAGES as InventoryPackage[], unread: [] };

describe("sbomOf", () => {
  it("writes a CycloneDX 1.5 document the schema accepts", () => {
    const clock = new ManualClock(new Date("2026-01-02T03:04:05.000Z"));
    const bom = sbomOf(IMAGE_ID, inventory, { clock, imageName: "registry.example/app:1.2" });
    expect(validate(JSON.parse(JSON.stringify(bom)))).toEqual([]);
    expect(bom.metadata.timestamp).toBe("2026-01-02T03:04:05.000Z");
    expect(bom.metadata.tools.components[0]).toMatchObject({ type: "application", name: "portcullis" });
    expect(bom.metadata.component).toEqual({
      type: "container",
      "bom-ref": IMAGE_ID,
      name: "registry.example/app:1.2",
      version: IMAGE_ID,
      hashes: [{ alg: "SHA-256", content: IMAGE_ID.slice(7) }],
    });
    const refs = [bom.metadata.component, ...bom.components].map((c) => c["bom-ref"]);
    expect(new Set(refs).size).toBe(refs.length);
  });

  it("the shape check itself refuses what the schema refuses", () => {
    const bom = JSON.parse(JSON.stringify(sbomOf(IMAGE_ID, inventory))) as Record<string, unknown>;
    expect(validate({ ...bom, specVersion: "1.4", serialNumber: "uuid:1", extra: 1 })).toEqual([
      "$.specVersion: not 1.5",
      "$.serialNumber: does not match ^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
      "$: unknown field extra",
    ]);
    expect(validate({ components: [{ type: "lib", purl: "npm/x" }] })).toEqual([
      "$: lacks bomFormat",
      "$: lacks specVersion",
      "$.components[0]: lacks name",
      "$.components[0].type: not one of the enum",
      "$.components[0].purl: does not match ^pkg:[a-z][a-z0-9.+-]*/",
    ]);
  });

  it("has a random serial number per document", () => {
    const a = sbomOf(IMAGE_ID, inventory).serialNumber;
    const b = sbomOf(IMAGE_ID, inventory).serialNumber;
    expect(a).not.toBe(b);
  });

  it("lists the OS and every package with its purl and source file", () => {
    const bom = sbomOf(IMAGE_ID, inventory);
    expect(bom.components[0]).toEqual({
      type: "operating-system",
      "bom-ref": "os:debian@12",
      name: "debian",
      version: "12",
      description: "Debian GNU/Linux 12 (bookworm)",
    });
    const zlib = bom.components.find((c) => c.name === "zlib1g");
    expect(zlib).toEqual({
      type: "library",
      "bom-ref": "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?distro=debian-12",
      name: "zlib1g",
      version: "1:1.2.13.dfsg-1",
      purl: "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?distro=debian-12",
      properties: [
        { name: "portcullis:ecosystem", value: "Debian" },
        { name: "portcullis:source-file", value: "/var/lib/dpkg/status" },
        { name: "portcullis:source-package", value: "zlib 1:1.2.13.dfsg-1" },
      ],
      evidence: { occurrences: [{ location: "/var/lib/dpkg/status" }] },
    });
    expect(bom.components.slice(1).map((c) => c.purl)).toEqual([
      "pkg:deb/debian/base-files@12.4%2Bdeb12u2?distro=debian-12",
      "pkg:deb/debian/held-pkg@2.0-1?distro=debian-12",
      "pkg:deb/debian/libgcc-s1@12.2.0-14?distro=debian-12",
      "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?distro=debian-12",
      "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12",
      "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?distro=debian-12",
      "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?distro=debian-12",
      "pkg:apk/alpine/libcrypto3@3.0.8-r0",
      "pkg:apk/alpine/zlib@1.2.12-r1",
      "pkg:npm/%40types/node@20.8.0",
      "pkg:npm/express@4.17.1",
      "pkg:npm/lodash@4.17.20",
      "pkg:npm/minimist@1.2.5",
      "pkg:npm/ms@2.0.0",
      "pkg:npm/qs@6.7.0",
      "pkg:pypi/requests@2.30.0",
      "pkg:pypi/typing-extensions@4.8.0",
    ]);
  });

  it("makes one component of a package found in several files", () => {
    const p = (sourceFile: string): InventoryPackage => ({ ecosystem: "npm", name: "lodash", version: "4.17.20", sourceFile });
    const bom = sbomOf(IMAGE_ID, { packages: [p("/a/node_modules/lodash/package.json"), p("/b/node_modules/lodash/package.json")], unread: [] });
    expect(bom.components).toHaveLength(1);
    expect(bom.components[0]?.properties).toEqual([
      { name: "portcullis:ecosystem", value: "npm" },
      { name: "portcullis:source-file", value: "/a/node_modules/lodash/package.json" },
      { name: "portcullis:source-file", value: "/b/node_modules/lodash/package.json" },
    ]);
    expect(validate(JSON.parse(JSON.stringify(bom)))).toEqual([]);
  });

  it("describes an empty inventory", () => {
    const bom = sbomOf("not-a-digest", { packages: [], unread: [] });
    expect(bom.components).toEqual([]);
    expect(bom.metadata.component).toEqual({ type: "container", "bom-ref": "not-a-digest", name: "not-a-digest", version: "not-a-digest" });
    expect(validate(JSON.parse(JSON.stringify(bom)))).toEqual([]);
  });
});

describe("purlOf", () => {
  const ubuntu: OsRelease = { id: "ubuntu", versionId: "22.04", name: "Ubuntu" };
  const alpine: OsRelease = { id: "alpine", versionId: "3.18.4", name: "Alpine Linux" };
  const rolling: OsRelease = { id: "debian", name: "Debian GNU/Linux" };
  const table: [InventoryPackage, OsRelease | undefined, string][] = [
    [{ ecosystem: "Debian", name: "openssl", version: "3.0.11-1~deb12u1", sourceFile: "/s" }, EXPECTED_OS, "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12"],
    [{ ecosystem: "Debian", name: "libc6", version: "2.35-0ubuntu3.4", sourceFile: "/s" }, ubuntu, "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.4?distro=ubuntu-22.04"],
    [{ ecosystem: "Debian", name: "libc6", version: "2.36", sourceFile: "/s" }, undefined, "pkg:deb/debian/libc6@2.36"],
    [{ ecosystem: "Debian", name: "libc6", version: "2.36", sourceFile: "/s" }, rolling, "pkg:deb/debian/libc6@2.36"],
    [{ ecosystem: "Debian", name: "libc6", version: "2.36", sourceFile: "/s" }, alpine, "pkg:deb/debian/libc6@2.36"],
    [{ ecosystem: "Debian", name: "libstdc++6", version: "12.2.0-14", sourceFile: "/s" }, EXPECTED_OS, "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?distro=debian-12"],
    [{ ecosystem: "Alpine", name: "zlib", version: "1.2.12-r1", sourceFile: "/s" }, alpine, "pkg:apk/alpine/zlib@1.2.12-r1?distro=alpine-3.18.4"],
    [{ ecosystem: "Alpine", name: "zlib", version: "1.2.12-r1", sourceFile: "/s" }, EXPECTED_OS, "pkg:apk/alpine/zlib@1.2.12-r1"],
    [{ ecosystem: "npm", name: "@angular/core", version: "16.0.0-rc.1", sourceFile: "/s" }, undefined, "pkg:npm/%40angular/core@16.0.0-rc.1"],
    [{ ecosystem: "npm", name: "lodash", version: "4.17.20", sourceFile: "/s" }, EXPECTED_OS, "pkg:npm/lodash@4.17.20"],
    [{ ecosystem: "npm", name: "weird name", version: "1.0.0+build@x", sourceFile: "/s" }, undefined, "pkg:npm/weird%20name@1.0.0%2Bbuild%40x"],
    [{ ecosystem: "PyPI", name: "Typing_Extensions", version: "4.8.0", sourceFile: "/s" }, undefined, "pkg:pypi/typing-extensions@4.8.0"],
    [{ ecosystem: "PyPI", name: "requests", version: "2.30.0", sourceFile: "/s" }, undefined, "pkg:pypi/requests@2.30.0"],
  ];
  for (const [p, os, purl] of table) {
    it(`${p.ecosystem} ${p.name}@${p.version} on ${os?.id ?? "no OS"} -> ${purl}`, () => expect(purlOf(p, os)).toBe(purl));
  }

  it("percent-encodes UTF-8 octets and keeps the colon", () => {
    expect(purlEncode("ünï/c:o?d#e&=%")).toBe("%C3%BCn%C3%AF%2Fc:o%3Fd%23e%26%3D%25");
    expect(purlEncode("Aa0.-_~")).toBe("Aa0.-_~");
  });
});
