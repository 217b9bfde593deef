/**
 * GatewayMetrics on its own: the series and labels each call leaves, as a real
 * Prometheus parser reads them; container series that go with their container;
 * certificate counts read at scrape time; a registry of its own, not the global one.
 */
import { register as globalRegistry } from "prom-client";
import { describe, expect, it } from "vitest";
import { GatewayMetrics } from "../../src/monitoring/index.js";
import type { StatsSample } from "../../src/monitoring/index.js";
import { parsePrometheusText, sampleOf, samplesOf, type PromFamily } from "../support/prometheus.js";

function sample(over: Partial<StatsSample> = {}): StatsSample {
  return {
    node: "local",
    containerId: "c0ffee",
    containerName: "payments-api-0",
    namespace: "payments",
    deployment: "api",
    at: 1_700_000_000_000,
    cpuPercent: 12.5,
    memoryBytes: 10 * 1024 * 1024,
    memoryLimitBytes: 32 * 1024 * 1024,
    memoryPercent: 31.25,
    pids: 7,
    netRxBytes: 1000,
    netTxBytes: 2000,
    ...over,
  };
}

async function scrape(m: GatewayMetrics): Promise<{ families: PromFamily[]; text: string; contentType: string }> {
  const r = await m.render();
  return { families: parsePrometheusText(r.body), text: r.body, contentType: r.contentType };
}

const value = (f: PromFamily[], name: string, labels: Record<string, string> = {}) => sampleOf(f, name, labels)?.value;

