/**
 * Stream plumbing for the image reader: tar entries from a byte stream (tar-stream), gzip
 * (node:zlib), peeking at magic bytes without losing them, bounded reads. Nothing here
 * buffers more than one entry's wanted content.
 */
import { createGunzip } from "node:zlib";
import { pipeline } from "node:stream";
import { extract as tarExtract, type Header } from "tar-stream";
import { pcError } from "../../core/index.js";

export const SNIFF_BYTES = 512;

export type Chunks = AsyncIterable<Uint8Array>;


export const isGzip = (b: Buffer) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
export const isZstd = (b: Buffer) => b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528;
export function isTar(b: Buffer): boolean {
  if (b.length < SNIFF_BYTES) return false;
  if (b.toString("latin1", 257, 262) === "ustar") return true;
  return b.subarray(0, SNIFF_BYTES).every((x) => x === 0); // an empty tar: only its end marker
}
export function looksLikeJson(b: Buffer): boolean {
  const s = b.toString("latin1", 0, Math.min(b.length, 64)).trimStart();
  return s.startsWith("{") || s.startsWith("[");
}

export type TarEntry = AsyncIterable<Buffer> & { header: Header };

export async function* bytes(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (typeof chunk === "string") throw pcError("PC_SCAN_IMAGE_UNREADABLE", "the archive stream is not binary");
    yield chunk;
  }
}

/** The first `n` bytes (fewer at the end), and the whole stream again. */
export async function peek(source: AsyncIterable<Uint8Array>, n: number): Promise<{ head: Buffer; rest: Chunks }> {
  const it = source[Symbol.asyncIterator]();
  const held: Uint8Array[] = [];
  let have = 0;
  let ended = false;
  while (have < n) {
    const r = await it.next();
    if (r.done === true) {
      ended = true;
      break;
    }
    held.push(r.value);
    have += r.value.byteLength;
  }
  const head = Buffer.concat(held);
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done === true) return;
      yield r.value;
    }
  }
  return { head, rest: rest() };
}

export function gunzip(source: Chunks): Chunks {
  return pipeline(source, createGunzip(), () => {}) as unknown as Chunks;
}

/** The entries of a tar stream; the consumer reads or drains each body before the next. */
export async function* tarEntries(source: Chunks): AsyncGenerator<TarEntry> {
  const ex = tarExtract();
  let finished = false;
  const feeding = (async () => {
    try {
      for await (const chunk of source) {
        if (ex.destroying) return;
        if (!ex.write(chunk)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              ex.off("drain", done);
              ex.off("close", done);
              resolve();
            };
            ex.on("drain", done);
            ex.on("close", done);
          });
        }
      }
      ex.end(undefined);
    } catch (e) {
      ex.destroy(e as Error);
    }
  })();
  try {
    for await (const entry of ex) yield entry as unknown as TarEntry;
    finished = true;
  } finally {
    if (!finished) {
      ex.destroy();
      void feeding;
    } else {
      await feeding;
    }
  }
}

export async function drain(body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of body) void _;
}

export async function collect(body: AsyncIterable<Uint8Array>, max: number, what: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.byteLength;
    if (n > max) throw pcError("PC_SCAN_FILE_TOO_LARGE", `${what} is larger than ${max} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts, n);
}
