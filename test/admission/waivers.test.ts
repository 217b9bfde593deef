/**
 * The waiver service on a real SQLite store, with a manual clock: every bad input is
 * refused with PC_ADMISSION_WAIVER_INVALID naming the field; creation and revocation are
 * audited in their transaction; waivers stop applying the instant they expire or are
 * revoked (in the store's filter, in the chain's own check, and in listings); and a
 * waiver applies only to its own namespace, deployment, image digest and findings.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { evaluate, WaiverService, type ScanHook, type WaiverInput } from "../../src/admission/index.js";
import { AuditLog } from "../../src/audit/index.js";
import { ManualClock } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { expectRefusal } from "../support/refusal.js";
import { attrs, D, E, policySet, policyYaml } from "./fixture.js";
import { finding, scanResult } from "./scanner/scanner-support.js";

const TD = "example.test";
const START = Date.parse("2026-06-01T00:00:00.000Z");
const DAY = 86_400_000;
const SEC = { identity: "user:sec", serial: "0a", requestId: "req-1", sourceAddress: "127.0.0.1" };

let tmp: ReturnType<typeof tempDir>;
let store: Store;
let clock: ManualClock;
let svc: WaiverService;

beforeEach(() => {
  tmp = tempDir("portcullis-waivers-");
  store = Store.open(tmp.dir);
  clock = new ManualClock(START);
  const log = new AuditLog(store, clock, { trustDomain: TD, hmacKey: randomBytes(32) });
  log.genesis(TD, "SHA256:00");
  for (const name of ["payments", "billing"]) store.namespaces.insert({ name, labels: {}, createdAt: START, createdBy: "user:admin" });
  svc = new WaiverService(store, log, clock);
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

const good = (o: Partial<WaiverInput> = {}): WaiverInput => ({
  namespace: "payments",
  check: "image-reference",
  owner: "user:alice",
  justification: "vendor image only ships tags until Q3",
  ticket: "SEC-123",
  expires: "30d",
  ...o,
});

function events(type: string): { actor: string; target: string; namespace: string; reason: string; request_id: string }[] {
  return store.db.prepare("SELECT actor, target, namespace, reason, request_id FROM access_events WHERE type = ? ORDER BY id").all(type) as never;
}

/** A tag reference: image-reference (requireDigest) denies it; the nodes hold image D. */
const TAGGED = { spec: { image: "registry.corp.example/team/web:1.2" }, image: { reference: "registry.corp.example/team/web:1.2", idsByNode: { "node-1": D } } };
const REFERENCE_ONLY = policySet(policyYaml("p", "image-reference: { mode: enforce }"));

describe("create: validation", () => {
  const cases: [string, Partial<WaiverInput>, string, RegExp][] = [
    ["expiry more than 90 days away", { expires: "91d" }, "expires", /at most 90 days/],
    ["expiry 90 days and a second away (ISO)", { expires: new Date(START + 90 * DAY + 1_000).toISOString() }, "expires", /at most 90 days/],
    ["expiry in the past (ISO)", { expires: "2026-05-31T23:59:59Z" }, "expires", /in the future/],
    ["expiry now", { expires: new Date(START).toISOString() }, "expires", /in the future/],
    ["expiry that is neither a duration nor a time", { expires: "next week" }, "expires", /duration/],
    ["a check that is not known", { check: "no-such-check" }, "check", /not a known check/],
    ["the chain's own 'policy' denial", { check: "policy" }, "check", /not a known check/],
    ["an image digest that is not sha256:<64 hex>", { imageDigest: "sha256:abc" }, "imageDigest", /sha256/],
    ["an image tag instead of a digest", { imageDigest: "busybox:latest" }, "imageDigest", /sha256/],
    ["a deployment name that is not a DNS label", { deployment: "Web_1" }, "deployment", /DNS label/],
    ["a missing justification", { justification: "" }, "justification", /10 to 2000/],
    ["a justification too short", { justification: "because" }, "justification", /10 to 2000/],
    ["a justification too long", { justification: "x".repeat(2001) }, "justification", /10 to 2000/],
    ["a missing ticket", { ticket: "" }, "ticket", /1 to 200/],
    ["a ticket with spaces", { ticket: "SEC 123" }, "ticket", /1 to 200/],
    ["an owner that is not an identity", { owner: "alice" }, "owner", /identity/],
    ["a finding that is not an id", { findings: ["not an id"] }, "findings", /CVE-2024-1234/],
    ["more than 100 findings", { findings: Array.from({ length: 101 }, (_, i) => `CVE-2024-${1000 + i}`) }, "findings", /at most 100/],
    ["an empty findings list", { findings: [] }, "findings", /non-empty/],
    ["a namespace that does not exist", { namespace: "nowhere" }, "namespace", /no namespace nowhere/],
  ];
  it.each(cases)("refuses %s", (_what, change, field, reason) => {
    const e = expectRefusal(() => svc.create(good(change), SEC), "PC_ADMISSION_WAIVER_INVALID");
    expect(e.detail).toMatch(new RegExp(`^${field}: `));
    expect(e.detail).toMatch(reason);
    expect(e.status).toBe(400);
    expect(store.waivers.listByNamespace("payments")).toEqual([]);
    expect(events("admission.waiver_created")).toEqual([]);
  });

  it("accepts 90 days exactly, an ISO time, a digest and findings; stores them and audits the creation", () => {
    const w = svc.create(good({ expires: "90d", imageDigest: D, deployment: "web", findings: ["CVE-2024-1234", "CVE-2024-1234", "GHSA-abcd-efgh-ijkl"] }), SEC);
    expect(w).toMatchObject({
      namespace: "payments",
      check: "image-reference",
      deployment: "web",
      imageDigest: D,
      findings: ["CVE-2024-1234", "GHSA-abcd-efgh-ijkl"],
      owner: "user:alice",
      ticket: "SEC-123",
      createdBy: "user:sec",
      createdAt: new Date(START).toISOString(),
      expiresAt: new Date(START + 90 * DAY).toISOString(),
      status: "active",
    });
    expect(w.id).toMatch(/^wv-[0-9a-f]{16}$/);
    expect(svc.get(w.id)).toEqual(w);
    const iso = svc.create(good({ expires: "2026-06-08T12:00:00Z" }), SEC);
    expect(iso.expiresAt).toBe("2026-06-08T12:00:00.000Z");
    expect(events("admission.waiver_created")).toEqual([
      { actor: "user:sec", target: w.id, namespace: "payments", reason: `check:image-reference expires:${w.expiresAt}`, request_id: "req-1" },
      { actor: "user:sec", target: iso.id, namespace: "payments", reason: `check:image-reference expires:${iso.expiresAt}`, request_id: "req-1" },
    ]);
  });

  it("keeps waivers: the table refuses deleting one and changing one except to revoke it once", () => {
    const w = svc.create(good(), SEC);
    expect(() => store.db.prepare("DELETE FROM waivers WHERE id = ?").run(w.id)).toThrow(/waivers are kept/);
    expect(() => store.db.prepare("UPDATE waivers SET expires_at = expires_at + 1 WHERE id = ?").run(w.id)).toThrow(/only be revoked/);
    svc.revoke(w.id, SEC);
    expect(() => store.db.prepare("UPDATE waivers SET revoked_by = 'user:x' WHERE id = ?").run(w.id)).toThrow(/only be revoked/);
  });
});