describe("GatewayMetrics", () => {
  it("renders the Prometheus text format 0.0.4, with process metrics, on a registry of its own", async () => {
    const m = new GatewayMetrics({ certificateCounts: () => ({ issued: 0, revoked: 0 }) });
    const { families, contentType, text } = await scrape(m);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(families.find((f) => f.name === "portcullis_process_cpu_user_seconds")?.type).toBe("counter");
    expect(families.some((f) => f.name === "portcullis_nodejs_heap_size_total_bytes")).toBe(true);
    // Every family is ours, and none of them is on the process-global registry.
    expect(families.every((f) => f.name.startsWith("portcullis_"))).toBe(true);
    expect(await globalRegistry.metrics()).not.toContain("portcullis_");
    expect(text).toContain("# TYPE portcullis_http_requests_total counter");
  });

  it("counts requests by listener, route pattern, method and status, with their durations", async () => {
    const m = new GatewayMetrics({ certificateCounts: () => ({ issued: 0, revoked: 0 }) });
    for (let i = 0; i < 3; i++) m.request("api", "/v1/whoami", "GET", 200, 0.002);
    m.request("api", "/v1/namespaces/:namespace/deployments", "POST", 403, 0.004);
    m.request("bootstrap", "unmatched", "GET", 404, 0.001);
    const { families } = await scrape(m);
    const req = (labels: Record<string, string>) => value(families, "portcullis_http_requests_total", labels);
    expect(req({ listener: "api", route: "/v1/whoami", method: "GET", status: "200" })).toBe(3);
    expect(req({ listener: "api", route: "/v1/namespaces/:namespace/deployments", method: "POST", status: "403" })).toBe(1);
    expect(req({ listener: "bootstrap", route: "unmatched", method: "GET", status: "404" })).toBe(1);
    expect(samplesOf(families, "portcullis_http_requests_total")).toHaveLength(3);
    expect(value(families, "portcullis_http_request_duration_seconds_count", { route: "/v1/whoami" })).toBe(3);
    expect(value(families, "portcullis_http_request_duration_seconds_sum", { route: "/v1/whoami" })).toBeCloseTo(0.006, 6);
    // 2 ms falls in the 2.5 ms bucket, not the 1 ms one.
    expect(value(families, "portcullis_http_request_duration_seconds_bucket", { route: "/v1/whoami", le: "0.001" })).toBe(0);
    expect(value(families, "portcullis_http_request_duration_seconds_bucket", { route: "/v1/whoami", le: "0.0025" })).toBe(3);
  });

  it("counts authorization decisions, admission denials by check, deploy latency by outcome, scan cache hits and audit appends", async () => {
    const m = new GatewayMetrics({ certificateCounts: () => ({ issued: 0, revoked: 0 }) });
    m.authz("deployments", "deploy", true);
    m.authz("deployments", "deploy", false);
    m.authz("deployments", "deploy", false);
    m.admissionDenied("hardening");
    m.admissionDenied("image-scan");
    m.admissionDenied("hardening");
    m.deployLatency("accepted", 1.5);
    m.deployLatency("denied", 0.2);
    m.deployLatency("denied", Number.NaN); // never throws, never records garbage
    m.scanCache(false);
    m.scanCache(true);
    m.scanCache(true);
    m.auditAppend(0.0004);
    m.auditAppend(0.003);
    const { families } = await scrape(m);
    expect(value(families, "portcullis_authz_decisions_total", { resource: "deployments", action: "deploy", decision: "allow" })).toBe(1);
    expect(value(families, "portcullis_authz_decisions_total", { resource: "deployments", action: "deploy", decision: "deny" })).toBe(2);
    expect(value(families, "portcullis_admission_denials_total", { check: "hardening" })).toBe(2);
    expect(value(families, "portcullis_admission_denials_total", { check: "image-scan" })).toBe(1);
    expect(value(families, "portcullis_deploy_duration_seconds_count", { outcome: "accepted" })).toBe(1);
    expect(value(families, "portcullis_deploy_duration_seconds_count", { outcome: "denied" })).toBe(1);
    expect(value(families, "portcullis_deploy_duration_seconds_sum", { outcome: "accepted" })).toBe(1.5);
    expect(value(families, "portcullis_scan_cache_requests_total", { result: "hit" })).toBe(2);
    expect(value(families, "portcullis_scan_cache_requests_total", { result: "miss" })).toBe(1);
    expect(value(families, "portcullis_audit_append_seconds_count")).toBe(2);
    expect(value(families, "portcullis_audit_append_seconds_bucket", { le: "0.0005" })).toBe(1);
  });

  it("keeps container series labelled by namespace, deployment, container and node, and forgets them with the container", async () => {
    const m = new GatewayMetrics({ certificateCounts: () => ({ issued: 0, revoked: 0 }) });
    const labels = { namespace: "payments", deployment: "api", container: "payments-api-0", node: "local" };
    m.observeSample(sample());
    m.observeSample(sample({ containerName: "payments-api-1", containerId: "beef", cpuPercent: undefined, memoryLimitBytes: 0, netRxBytes: 5 }));
    m.observeSample(sample({ cpuPercent: 50, netRxBytes: 4000, netTxBytes: 2500, pids: 9 }));
    let { families } = await scrape(m);
    expect(value(families, "portcullis_container_cpu_percent", labels)).toBe(50);
    expect(value(families, "portcullis_container_memory_bytes", labels)).toBe(10 * 1024 * 1024);
    expect(value(families, "portcullis_container_memory_limit_bytes", labels)).toBe(32 * 1024 * 1024);
    expect(value(families, "portcullis_container_pids", labels)).toBe(9);
    // Network totals are counters set to the engine's totals, not added up sample by sample.
    expect(families.find((f) => f.name === "portcullis_container_network_receive_bytes")?.type).toBe("counter");
    expect(value(families, "portcullis_container_network_receive_bytes_total", labels)).toBe(4000);
    expect(value(families, "portcullis_container_network_transmit_bytes_total", labels)).toBe(2500);
    // The second container: no CPU before its second sample, no limit series without a limit.
    const other = { ...labels, container: "payments-api-1" };
    expect(sampleOf(families, "portcullis_container_cpu_percent", other)).toBeUndefined();
    expect(sampleOf(families, "portcullis_container_memory_limit_bytes", other)).toBeUndefined();
    expect(value(families, "portcullis_container_network_receive_bytes_total", other)).toBe(5);

    m.forgetContainer("local", "payments-api-0");
    ({ families } = await scrape(m));
    for (const name of [
      "portcullis_container_cpu_percent",
      "portcullis_container_memory_bytes",
      "portcullis_container_memory_limit_bytes",
      "portcullis_container_pids",
      "portcullis_container_network_receive_bytes_total",
      "portcullis_container_network_transmit_bytes_total",
    ]) {
      expect(samplesOf(families, name).filter((s) => s.labels.container === "payments-api-0"), name).toEqual([]);
    }
    expect(value(families, "portcullis_container_pids", other)).toBe(7);
    // Forgetting a container twice, or one never seen, is harmless.
    m.forgetContainer("local", "payments-api-0");
    m.forgetContainer("elsewhere", "nothing");
  });

  it("moves a container name to its new deployment without leaving the old series", async () => {
    const m = new GatewayMetrics({ certificateCounts: () => ({ issued: 0, revoked: 0 }) });
    m.observeSample(sample());
    m.observeSample(sample({ deployment: "api-v2" }));
    const { families } = await scrape(m);
    const pids = samplesOf(families, "portcullis_container_pids");
    expect(pids.map((s) => s.labels.deployment)).toEqual(["api-v2"]);
  });

  it("reports each node's event stream: up or not, the lag of its latest event, event-to-alert times and alerts by rule", async () => {
    const m = new GatewayMetrics({ certificateCounts: () => ({ issued: 0, revoked: 0 }) });
    m.setStream("local", "connecting", undefined);
    m.setStream("edge-1", "up", 0.25);
    m.setStream("local", "up", 0.1);
    m.setStream("edge-1", "degraded", undefined);
    m.eventToAlert(0.03);
    m.eventToAlert(0.4);
    m.alertRaised("exec-into-container", "critical");
    m.alertRaised("exec-into-container", "critical");
    m.alertRaised("oom-kill", "medium");
    let { families } = await scrape(m);
    expect(value(families, "portcullis_monitor_stream_up", { node: "local" })).toBe(1);
    expect(value(families, "portcullis_monitor_stream_up", { node: "edge-1" })).toBe(0);
    expect(value(families, "portcullis_monitor_event_lag_seconds", { node: "local" })).toBe(0.1);
    // The last known lag stays while the stream is down.
    expect(value(families, "portcullis_monitor_event_lag_seconds", { node: "edge-1" })).toBe(0.25);
    expect(value(families, "portcullis_monitor_event_to_alert_seconds_count")).toBe(2);
    expect(value(families, "portcullis_monitor_event_to_alert_seconds_bucket", { le: "0.05" })).toBe(1);
    expect(value(families, "portcullis_alerts_total", { rule: "exec-into-container", severity: "critical" })).toBe(2);
    expect(value(families, "portcullis_alerts_total", { rule: "oom-kill", severity: "medium" })).toBe(1);
    m.forgetNode("edge-1");
    ({ families } = await scrape(m));
    expect(sampleOf(families, "portcullis_monitor_stream_up", { node: "edge-1" })).toBeUndefined();
    expect(sampleOf(families, "portcullis_monitor_event_lag_seconds", { node: "edge-1" })).toBeUndefined();
  });

  it("reads the certificate counts at scrape time, as counters", async () => {
    let counts = { issued: 3, revoked: 0 };
    let calls = 0;
    const m = new GatewayMetrics({
      certificateCounts: () => {
        calls++;
        return counts;
      },
    });
    expect(calls).toBe(0);
    let { families } = await scrape(m);
    expect(calls).toBeGreaterThan(0);
    expect(families.find((f) => f.name === "portcullis_certificates_issued")?.type).toBe("counter");
    expect(value(families, "portcullis_certificates_issued_total")).toBe(3);
    expect(value(families, "portcullis_certificates_revoked_total")).toBe(0);
    counts = { issued: 5, revoked: 2 };
    ({ families } = await scrape(m));
    expect(value(families, "portcullis_certificates_issued_total")).toBe(5);
    expect(value(families, "portcullis_certificates_revoked_total")).toBe(2);
  });

  it("fails the scrape rather than report counts it could not read", async () => {
    const m = new GatewayMetrics({
      certificateCounts: () => {
        throw new Error("the database connection is not open");
      },
    });
    await expect(m.render()).rejects.toThrow(/not open/);
  });

  it("the parser used here refuses malformed text (so a body it accepts is well-formed)", () => {
    expect(() => parsePrometheusText("portcullis_x{a=\"1\" 1\n")).toThrow(/refused/);
    expect(parsePrometheusText("# TYPE x gauge\nx 1\n")[0]?.samples[0]?.value).toBe(1);
  });

  it("two gateways in one process keep apart", async () => {
    const a = new GatewayMetrics({ certificateCounts: () => ({ issued: 1, revoked: 0 }) });
    const b = new GatewayMetrics({ certificateCounts: () => ({ issued: 2, revoked: 0 }) });
    a.request("api", "/v1/whoami", "GET", 200, 0.001);
    const fa = (await scrape(a)).families;
    const fb = (await scrape(b)).families;
    expect(value(fa, "portcullis_http_requests_total", { route: "/v1/whoami" })).toBe(1);
    expect(sampleOf(fb, "portcullis_http_requests_total", { route: "/v1/whoami" })).toBeUndefined();
    expect(value(fb, "portcullis_certificates_issued_total")).toBe(2);
  });
});
