/**
 * A CycloneDX 1.5 SBOM (JSON) of an image inventory, written by hand to the 1.5 schema:
 * the image is the BOM's subject (`metadata.component`, type container), the operating
 * system and each package are components. A package found in several files is one
 * component with one `portcullis:source-file` property (and one evidence occurrence)
 * per file. Package URLs follow the purl specification: percent-encoding of everything
 * outside `A-Z a-z 0-9 . - _ ~` (the colon stays), npm scopes as an encoded namespace
 * (`pkg:npm/%40scope/name@1.0.0`), PyPI names in their normalized form, and a `distro`
 * qualifier for distribution packages when the OS release is known.
 */
import { randomUUID } from "node:crypto";
import { systemClock, VERSION, type Clock } from "../../core/index.js";
import type { Inventory, InventoryPackage, OsRelease } from "./inventory-types.js";

export interface CycloneDxProperty {
  readonly name: string;
  readonly value: string;
}

export interface CycloneDxHash {
  readonly alg: "SHA-256";
  readonly content: string;
}

export interface CycloneDxComponent {
  readonly type: "application" | "container" | "library" | "operating-system";
  readonly "bom-ref"?: string;
  readonly name: string;
  readonly version?: string;
  readonly description?: string;
  readonly purl?: string;
  readonly hashes?: readonly CycloneDxHash[];
  readonly properties?: readonly CycloneDxProperty[];
  readonly evidence?: { readonly occurrences: readonly { readonly location: string }[] };
}

export interface CycloneDxBom {
  readonly bomFormat: "CycloneDX";
  readonly specVersion: "1.5";
  readonly serialNumber: string;
  readonly version: 1;
  readonly metadata: {
    readonly timestamp: string;
    readonly tools: { readonly components: readonly CycloneDxComponent[] };
    readonly component: CycloneDxComponent;
  };
  readonly components: readonly CycloneDxComponent[];
}

export interface SbomOptions {
  /** The image's name as the caller knows it (e.g. "registry/app:1.2"); the id when absent. */
  readonly imageName?: string;
  readonly clock?: Clock;
}

const PROP_SOURCE_FILE = "portcullis:source-file";
const PROP_SOURCE_PACKAGE = "portcullis:source-package";
const PROP_ECOSYSTEM = "portcullis:ecosystem";
/** Distributions whose packages purl names `deb` with the distribution as namespace. */
const DPKG_VENDORS = new Set(["debian", "ubuntu"]);

export function sbomOf(imageId: string, inventory: Inventory, options: SbomOptions = {}): CycloneDxBom {
  const clock = options.clock ?? systemClock;
  const image: CycloneDxComponent = {
    type: "container",
    "bom-ref": imageId,
    name: options.imageName ?? imageId,
    version: imageId,
    ...(/^sha256:[0-9a-f]{64}$/.test(imageId) ? { hashes: [{ alg: "SHA-256", content: imageId.slice(7) }] } : {}),
  };
  const components: CycloneDxComponent[] = [];
  if (inventory.os !== undefined) components.push(osComponent(inventory.os));
  const byPurl = new Map<string, InventoryPackage[]>();
  for (const p of inventory.packages) {
    const purl = purlOf(p, inventory.os);
    const same = byPurl.get(purl);
    if (same === undefined) byPurl.set(purl, [p]);
    else same.push(p);
  }
  for (const [purl, found] of byPurl) components.push(packageComponent(purl, found));
  return {
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: clock.now().toISOString(),
      tools: { components: [{ type: "application", name: "portcullis", version: VERSION }] },
      component: image,
    },
    components,
  };
}

function osComponent(os: OsRelease): CycloneDxComponent {
  return {
    type: "operating-system",
    "bom-ref": `os:${os.id}${os.versionId !== undefined ? `@${os.versionId}` : ""}`,
    name: os.id,
    ...(os.versionId !== undefined ? { version: os.versionId } : {}),
    description: os.prettyName ?? os.name,
  };
}

function packageComponent(purl: string, found: readonly InventoryPackage[]): CycloneDxComponent {
  const first = found[0] as InventoryPackage;
  const files = [...new Set(found.map((p) => p.sourceFile))];
  const properties: CycloneDxProperty[] = [{ name: PROP_ECOSYSTEM, value: first.ecosystem }];
  for (const file of files) properties.push({ name: PROP_SOURCE_FILE, value: file });
  const sources = new Set(found.flatMap((p) => (p.sourcePackage ? [`${p.sourcePackage.name} ${p.sourcePackage.version}`] : [])));
  for (const s of sources) properties.push({ name: PROP_SOURCE_PACKAGE, value: s });
  return {
    type: "library",
    "bom-ref": purl,
    name: first.name,
    version: first.version,
    purl,
    properties,
    evidence: { occurrences: files.map((location) => ({ location })) },
  };
}

/** Percent-encodes a purl component: everything outside A-Z a-z 0-9 . - _ ~ and ":" (UTF-8 octets). */
export function purlEncode(s: string): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9.\-_~:]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** The package URL of an inventoried package. */
export function purlOf(p: InventoryPackage, os?: OsRelease): string {
  const version = `@${purlEncode(p.version)}`;
  switch (p.ecosystem) {
    case "Debian": {
      // The vendor namespace and the distro qualifier come from the OS when it is a dpkg distribution.
      const vendor = os !== undefined && DPKG_VENDORS.has(os.id) ? os.id : "debian";
      return `pkg:deb/${vendor}/${purlEncode(p.name)}${version}${os?.id === vendor ? distro(os) : ""}`;
    }
    case "Alpine":
      return `pkg:apk/alpine/${purlEncode(p.name.toLowerCase())}${version}${os?.id === "alpine" ? distro(os) : ""}`;
    case "npm": {
      const slash = p.name.startsWith("@") ? p.name.indexOf("/") : -1;
      const path = slash > 0
        ? `${purlEncode(p.name.slice(0, slash))}/${purlEncode(p.name.slice(slash + 1))}`
        : purlEncode(p.name);
      return `pkg:npm/${path}${version}`;
    }
    case "PyPI":
      return `pkg:pypi/${purlEncode(p.name.toLowerCase().replace(/[-_.]+/g, "-"))}${version}`;
  }
}

function distro(os: OsRelease): string {
  if (os.versionId === undefined) return "";
  return `?distro=${purlEncode(`${os.id}-${os.versionId}`)}`;
}
