/**
 * Alerts: what a rule hit becomes. Each hit raises an alert or adds to one.
 *
 * Deduplication: hits with the same key — `rule|node|container` (the container's name,
 * or the event's actor when the gateway knows no container), or `rule|namespace|deployment`
 * for the derived `scan_new_findings` events — are one alert while they keep coming
 * within the rule's `dedupeWindowMs` of the alert's last sighting and the alert is open.
 * A repeat bumps `count` and `last_seen` and replaces `evidence.last` (the first stays).
 * A hit after the window, or after the alert was acknowledged, raises a new alert: an
 * acknowledgement closes what was seen, and new activity must be seen again.
 *
 * A new alert is written with one pending `monitor_actions` row per response action of
 * its rule (carried out after the commit, see response-actions.ts) and audited as
 * `monitor.alert` in the same transaction: that entry is the record of when the alert was
 * first raised (its reason names the alert and its first sighting). Repeats are not
 * audited one by one: the alert's count and last_seen say how often and until when.
 *
 * The sink (the webhook) gets every new alert, and a repeat that comes after a quiet
 * spell — at least half the rule's window without a sighting — so a receiver learns that
 * activity it saw once has resumed, while a burst of repeats sends nothing more.
 */
import { randomBytes } from "node:crypto";
import type { AuditSink, Clock } from "../core/index.js";
import { pcError } from "../core/index.js";
import type { AlertDeliveryRecord, AlertDeliveryState, AlertRecord, MonitorActionRecord, Store } from "../store/index.js";
import type { ActionRecordView, Alert, AlertEvidence, ResponseActionName, RuleHit, Severity } from "./types.js";
import { DERIVED_ACTIONS, GATEWAY_EVENT_TYPE, SEVERITIES } from "./types.js";

const GATEWAY = "service:gateway";
const NOTE_MAX = 1000;
/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Who acknowledges an alert, as the audit log records it. */
export interface AlertActor {
  readonly identity: string;
  readonly serial?: string | undefined;
  readonly requestId?: string | undefined;
  readonly sourceAddress?: string | undefined;
}

export interface AlertListFilter {
  /** "*" (or absent): every alert; a list: only alerts of these namespaces. */
  readonly namespaces?: readonly string[] | "*";
  /** This severity or higher. */
  readonly severity?: Severity;
  /** true: only open alerts; false: only acknowledged ones. */
  readonly open?: boolean;
  readonly rule?: string;
  readonly deployment?: string;
  readonly limit?: number;
}

/** Where alerts go besides the store (the webhook). Called inside the raising transaction. */
export interface AlertSink {
  enqueue(alert: Alert, created: boolean): void;
}

export interface AlertServiceOptions {
  /** Called for every hit, inside the transaction (metrics; kicking the action runner). */
  readonly onRaised?: (alert: Alert, created: boolean) => void;
  readonly sink?: AlertSink;
}

