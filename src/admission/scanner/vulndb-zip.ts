/**
 * The `*.json` entries of a zip, as osv.dev exports them (`all.zip` of `<ID>.json`),
 * read with yauzl one entry at a time (lazyEntries), into memory only.
 *
 * Every entry is checked from its central directory record before its data is read.
 * Refused, naming the entry:
 * - a name that is absolute (`/x`, `C:x`), has a `..` segment, a backslash or a control
 *   character (the stored name and the one of a Unicode path extra field are both
 *   checked); a symbolic link or any other entry that is neither a file nor a directory;
 *   an entry whose data overlaps other entries'; a compression ratio above `maxRatio`
 *   (zip bombs); data that inflates to more than the entry declares: PC_SCAN_ARCHIVE_UNSAFE;
 * - more entries than `maxEntries`, an entry larger than `maxEntryBytes`, entries larger
 *   than `maxTotalBytes` together: PC_SCAN_FILE_TOO_LARGE;
 * - an entry that is not `*.json`, encrypted, compressed other than stored or deflate,
 *   with a wrong CRC-32 or not UTF-8; a file that is not a zip: PC_SCAN_VULNDB_INVALID.
 *
 * yauzl parses the central directory and the local headers (with its bounds checks) from
 * a reader that keeps a few aligned blocks of the file in memory, so the many small reads
 * of a zip of 10^5 entries do not each go through the thread pool. An entry's compressed
 * data, once its sizes passed the checks, is read in one piece and inflated with a hard
 * output limit (zlib's maxOutputLength): a bomb cannot make it allocate more than the
 * entry declares.
 */
import { createHash } from "node:crypto";
import { close as closeCb, constants, fstat as fstatCb, open as openCb, read as readCb } from "node:fs";
import { Readable } from "node:stream";
import { crc32, inflateRawSync } from "node:zlib";
import yauzl from "yauzl";
import { pcError, PortcullisError } from "../../core/index.js";
import {
  countEntry,
  decode,
  shown,
  unsafeEntryName,
  where,
  type VulnDbArchiveLimits,
  type VulnDbInputFile,
  type VulnDbReadTotals,
} from "./vulndb-archive.js";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MADE_ON_UNIX = 3;
const BLOCK = 256 * 1024;
const BLOCKS_KEPT = 16;
const HASH_CHUNK = 1024 * 1024;

