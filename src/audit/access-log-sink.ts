import type { AuditEvent, AuditSink, Clock } from "../core/index.js";
import { pcError } from "../core/index.js";
import type { Store } from "../store/index.js";

/**
 * The access log: an AuditSink that appends to the store's append-only table. A write
 * that fails throws PC_AUDIT_WRITE_FAILED, so the caller's transaction rolls back.
 */
export class AccessLogSink implements AuditSink {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  record(event: AuditEvent): void {
    try {
      this.store.accessEvents.append(this.clock.now().getTime(), event);
    } catch (e) {
      throw pcError("PC_AUDIT_WRITE_FAILED", undefined, e);
    }
  }
}
