/**
 * The gateway's runtime monitoring as the monitoring benchmarks run it: composed as the
 * gateway composes it (`composeMonitoring`), on a real store with a real audit log, the
 * local engine as its one node, the shipped rules, the real metrics.
 */
import { randomBytes } from "node:crypto";
import { AuditLog } from "../../src/audit/index.js";
import { silentLogger, systemClock, type MonitoringConfig } from "../../src/core/index.js";
import { composeMonitoring, GatewayMetrics, type MonitoringParts } from "../../src/monitoring/index.js";
import { LOCAL_NODE, type DockerEngine } from "../../src/runtime/index.js";
import type { Store } from "../../src/store/index.js";

const TD = "portcullis.local";

export function benchMonitoring(store: Store, engine: DockerEngine, gatewayId: string, config: MonitoringConfig): MonitoringParts & { audit: AuditLog } {
  const audit = new AuditLog(store, systemClock, { trustDomain: TD, hmacKey: randomBytes(32) });
  audit.genesis(TD, "00".repeat(32));
  const parts = composeMonitoring({
    store,
    audit,
    clock: systemClock,
    logger: silentLogger,
    gatewayId,
    config,
    nodes: () => [{ name: LOCAL_NODE }],
    engine: () => engine,
    // No shipped rule that fires in these benchmarks stops or revokes (each checks that no
    // response action was written).
    stopDeployment: async () => {
      throw new Error("the benchmark stops no deployment");
    },
    revokeIdentity: async () => {
      throw new Error("the benchmark revokes no identity");
    },
    metrics: new GatewayMetrics({ certificateCounts: () => store.certificates.counts() }),
    seedAuthor: "service:gateway",
  });
  return { ...parts, audit };
}