/** A webhook delivery as the API lists it (the payload is the alert, readable by id). */
export interface DeliveryView {
  readonly id: string;
  readonly alertId: string;
  readonly sink: string;
  readonly state: AlertDeliveryState;
  readonly attempts: number;
  readonly nextAt: string;
  readonly lastError: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The note of an acknowledgement or a release: 1..1000 characters, no control characters. */
export function checkNote(note: unknown): string {
  if (typeof note !== "string" || note.trim().length === 0) throw pcError("PC_API_INVALID_BODY", "note: must be 1 to 1000 characters");
  if (note.length > NOTE_MAX) throw pcError("PC_API_INVALID_BODY", `note: at most ${NOTE_MAX} characters`);
  if (CONTROL_RE.test(note)) throw pcError("PC_API_INVALID_BODY", "note: control characters are not allowed");
  return note;
}

/** The severities at or above one. */
export function severitiesFrom(min: Severity): Severity[] {
  return SEVERITIES.slice(SEVERITIES.indexOf(min));
}

/** Whether a hit is about a deployment as a whole (a rescan's new findings). */
function isDeploymentHit(hit: RuleHit): boolean {
  const e = hit.evidence;
  return e.kind === "event" && e.event.type === GATEWAY_EVENT_TYPE && e.event.action === DERIVED_ACTIONS.scanNewFindings;
}

/** What an alert is about: where, and its dedupe key. */
export function targetOf(hit: RuleHit): { namespace: string | null; deployment: string | null; node: string | null; container: string | null; key: string } {
  const ctx = hit.context;
  const ev = hit.evidence.kind === "event" || hit.evidence.kind === "restarts" ? hit.evidence.event : undefined;
  const nonEmpty = (s: string | undefined | null): string | null => (s === undefined || s === null || s === "" ? null : s);
  const namespace = nonEmpty(ctx?.namespace ?? ev?.attributes.namespace ?? (hit.evidence.kind === "stats" ? hit.evidence.sample.namespace : undefined));
  const deployment = nonEmpty(ctx?.deployment ?? ev?.attributes.deployment ?? (hit.evidence.kind === "stats" ? hit.evidence.sample.deployment : undefined));
  if (isDeploymentHit(hit)) {
    return { namespace, deployment, node: null, container: null, key: [hit.rule.name, namespace ?? "", deployment ?? ""].join("|") };
  }
  const sample = hit.evidence.kind === "stats" ? hit.evidence.sample : undefined;
  const node = nonEmpty(ctx?.node ?? ev?.node ?? sample?.node);
  const container = nonEmpty(ctx?.containerName) ?? nonEmpty(sample?.containerName) ?? nonEmpty(ev?.actor);
  return { namespace, deployment, node, container, key: [hit.rule.name, node ?? "", container ?? ""].join("|") };
}

function parseEvidence(text: string): Alert["evidence"] {
  const v = JSON.parse(text) as Record<string, unknown>;
  // Alerts carried over from before monitoring (a rescan's) stored one piece of evidence.
  if (typeof v === "object" && v !== null && "first" in v && "last" in v) return v as unknown as Alert["evidence"];
  return { first: v as unknown as AlertEvidence, last: v as unknown as AlertEvidence };
}

export function actionView(a: MonitorActionRecord): ActionRecordView {
  return { id: a.id, action: a.action as ResponseActionName, state: a.state, attempts: a.attempts, result: a.result, updatedAt: iso(a.updatedAt) };
}

export class AlertService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly opts: AlertServiceOptions = {},
  ) {}

  /** Synchronous; the caller runs it inside store.transaction (it opens a savepoint). */
  raise(hit: RuleHit, causeId: string): { alert: Alert; created: boolean } {
    const { store } = this;
    return store.transaction(() => {
      const t = targetOf(hit);
      const at = hit.at;
      const prior = store.alerts.openByKey(t.key, at - hit.rule.dedupeWindowMs);
      if (prior !== undefined) {
        const first = parseEvidence(prior.evidence).first;
        store.alerts.repeat(prior.id, at, JSON.stringify({ first, last: hit.evidence }));
        // The rule's actions again (each is idempotent): a container unpaused by hand and
        // exec'd into again is quarantined again, and a rule changed to act since the
        // alert opened acts now.
        this.enqueueActions(prior.id, hit, causeId, t);
        const alert = this.view(store.alerts.get(prior.id) as AlertRecord);
        this.opts.onRaised?.(alert, false);
        if (at - prior.lastSeen >= hit.rule.dedupeWindowMs / 2) this.opts.sink?.enqueue(alert, false);
        return { alert, created: false };
      }
      const id = `alert-${randomBytes(8).toString("hex")}`;
      store.alerts.insert({
        id,
        rule: hit.rule.name,
        severity: hit.rule.severity,
        namespace: t.namespace,
        deployment: t.deployment,
        node: t.node,
        container: t.container,
        dedupeKey: t.key,
        summary: hit.summary.slice(0, 1000),
        evidence: JSON.stringify({ first: hit.evidence, last: hit.evidence }),
        count: 1,
        firstSeen: at,
        lastSeen: at,
      });
      this.enqueueActions(id, hit, causeId, t);
      const where = t.container ?? (t.deployment !== null ? `${t.namespace ?? ""}/${t.deployment}` : undefined);
      this.audit.record({
        type: "monitor.alert",
        outcome: "allowed",
        actor: GATEWAY,
        resource: "alerts",
        namespace: t.namespace ?? undefined,
        target: where?.slice(0, 500),
        reason: `${`${hit.rule.name}: ${hit.summary}`.slice(0, 400)} [${hit.rule.severity}; alert ${id}; first seen ${iso(at)}]`,
      });
      const alert = this.view(store.alerts.get(id) as AlertRecord);
      this.opts.onRaised?.(alert, true);
      this.opts.sink?.enqueue(alert, true);
      return { alert, created: true };
    });
  }

  /** Newest last sighting first. */
  /**
   * One pending row per response action of the rule, unless that action of this alert is
   * pending already (a burst of hits does not queue the same action a thousand times).
   */
  private enqueueActions(alertId: string, hit: RuleHit, causeId: string, t: ReturnType<typeof targetOf>): void {
    const actions = hit.rule.actions.filter((a) => a !== "alert");
    if (actions.length === 0) return;
    const pending = new Set(this.store.monitorActions.ofAlert(alertId).filter((a) => a.state === "pending").map((a) => a.action));
    const now = this.clock.now().getTime();
    for (const action of actions) {
      if (pending.has(action)) continue;
      this.store.monitorActions.insert({
        id: `act-${randomBytes(8).toString("hex")}`,
        alertId,
        rule: hit.rule.name,
        eventId: causeId,
        action,
        node: t.node,
        container: t.container,
        namespace: t.namespace,
        deployment: t.deployment,
        createdAt: now,
      });
    }
  }

  list(filter: AlertListFilter = {}): Alert[] {
    const namespaces = filter.namespaces === undefined || filter.namespaces === "*" ? undefined : filter.namespaces;
    return this.store.alerts
      .list({
        ...(namespaces !== undefined ? { namespaces } : {}),
        ...(filter.severity !== undefined ? { severities: severitiesFrom(filter.severity) } : {}),
        ...(filter.open !== undefined ? { open: filter.open } : {}),
        ...(filter.rule !== undefined ? { rule: filter.rule } : {}),
        ...(filter.deployment !== undefined ? { deployment: filter.deployment } : {}),
        ...(filter.limit !== undefined ? { limit: filter.limit } : {}),
      })
      .map((a) => this.view(a));
  }

  /** One alert; PC_MONITOR_ALERT_NOT_FOUND otherwise. */
  get(id: string): Alert {
    const a = this.store.alerts.get(id);
    if (a === undefined) throw pcError("PC_MONITOR_ALERT_NOT_FOUND", id.slice(0, 80));
    return this.view(a);
  }

  /**
   * Acknowledges an open alert with a note (audited as `monitor.alert_acked`);
   * PC_MONITOR_ALERT_ACKED when it was acknowledged before (the first note stays).
   */
  ack(id: string, actor: AlertActor, note: string): Alert {
    const text = checkNote(note);
    const now = this.clock.now().getTime();
    return this.store.transaction(() => {
      const a = this.store.alerts.get(id);
      if (a === undefined) throw pcError("PC_MONITOR_ALERT_NOT_FOUND", id.slice(0, 80));
      if (!this.store.alerts.ack(id, actor.identity, now, text)) throw pcError("PC_MONITOR_ALERT_ACKED", `${id} was acknowledged by ${a.ackedBy ?? "?"}`);
      this.audit.record({
        type: "monitor.alert_acked",
        outcome: "allowed",
        actor: actor.identity,
        actorSerial: actor.serial,
        requestId: actor.requestId,
        sourceAddress: actor.sourceAddress,
        resource: "alerts",
        namespace: a.namespace ?? undefined,
        target: id,
        reason: `rule:${a.rule} count:${a.count} first seen:${iso(a.firstSeen)} last seen:${iso(a.lastSeen)}`,
      });
      return this.view(this.store.alerts.get(id) as AlertRecord);
    });
  }

  /** Webhook deliveries, newest first; of one state when given (`dead`: the dead-letter record). */
  deliveries(filter: { state?: AlertDeliveryState; limit?: number } = {}): DeliveryView[] {
    return this.store.alertDeliveries.list(filter).map(deliveryView);
  }

  private view(a: AlertRecord): Alert {
    return {
      id: a.id,
      rule: a.rule,
      severity: a.severity as Severity,
      namespace: a.namespace,
      deployment: a.deployment,
      node: a.node,
      container: a.container,
      summary: a.summary,
      count: a.count,
      firstSeen: iso(a.firstSeen),
      lastSeen: iso(a.lastSeen),
      status: a.status,
      evidence: parseEvidence(a.evidence),
      ...(a.status === "acked" ? { ack: { by: a.ackedBy ?? "", at: iso(a.ackedAt ?? 0), note: a.ackNote ?? "" } } : {}),
      actions: this.store.monitorActions.ofAlert(a.id).map(actionView),
    };
  }
}

export function deliveryView(d: AlertDeliveryRecord): DeliveryView {
  return {
    id: d.id,
    alertId: d.alertId,
    sink: d.sink,
    state: d.state,
    attempts: d.attempts,
    nextAt: iso(d.nextAt),
    lastError: d.lastError,
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}
