/**
 * What the domains report for the gateway's metrics. The monitoring domain implements it
 * (Prometheus, through prom-client); the others only call it, so no domain but
 * monitoring knows how metrics are kept. Every method must be cheap and must never throw.
 */
export interface MetricsSink {
  /** An API request answered: its route pattern (never the raw URL), method and status. */
  request(listener: "api" | "bootstrap", route: string, method: string, status: number, seconds: number): void;
  /** An authorization decision of the API's guard. */
  authz(resource: string, action: string, allowed: boolean): void;
  /** A deploy request denied by an admission check (one call per denying check). */
  admissionDenied(check: string): void;
  /** A deploy request answered, from its arrival to its decision record. */
  deployLatency(outcome: "accepted" | "denied" | "error", seconds: number): void;
  /** An image-scan verdict served from the scan cache (hit) or scanned afresh (miss). */
  scanCache(hit: boolean): void;
  /** One audit append (group commit included), in seconds. */
  auditAppend(seconds: number): void;
}

/** A sink that keeps nothing: for offline commands and tests that measure nothing. */
export const NO_METRICS: MetricsSink = Object.freeze({
  request: () => undefined,
  authz: () => undefined,
  admissionDenied: () => undefined,
  deployLatency: () => undefined,
  scanCache: () => undefined,
  auditAppend: () => undefined,
});