describe("in force: expiry and revocation", () => {
  it("a waiver applies until the instant it expires, then neither the store, the chain nor the listing has it", async () => {
    const w = svc.create(good({ deployment: "web", expires: "1h" }), SEC);
    const a = attrs(TAGGED);
    let now = clock.now();
    const before = await evaluate(a, REFERENCE_ONLY, { now, waivers: svc.active("payments", now) });
    expect(before.allowed).toBe(true);
    expect(before.denials).toEqual([]);
    expect(before.warnings).toMatchObject([{ check: "image-reference", allowed: false, waiver: w.id, mode: "enforce" }]);
    expect(before.results.find((r) => r.check === "image-reference")?.waiver).toBe(w.id);

    clock.advance(3_600_000 - 1);
    now = clock.now();
    expect(svc.active("payments", now).map((x) => x.id)).toEqual([w.id]);
    clock.advance(1); // exactly at the expiry: no longer in force
    now = clock.now();
    expect(svc.active("payments", now)).toEqual([]);
    const after = await evaluate(a, REFERENCE_ONLY, { now, waivers: svc.active("payments", now) });
    expect(after.allowed).toBe(false);
    expect(after.denials).toMatchObject([{ check: "image-reference", reason: expect.any(String) }]);
    expect(after.denials[0]?.waiver).toBeUndefined();
    // The chain judges the expiry itself: a waiver read a moment earlier does not carry over.
    const stale = svc.active("payments", new Date(START));
    expect(stale.map((x) => x.id)).toEqual([w.id]);
    expect((await evaluate(a, REFERENCE_ONLY, { now, waivers: stale })).allowed).toBe(false);

    expect(svc.list("payments")).toEqual([]);
    expect(svc.list("payments", { includeExpired: true })).toMatchObject([{ id: w.id, status: "expired" }]);
    expect(svc.get(w.id).status).toBe("expired");
  });

  it("revoking stops a waiver at once, is audited, and cannot be done twice", async () => {
    const w = svc.create(good(), SEC);
    clock.advance(1_000);
    const r = svc.revoke(w.id, { identity: "user:sec2" }, "payments");
    expect(r).toMatchObject({ id: w.id, status: "revoked", revokedBy: "user:sec2", revokedAt: new Date(START + 1_000).toISOString() });
    const now = clock.now();
    expect(svc.active("payments", now)).toEqual([]);
    expect((await evaluate(attrs(TAGGED), REFERENCE_ONLY, { now, waivers: svc.active("payments", now) })).allowed).toBe(false);
    expect(svc.list("payments")).toEqual([]);
    expect(svc.list("payments", { includeExpired: true })).toMatchObject([{ id: w.id, status: "revoked" }]);
    expectRefusal(() => svc.revoke(w.id, SEC), "PC_ADMISSION_WAIVER_NOT_FOUND");
    expect(events("admission.waiver_revoked")).toEqual([{ actor: "user:sec2", target: w.id, namespace: "payments", reason: "check:image-reference", request_id: null }]);
  });

  it("get and revoke find a waiver only in its own namespace", () => {
    const w = svc.create(good(), SEC);
    expectRefusal(() => svc.get(w.id, "billing"), "PC_ADMISSION_WAIVER_NOT_FOUND");
    expectRefusal(() => svc.revoke(w.id, SEC, "billing"), "PC_ADMISSION_WAIVER_NOT_FOUND");
    expectRefusal(() => svc.get("wv-0000000000000000"), "PC_ADMISSION_WAIVER_NOT_FOUND");
    expect(svc.get(w.id, "payments").status).toBe("active");
  });

  it("list --expiring shows only the waivers in force that lapse within the window, soonest first", () => {
    const soon = svc.create(good({ expires: "2d", ticket: "SEC-1" }), SEC);
    const edge = svc.create(good({ expires: "7d", ticket: "SEC-2" }), SEC);
    const later = svc.create(good({ expires: "8d", ticket: "SEC-3" }), SEC);
    const revoked = svc.create(good({ expires: "1d", ticket: "SEC-4" }), SEC);
    svc.revoke(revoked.id, SEC);
    svc.create(good({ namespace: "billing", expires: "1d" }), SEC);
    expect(svc.list("payments", { expiringWithinMs: 7 * DAY }).map((w) => w.id)).toEqual([soon.id, edge.id]);
    expect(svc.list("payments").map((w) => w.id)).toEqual([soon.id, edge.id, later.id]);
    clock.advance(3 * DAY);
    expect(svc.list("payments", { expiringWithinMs: 7 * DAY }).map((w) => w.id)).toEqual([edge.id, later.id]);
    expect(svc.list("payments", { includeExpired: true }).map((w) => [w.id, w.status])).toEqual([
      [revoked.id, "revoked"],
      [soon.id, "expired"],
      [edge.id, "active"],
      [later.id, "active"],
    ]);
  });
});

