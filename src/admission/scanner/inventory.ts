/**
 * The inventory of an image: its operating system and the packages of each ecosystem
 * the scanner knows (Debian/Ubuntu dpkg, Alpine apk, npm, PyPI), each with the file it
 * was read from. `inventoryWanted` is the fixed set of files it reads, the `wanted`
 * predicate for readImageFiles. An image where nothing is found gives an empty
 * inventory; what that means is the gate's decision.
 */
import { readImageFiles, type ImageFileView, type ImageReadLimits } from "./image-layers.js";
import { apkPackages, APK_INSTALLED_FILES } from "./inventory-apk.js";
import { dpkgPackages, DPKG_STATUS, DPKG_STATUS_DIR } from "./inventory-dpkg.js";
import { NPM_PACKAGE_ROOT_RE, npmPackages } from "./inventory-npm.js";
import { OS_RELEASE_FILES, osReleaseOf } from "./inventory-os.js";
import { pythonPackages } from "./inventory-python.js";
import type { Findings, Inventory, InventoryFiles, InventoryPackage, UnreadFile } from "./inventory-types.js";

export type * from "./inventory-types.js";
export { normalizePypiName } from "./inventory-python.js";

const FIXED_FILES = new Set<string>([...OS_RELEASE_FILES, DPKG_STATUS, ...APK_INSTALLED_FILES]);

/** The files the inventory reads (absolute paths, as readImageFiles passes them). */
export function inventoryWanted(path: string): boolean {
  if (FIXED_FILES.has(path)) return true;
  if (path.startsWith(DPKG_STATUS_DIR)) return path.indexOf("/", DPKG_STATUS_DIR.length) < 0;
  if (path.endsWith("/package.json")) return NPM_PACKAGE_ROOT_RE.test(path);
  if (path.endsWith("/package-lock.json")) return !path.includes("/node_modules/");
  if (path.endsWith(".dist-info/METADATA")) return true;
  return false;
}

const ECOSYSTEM_ORDER = { Debian: 0, Alpine: 1, npm: 2, PyPI: 3 } as const;

function comparePackages(a: InventoryPackage, b: InventoryPackage): number {
  return (
    ECOSYSTEM_ORDER[a.ecosystem] - ECOSYSTEM_ORDER[b.ecosystem] ||
    cmp(a.name, b.name) || cmp(a.version, b.version) || cmp(a.sourceFile, b.sourceFile) ||
    cmp(a.sourcePackage?.name ?? "", b.sourcePackage?.name ?? "") ||
    cmp(a.sourcePackage?.version ?? "", b.sourcePackage?.version ?? "")
  );
}
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function inventoryOf(files: InventoryFiles): Inventory {
  const packages: InventoryPackage[] = [];
  const unread: UnreadFile[] = [];
  const findings: Findings = {
    package: (p) => packages.push(Object.freeze(p.sourcePackage ? { ...p, sourcePackage: Object.freeze({ ...p.sourcePackage }) } : { ...p })),
    unread: (file, reason) => unread.push({ file, reason }),
  };
  const os = osReleaseOf(files, findings);
  dpkgPackages(files, findings);
  apkPackages(files, findings);
  npmPackages(files, findings);
  pythonPackages(files, findings);
  packages.sort(comparePackages);
  // The same package stated twice in one file (a multi-arch dpkg entry) is one finding.
  const unique = packages.filter((p, i) => i === 0 || comparePackages(packages[i - 1] as InventoryPackage, p) !== 0);
  return { ...(os !== undefined ? { os } : {}), packages: unique, unread };
}

/** Reads an image archive (`docker save` form) and inventories it. */
export async function inventoryImage(
  archive: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  limits: Partial<ImageReadLimits> = {},
): Promise<{ view: ImageFileView; inventory: Inventory }> {
  const view = await readImageFiles(archive, { ...limits, wanted: inventoryWanted });
  return { view, inventory: inventoryOf(view) };
}
