/**
 * The monitoring vocabulary: events (from engines, or derived by the gateway), stats
 * samples, rules, alerts and response actions. Every part of `src/monitoring` speaks
 * these types.
 */

export const SEVERITIES = ["low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** `alert` is what every rule does; the others are response actions a rule may add. */
export const ACTIONS = ["alert", "stop", "pause", "quarantine", "revoke"] as const;
export type ActionName = (typeof ACTIONS)[number];
export type ResponseActionName = Exclude<ActionName, "alert">;

/**
 * The `type` of events the gateway derives itself (never an engine's): its actions are
 * DERIVED_ACTIONS.
 */
export const GATEWAY_EVENT_TYPE = "portcullis";
export const DERIVED_ACTIONS = {
  /** A container on a managed node that this gateway did not create (or no longer knows). */
  drift: "drift",
  /** A managed container whose OCI runtime differs from the one its revision records. */
  runtimeMismatch: "runtime_mismatch",
  /** A managed container whose image id differs from the one admitted for its revision. */
  imageMismatch: "image_mismatch",
  /** A vulnerability database import finds new blocking findings in a running image. */
  scanNewFindings: "scan_new_findings",
} as const;

/**
 * One event as monitoring handles it. Engine events keep Docker's fields; derived events
 * (type GATEWAY_EVENT_TYPE) carry the container they are about in `actor` and their facts
 * in `attributes`.
 */
export interface MonitorEvent {
  /** Hex SHA-256 over node, timeNano, type, action, actor and the sorted attributes. */
  readonly id: string;
  /** The node the event came from; "" for gateway events that concern no node. */
  readonly node: string;
  readonly source: "engine" | "gateway";
  /** container, image, network, volume, daemon, plugin... or "portcullis". */
  readonly type: string;
  /** The engine's action as sent (for exec: `exec_create: sh -c id`). */
  readonly action: string;
  /** Actor.ID: a container id for container events. */
  readonly actor: string;
  /** Actor.Attributes (for containers: name, image, labels, exitCode...). */
  readonly attributes: Readonly<Record<string, string>>;
  /** Nanoseconds since the epoch, as a decimal string (a double cannot hold it). */
  readonly timeNano: string;
  /** Milliseconds since the epoch (timeNano / 1e6, rounded down). */
  readonly timeMs: number;
}

/** What the gateway knows about the container an event or sample concerns. */
export interface ContainerContext {
  readonly node: string;
  readonly containerId: string;
  readonly containerName: string;
  /** The container carries this gateway's label and a replica record names it. */
  readonly managed: boolean;
  readonly namespace?: string | undefined;
  readonly deployment?: string | undefined;
  readonly revision?: number | undefined;
  /** The identity that requested the revision (for `revoke`). */
  readonly requester?: string | undefined;
  /**
   * The healthcheck command admitted for the container, as the engine writes it in its
   * exec events (the words joined by spaces). The engine runs a healthcheck as an exec,
   * so an exec of exactly this command is the engine's own and no exec rule matches it.
   */
  readonly healthcheck?: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
}

/** One sample of a managed container's resource use. */
export interface StatsSample {
  readonly node: string;
  readonly containerId: string;
  readonly containerName: string;
  readonly namespace: string;
  readonly deployment: string;
  /** Milliseconds since the epoch, when the engine read it. */
  readonly at: number;
  /** CPU used since the previous sample, in percent of one core (undefined on the first). */
  readonly cpuPercent: number | undefined;
  readonly memoryBytes: number;
  /** The container's memory limit; 0 when it has none. */
  readonly memoryLimitBytes: number;
  /** memoryBytes / memoryLimitBytes × 100; undefined without a limit. */
  readonly memoryPercent: number | undefined;
  readonly pids: number;
  /** Totals since the container started, over all its interfaces. */
  readonly netRxBytes: number;
  readonly netTxBytes: number;
}

export const STATS_METRICS = ["cpu_percent", "memory_percent", "memory_bytes", "pids", "net_rx_bytes", "net_tx_bytes"] as const;
export type StatsMetric = (typeof STATS_METRICS)[number];

/** Which containers a rule applies to. Absent fields match everything. */
export interface RuleScope {
  /** Namespaces (exact names); a rule with namespaces never matches an unmanaged container. */
  readonly namespaces?: readonly string[];
  /** Container labels that must all be present with these values. */
  readonly labels?: Readonly<Record<string, string>>;
  /** true: managed containers only; false: unmanaged only; absent: both. */
  readonly managed?: boolean;
}

export type RuleMatch =
  /**
   * An event: its type, one of its actions (an action `exec_create` also matches the
   * engine's `exec_create: CMD`), and attributes that must all be equal.
   */
  | {
      readonly kind: "event";
      readonly type: string;
      readonly actions: readonly string[];
      readonly attributes: Readonly<Record<string, string>>;
    }
  /** A stats metric above a threshold in every sample for at least `forMs`. */
  | { readonly kind: "stats"; readonly metric: StatsMetric; readonly above: number; readonly forMs: number }
  /** At least `count` container `die` events of one container within `withinMs`. */
  | { readonly kind: "restarts"; readonly count: number; readonly withinMs: number }
  /** A container state (status and/or health) held for at least `forMs`, seen by sampling. */
  | { readonly kind: "state"; readonly status: readonly string[]; readonly health: readonly string[]; readonly forMs: number };

export interface MonitoringRule {
  /** A DNS-label-like name, unique in the file. */
  readonly name: string;
  readonly description: string;
  readonly severity: Severity;
  readonly scope: RuleScope;
  readonly match: RuleMatch;
  /** Always starts with "alert"; response actions after it, each at most once. */
  readonly actions: readonly ActionName[];
  /** Identical alerts (same rule and container) within this window are one alert. */
  readonly dedupeWindowMs: number;
}

export interface MonitoringRuleSet {
  readonly rules: readonly MonitoringRule[];
}

/** A rule that matched: what raises (or adds to) an alert. */
export interface RuleHit {
  readonly rule: MonitoringRule;
  readonly context: ContainerContext | undefined;
  /** The event or sample that matched, as stored in the alert's evidence. */
  readonly evidence: AlertEvidence;
  /** The time of the event or sample (ms since the epoch). */
  readonly at: number;
  /** One line: what happened ("docker exec into payments/api-0: sh -c id"). */
  readonly summary: string;
}

export type AlertEvidence =
  | { readonly kind: "event"; readonly event: MonitorEvent }
  | { readonly kind: "stats"; readonly sample: StatsSample; readonly heldMs: number }
  | { readonly kind: "restarts"; readonly event: MonitorEvent; readonly count: number; readonly withinMs: number }
  | { readonly kind: "state"; readonly status: string; readonly health: string | undefined; readonly heldMs: number; readonly at: number };

export type AlertStatus = "open" | "acked";

export interface Alert {
  readonly id: string;
  readonly rule: string;
  readonly severity: Severity;
  readonly namespace: string | null;
  readonly deployment: string | null;
  readonly node: string | null;
  readonly container: string | null;
  readonly summary: string;
  readonly count: number;
  /** ISO 8601. */
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly status: AlertStatus;
  readonly evidence: { readonly first: AlertEvidence; readonly last: AlertEvidence };
  readonly ack?: { readonly by: string; readonly at: string; readonly note: string } | undefined;
  /** The response actions taken (or pending) for this alert. */
  readonly actions: readonly ActionRecordView[];
}

export type ActionState = "pending" | "done" | "failed" | "skipped";

export interface ActionRecordView {
  readonly id: string;
  readonly action: ResponseActionName;
  readonly state: ActionState;
  readonly attempts: number;
  readonly result: string | null;
  readonly updatedAt: string;
}
