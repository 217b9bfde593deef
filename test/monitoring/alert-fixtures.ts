/**
 * Rule hits as the rule engine makes them, for tests of what happens after a rule
 * matched: alerts, response actions, quarantines, the webhook.
 */
import { randomBytes } from "node:crypto";
import type { ActionName, ContainerContext, MonitorEvent, MonitoringRule, RuleHit, Severity } from "../../src/monitoring/index.js";

export function rule(name: string, opts: { severity?: Severity; actions?: readonly ActionName[]; dedupeWindowMs?: number } = {}): MonitoringRule {
  return {
    name,
    description: `test rule ${name}`,
    severity: opts.severity ?? "high",
    scope: {},
    match: { kind: "event", type: "container", actions: ["exec_create"], attributes: {} },
    actions: ["alert", ...(opts.actions ?? []).filter((a) => a !== "alert")],
    dedupeWindowMs: opts.dedupeWindowMs ?? 60_000,
  };
}

/** An engine event about a container (its id in `actor`, its name in the attributes). */
export function containerEvent(node: string, containerId: string, name: string, atMs: number, action = "exec_create: sh -c id"): MonitorEvent {
  return {
    id: randomBytes(32).toString("hex"),
    node,
    source: "engine",
    type: "container",
    action,
    actor: containerId,
    attributes: { name },
    timeNano: `${atMs}000000`,
    timeMs: atMs,
  };
}

export function context(node: string, containerId: string, containerName: string, managed?: { namespace: string; deployment: string; revision?: number; requester?: string }): ContainerContext {
  return {
    node,
    containerId,
    containerName,
    managed: managed !== undefined,
    ...(managed !== undefined ? { namespace: managed.namespace, deployment: managed.deployment, revision: managed.revision, requester: managed.requester } : {}),
    labels: {},
  };
}

/** A hit of `r` on a container at `atMs`, with the event as its evidence. */
export function hitOn(r: MonitoringRule, ctx: ContainerContext, atMs: number, ev?: MonitorEvent): RuleHit {
  const event = ev ?? containerEvent(ctx.node, ctx.containerId, ctx.containerName, atMs);
  return {
    rule: r,
    context: ctx,
    evidence: { kind: "event", event },
    at: atMs,
    summary: `docker exec into ${ctx.namespace ?? "-"}/${ctx.containerName} (${event.action})`,
  };
}

/**
 * Rules that match nothing a test does (a daemon reload): for tests that raise their own
 * alerts and must not see the ones the running monitor would raise from the same
 * engine's events (or from other tests' containers, as drift).
 */
export const QUIET_RULES = `apiVersion: portcullis.io/v1
kind: MonitoringRules
rules:
  - name: daemon-reload
    description: The engine reloaded its configuration (nothing the tests do).
    severity: low
    match:
      event: { type: daemon, actions: [reload] }
`;

/** Puts QUIET_RULES in force on a gateway. */
export function quietMonitoring(gw: { monitoringRules: { apply(text: string, actor: { identity: string }, message?: string): unknown } }): void {
  gw.monitoringRules.apply(QUIET_RULES, { identity: "user:admin" }, "tests raise their own alerts");
}
