/**
 * Check `resources`: limits are required and bounded.
 *
 * Restricted fields and allowed values:
 * - spec.resources (cpus, memory, pids): required (the manifest schema requires them too).
 * - spec.resources.cpus: at most params.maxCpus (a number of CPUs, 3 decimals).
 * - spec.resources.memory: at most params.maxMemory (a quantity like 1Gi).
 * - spec.resources.pids: at most params.maxPids.
 * - spec.replicas: at most params.maxReplicas.
 * A parameter that is absent sets no bound beyond the manifest schema's.
 */
import { MAX_PIDS, MAX_REPLICAS, parseCpus, parseMemory } from "../../deploy/index.js";
import { ParamReader } from "../params.js";
import { deny, formatBytes, formatCpus, violationsOrOk } from "../results.js";
import type { CheckDefinition, CheckResult } from "../types.js";

export interface ResourcesParams {
  readonly maxNanoCpus?: number;
  readonly maxMemoryBytes?: number;
  readonly maxPids?: number;
  readonly maxReplicas?: number;
}

const NAME = "resources";

export const resourcesCheck: CheckDefinition<ResourcesParams> = {
  name: NAME,
  validateParams(raw) {
    const r = new ParamReader(raw, ["maxCpus", "maxMemory", "maxPids", "maxReplicas"]);
    const maxNanoCpus = r.parsed("maxCpus", parseCpus);
    const maxMemoryBytes = r.parsed("maxMemory", (v) => (typeof v === "string" ? parseMemory(v) : "must be a quantity like 1Gi"));
    const maxPids = r.int("maxPids", 1, MAX_PIDS);
    const maxReplicas = r.int("maxReplicas", 0, MAX_REPLICAS);
    const params: { -readonly [K in keyof ResourcesParams]: ResourcesParams[K] } = {};
    if (maxNanoCpus !== undefined) params.maxNanoCpus = maxNanoCpus;
    if (maxMemoryBytes !== undefined) params.maxMemoryBytes = maxMemoryBytes;
    if (maxPids !== undefined) params.maxPids = maxPids;
    if (maxReplicas !== undefined) params.maxReplicas = maxReplicas;
    return r.result(params);
  },
  run(attrs, params) {
    const { resources, replicas, namespace } = attrs.spec;
    const where = `in ${namespace}`;
    const out: CheckResult[] = [];
    const limits = resources as Partial<typeof resources> | undefined;
    if (limits?.nanoCpus === undefined || limits.memoryBytes === undefined || limits.pids === undefined) {
      return [deny(NAME, "spec.resources", "limits required", "spec.resources must set cpus, memory and pids")];
    }
    if (params.maxNanoCpus !== undefined && limits.nanoCpus > params.maxNanoCpus) {
      out.push(deny(NAME, "spec.resources.cpus", "cpus above the maximum", `spec.resources.cpus is ${formatCpus(limits.nanoCpus)}; at most ${formatCpus(params.maxNanoCpus)} ${where}`));
    }
    if (params.maxMemoryBytes !== undefined && limits.memoryBytes > params.maxMemoryBytes) {
      out.push(deny(NAME, "spec.resources.memory", "memory above the maximum", `spec.resources.memory is ${formatBytes(limits.memoryBytes)}; at most ${formatBytes(params.maxMemoryBytes)} ${where}`));
    }
    if (params.maxPids !== undefined && limits.pids > params.maxPids) {
      out.push(deny(NAME, "spec.resources.pids", "pids above the maximum", `spec.resources.pids is ${limits.pids}; at most ${params.maxPids} ${where}`));
    }
    if (params.maxReplicas !== undefined && replicas > params.maxReplicas) {
      out.push(deny(NAME, "spec.replicas", "replicas above the maximum", `spec.replicas is ${replicas}; at most ${params.maxReplicas} ${where}`));
    }
    return violationsOrOk(NAME, out, "limits are set and within bounds");
  },
};