describe("scope: a waiver applies to its own namespace, deployment, image and findings only", () => {
  async function judged(change: Partial<WaiverInput>, a = attrs(TAGGED)) {
    const w = svc.create(good(change), SEC);
    const now = clock.now();
    const d = await evaluate(a, REFERENCE_ONLY, { now, waivers: svc.active(a.namespace.name, now) });
    return { w, d };
  }

  it("a waiver for the deployment applies; one for another deployment does not", async () => {
    expect((await judged({ deployment: "web" })).d.allowed).toBe(true);
    svc.revoke(store.waivers.listByNamespace("payments")[0]!.id, SEC);
    const other = await judged({ deployment: "api" });
    expect(other.d.allowed).toBe(false);
    expect(other.d.denials.map((x) => x.check)).toEqual(["image-reference"]);
  });

  it("a waiver for the image digest the nodes hold applies; one for another digest does not", async () => {
    const mine = await judged({ imageDigest: D });
    expect(mine.d.warnings.map((x) => x.waiver)).toEqual([mine.w.id]);
    svc.revoke(mine.w.id, SEC);
    expect((await judged({ imageDigest: E })).d.allowed).toBe(false);
  });

  it("a waiver of another namespace does not apply, even when handed to the chain", async () => {
    svc.create(good({ namespace: "billing" }), SEC);
    const now = clock.now();
    const foreign = svc.active("billing", now);
    expect(foreign).toHaveLength(1);
    const d = await evaluate(attrs(TAGGED), REFERENCE_ONLY, { now, waivers: foreign });
    expect(d.allowed).toBe(false);
  });

  it("a waiver of another check does not apply", async () => {
    expect((await judged({ check: "hardening" })).d.allowed).toBe(false);
  });

  it("a waiver with findings exempts only the named findings of the scan", async () => {
    const found = scanResult([
      finding({ id: "CVE-2024-1111", package: "openssl", installed: "3.0.1", severity: { level: "critical" } }),
      finding({ id: "CVE-2024-2222", package: "zlib", installed: "1.2", severity: { level: "high" } }),
    ], { imageId: D });
    const scan: ScanHook = { scan: async () => found };
    const set = policySet(policyYaml("p", "image-scan: { mode: enforce }"));
    const w = svc.create(good({ check: "image-scan", findings: ["CVE-2024-1111"] }), SEC);
    const now = clock.now();
    const a = attrs();
    const d = await evaluate(a, set, { now, waivers: svc.active("payments", now), hooks: { scan } });
    expect(d.allowed).toBe(false);
    expect(d.denials.map((x) => x.detail.split(" in ")[0])).toEqual(["CVE-2024-2222"]);
    expect(d.warnings.map((x) => [x.detail.split(" in ")[0], x.waiver])).toEqual([["CVE-2024-1111", w.id]]);
    svc.create(good({ check: "image-scan", findings: ["CVE-2024-2222"] }), SEC);
    const both = await evaluate(a, set, { now, waivers: svc.active("payments", now), hooks: { scan } });
    expect(both.allowed).toBe(true);
  });
});
