/**
 * Runtime monitoring put together: the rules in force, the alerts, the response actions,
 * the webhook when one is configured, and the service that feeds events and samples to
 * the monitor. The gateway (app.ts) builds it with this, and so do the benchmarks, so
 * what is measured is what runs.
 */
import { AlertService } from "./alert-service.js";
import type { GatewayMetrics } from "./metrics.js";
import { ResponseActions, type ResponseDeps } from "./response-actions.js";
import { RuleEngine } from "./rule-engine.js";
import { MonitoringRulesService } from "./rules-service.js";
import { MonitoringService, type MonitoringServiceDeps } from "./service.js";
import { shippedMonitoringRules } from "./shipped-rules.js";
import { WebhookSink } from "./webhook.js";

export interface MonitoringParts {
  readonly rules: MonitoringRulesService;
  readonly alerts: AlertService;
  readonly responseActions: ResponseActions;
  readonly webhook: WebhookSink | undefined;
  readonly service: MonitoringService;
}

export interface MonitoringComposition extends Pick<MonitoringServiceDeps, "store" | "audit" | "clock" | "logger" | "gatewayId" | "config" | "nodes" | "engine"> {
  readonly stopDeployment: ResponseDeps["stopDeployment"];
  readonly revokeIdentity: ResponseDeps["revokeIdentity"];
  /** The webhook's signing key, when config.webhook names one (loaded before the store opens). */
  readonly webhookKey?: Buffer | undefined;
  readonly metrics?: GatewayMetrics | undefined;
  /** Who the shipped rules are recorded as, when the store holds no version yet (a data directory from before monitoring). */
  readonly seedAuthor: string;
  readonly reconnectBaseMs?: number | undefined;
  readonly pollNodesMs?: number | undefined;
}

export function composeMonitoring(c: MonitoringComposition): MonitoringParts {
  const { store, audit, clock, logger } = c;
  const rules = new MonitoringRulesService(store, audit, clock);
  if (store.monitoringRulesVersions.latest() === undefined) rules.seed(shippedMonitoringRules(), c.seedAuthor);
  const hook = c.config.webhook;
  const webhook = hook !== undefined && c.webhookKey !== undefined ? new WebhookSink(hook, c.webhookKey, store, clock, logger) : undefined;
  const responseActions = new ResponseActions({
    store,
    audit,
    clock,
    logger,
    engine: c.engine,
    stopDeployment: c.stopDeployment,
    revokeIdentity: c.revokeIdentity,
  });
  // Actions and deliveries run after the transaction that raised their alert (kicked, and polled).
  const alerts = new AlertService(store, audit, clock, {
    onRaised: (alert, created) => {
      if (created && alert.actions.length > 0) responseActions.kick();
      webhook?.kick();
    },
    ...(webhook !== undefined ? { sink: webhook } : {}),
  });
  const service = new MonitoringService({
    store,
    audit,
    clock,
    logger,
    gatewayId: c.gatewayId,
    config: c.config,
    nodes: c.nodes,
    engine: c.engine,
    rules: new RuleEngine(() => rules.current().set),
    alerts,
    workers: webhook !== undefined ? [responseActions, webhook] : [responseActions],
    ...(c.metrics !== undefined ? { metrics: c.metrics } : {}),
    ...(c.reconnectBaseMs !== undefined ? { reconnectBaseMs: c.reconnectBaseMs } : {}),
    ...(c.pollNodesMs !== undefined ? { pollNodesMs: c.pollNodesMs } : {}),
  });
  return { rules, alerts, responseActions, webhook, service };
}
