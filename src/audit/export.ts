import { once } from "node:events";
import { pcError } from "../core/index.js";
import {
  BUNDLE_FORMAT,
  DEPLOY_ACCEPTED_TYPE,
  matchesFilter,
  signedRequestLine,
  ZERO_HASH,
  type AuditEntry,
  type AuditSource,
  type BundleLine,
  type EntryDeploy,
  type ExportFilter,
} from "./format.js";

/**
 * Export of the audit log, streamed: entries are read from the source's iterator and
 * written one after the other, never collected.
 *
 * The JSONL bundle covers a contiguous seq range that ends at a signed checkpoint.
 * Within it, entries that match the filter are shown in full and every other entry is
 * shown sealed (head, body digest and links, no body), so a verifier can recompute the
 * whole chain and see from the heads that nothing matching the filter was left out.
 * After the checkpoints come the signed deploy requests received in the filter's time
 * bounds (and namespace) whose acceptance entry lies in the range: the evidence that an
 * auditor re-verifies offline.
 */

/** Where lines go: a writable stream (newline-terminated, backpressure respected) or a function (one line, no newline). */
export type ExportSink = NodeJS.WritableStream | ((line: string) => void | Promise<void>);

export interface ExportOptions {
  /**
   * Called before the range is computed, so that the log can sign a checkpoint over its
   * current end. Without it, an export whose range is not covered by a checkpoint fails
   * with PC_AUDIT_NOT_CHECKPOINTED.
   */
  readonly ensureCheckpoint?: () => void | Promise<void>;
  /** The export's creation time (default: now). */
  readonly now?: () => Date;
}

export interface ExportSummary {
  readonly from: number;
  readonly to: number;
  readonly anchor: { readonly seq: number; readonly hash: string };
  /** Entries shown in full (they match the filter). */
  readonly entries: number;
  /** Entries shown sealed. */
  readonly sealed: number;
  readonly checkpoints: number;
  /** Signed deploy requests (evidence lines). */
  readonly signedRequests: number;
}

/** The seq range an export covers; see docs/audit.md. */
export interface ExportRange {
  readonly from: number;
  readonly to: number;
}

const WRITE_CHUNK = 64 * 1024;
/** How far a signed request's receipt may precede the entry of its acceptance. */
const RECEIVED_SLACK_MS = 60_000;

/** Buffers lines into chunks and writes them with backpressure. */
class LineWriter {
  private buf: string[] = [];
  private size = 0;
  constructor(private readonly out: ExportSink) {}

  async line(text: string): Promise<void> {
    if (typeof this.out === "function") {
      await this.out(text);
      return;
    }
    this.buf.push(text, "\n");
    this.size += text.length + 1;
    if (this.size >= WRITE_CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    if (typeof this.out === "function" || this.size === 0) return;
    const chunk = this.buf.join("");
    this.buf = [];
    this.size = 0;
    const stream = this.out;
    if (!stream.write(chunk)) await once(stream as NodeJS.EventEmitter, "drain");
  }
}

function checkFilter(f: ExportFilter): void {
  for (const [k, v] of [
    ["since", f.since],
    ["until", f.until],
  ] as const) {
    if (v !== undefined && Number.isNaN(Date.parse(v))) throw pcError("PC_AUDIT_FILTER_INVALID", `${k} must be an ISO 8601 time`);
  }
  if (f.since !== undefined && f.until !== undefined && Date.parse(f.since) >= Date.parse(f.until)) throw pcError("PC_AUDIT_FILTER_INVALID", "since must be before until");
}

/** Normalises times to the log's format (ISO 8601, UTC, milliseconds) so that string comparison is time order. */
export function normaliseFilter(f: ExportFilter): ExportFilter {
  checkFilter(f);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(f) as [keyof ExportFilter, string | undefined][]) {
    if (v === undefined) continue;
    out[k] = k === "since" || k === "until" ? new Date(v).toISOString() : v;
  }
  return out as ExportFilter;
}

/**
 * The range: from the first entry at or after `since` (or 0) to the first checkpoint at
 * or after the last entry before `until` (or the log's end).
 */
