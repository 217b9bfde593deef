import { X509Certificate } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { AuditEvent, AuditSink, Clock, MetricsSink } from "../core/index.js";
import { NO_METRICS, pcError } from "../core/index.js";
import type { AuditLogRow, Store } from "../store/index.js";
import {
  ENTRY_VERSION,
  ZERO_HASH,
  canonicalBody,
  entryHash,
  sealEntryWithBodyJson,
  sha256hex,
  type AuditEntry,
  type AuditSource,
  type EntryBody,
  type EntryHead,
  type SignedRequestRecord,
} from "./format.js";
import { entryParts, type EntryHeadParts } from "./redact.js";
import { entryToRow, rowToEntry } from "./rows.js";
import type { AuditSigner } from "./signer.js";

/** How many buffered events one group commit writes at most before it is forced. */
export const GROUP_COMMIT_MAX = 4096;
export const DEFAULT_CHECKPOINT_EVERY = 1000;
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 10_000;
export const GENESIS_TYPE = "audit.genesis";
export const GENESIS_ACTOR = "service:portcullis-init";

export interface AuditLogOptions {
  readonly trustDomain: string;
  /** The per-log key for identifiers that are matched but not shown (32 bytes). */
  readonly hmacKey: Buffer;
  /** Signs checkpoints; without one, no checkpoint is made until `useSigner`. */
  readonly signer?: AuditSigner | undefined;
  /** Root and issuing CA certificates, PEM, for `caChainPem`. */
  readonly caBundlePem?: string | undefined;
  /** Hex SHA-256 of the root certificate; read from the genesis entry when not given. */
  readonly caFingerprint?: string | undefined;
  /** A checkpoint after this many new entries (default 1,000). */
  readonly checkpointEvery?: number | undefined;
  /** A checkpoint when this much time has passed and new entries exist (default 10 s). */
  readonly checkpointIntervalMs?: number | undefined;
  /** How often the interval is checked (default a quarter of the interval, at least 10 ms). */
  readonly checkpointTickMs?: number | undefined;
  /** A group commit of `recordAfter` events failed: those events are lost. */
  readonly onFlushError?: ((error: unknown, lost: number) => void) | undefined;
  /** A checkpoint could not be signed or stored; requests are not affected. */
  readonly onCheckpointError?: ((error: unknown) => void) | undefined;
  /** Times each append: one entry written by `record`, or one group commit. */
  readonly metrics?: MetricsSink | undefined;
}

interface Pending {
  readonly time: string;
  readonly head: EntryHeadParts;
  readonly body: EntryBody;
  readonly resolve?: (r: { seq: number }) => void;
  readonly reject?: (e: unknown) => void;
}

/**
 * The audit log: a hash-chained, append-only log over the store, with signed
 * checkpoints. It is the gateway's AuditSink, and an AuditSource for export and verify.
 *
 * - `record` appends one entry at once, inside the caller's transaction if there is one,
 *   reading the chain head from the database each time: a failed write throws
 *   PC_AUDIT_WRITE_FAILED and the caller's change rolls back; a rollback takes the entry
 *   with it and the next entry links to the head that was committed.
 * - `append` buffers and writes once per event-loop turn in one transaction (group
 *   commit); its promise resolves after COMMIT, or rejects with PC_AUDIT_WRITE_FAILED.
 *   `recordAfter` is `append` without waiting: a failure goes to `onFlushError`.
 * - A checkpoint signs the head every `checkpointEvery` entries, or after
 *   `checkpointIntervalMs` when there are new entries, and only ever over committed
 *   entries.
 */
