/**
 * Reading a container's output: the engine multiplexes stdout and stderr on one stream
 * when the container has no TTY, each frame an 8-byte header (stream type, three zero
 * bytes, big-endian payload length) followed by the payload.
 */
import type { Readable } from "node:stream";

const HEADER_BYTES = 8;
const STDOUT = 1;
const STDERR = 2;

/** Keeps at most `limit` bytes and remembers whether it dropped any. */
export class OutputCollector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  write(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      if (chunk.length > 0) this.truncated = true;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length < chunk.length) this.truncated = true;
    this.chunks.push(Buffer.from(kept));
    this.size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/**
 * Splits a multiplexed stream into two collectors. Resolves when the stream ends,
 * closes or fails (what was read until then is kept).
 */
export function demuxDockerStream(
  stream: Readable,
  stdout: OutputCollector,
  stderr: OutputCollector,
): Promise<void> {
  let pending = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer | string) => {
    pending = Buffer.concat([pending, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)]);
    for (;;) {
      if (pending.length < HEADER_BYTES) return;
      const type = pending[0];
      const length = pending.readUInt32BE(4);
      if (pending.length < HEADER_BYTES + length) return;
      const payload = pending.subarray(HEADER_BYTES, HEADER_BYTES + length);
      if (type === STDOUT) stdout.write(payload);
      else if (type === STDERR) stderr.write(payload);
      pending = pending.subarray(HEADER_BYTES + length);
    }
  });
  return new Promise((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
}