export function exportRange(source: AuditSource, filter: ExportFilter): ExportRange {
  const head = source.head();
  if (head.seq < 0) throw pcError("PC_AUDIT_EMPTY");
  const from = filter.since !== undefined ? (source.firstSeqAtOrAfter(filter.since) ?? head.seq) : 0;
  let last = head.seq;
  if (filter.until !== undefined) {
    const after = source.firstSeqAtOrAfter(filter.until);
    if (after !== undefined) last = after - 1;
  }
  if (last < from) last = from;
  let to: number | undefined;
  for (const c of source.checkpoints(last)) {
    to = c.seq;
    break;
  }
  if (to === undefined || to > head.seq) {
    throw pcError("PC_AUDIT_NOT_CHECKPOINTED", `entries up to seq ${last} are needed; sign a checkpoint first`);
  }
  return { from, to };
}

function anchorOf(source: AuditSource, from: number): { seq: number; hash: string } {
  if (from === 0) return { seq: -1, hash: ZERO_HASH };
  for (const e of source.entries(from - 1, from - 1)) return { seq: e.head.seq, hash: e.hash };
  throw pcError("PC_STORE_CORRUPT", `entry ${from - 1} is missing`);
}

const sealedLine = (e: AuditEntry): string =>
  JSON.stringify({ kind: "sealed", entry: { head: e.head, bodyDigest: e.bodyDigest, prevHash: e.prevHash, hash: e.hash } });

/** Streams a verifiable JSONL bundle of the log for `filter`. */
export async function exportBundle(source: AuditSource, filter: ExportFilter, out: ExportSink, opts: ExportOptions = {}): Promise<ExportSummary> {
  const f = normaliseFilter(filter);
  if (opts.ensureCheckpoint) await opts.ensureCheckpoint();
  const { from, to } = exportRange(source, f);
  const anchor = anchorOf(source, from);
  const w = new LineWriter(out);
  const emit = (l: BundleLine) => w.line(JSON.stringify(l));

  await emit({
    kind: "header",
    format: BUNDLE_FORMAT,
    trustDomain: source.trustDomain,
    caFingerprint: source.caFingerprint,
    createdAt: (opts.now ?? (() => new Date()))().toISOString(),
    filter: f,
    range: { from, to },
    anchor,
  });
  await emit({ kind: "ca", certificates: source.caChainPem() });

  let entries = 0;
  let sealed = 0;
  let expected = from;
  // The requests whose acceptance entries the bundle shows in full: each gets its
  // signed request, and the verifier demands it. Deploys are few next to entries.
  const accepted = new Set<string>();
  for (const e of source.entries(from, to)) {
    if (e.head.seq !== expected) throw pcError("PC_STORE_CORRUPT", `entry ${expected} is missing`);
    expected++;
    if (matchesFilter(e.head, f)) {
      if (e.head.type === DEPLOY_ACCEPTED_TYPE && typeof e.body.target === "string") accepted.add(e.body.target);
      entries++;
      await w.line(JSON.stringify({ kind: "entry", entry: e }));
    } else {
      sealed++;
      await w.line(sealedLine(e));
    }
  }
  if (expected !== to + 1) throw pcError("PC_STORE_CORRUPT", `entry ${expected} is missing`);

  let checkpoints = 0;
  for (const c of source.checkpoints(from)) {
    if (c.seq > to) break;
    checkpoints++;
    await emit({ kind: "checkpoint", jws: c.jws });
  }

  let signedRequests = 0;
  if (source.signedRequests && accepted.size > 0) {
    // A request is received a moment before its acceptance entry is written: widen the
    // window, then keep exactly the requests whose entries are shown.
    const ms = (t: string | undefined, slack: number) => (t !== undefined ? Date.parse(t) + slack : undefined);
    for (const r of source.signedRequests(ms(f.since, -RECEIVED_SLACK_MS), ms(f.until, RECEIVED_SLACK_MS), f.namespace)) {
      if (!accepted.delete(r.jti)) continue;
      signedRequests++;
      await emit(signedRequestLine(r) as unknown as BundleLine);
    }
  }
  if (accepted.size > 0) throw pcError("PC_STORE_CORRUPT", `the signed request of ${accepted.size} accepted deploy(s) is missing`);
  await emit({ kind: "end", entries, sealed, checkpoints, signedRequests });
  await w.flush();
  return { from, to, anchor, entries, sealed, checkpoints, signedRequests };
}

