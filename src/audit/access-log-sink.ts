import type { AuditEvent, AuditSink, Clock } from "../core/index.js";
import { pcError } from "../core/index.js";
import type { Store } from "../store/index.js";

/** How many buffered events one group commit writes at most. */
export const GROUP_COMMIT_MAX = 512;

/**
 * The access log: an AuditSink over the store's append-only table.
 *
 * - `record` writes at once, inside the caller's transaction if there is one: a failed
 *   write throws PC_AUDIT_WRITE_FAILED, so the caller's change rolls back.
 * - `recordAfter` buffers events about what is already answered and writes them in one
 *   transaction per event-loop turn (group commit): one commit for many requests
 *   instead of one each. A failed group write is handed to `onFlushError`, never
 *   dropped silently.
 */
export class AccessLogSink implements AuditSink {
  private buffer: { at: number; event: AuditEvent }[] = [];
  private scheduled = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly onFlushError: (error: unknown, lost: number) => void = () => undefined,
  ) {}

  record(event: AuditEvent): void {
    try {
      this.store.accessEvents.append(this.clock.now().getTime(), event);
    } catch (e) {
      throw pcError("PC_AUDIT_WRITE_FAILED", undefined, e);
    }
  }

  recordAfter(event: AuditEvent): void {
    this.buffer.push({ at: this.clock.now().getTime(), event });
    if (this.buffer.length >= GROUP_COMMIT_MAX) {
      this.flushQuietly();
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushQuietly());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    try {
      this.store.transaction(() => {
        for (const b of batch) this.store.accessEvents.append(b.at, b.event);
      });
    } catch (e) {
      throw pcError("PC_AUDIT_WRITE_FAILED", `${batch.length} events`, e);
    }
  }

  private flushQuietly(): void {
    const n = this.buffer.length;
    try {
      this.flush();
    } catch (e) {
      this.onFlushError(e, n);
    }
  }
}
