/** The monitoring rules shipped in `policies/monitoring/rules.yaml`, as security teams find them. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseMonitoringRules } from "./rules.js";
import type { MonitoringRuleSet } from "./types.js";

export const SHIPPED_MONITORING_RULES_URL = new URL("../../policies/monitoring/rules.yaml", import.meta.url);

/** The text of the shipped rules file. */
export function shippedMonitoringRules(): string {
  return readFileSync(SHIPPED_MONITORING_RULES_URL, "utf8");
}

/** Its path on disk (tests and `rules test` resolve relative paths from it). */
export function shippedMonitoringRulesPath(): string {
  return fileURLToPath(SHIPPED_MONITORING_RULES_URL);
}

export function shippedMonitoringRuleSet(): MonitoringRuleSet {
  return parseMonitoringRules(shippedMonitoringRules());
}
