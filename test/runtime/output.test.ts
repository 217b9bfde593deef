import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { OutputCollector, demuxDockerStream } from "../../src/runtime/output.js";

function frame(type: number, payload: string): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

describe("demuxDockerStream", () => {
  it("splits stdout and stderr frames, also when frames are cut across chunks", async () => {
    const stream = new PassThrough();
    const out = new OutputCollector(1024);
    const err = new OutputCollector(1024);
    const done = demuxDockerStream(stream, out, err);
    const bytes = Buffer.concat([frame(1, "hello "), frame(2, "oops\n"), frame(1, "world\n"), frame(0, "stdin?")]);
    for (let i = 0; i < bytes.length; i += 3) stream.write(bytes.subarray(i, i + 3));
    stream.end();
    await done;
    expect(out.text()).toBe("hello world\n");
    expect(err.text()).toBe("oops\n");
    expect(out.truncated || err.truncated).toBe(false);
  });

  it("keeps at most the limit and says so", async () => {
    const stream = new PassThrough();
    const out = new OutputCollector(5);
    const err = new OutputCollector(5);
    const done = demuxDockerStream(stream, out, err);
    stream.end(Buffer.concat([frame(1, "abc"), frame(1, "defgh"), frame(1, "ij")]));
    await done;
    expect(out.text()).toBe("abcde");
    expect(out.truncated).toBe(true);
    expect(err.truncated).toBe(false);
  });
});