function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    readCb(fd, buffer, 0, buffer.length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/**
 * A yauzl reader over a file descriptor that keeps the last BLOCKS_KEPT aligned blocks.
 * A zip is read in two sequential streams (the central directory at the end, the local
 * headers and data from the start), so a small cache serves nearly every read.
 */
class BlockReader extends yauzl.RandomAccessReader {
  private readonly blocks = new Map<number, Promise<Buffer>>();

  constructor(
    private readonly fd: number,
    readonly size: number,
  ) {
    super();
  }

  private block(index: number): Promise<Buffer> {
    let b = this.blocks.get(index);
    if (b !== undefined) {
      this.blocks.delete(index);
      this.blocks.set(index, b);
      return b;
    }
    const start = index * BLOCK;
    const buf = Buffer.allocUnsafe(Math.min(BLOCK, this.size - start));
    b = readAt(this.fd, buf, start).then((n) => buf.subarray(0, n));
    b.catch(() => this.blocks.delete(index));
    this.blocks.set(index, b);
    while (this.blocks.size > BLOCKS_KEPT) this.blocks.delete(this.blocks.keys().next().value as number);
    return b;
  }

  /** `length` bytes from `position`; fewer only at the end of the file. */
  async readRange(position: number, length: number): Promise<Buffer> {
    const end = Math.min(position + length, this.size);
    if (end <= position) return Buffer.alloc(0);
    if (end - position > BLOCK) {
      const buf = Buffer.allocUnsafe(end - position);
      let off = 0;
      while (off < buf.length) {
        const n = await readAt(this.fd, buf.subarray(off), position + off);
        if (n === 0) break;
        off += n;
      }
      return buf.subarray(0, off);
    }
    const first = Math.floor(position / BLOCK);
    const last = Math.floor((end - 1) / BLOCK);
    if (first === last) {
      const b = await this.block(first);
      return b.subarray(position - first * BLOCK, end - first * BLOCK);
    }
    const parts: Buffer[] = [];
    for (let i = first; i <= last; i++) {
      const b = await this.block(i);
      const from = i === first ? position - i * BLOCK : 0;
      const to = i === last ? end - i * BLOCK : b.length;
      parts.push(b.subarray(from, to));
    }
    return Buffer.concat(parts);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    this.readRange(position, length).then(
      (b) => {
        if (b.length < length) return callback(new Error("unexpected end of file"));
        b.copy(buffer, offset);
        callback(null);
      },
      (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
    );
  }

  override _readStreamForRange(start: number, end: number): Readable {
    const self = this;
    return Readable.from(
      (async function* () {
        yield await self.readRange(start, end - start);
      })(),
    );
  }

  override close(callback: (err: Error | null) => void): void {
    closeCb(this.fd, (err) => callback(err));
  }

  /** SHA-256 of the whole file, read in large chunks. */
  async sha256(): Promise<string> {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    for (let pos = 0; pos < this.size; ) {
      const n = await readAt(this.fd, buf, pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
    return hash.digest("hex");
  }
}

function openReader(path: string): Promise<BlockReader> {
  return new Promise((resolve, reject) =>
    openCb(path, constants.O_RDONLY, (err, fd) => {
      if (err) return reject(err);
      fstatCb(fd, (err2, st) => {
        if (err2 || !st.isFile()) {
          closeCb(fd, () => reject(err2 ?? new Error("not a regular file")));
          return;
        }
        resolve(new BlockReader(fd, st.size));
      });
    }),
  );
}

function zipOver(reader: BlockReader): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromRandomAccessReader(
      reader,
      reader.size,
      { autoClose: false, lazyEntries: true, decodeStrings: false, validateEntrySizes: true, strictFileNames: true },
      (err, zip) => (err ? reject(err) : resolve(zip)),
    );
  });
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const onEntry = (e: yauzl.Entry) => done(() => resolve(e));
    const onEnd = () => done(() => resolve(undefined));
    const onError = (err: Error) => done(() => reject(err));
    const done = (then: () => void) => {
      zip.off("entry", onEntry);
      zip.off("end", onEnd);
      zip.off("error", onError);
      then();
    };
    zip.on("entry", onEntry);
    zip.on("end", onEnd);
    zip.on("error", onError);
    zip.readEntry();
  });
}

function zipError(input: string, e: unknown): PortcullisError {
  if (e instanceof PortcullisError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return pcError("PC_SCAN_VULNDB_INVALID", `${input}: not a readable zip archive (${message})`, e);
}

/** The entry's name as stored, and as its Unicode path extra field gives it; both are checked. */
function entryNames(entry: yauzl.Entry): string[] {
  const raw = entry.fileNameRaw;
  const plain = (entry.generalPurposeBitFlag & 0x800) !== 0 ? raw.toString("utf8") : raw.toString("latin1");
  const decoded = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, true);
  return decoded === plain ? [plain] : [decoded, plain];
}

function entryKind(entry: yauzl.Entry, name: string): "file" | "dir" | "link" | "other" {
  const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (entry.versionMadeBy >> 8 === MADE_ON_UNIX && mode !== 0) {
    if (mode === S_IFLNK) return "link";
    if (mode === S_IFDIR) return "dir";
    if (mode !== S_IFREG) return "other";
  }
  // MS-DOS attribute 0x10: a directory.
  if (name.endsWith("/") || (entry.externalFileAttributes & 0x10) !== 0) return "dir";
  return "file";
}

/** The entry's data, inflated, at most its declared size (checked against limits before). */
async function entryData(zip: yauzl.ZipFile, reader: BlockReader, entry: yauzl.Entry, at: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
    raw = await reader.readRange(fileDataStart, entry.compressedSize);
  } catch (e) {
    throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: cannot be read (${e instanceof Error ? e.message : String(e)})`, e);
  }
  if (raw.length !== entry.compressedSize) throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: truncated`);
  if (entry.compressionMethod === 0) return raw;
  try {
    return inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError) {
      throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: inflates to more than its declared ${entry.uncompressedSize} bytes`, e);
    }
    throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: cannot be inflated (${e instanceof Error ? e.message : String(e)})`, e);
  }
}

