/**
 * readImageFiles streams: an archive far larger than the memory the read may use is
 * generated on the fly (layers before manifest.json, as Docker writes them) and read
 * while the process's buffer memory is sampled.
 */
import { createHash } from "node:crypto";
import { expect, it } from "vitest";
import { readImageFiles } from "../../../src/admission/scanner/image-layers.js";
import { inventoryOf, inventoryWanted } from "../../../src/admission/scanner/inventory.js";
import { tarOf } from "./fixtures/images/build.js";

const MiB = 1024 * 1024;

/** A ustar header block (tar-stream's own encoder, through a one-entry tar). */
async function header(name: string, size: number): Promise<Buffer> {
  // tarOf writes the header, the content padded to 512 and the end marker; keep the header.
  const one = await tarOf([{ name, content: Buffer.alloc(0) }]);
  const h = Buffer.from(one.subarray(0, 512));
  h.write(size.toString(8).padStart(11, "0") + "\0", 124, 12, "ascii");
  h.fill(" ", 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return h;
}

const padding = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/**
 * An outer archive whose one layer holds `bigBytes` of zeros (a fresh buffer per MiB, as
 * a socket would deliver them) and a dpkg status, streamed. `sample` runs per MiB.
 */
async function* hugeArchive(bigBytes: number, sample: () => void): AsyncGenerator<Uint8Array> {
  const status = Buffer.from("Package: openssl\nStatus: install ok installed\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n");
  const layerSize = 512 + bigBytes + padding(bigBytes).length + 512 + status.length + padding(status.length).length + 1024;
  const digest = createHash("sha256");
  yield await header("aaaa/layer.tar", layerSize);
  const innerHead = await header("opt/big.bin", bigBytes);
  digest.update(innerHead);
  yield innerHead;
  for (let left = bigBytes; left > 0; left -= MiB) {
    const c = Buffer.alloc(Math.min(MiB, left));
    digest.update(c);
    sample();
    yield c;
  }
  const rest = Buffer.concat([padding(bigBytes), await header("var/lib/dpkg/status", status.length), status, padding(status.length), Buffer.alloc(1024)]);
  digest.update(rest);
  yield rest;
  yield padding(layerSize);
  const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [`sha256:${digest.digest("hex")}`] } }));
  const manifest = Buffer.from(JSON.stringify([{ Config: "cfg.json", Layers: ["aaaa/layer.tar"] }]));
  yield Buffer.concat([await header("cfg.json", config.length), config, padding(config.length)]);
  yield Buffer.concat([await header("manifest.json", manifest.length), manifest, padding(manifest.length), Buffer.alloc(1024)]);
}

it("reads a 512 MiB layer without holding it in memory", async () => {
  const before = process.memoryUsage();
  let peak = 0;
  let samples = 0;
  const sample = () => {
    if (++samples % 16 !== 0) return;
    const m = process.memoryUsage();
    peak = Math.max(peak, m.arrayBuffers - before.arrayBuffers + m.heapUsed - before.heapUsed);
  };
  const view = await readImageFiles(hugeArchive(512 * MiB, sample), { wanted: inventoryWanted });
  expect(inventoryOf(view).packages.map((p) => `${p.name}@${p.version}`)).toEqual(["openssl@3.0.11-1~deb12u1"]);
  expect(view.layers[0]?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
  console.log(`peak buffer+heap growth while reading 512 MiB: ${(peak / MiB).toFixed(1)} MiB`);
  // Held in full it would be over 512 MiB; what is seen is garbage not yet collected.
  expect(peak).toBeLessThan(128 * MiB);
}, 120_000);
