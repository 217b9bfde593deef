/**
 * The alert webhook: every alert the sink is given is POSTed as JSON to the configured
 * URL, signed with HMAC-SHA256 under a key from a file, and retried until delivered.
 *
 * A delivery is written (`alert_deliveries`, pending) in the transaction that raises the
 * alert, with the body exactly as it is signed: `{"type":"portcullis.alert","alert":…}`.
 * Each attempt sends it with
 *   content-type: application/json
 *   x-portcullis-delivery: <delivery id>          (the same on every attempt: dedupe on it)
 *   x-portcullis-timestamp: <unix seconds>        (of this attempt)
 *   x-portcullis-signature: sha256=<hex HMAC-SHA256(key, timestamp + "." + body)>
 * A 2xx answer delivers it. Any other answer (a redirect is not followed), a timeout
 * (`timeoutMs`) or a connection error is a failed attempt: it is tried again after a delay
 * that doubles from `retryBaseMs`, at most 60 s, until `maxAttempts`; then the delivery is
 * dead, with its last error: the dead-letter record, kept and listed. Pending deliveries
 * survive a restart (they are in the store) and are resumed.
 *
 * The key never leaves this file's closure: not in logs, errors, the store or the audit.
 */
import { createHmac, randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from "node:fs";
import type { Clock, Logger, WebhookConfig } from "../core/index.js";
import { pcError } from "../core/index.js";
import type { AlertDeliveryRecord, Store } from "../store/index.js";
import type { Alert } from "./types.js";

export const WEBHOOK_KEY_MIN_BYTES = 32;
const WEBHOOK_KEY_MAX_BYTES = 4096;
const RETRY_MAX_MS = 60_000;
/** The longest the loop sleeps without a kick (deliveries added by another process). */
const IDLE_MS = 5_000;

const invalidKey = (path: string, why: string) => pcError("PC_MONITOR_WEBHOOK_KEY_INVALID", `${path.slice(0, 300)}: ${why}`);

/**
 * Reads the webhook key: a regular file (not a symbolic link, opened without following
 * one), readable by its owner only, of 32 bytes or more (at most 4 KiB). Anything else is
 * PC_MONITOR_WEBHOOK_KEY_INVALID; the detail names the path and the problem, never content.
 */
export function loadWebhookKey(path: string): Buffer {
  let lst;
  try {
    lst = lstatSync(path);
  } catch (e) {
    throw invalidKey(path, (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : "cannot be read");
  }
  if (lst.isSymbolicLink()) throw invalidKey(path, "is a symbolic link");
  if (!lst.isFile()) throw invalidKey(path, "is not a regular file");
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw invalidKey(path, "cannot be opened");
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw invalidKey(path, "is not a regular file");
    if ((st.mode & 0o077) !== 0) throw invalidKey(path, `mode ${(st.mode & 0o777).toString(8).padStart(4, "0")} lets others than its owner read it (want 0600 or 0400)`);
    if (st.size < WEBHOOK_KEY_MIN_BYTES) throw invalidKey(path, `holds ${st.size} bytes, fewer than ${WEBHOOK_KEY_MIN_BYTES}`);
    if (st.size > WEBHOOK_KEY_MAX_BYTES) throw invalidKey(path, `holds more than ${WEBHOOK_KEY_MAX_BYTES} bytes`);
    const key = Buffer.alloc(st.size);
    let off = 0;
    while (off < key.length) {
      const n = readSync(fd, key, off, key.length - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off < WEBHOOK_KEY_MIN_BYTES) throw invalidKey(path, `holds ${off} bytes, fewer than ${WEBHOOK_KEY_MIN_BYTES}`);
    return key.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** The body of a delivery, exactly as it is signed and sent. */
export function webhookBody(alert: Alert): string {
  return JSON.stringify({ type: "portcullis.alert", alert });
}

/** `sha256=<hex>` of HMAC-SHA256(key, timestamp + "." + body). */
export function webhookSignature(key: Buffer, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", key).update(`${timestamp}.${body}`).digest("hex")}`;
}

export interface WebhookOptions {
  /** The delay after the first failed attempt; it doubles after each, at most 60 s (default 1 s). */
  readonly retryBaseMs?: number;
}

export class WebhookSink {
  private readonly sign: (timestamp: string, body: string) => string;
  private readonly retryBaseMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private again = false;
  private started = false;

  constructor(
    private readonly cfg: WebhookConfig,
    key: Buffer,
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
    opts: WebhookOptions = {},
  ) {
    const k = Buffer.from(key);
    this.sign = (timestamp, body) => webhookSignature(k, timestamp, body);
    this.retryBaseMs = opts.retryBaseMs ?? 1_000;
  }

  /** Writes one delivery of the alert (synchronous: inside the caller's transaction). */
  enqueue(alert: Alert): void {
    const now = this.clock.now().getTime();
    this.store.alertDeliveries.insert({
      id: `dlv-${randomBytes(8).toString("hex")}`,
      alertId: alert.id,
      sink: this.cfg.url,
      payload: webhookBody(alert),
      nextAt: now,
      createdAt: now,
    });
  }

  /** Delivers what is due now, then whenever the next delivery is due (idempotent). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** Asks for a pass soon (after the caller's transaction has committed). */
  kick(): void {
    if (this.started) this.schedule(0);
  }

  /**
   * Attempts every pending delivery that is due; returns how many attempts were made.
   * Concurrent callers share one pass; a call during a pass runs another after it.
   */
  deliverDue(): Promise<number> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      let n = 0;
      do {
        this.again = false;
        for (const d of this.store.alertDeliveries.due(this.clock.now().getTime())) {
          await this.attempt(d);
          n++;
        }
      } while (this.again);
      return n;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.deliverDue()
        .catch((e: unknown) => this.logger.error({ err: String(e) }, "webhook: a delivery pass failed"))
        .finally(() => {
          if (!this.started || this.timer !== undefined) return;
          const next = this.store.alertDeliveries.nextDue();
          const wait = next === undefined ? IDLE_MS : Math.max(0, Math.min(IDLE_MS, next - this.clock.now().getTime()));
          this.schedule(wait);
        });
    }, delayMs);
    this.timer.unref();
  }

  private async attempt(d: AlertDeliveryRecord): Promise<void> {
    const timestamp = String(Math.floor(this.clock.now().getTime() / 1000));
    let error: string | undefined;
    try {
      const res = await fetch(this.cfg.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-portcullis-delivery": d.id,
          "x-portcullis-timestamp": timestamp,
          "x-portcullis-signature": this.sign(timestamp, d.payload),
        },
        body: d.payload,
        redirect: "manual",
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
    } catch (e) {
      error = describeFetchError(e, this.cfg.timeoutMs);
    }
    const attempts = d.attempts + 1;
    const now = this.clock.now().getTime();
    if (error === undefined) {
      this.store.alertDeliveries.recordAttempt(d.id, "delivered", attempts, now, null, now);
      return;
    }
    const dead = attempts >= this.cfg.maxAttempts;
    const nextAt = dead ? now : now + Math.min(RETRY_MAX_MS, this.retryBaseMs * 2 ** (attempts - 1));
    this.store.alertDeliveries.recordAttempt(d.id, dead ? "dead" : "pending", attempts, nextAt, error, now);
    this.logger.warn({ delivery: d.id, alert: d.alertId, attempts, err: error, dead }, dead ? "webhook: delivery is dead" : "webhook: delivery failed, tried again later");
  }
}

/** A fetch failure in a few words (the cause of "fetch failed", or the timeout). */
function describeFetchError(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err.name === "TimeoutError" || err.name === "AbortError") return `timed out after ${timeoutMs} ms`;
  const cause = err.cause?.code ?? err.cause?.message;
  return `${err.message ?? String(e)}${cause !== undefined ? ` (${cause})` : ""}`.slice(0, 300);
}
