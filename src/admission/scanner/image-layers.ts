/**
 * Reads the files an image scan needs out of a `docker save` archive, as a stream: the
 * archive is never held in memory nor written to disk.
 *
 * The archive is read once, in whatever order its entries come (Docker writes the layer
 * tars before manifest.json). Each layer tar (plain or gzip, told apart by magic bytes) is
 * indexed as it streams past: the path and kind of every entry, the content of the files
 * `wanted` selects, link targets, whiteouts and opaque markers. When the archive ends the
 * layers are stacked in the manifest's order with overlay semantics:
 *
 * - a layer's whiteouts (`.wh.<name>`: that path and everything below) and opaque markers
 *   (`.wh..wh..opq`: everything below the directory) hide what lower layers had, never
 *   what the same layer adds;
 * - then its entries apply in archive order: a directory merges with a lower directory,
 *   anything else replaces what was at its path (a directory's contents included), and
 *   an entry below a path that was a file or link makes that path a directory again.
 *
 * Links. A hard link takes the content its target had at that point. A symbolic link is
 * resolved inside the image only, as the container would (an absolute target starts at
 * the image root). A link that climbs above the root, a loop, and a wanted path that
 * exists but whose content was not read (a link to a file outside the wanted set, a
 * device) are refused with PC_SCAN_ARCHIVE_UNSAFE: the scan would otherwise miss what the
 * container reads there. A dangling link is simply absent, as it is in the container.
 *
 * Refusals: an entry named with an absolute path or a `..` segment, a hard link naming
 * one, more than `maxEntries` entries -> PC_SCAN_ARCHIVE_UNSAFE; a wanted file over
 * `maxFileBytes`, or more than `maxTotalBytes` of layer content (after decompression) ->
 * PC_SCAN_FILE_TOO_LARGE; anything that is not a readable single-image archive ->
 * PC_SCAN_IMAGE_UNREADABLE.
 */
import { isPortcullisError, pcError } from "../../core/index.js";
import { quote } from "./errors.js";
import { FileView, Union, type LayerIndex, K_DIR, K_FILE, K_HARDLINK, K_OPAQUE, K_OTHER, K_SYMLINK, K_WHITEOUT } from "./image-layers-union.js";
import { bytes, collect, drain, gunzip, isGzip, isTar, isZstd, looksLikeJson, peek, SNIFF_BYTES, tarEntries, type Chunks, type TarEntry } from "./image-layers-stream.js";

export interface ImageReadLimits {
  /** Largest wanted file, in bytes. */
  readonly maxFileBytes: number;
  /** Most entries, counting the archive's own and every layer's. */
  readonly maxEntries: number;
  /** Most bytes of layer content read, after decompression (a bound on the work and on bombs). */
  readonly maxTotalBytes: number;
}

export interface ImageReadOptions extends Partial<ImageReadLimits> {
  /**
   * Which paths (absolute, e.g. "/var/lib/dpkg/status") to keep the content of. Called for
   * every entry of every layer, so it must be cheap, and give the same answer for a path.
   */
  readonly wanted: (path: string) => boolean;
}

export const DEFAULT_IMAGE_READ_LIMITS: ImageReadLimits = Object.freeze({
  maxFileBytes: 64 * 1024 * 1024,
  maxEntries: 500_000,
  maxTotalBytes: 16 * 1024 * 1024 * 1024,
});

export interface ImageLayer {
  /** Position in the image, 0 for the base layer. */
  readonly index: number;
  /** The layer's diff id from the image config ("sha256:…"), or its archive path when the config lacks it. */
  readonly id: string;
}

export interface ImageFile {
  /** Absolute path in the image. */
  readonly path: string;
  readonly size: number;
  /** The layer the content came from (for a link: the layer of the file it leads to). */
  readonly layer: ImageLayer;
}