export const CSV_COLUMNS = ["seq", "time", "type", "outcome", "actor", "action", "resource", "namespace", "status", "source", "requestId", "reasons", "target", "deploy"] as const;

export const CSV_NOT_VERIFIABLE =
  "# portcullis audit export (CSV) - NOT VERIFIABLE: for reading only; export --format jsonl for a bundle that `portcullis audit verify` can check";

/**
 * One CSV cell (RFC 4180 quoting). A cell that a spreadsheet would take for a formula
 * (starting with = + - @, tab or carriage return) is prefixed with a single quote.
 */
export function csvCell(value: string | number | undefined): string {
  if (value === undefined) return "";
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const short = (ref: string): string => (ref.startsWith("sha256:") ? `sha256:${ref.slice(7, 19)}` : ref.slice(0, 12));

/**
 * The short form of deploy facts for the CSV: `key=value` joined by `; `, digests cut to
 * 12 hex digits, lists joined by `,`. For example
 * `revision=3; jti=j-1; digest=sha256:9f86d081884c; runtime=runsc; actual=runsc,runsc; replicas=2; nodes=n1,n2`.
 */
export function deployCell(d: EntryDeploy | undefined): string | undefined {
  if (d === undefined) return undefined;
  const parts: string[] = [];
  if (d.revision !== undefined) parts.push(`revision=${d.revision}`);
  if (d.jti !== undefined) parts.push(`jti=${d.jti}`);
  if (d.digest !== undefined) parts.push(`digest=${short(d.digest)}`);
  if (d.imageId !== undefined) parts.push(`image=${short(d.imageId)}`);
  if (d.runtime !== undefined) parts.push(`runtime=${d.runtime}`);
  if (d.actualRuntimes !== undefined) parts.push(`actual=${d.actualRuntimes.join(",")}`);
  if (d.replicas !== undefined) parts.push(`replicas=${d.replicas}`);
  if (d.nodes !== undefined) parts.push(`nodes=${d.nodes.join(",")}`);
  if (d.containers !== undefined) parts.push(`containers=${d.containers.join(",")}`);
  if (d.decisionSha256 !== undefined) parts.push(`decision=${short(d.decisionSha256)}`);
  return parts.join("; ");
}

function csvRow(e: AuditEntry): string {
  const h = e.head;
  const b = e.body;
  return [
    h.seq,
    h.time,
    h.type,
    h.outcome,
    h.actor,
    h.action,
    h.resource,
    h.namespace,
    b.status,
    b.source,
    b.requestId,
    b.reasons?.join("; "),
    b.target ?? (b.targetHmac !== undefined ? `hmac:${b.targetHmac}` : undefined),
    deployCell(b.deploy),
  ]
    .map(csvCell)
    .join(",");
}

/** Streams the entries that match `filter` as CSV, for people. Not verifiable, and its first line says so. */
export async function exportCsv(source: AuditSource, filter: ExportFilter, out: ExportSink): Promise<{ readonly rows: number }> {
  const f = normaliseFilter(filter);
  const head = source.head();
  const w = new LineWriter(out);
  await w.line(CSV_NOT_VERIFIABLE);
  await w.line(CSV_COLUMNS.join(","));
  let rows = 0;
  if (head.seq >= 0) {
    const from = f.since !== undefined ? (source.firstSeqAtOrAfter(f.since) ?? head.seq + 1) : 0;
    let to = head.seq;
    if (f.until !== undefined) {
      const after = source.firstSeqAtOrAfter(f.until);
      if (after !== undefined) to = after - 1;
    }
    if (from <= to) {
      for (const e of source.entries(from, to)) {
        if (!matchesFilter(e.head, f)) continue;
        rows++;
        await w.line(csvRow(e));
      }
    }
  }
  await w.flush();
  return { rows };
}
