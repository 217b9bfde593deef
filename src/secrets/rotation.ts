/**
 * The background rewrap after a KEK rotation: every data key wrapped by a KEK other than
 * the active one is opened and wrapped again under the active KEK, in small batches.
 *
 * Crash safety: the keyring (with the new KEK) is persisted before any row uses it, and
 * rows change only inside transactions, each row with a compare-and-set on the wrapped
 * key it read; a row is either old-wrapped or new-wrapped, and both KEKs stay in the
 * keyring until the old one is retired, so every secret stays readable throughout and a
 * pass that is cut short (a crash, a stop) is simply resumed by the next one.
 */
import type { AuditSink, Logger } from "../core/index.js";
import { isPortcullisError } from "../core/index.js";
import type { Store } from "../store/index.js";
import { rewrapVersion } from "./envelope.js";
import type { Keyring } from "./keyring.js";

export interface RewrapOptions {
  /** Rows per transaction (default 50). */
  readonly batchSize?: number;
  /** A pause between batches in ms (default 0: one event-loop turn). */
  readonly pauseMs?: number;
  /** The identity the completion is recorded under (default service:gateway). */
  readonly actor?: string;
}

export interface RewrapResult {
  /** Rows rewrapped by this run. */
  readonly rewrapped: number;
  /** Rows that could not be opened (left as they are, logged). */
  readonly failed: number;
  /** Rows still wrapped by a KEK other than the active one. */
  readonly remaining: number;
  /** True when the run was stopped before it finished. */
  readonly stopped: boolean;
}

export class Rewrapper {
  private readonly batchSize: number;
  private readonly pauseMs: number;
  private readonly actor: string;
  private current: Promise<RewrapResult> | undefined;
  private stopping = false;
  private again = false;

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly audit: AuditSink,
    private readonly logger: Logger,
    opts: RewrapOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 50;
    this.pauseMs = opts.pauseMs ?? 0;
    this.actor = opts.actor ?? "service:gateway";
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new TypeError("batchSize must be a positive integer");
  }

  get running(): boolean {
    return this.current !== undefined;
  }

  /**
   * Starts a pass; while one runs, asks for one more after it (a rotation made during a
   * pass must not be missed by a pass that is about to end). Resolves when the last pass
   * ends (never rejects).
   */
  start(): Promise<RewrapResult> {
    this.stopping = false;
    if (this.current !== undefined) {
      this.again = true;
      return this.current;
    }
    this.current = this.passes();
    return this.current;
  }

  /** The pass that runs (its result), or a new one when none does. */
  join(): Promise<RewrapResult> {
    return this.current ?? this.start();
  }

  private async passes(): Promise<RewrapResult> {
    let result: RewrapResult;
    do {
      this.again = false;
      result = await this.run().catch((e: unknown): RewrapResult => {
        this.logger.error({ code: isPortcullisError(e) ? e.code : "PC_INTERNAL", err: errName(e) }, "secret rewrap failed");
        return { rewrapped: 0, failed: 0, remaining: -1, stopped: true };
      });
    } while (this.again && !this.stopping);
    this.current = undefined;
    return result;
  }

  /** Stops the pass after its current batch; resolves once it has. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.current;
  }

  private pause(): Promise<void> {
    return new Promise((done) => (this.pauseMs > 0 ? setTimeout(done, this.pauseMs) : setImmediate(done)));
  }

  private async run(): Promise<RewrapResult> {
    const repo = this.store.secrets;
    let active = this.keyring.active();
    let after: { namespace: string; name: string; version: number } | undefined;
    let rewrapped = 0;
    let failed = 0;
    for (;;) {
      if (this.stopping || !this.store.isOpen) {
        return { rewrapped, failed, remaining: this.store.isOpen ? repo.countWrappedByOthers(active.id) : -1, stopped: true };
      }
      if (this.keyring.active().id !== active.id) {
        // Another rotation made a newer KEK active: start over towards it.
        active = this.keyring.active();
        after = undefined;
      }
      const batch = repo.wrappedByOthers(active.id, after, this.batchSize);
      if (batch.length === 0) {
        const remaining = repo.countWrappedByOthers(active.id);
        if (remaining > 0 && failed === 0) {
          after = undefined; // rows written behind the cursor by an older process: once more
          continue;
        }
        if (remaining > 0) {
          this.logger.error({ kek: active.id, remaining, failed }, "secret rewrap incomplete: some data keys do not open");
        } else if (rewrapped > 0) {
          this.audit.record({
            type: "keyring.rewrap_completed",
            outcome: "allowed",
            actor: this.actor,
            resource: "keyring",
            target: active.id,
            reason: `rewrapped:${rewrapped}`,
          });
          this.logger.info({ kek: active.id, rewrapped }, "secret rewrap completed");
        }
        return { rewrapped, failed, remaining, stopped: false };
      }
      const done: { row: (typeof batch)[number]; to: { wrappedKey: string; kekId: string } }[] = [];
      for (const row of batch) {
        after = { namespace: row.namespace, name: row.name, version: row.version };
        try {
          done.push({ row, to: await rewrapVersion(row, row.wrappedKey, row.kekId, this.keyring, active) });
        } catch (e) {
          failed++;
          this.logger.error({ namespace: row.namespace, secret: row.name, version: row.version, kek: row.kekId, code: isPortcullisError(e) ? e.code : "PC_INTERNAL" }, "secret rewrap: a data key does not open");
        }
      }
      if (!this.store.isOpen) continue;
      rewrapped += this.store.transaction(() => done.filter((d) => repo.rewrap(d.row, d.row, d.to)).length);
      await this.pause();
    }
  }
}

function errName(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}
