import { once } from "node:events";
import { pcError } from "../core/index.js";
import {
  BUNDLE_FORMAT,
  matchesFilter,
  ZERO_HASH,
  type AuditEntry,
  type AuditSource,
  type BundleLine,
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
}

/** The seq range an export covers; see docs/audit.md. */
export interface ExportRange {
  readonly from: number;
  readonly to: number;
}

const WRITE_CHUNK = 64 * 1024;

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
  for (const e of source.entries(from, to)) {
    if (e.head.seq !== expected) throw pcError("PC_STORE_CORRUPT", `entry ${expected} is missing`);
    expected++;
    if (matchesFilter(e.head, f)) {
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
  await emit({ kind: "end", entries, sealed, checkpoints });
  await w.flush();
  return { from, to, anchor, entries, sealed, checkpoints };
}

export const CSV_COLUMNS = ["seq", "time", "type", "outcome", "actor", "action", "resource", "namespace", "status", "source", "requestId", "reasons", "target"] as const;

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
