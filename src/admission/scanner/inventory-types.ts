/**
 * What an image inventory holds: the operating system and the packages found, each with
 * the file it was read from. Package names and versions are kept as the image states
 * them; matching them against advisories is the matcher's work.
 */
import type { ImageFileView } from "./image-layers.js";

export type PackageEcosystem = "Debian" | "Alpine" | "npm" | "PyPI";

export interface SourcePackage {
  readonly name: string;
  readonly version: string;
}

export interface InventoryPackage {
  readonly ecosystem: PackageEcosystem;
  readonly name: string;
  readonly version: string;
  /** Absolute path of the file in the image the package was read from. */
  readonly sourceFile: string;
  /**
   * The source package a distribution package was built from (Debian `Source:`, Alpine
   * origin `o:`); distribution advisories name source packages. Set for Debian and Alpine.
   */
  readonly sourcePackage?: SourcePackage;
}

export interface OsRelease {
  /** os-release ID, e.g. "debian", "alpine". */
  readonly id: string;
  /** os-release VERSION_ID, e.g. "12", "3.18.4"; absent on rolling releases. */
  readonly versionId?: string;
  /** os-release NAME. */
  readonly name: string;
  /** os-release PRETTY_NAME, when given. */
  readonly prettyName?: string;
}

/** A file the inventory could not use, and why (it contributes no packages). */
export interface UnreadFile {
  readonly file: string;
  readonly reason: string;
}

export interface Inventory {
  readonly os?: OsRelease;
  /** Sorted by ecosystem, name, version, source file. */
  readonly packages: readonly InventoryPackage[];
  readonly unread: readonly UnreadFile[];
}

/** What the inventory needs of an image: its wanted files. */
export type InventoryFiles = Pick<ImageFileView, "read" | "list">;

/** Collects one ecosystem's findings. */
export interface Findings {
  package(p: InventoryPackage): void;
  unread(file: string, reason: string): void;
}

/** Longest name or version kept; longer values are reported as unread rather than matched. */
export const MAX_FIELD_LENGTH = 256;

export function usableField(value: unknown): value is string {
  return typeof value === "string" && value.trim() !== "" && value.length <= MAX_FIELD_LENGTH && !/[\0-\x1f]/.test(value);
}