export class AuditLog implements AuditSink, AuditSource {
  readonly trustDomain: string;
  private readonly hmacKey: Buffer;
  private signer: AuditSigner | undefined;
  private caBundlePem: string | undefined;
  private caFingerprintValue: string | undefined;
  private readonly every: number;
  private readonly intervalMs: number;
  private readonly tickMs: number;
  private readonly onFlushError: (error: unknown, lost: number) => void;
  private readonly onCheckpointError: (error: unknown) => void;
  private readonly metrics: MetricsSink;
  private buffer: Pending[] = [];
  private scheduled = false;
  private deferredCheck = false;
  private autoPending = false;
  private lastCheckpointSeq: number;
  private lastCheckpointAt: number;
  private checkpointing: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    opts: AuditLogOptions,
  ) {
    if (opts.hmacKey.length < 32) throw new TypeError("the audit HMAC key must be at least 32 bytes");
    this.trustDomain = opts.trustDomain;
    this.hmacKey = opts.hmacKey;
    this.caBundlePem = opts.caBundlePem;
    this.caFingerprintValue = opts.caFingerprint;
    this.every = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.intervalMs = opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
    if (!Number.isInteger(this.every) || this.every < 1) throw new TypeError("checkpointEvery must be a positive integer");
    if (!(this.intervalMs > 0)) throw new TypeError("checkpointIntervalMs must be positive");
    this.tickMs = opts.checkpointTickMs ?? Math.max(10, Math.floor(this.intervalMs / 4));
    this.onFlushError = opts.onFlushError ?? (() => undefined);
    this.onCheckpointError = opts.onCheckpointError ?? (() => undefined);
    this.metrics = opts.metrics ?? NO_METRICS;
    const last = store.auditLog.lastCheckpoint();
    this.lastCheckpointSeq = last?.seq ?? -1;
    this.lastCheckpointAt = last ? Date.parse(last.time) : clock.now().getTime();
    if (opts.signer) this.useSigner(opts.signer);
  }

  /** Starts (or switches) checkpoint signing, e.g. after the audit certificate was renewed. */
  useSigner(signer: AuditSigner): void {
    this.signer = signer;
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
  }

  /** The CA whose chain `caChainPem` returns (root and issuing CA, PEM). */
  useCa(bundlePem: string, fingerprint: string): void {
    this.caBundlePem = bundlePem;
    this.caFingerprintValue = fingerprint;
  }

  /** Writes the genesis entry (seq 0) if the log is empty. */
  genesis(trustDomain: string, caFingerprint: string): void {
    this.store.transaction(() => {
      if (this.store.auditLog.head()) return;
      const head: EntryHead = { v: ENTRY_VERSION, seq: 0, time: this.now(), type: GENESIS_TYPE, outcome: "allowed", actor: GENESIS_ACTOR };
      const { entry, bodyJson } = sealEntryWithBodyJson(head, { genesis: { trustDomain, caFingerprint } }, ZERO_HASH);
      this.store.auditLog.insert(entryToRow(entry, bodyJson));
    });
  }

  record(event: AuditEvent): void {
    const started = performance.now();
    let seq: number;
    try {
      const parts = entryParts(event, this.hmacKey);
      const h = this.head();
      seq = h.seq + 1;
      this.store.auditLog.insert(this.sealRow(seq, this.now(), parts.head, parts.body, h.hash));
    } catch (e) {
      throw pcError("PC_AUDIT_WRITE_FAILED", undefined, e);
    }
    this.metrics.auditAppend((performance.now() - started) / 1000);
    this.afterWrite(seq);
  }

  append(event: AuditEvent): Promise<{ seq: number }> {
    return new Promise((resolve, reject) => {
      let parts;
      try {
        parts = entryParts(event, this.hmacKey);
      } catch (e) {
        reject(pcError("PC_AUDIT_WRITE_FAILED", "an event without its required fields", e));
        return;
      }
      this.enqueue({ time: this.now(), head: parts.head, body: parts.body, resolve, reject });
    });
  }

  recordAfter(event: AuditEvent): void {
    let parts;
    try {
      parts = entryParts(event, this.hmacKey);
    } catch (e) {
      this.onFlushError(pcError("PC_AUDIT_WRITE_FAILED", "an event without its required fields", e), 1);
      return;
    }
    this.enqueue({ time: this.now(), head: parts.head, body: parts.body });
  }

  flush(): void {
    const failure = this.writeBuffered();
    if (failure) throw failure.error;
  }

  /** Signs a checkpoint over the committed head now, if it has new entries. */
  checkpointNow(): Promise<{ seq: number } | undefined> {
    const run = this.checkpointing.then(() => this.checkpoint());
    this.checkpointing = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer, writes what is buffered, and signs a last checkpoint. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
    if (this.signer) await this.checkpointNow();
  }

  // --- AuditSource ---

  get caFingerprint(): string {
    if (this.caFingerprintValue === undefined) {
      const g = this.store.auditLog.get(0);
      const body = g ? rowToEntry(g).body : undefined;
      if (body?.genesis) this.caFingerprintValue = body.genesis.caFingerprint;
    }
    return this.caFingerprintValue ?? "";
  }

  caChainPem(): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    const add = (pem: string) => {
      const fp = new X509Certificate(pem).fingerprint256;
      if (seen.has(fp)) return;
      seen.add(fp);
      out.push(pem);
    };
    for (const pem of this.caBundlePem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? []) add(pem.endsWith("\n") ? pem : `${pem}\n`);
    for (const c of this.store.auditLog.checkpoints(0)) {
      for (const b64 of x5cOf(c.jws)) add(b64ToPem(b64));
    }
    for (const pem of this.signer?.chainPem() ?? []) add(pem);
    return out;
  }

  head(): { seq: number; hash: string } {
    return this.store.auditLog.head() ?? { seq: -1, hash: ZERO_HASH };
  }

  *entries(from: number, to: number): Iterable<AuditEntry> {
    for (const r of this.store.auditLog.iterate(from, to)) yield rowToEntry(r);
  }

  *checkpoints(from: number): Iterable<{ seq: number; jws: string }> {
    for (const c of this.store.auditLog.checkpoints(from)) yield { seq: c.seq, jws: c.jws };
  }

  firstSeqAtOrAfter(time: string): number | undefined {
    return this.store.auditLog.firstSeqAtOrAfter(time);
  }

  signedRequests(sinceMs: number | undefined, untilMs: number | undefined, namespace: string | undefined): Iterable<SignedRequestRecord> {
    return this.store.deployRequests.receivedBetween(sinceMs, untilMs, namespace);
  }

  // --- internals ---

  private now(): string {
    return this.clock.now().toISOString();
  }

  /**
   * Seals one entry onto the chain and maps it to its row. The head and body come from
   * `entryParts` (declared fields only, each of its declared type): the body's canonical
   * JSON is written once, stored as is and hashed for the digest; the sealed form is
   * written directly (format.ts's canonical forms) without an intermediate entry object.
   */
  private sealRow(seq: number, time: string, head: EntryHeadParts, body: EntryBody, prevHash: string): AuditLogRow {
    const h: EntryHead = { v: ENTRY_VERSION, seq, time, ...head };
    const bodyJson = canonicalBody(body);
    const bodyDigest = sha256hex(bodyJson);
    return {
      seq,
      time,
      type: h.type,
      outcome: h.outcome,
      actor: h.actor,
      action: h.action ?? null,
      resource: h.resource ?? null,
      namespace: h.namespace ?? null,
      body: bodyJson,
      bodyDigest,
      prevHash,
      hash: entryHash(h, bodyDigest, prevHash),
    };
  }

  private enqueue(p: Pending): void {
    this.buffer.push(p);
    if (this.buffer.length >= GROUP_COMMIT_MAX) {
      this.flushQuietly();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushQuietly());
    }
  }

  /** One transaction for the whole buffer; the head is read once, the chain built in memory. */
  private writeBuffered(): { error: unknown; lost: number } | undefined {
    this.scheduled = false;
    if (this.buffer.length === 0) return undefined;
    const batch = this.buffer;
    this.buffer = [];
    const started = performance.now();
    let last: number;
    try {
      last = this.store.transaction(() => {
        const h = this.head();
        let seq = h.seq;
        let prev = h.hash;
        for (const p of batch) {
          seq++;
          const row = this.sealRow(seq, p.time, p.head, p.body, prev);
          this.store.auditLog.insert(row);
          prev = row.hash;
        }
        return seq;
      });
    } catch (e) {
      const error = pcError("PC_AUDIT_WRITE_FAILED", `${batch.length} events`, e);
      let lost = 0;
      for (const p of batch) {
        if (p.reject) p.reject(error);
        else lost++;
      }
      return { error, lost };
    }
    this.metrics.auditAppend((performance.now() - started) / 1000);
    let seq = last - batch.length;
    for (const p of batch) p.resolve?.({ seq: ++seq });
    this.afterWrite(last);
    return undefined;
  }

  private flushQuietly(): void {
    const failure = this.writeBuffered();
    if (failure && failure.lost > 0) this.onFlushError(failure.error, failure.lost);
  }

  /** A checkpoint is due every N entries; only over committed entries. */
  private afterWrite(seq: number): void {
    if (!this.signer || seq - this.lastCheckpointSeq < this.every) return;
    if (this.store.db.inTransaction) {
      // The caller's transaction may still roll this entry back: decide after it ends.
      if (!this.deferredCheck) {
        this.deferredCheck = true;
        setImmediate(() => {
          this.deferredCheck = false;
          if (this.store.isOpen && this.head().seq - this.lastCheckpointSeq >= this.every) this.checkpointQuietly();
        });
      }
      return;
    }
    this.checkpointQuietly();
  }

  private tick(): void {
    try {
      if (this.clock.now().getTime() - this.lastCheckpointAt < this.intervalMs) return;
      if (!this.store.isOpen || this.head().seq <= this.lastCheckpointSeq) return;
      this.checkpointQuietly();
    } catch (e) {
      this.onCheckpointError(e);
    }
  }

  /** One automatic checkpoint at a time; when it is done, another if one is due by then. */
  private checkpointQuietly(): void {
    if (this.autoPending) return;
    this.autoPending = true;
    this.checkpointNow()
      .catch((e: unknown) => this.onCheckpointError(e))
      .finally(() => {
        this.autoPending = false;
        try {
          if (!this.closed && this.signer && this.store.isOpen && this.head().seq - this.lastCheckpointSeq >= this.every) this.checkpointQuietly();
        } catch (e) {
          this.onCheckpointError(e);
        }
      });
  }

  private async checkpoint(): Promise<{ seq: number } | undefined> {
    const signer = this.signer;
    if (!signer || !this.store.isOpen) return undefined;
    const h = this.head();
    if (h.seq <= this.lastCheckpointSeq) return undefined;
    const now = this.clock.now();
    const time = now.toISOString();
    const jws = await signer.sign({ seq: h.seq, hash: h.hash, time, trustDomain: this.trustDomain });
    this.store.auditLog.insertCheckpoint({ seq: h.seq, time, jws });
    this.lastCheckpointSeq = h.seq;
    this.lastCheckpointAt = now.getTime();
    return { seq: h.seq };
  }
}

/** The x5c of a compact JWS's protected header (empty if there is none). */
function x5cOf(jws: string): string[] {
  try {
    const header = JSON.parse(Buffer.from(jws.split(".")[0] ?? "", "base64url").toString("utf8")) as { x5c?: unknown };
    return Array.isArray(header.x5c) ? header.x5c.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

function b64ToPem(b64: string): string {
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
}
