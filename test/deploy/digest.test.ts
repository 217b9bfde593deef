import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { manifestDigest, parseManifest } from "../../src/deploy/index.js";
import { goodManifest } from "./fixture.js";

/** The same object with its keys in reverse order, at every level. */
function reversed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversed);
  if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)]));
  return v;
}

describe("manifestDigest", () => {
  it("is the SHA-256 of the RFC 8785 form", () => {
    const jcs = '{"a":[1,2.5,"é"],"b":{"c":null,"d":true},"e":1e+21}';
    const expected = `sha256:${createHash("sha256").update(jcs, "utf8").digest("hex")}`;
    expect(manifestDigest({ e: 1e21, b: { d: true, c: null }, a: [1, 2.5, "é"] })).toBe(expected);
  });

  it("does not change when keys are reordered", () => {
    const m = goodManifest();
    const r = reversed(m);
    expect(JSON.stringify(r)).not.toBe(JSON.stringify(m));
    expect(manifestDigest(r)).toBe(manifestDigest(m));
  });

  it("changes when a value changes", () => {
    const m = goodManifest();
    const other = { ...m, spec: { ...m.spec, replicas: 3 } };
    expect(manifestDigest(other)).not.toBe(manifestDigest(m));
    expect(manifestDigest(m)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("is the same for a manifest written as YAML, as JSON, and as reordered JSON", () => {
    const yaml = parseManifest(`
kind: Deployment
apiVersion: portcullis/v1
metadata: { namespace: payments, name: web }
spec:
  resources: { pids: 64, memory: 64Mi, cpus: 1.0 }
  image: web:1
`).manifest;
    const json = parseManifest('{"apiVersion":"portcullis/v1","kind":"Deployment","metadata":{"name":"web","namespace":"payments"},"spec":{"image":"web:1","resources":{"cpus":1,"memory":"64Mi","pids":64}}}').manifest;
    expect(manifestDigest(yaml)).toBe(manifestDigest(json));
    expect(manifestDigest(json)).toBe(manifestDigest(reversed(json)));
  });
});
