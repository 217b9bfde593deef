/**
 * GET /v1/audit/stream (server-sent events) over real mTLS, as a SIEM follows it: an
 * auditor receives each new entry as `id: <seq>` / `event: entry` with consecutive seqs,
 * resumes with Last-Event-ID (or ?after=) and gets exactly the entries after it; a
 * developer is refused.
 */
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEntry } from "../../src/audit/index.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { waitFor } from "./api-support.js";
import { openGet, setUpAuditWorld, type AuditWorld } from "./audit-support.js";
import { call, expectCode } from "./rbac-support.js";

interface Frame {
  readonly id: number;
  readonly event: string;
  readonly entry: AuditEntry;
}

/** Collects the SSE frames of a response as they arrive. */
function follow(res: IncomingMessage): { frames: Frame[]; comments: string[]; close: () => void } {
  const frames: Frame[] = [];
  const comments: string[] = [];
  let buf = "";
  res.setEncoding("utf8");
  res.on("data", (c: string) => {
    buf += c;
    for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) {
          comments.push(line);
          continue;
        }
        const i = line.indexOf(": ");
        fields[line.slice(0, i)] = line.slice(i + 2);
      }
      if (fields.data === undefined) continue;
      frames.push({ id: Number(fields.id), event: fields.event as string, entry: JSON.parse(fields.data) as AuditEntry });
    }
  });
  res.on("error", () => undefined);
  return { frames, comments, close: () => res.destroy() };
}

describe("audit stream (SSE)", () => {
  let t: TestGateway;
  let w: AuditWorld;

  beforeAll(async () => {
    t = await startTestGateway();
    w = await setUpAuditWorld(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("an auditor follows new entries: consecutive seqs, event: entry, the expected types; Last-Event-ID and ?after= resume exactly after it", async () => {
    const { res } = await openGet(t, w.aud, "/v1/audit/stream");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(res.headers["cache-control"]).toBe("no-store");
    const s = follow(res);
    const startHead = t.gw.audit.head().seq;

    // Some traffic: allowed reads, a mutation, and a refusal.
    for (const [who, method, path, body] of [
      [t.admin, "GET", "/v1/whoami", undefined],
      [w.aud, "GET", "/v1/namespaces", undefined],
      [t.admin, "POST", "/v1/namespaces", { name: "streamed" }],
      [w.dev, "GET", "/v1/audit/export", undefined],
    ] as const) {
      const a = await call(t, who, method, path, body);
      expect(a.status).toBeLessThan(500);
    }
    await waitFor(
      () => {
        const reqs = s.frames.filter((f) => f.entry.head.type === "api.request");
        return reqs.some((f) => f.entry.head.actor === "user:dev" && f.entry.head.outcome === "denied") ? true : undefined;
      },
      5000,
      "the stream to deliver the developer's refusal",
    );
    s.close();

    expect(s.comments[0]).toBe(": portcullis audit stream");
    const frames = s.frames;
    expect(frames.length).toBeGreaterThanOrEqual(8);
    // The first frame is the stream's own request, recorded before its answer was released.
    expect(frames[0]?.id).toBe(startHead);
    expect(frames[0]?.entry.head).toMatchObject({ type: "api.request", actor: "user:aud", action: "GET /v1/audit/stream", outcome: "allowed" });
    frames.forEach((f, i) => {
      expect(f.event).toBe("entry");
      expect(f.id).toBe(f.entry.head.seq);
      if (i > 0) expect(f.id).toBe((frames[i - 1] as Frame).id + 1);
      // Each frame is the entry as stored, hash and all.
      expect(f.entry).toEqual([...t.gw.audit.entries(f.id, f.id)][0]);
    });
    const kinds = frames.map((f) => `${f.entry.head.type} ${f.entry.head.action ?? ""} ${f.entry.head.outcome}`);
    expect(kinds).toContain("api.request GET /v1/whoami allowed");
    expect(kinds).toContain("api.request GET /v1/namespaces allowed");
    expect(kinds).toContain("api.request POST /v1/namespaces allowed");
    expect(kinds).toContain("api.request GET /v1/audit/export denied");
    expect(frames.some((f) => f.entry.head.type === "authz.decision" && f.entry.head.actor === "user:dev" && f.entry.head.outcome === "denied")).toBe(true);

    // Resume after a frame in the middle: exactly the entries after it, from the log.
    const resumeAfter = (frames[2] as Frame).id;
    const more = await call(t, t.admin, "GET", "/v1/whoami");
    expect(more.status).toBe(200);
    t.gw.audit.flush();
    const head = t.gw.audit.head().seq;
    const expected = [...t.gw.audit.entries(resumeAfter + 1, head)];
    const resumes: { headers: Record<string, string>; path: string }[] = [
      { headers: { "last-event-id": String(resumeAfter) }, path: "/v1/audit/stream" },
      { headers: {}, path: `/v1/audit/stream?after=${resumeAfter}` },
    ];
    for (const resume of resumes) {
      const again = await openGet(t, w.aud, resume.path, resume.headers);
      expect(again.res.statusCode).toBe(200);
      const r = follow(again.res);
      await waitFor(() => (r.frames.length >= expected.length ? true : undefined), 5000, `the entries after ${resumeAfter}`);
      r.close();
      expect(r.frames[0]?.id).toBe(resumeAfter + 1);
      expect(r.frames.slice(0, expected.length).map((f) => f.entry)).toEqual(expected);
      // Whatever follows is new (this stream's own request, at least) and still consecutive.
      r.frames.forEach((f, i) => expect(f.id).toBe(resumeAfter + 1 + i));
    }
  });

  it("a developer gets 403 and no stream", async () => {
    const a = await call(t, w.dev, "GET", "/v1/audit/stream");
    expectCode(a, 403, "PC_API_FORBIDDEN");
    expect(a.text).not.toContain("event: entry");
  });
});
