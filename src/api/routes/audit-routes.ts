import { PassThrough } from "node:stream";
import type { ExportFilter } from "../../audit/index.js";
import { exportBundle, exportCsv, normaliseFilter } from "../../audit/index.js";
import { CLUSTER_WIDE, defineRoute, S, type RouteDef } from "../route.js";
import { actorOf, type RouteContext } from "./context.js";

const STREAM_POLL_MS = 250;
const STREAM_BATCH = 500;

/** The audit log for auditors and SIEMs: the verifiable export and the live stream. */
export function auditRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/audit/export",
      authz: { kind: "rbac", resource: "audit", action: "export", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Stream the audit log: a verifiable JSONL bundle, or CSV for people (not verifiable)",
        produces: "application/x-ndjson",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            since: { type: "string", maxLength: 40 },
            until: { type: "string", maxLength: 40 },
            actor: S.identity,
            action: { type: "string", minLength: 1, maxLength: 120 },
            namespace: { type: "string", minLength: 1, maxLength: 63 },
            outcome: { type: "string", enum: ["allowed", "denied", "error"] },
            format: { type: "string", enum: ["jsonl", "csv"] },
          },
        },
        response: { 200: { type: "string" } },
      },
      handler: async (req, reply) => {
        const q = req.query as ExportFilter & { format?: "jsonl" | "csv" };
        const { format = "jsonl", ...rest } = q;
        const filter = normaliseFilter(rest);
        // Reading the log is logged, before a byte of it leaves; if that fails, nothing does.
        ctx.audit.record({
          type: "audit.export",
          outcome: "allowed",
          ...actorFields(actorOf(req)),
          route: "audit:export",
          resource: "audit",
          reason: format,
          target: Object.entries(filter).map(([k, v]) => `${k}=${String(v)}`).join(" ") || "all",
        });
        // The tail is signed first, so the range ends at a checkpoint; then the export reads
        // on its own connection, from a snapshot, at the client's pace.
        if (format === "jsonl") await ctx.audit.checkpointNow();
        const reader = ctx.openAuditReader();
        const out = new PassThrough();
        const run = format === "csv" ? exportCsv(reader.source, filter, out) : exportBundle(reader.source, filter, out);
        run.then(
          () => out.end(),
          (e: unknown) => {
            req.log.error({ err: String(e) }, "audit export failed part-way");
            out.destroy(e instanceof Error ? e : new Error(String(e)));
          },
        ).finally(() => reader.close());
        reply.type(format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson");
        return out;
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/audit/stream",
      authz: { kind: "rbac", resource: "audit", action: "read", namespace: CLUSTER_WIDE },
      schema: {
        summary: "Follow new audit entries as server-sent events (event id = seq; resumes after Last-Event-ID)",
        produces: "text/event-stream",
        querystring: { type: "object", additionalProperties: false, properties: { after: { type: "string", pattern: "^[0-9]{1,15}$" } } },
        response: { 200: { type: "string" } },
      },
      handler: async (req, reply) => {
        const lastId = req.headers["last-event-id"];
        const after = (req.query as { after?: string }).after ?? (typeof lastId === "string" && /^[0-9]{1,15}$/.test(lastId) ? lastId : undefined);
        let next = after !== undefined ? Number(after) + 1 : ctx.audit.head().seq + 1;
        const out = new PassThrough();
        const send = () => {
          const head = ctx.audit.head().seq;
          if (head < next) return;
          const to = Math.min(head, next + STREAM_BATCH - 1);
          for (const e of ctx.audit.entries(next, to)) {
            out.write(`id: ${e.head.seq}\nevent: entry\ndata: ${JSON.stringify(e)}\n\n`);
            next = e.head.seq + 1;
          }
        };
        const timer = setInterval(() => {
          try {
            send();
          } catch (e) {
            out.destroy(e instanceof Error ? e : new Error(String(e)));
          }
        }, STREAM_POLL_MS);
        const stop = () => clearInterval(timer);
        req.raw.on("close", stop);
        out.on("close", stop);
        out.write(": portcullis audit stream\n\n");
        reply.type("text/event-stream").header("cache-control", "no-store");
        return out;
      },
    }),
  ];
}

function actorFields(a: ReturnType<typeof actorOf>) {
  return { actor: a.identity, actorSerial: a.serial, sourceAddress: a.sourceAddress, requestId: a.requestId };
}