/** The wanted files of an image, as its container would see them. */
export interface ImageFileView {
  readonly os: string | undefined;
  readonly architecture: string | undefined;
  readonly layers: readonly ImageLayer[];
  /** The content at a path (links followed inside the image); undefined when absent or not wanted. */
  read(path: string): Buffer | undefined;
  /** Where the content at a path came from. */
  file(path: string): ImageFile | undefined;
  /**
   * The wanted files under a directory prefix ("/var/lib/dpkg/status.d/") or matching a glob
   * ("/**\/node_modules/**\/package.json": `**` any number of segments, `*` and `?` within one).
   * Sorted; symbolic links to directories are not walked.
   */
  list(prefixOrGlob: string): string[];
}

const MANIFEST_MAX_BYTES = 1024 * 1024;
/** Linux's PATH_MAX: no path in a container, nor a link target, is longer. */
const PATH_MAX = 4096;
const JSON_MAX_BYTES = 8 * 1024 * 1024;

/** Reads a `docker save` archive (optionally gzip-compressed as a whole). */
export async function readImageFiles(
  archive: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  options: ImageReadOptions,
): Promise<ImageFileView> {
  const limits: ImageReadLimits = {
    maxFileBytes: options.maxFileBytes ?? DEFAULT_IMAGE_READ_LIMITS.maxFileBytes,
    maxEntries: options.maxEntries ?? DEFAULT_IMAGE_READ_LIMITS.maxEntries,
    maxTotalBytes: options.maxTotalBytes ?? DEFAULT_IMAGE_READ_LIMITS.maxTotalBytes,
  };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`);
  }
  if (typeof options.wanted !== "function") throw new TypeError("wanted must be a function");
  const reader = new ArchiveReader(options.wanted, limits);
  try {
    await reader.read(bytes(archive as AsyncIterable<Uint8Array | string>));
    return reader.finish();
  } catch (e) {
    const destroy = (archive as { destroy?: (e?: Error) => void }).destroy;
    if (typeof destroy === "function") destroy.call(archive);
    if (isPortcullisError(e)) throw e;
    throw pcError("PC_SCAN_IMAGE_UNREADABLE", "not a readable image archive", e);
  }
}

interface ManifestEntry {
  readonly config: string;
  readonly layers: readonly string[];
}

class ArchiveReader {
  private entries = 0;
  private totalBytes = 0;
  private manifest: ManifestEntry | undefined;
  private readonly layers = new Map<string, LayerIndex>();
  private readonly unsupported = new Map<string, string>();
  private readonly jsons = new Map<string, Buffer>();
  private readonly aliases = new Map<string, string>();
  private readonly names = new Set<string>();

  constructor(
    private readonly wanted: (path: string) => boolean,
    private readonly limits: ImageReadLimits,
  ) {}

  async read(input: Chunks): Promise<void> {
    const { head, rest } = await peek(input, 2);
    const source = isGzip(head) ? gunzip(rest) : rest;
    for await (const entry of tarEntries(source)) {
      this.countEntry();
      const name = entryName(entry.header.name, "archive");
      const type = entry.header.type;
      if (type !== "directory") {
        // Readers that keep the first copy and readers that keep the last would see different images.
        if (this.names.has(name)) throw unsafe(`archive entry ${quote(name)} appears twice`);
        this.names.add(name);
      }
      if (type === "symlink" || type === "link") {
        this.aliases.set(name, linkInArchive(name, entry.header.linkname, type === "symlink"));
        await drain(entry);
      } else if ((type === "file" || type === "contiguous-file") && name !== "") {
        await this.archiveFile(name, entry);
      } else {
        await drain(entry);
      }
    }
  }

  private async archiveFile(name: string, entry: TarEntry): Promise<void> {
    if (name === "manifest.json") {
      this.manifest = parseManifest(await collect(entry, MANIFEST_MAX_BYTES, "manifest.json"));
      return;
    }
    const { head, rest } = await peek(entry, SNIFF_BYTES);
    if (isGzip(head)) {
      this.layers.set(name, await this.indexLayer(gunzip(rest)));
    } else if (isTar(head)) {
      this.layers.set(name, await this.indexLayer(rest));
    } else if (isZstd(head)) {
      this.unsupported.set(name, "zstd-compressed layers are not supported");
      await drain(rest);
    } else if (looksLikeJson(head) && entry.header.size <= JSON_MAX_BYTES) {
      this.countBytes(entry.header.size);
      this.jsons.set(name, await collect(rest, JSON_MAX_BYTES, name));
    } else {
      await drain(rest);
    }
  }

  private async indexLayer(source: Chunks): Promise<LayerIndex> {
    const layer: LayerIndex = { paths: [], kinds: [], extra: new Map() };
    const counted = this.counting(source);
    for await (const entry of tarEntries(counted)) {
      this.countEntry();
      const h = entry.header;
      const path = entryName(h.name, "layer");
      if (path === "") {
        await drain(entry);
        continue;
      }
      const slash = path.lastIndexOf("/");
      const base = path.slice(slash + 1);
      const dir = slash < 0 ? "" : path.slice(0, slash);
      if (base.startsWith(".wh.")) {
        if (base === ".wh..wh..opq") push(layer, dir, K_OPAQUE);
        else if (!base.startsWith(".wh..wh.")) {
          const hidden = base.slice(4);
          if (hidden === "" || hidden === "." || hidden === "..") throw unsafe(`whiteout ${quote(path)} names no file`);
          push(layer, dir === "" ? hidden : `${dir}/${hidden}`, K_WHITEOUT);
        }
        await drain(entry);
        continue;
      }
      switch (h.type) {
        case "directory":
          push(layer, path, K_DIR);
          await drain(entry);
          break;
        case "file":
        case "contiguous-file":
          if (this.wanted(`/${path}`)) {
            if (h.size > this.limits.maxFileBytes) {
              throw pcError("PC_SCAN_FILE_TOO_LARGE", `/${path} has ${h.size} bytes (at most ${this.limits.maxFileBytes})`);
            }
            push(layer, path, K_FILE, await collect(entry, this.limits.maxFileBytes, path));
          } else {
            push(layer, path, K_FILE);
            await drain(entry);
          }
          break;
        case "symlink":
          if (h.linkname.length > PATH_MAX || h.linkname.includes("\0")) throw unsafe(`link ${quote(path)} has an impossible target`);
          push(layer, path, K_SYMLINK, h.linkname);
          await drain(entry);
          break;
        case "link":
          push(layer, path, K_HARDLINK, entryName(h.linkname, "hard link target"));
          await drain(entry);
          break;
        default:
          push(layer, path, K_OTHER);
          await drain(entry);
      }
    }
    return layer;
  }

  finish(): ImageFileView {
    const manifest = this.manifest;
    if (manifest === undefined) throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the archive has no manifest.json");
    const configName = this.resolveAlias(manifest.config);
    const configBytes = this.jsons.get(configName);
    if (configBytes === undefined) throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the archive lacks the image config");
    const config = parseConfig(configBytes);
    const ordered: LayerIndex[] = [];
    for (const ref of manifest.layers) {
      const name = this.resolveAlias(ref);
      const index = this.layers.get(name);
      if (index === undefined) {
        const why = this.unsupported.get(name) ?? "it is missing or not a tar";
        throw pcError("PC_SCAN_IMAGE_UNREADABLE", `layer ${quote(ref)} cannot be read: ${why}`);
      }
      ordered.push(index);
    }
    this.layers.clear();
    this.jsons.clear();
    const diffIds = config.diffIds !== undefined && config.diffIds.length === manifest.layers.length ? config.diffIds : undefined;
    const layers: ImageLayer[] = manifest.layers.map((ref, index) => Object.freeze({ index, id: diffIds?.[index] ?? ref }));
    return new FileView(config.os, config.architecture, layers, new Union(ordered, this.wanted), this.wanted);
  }

  private resolveAlias(ref: string): string {
    let name = entryName(ref, "manifest");
    for (let hops = 0; this.aliases.has(name); hops++) {
      if (hops > 16) throw pcError("PC_SCAN_IMAGE_UNREADABLE", `archive links loop at ${quote(ref)}`);
      name = this.aliases.get(name) as string;
    }
    return name;
  }

  private countEntry(): void {
    if (++this.entries > this.limits.maxEntries) throw unsafe(`the archive has more than ${this.limits.maxEntries} entries`);
  }

  private countBytes(n: number): void {
    this.totalBytes += n;
    if (this.totalBytes > this.limits.maxTotalBytes) {
      throw pcError("PC_SCAN_FILE_TOO_LARGE", `the image has more than ${this.limits.maxTotalBytes} bytes of layer content`);
    }
  }

  private async *counting(source: Chunks): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      this.countBytes(chunk.byteLength);
      yield chunk;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Names and archive structure

function unsafe(detail: string) {
  return pcError("PC_SCAN_ARCHIVE_UNSAFE", detail);
}


/** An entry's name as a relative path ("" for the root); absolute names and ".." are refused. */
export function entryName(name: string, where: string): string {
  if (name.length > PATH_MAX) throw unsafe(`${where} entry name is longer than ${PATH_MAX} characters`);
  if (name.includes("\0")) throw unsafe(`${where} entry name contains a NUL byte`);
  if (name.startsWith("/")) throw unsafe(`${where} entry ${quote(name)} has an absolute path`);
  const parts = name.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) throw unsafe(`${where} entry ${quote(name)} has a ".." segment`);
  return parts.join("/");
}

/** Where a link inside the outer archive leads (Docker links repeated layers to the first copy). */
function linkInArchive(name: string, target: string, symbolic: boolean): string {
  if (!symbolic) return entryName(target, "archive link");
  if (target.startsWith("/")) throw unsafe(`archive link ${quote(name)} has an absolute target`);
  const parts = name.split("/").slice(0, -1);
  for (const seg of target.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (parts.length === 0) throw unsafe(`archive link ${quote(name)} leads outside the archive`);
      parts.pop();
    } else parts.push(seg);
  }
  return parts.join("/");
}

function parseManifest(bytes: Buffer): ManifestEntry {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw pcError("PC_SCAN_IMAGE_UNREADABLE", "manifest.json is not JSON", e);
  }
  if (!Array.isArray(doc) || doc.length !== 1) {
    throw pcError("PC_SCAN_IMAGE_UNREADABLE", "manifest.json must describe exactly one image");
  }
  const m = doc[0] as { Config?: unknown; Layers?: unknown };
  if (typeof m !== "object" || m === null || typeof m.Config !== "string" || !Array.isArray(m.Layers) ||
      !m.Layers.every((l): l is string => typeof l === "string")) {
    throw pcError("PC_SCAN_IMAGE_UNREADABLE", "manifest.json lacks Config or Layers");
  }
  return { config: m.Config, layers: m.Layers };
}

function parseConfig(bytes: Buffer): { os?: string; architecture?: string; diffIds?: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the image config is not JSON", e);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the image config is not an object");
  }
  const c = doc as { os?: unknown; architecture?: unknown; rootfs?: { diff_ids?: unknown } };
  const ids = c.rootfs?.diff_ids;
  return {
    ...(typeof c.os === "string" ? { os: c.os } : {}),
    ...(typeof c.architecture === "string" ? { architecture: c.architecture } : {}),
    ...(Array.isArray(ids) && ids.every((i): i is string => typeof i === "string") ? { diffIds: ids } : {}),
  };
}

function push(layer: LayerIndex, path: string, kind: number, extra?: Buffer | string): void {
  if (extra !== undefined) layer.extra.set(layer.paths.length, extra);
  layer.paths.push(path);
  layer.kinds.push(kind);
}