/**
 * The `*.json` entries of the zip at `input`, in archive order. `digest` receives the
 * SHA-256 of the file before the first entry is read.
 */
export async function* readZipInput(
  input: string,
  limits: VulnDbArchiveLimits,
  totals: VulnDbReadTotals,
  digest: (hex: string) => void,
): AsyncGenerator<VulnDbInputFile> {
  let reader: BlockReader;
  try {
    reader = await openReader(input);
  } catch (e) {
    throw pcError("PC_SCAN_VULNDB_INVALID", `${input}: cannot be read`, e);
  }
  // yauzl closes the reader (and the descriptor) when the zip is closed; until it has one, it is ours.
  let zip: yauzl.ZipFile | undefined;
  try {
    digest(await reader.sha256());
    try {
      zip = await zipOver(reader);
    } catch (e) {
      throw zipError(input, e);
    }
    if (totals.entries + zip.entryCount > limits.maxEntries) {
      throw pcError("PC_SCAN_FILE_TOO_LARGE", `${input}: ${zip.entryCount} entries, more than the ${limits.maxEntries} files read per import`);
    }
    let compressedTotal = 0;
    for (;;) {
      let entry: yauzl.Entry | undefined;
      try {
        entry = await nextEntry(zip);
      } catch (e) {
        throw zipError(input, e);
      }
      if (entry === undefined) break;
      const names = entryNames(entry);
      const name = names[0] as string;
      const at = where(shown(name), input);
      for (const n of names) {
        const why = unsafeEntryName(n);
        if (why !== undefined) throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${where(shown(n), input)}: ${why}`);
      }
      const kind = entryKind(entry, name);
      if (kind === "link") throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: a symbolic link`);
      if (kind === "other") throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: neither a file nor a directory`);
      compressedTotal += entry.compressedSize;
      if (compressedTotal > zip.fileSize) throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: its data overlaps other entries'`);
      if (kind === "dir") {
        if (entry.uncompressedSize !== 0) throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: a directory with data`);
        continue;
      }
      if (!name.toLowerCase().endsWith(".json")) throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: not an OSV record (*.json)`);
      if (entry.isEncrypted()) throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: encrypted`);
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: compression method ${entry.compressionMethod} (only stored and deflate are read)`);
      }
      countEntry(totals, limits, entry.uncompressedSize, at);
      if (entry.compressionMethod === 0 && entry.compressedSize !== entry.uncompressedSize) {
        throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: a stored entry whose sizes differ`);
      }
      if (entry.compressionMethod === 8 && entry.compressedSize > limits.maxEntryBytes + 65536) {
        throw pcError("PC_SCAN_FILE_TOO_LARGE", `${at}: ${entry.compressedSize} compressed bytes, more than the ${limits.maxEntryBytes} read per file`);
      }
      if (entry.uncompressedSize > limits.ratioFloorBytes) {
        if (entry.compressedSize === 0 || entry.uncompressedSize / entry.compressedSize > limits.maxRatio) {
          const ratio = entry.compressedSize === 0 ? "∞" : Math.round(entry.uncompressedSize / entry.compressedSize).toString();
          throw pcError("PC_SCAN_ARCHIVE_UNSAFE", `${at}: compression ratio ${ratio}:1, above ${limits.maxRatio}:1`);
        }
      }
      const bytes = await entryData(zip, reader, entry, at);
      if (bytes.length !== entry.uncompressedSize) {
        throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: ${bytes.length} bytes, not the ${entry.uncompressedSize} it declares`);
      }
      if (crc32(bytes) >>> 0 !== entry.crc32 >>> 0) throw pcError("PC_SCAN_VULNDB_INVALID", `${at}: CRC-32 mismatch`);
      yield { location: at, text: decode(bytes, at) };
    }
  } finally {
    if (zip !== undefined) zip.close();
    else reader.close(() => undefined);
  }
}
