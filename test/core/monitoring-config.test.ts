/** The `monitoring` object of config.json: optional, defaults when absent, strictly checked. */
import { describe, expect, it } from "vitest";
import { DEFAULT_MONITORING_CONFIG, defaultConfig, monitoringConfigOf, parseConfig, webhookUrlReason } from "../../src/core/index.js";
import { expectRefusal } from "../support/refusal.js";

const base = () => JSON.parse(JSON.stringify(defaultConfig())) as Record<string, unknown>;
const hook = { url: "https://hooks.example/portcullis", keyFile: "/etc/portcullis/webhook.key" };

describe("config monitoring", () => {
  it("a config.json without it stays valid and gets the defaults", () => {
    const cfg = parseConfig(base());
    expect(cfg.monitoring).toBeUndefined();
    expect(monitoringConfigOf(cfg)).toEqual({ statsIntervalMs: 10_000, reconnectMaxMs: 30_000, eventRetentionMs: 7 * 86_400_000 });
    expect(DEFAULT_MONITORING_CONFIG.webhook).toBeUndefined();
  });

  it.each([
    [{}, { statsIntervalMs: 10_000, reconnectMaxMs: 30_000, eventRetentionMs: 604_800_000 }],
    [{ statsIntervalMs: 1_000 }, { statsIntervalMs: 1_000, reconnectMaxMs: 30_000, eventRetentionMs: 604_800_000 }],
    [{ webhook: hook }, { statsIntervalMs: 10_000, reconnectMaxMs: 30_000, eventRetentionMs: 604_800_000, webhook: { ...hook, maxAttempts: 6, timeoutMs: 5_000 } }],
    [{ webhook: { ...hook, url: "http://127.0.0.1:9000/hook", maxAttempts: 1, timeoutMs: 100 } }, { statsIntervalMs: 10_000, reconnectMaxMs: 30_000, eventRetentionMs: 604_800_000, webhook: { ...hook, url: "http://127.0.0.1:9000/hook", maxAttempts: 1, timeoutMs: 100 } }],
  ])("%j → %j", (monitoring, expected) => {
    const cfg = parseConfig({ ...base(), monitoring });
    expect(cfg.monitoring).toEqual(expected);
    expect(parseConfig(JSON.parse(JSON.stringify(cfg)))).toEqual(cfg);
  });

  it.each([
    ["not an object", "on", /monitoring must be an object/],
    ["an unknown key", { enabled: false }, /unknown key monitoring\.enabled/],
    ["stats faster than a second", { statsIntervalMs: 999 }, /monitoring\.statsIntervalMs/],
    ["stats slower than ten minutes", { statsIntervalMs: 600_001 }, /monitoring\.statsIntervalMs/],
    ["a fractional interval", { statsIntervalMs: 1_500.5 }, /monitoring\.statsIntervalMs/],
    ["a reconnect ceiling under a second", { reconnectMaxMs: 10 }, /monitoring\.reconnectMaxMs/],
    ["a retention under an hour", { eventRetentionMs: 60_000 }, /monitoring\.eventRetentionMs/],
    ["a webhook that is not an object", { webhook: "https://x" }, /monitoring\.webhook must be an object/],
    ["a webhook with an unknown key", { webhook: { ...hook, secret: "s3cr3t" } }, /unknown key monitoring\.webhook\.secret/],
    ["a plain-http webhook off the host", { webhook: { ...hook, url: "http://hooks.example/x" } }, /monitoring\.webhook\.url must be https/],
    ["a webhook URL with credentials", { webhook: { ...hook, url: "https://u:p@hooks.example/x" } }, /must not carry credentials/],
    ["a webhook URL that is no URL", { webhook: { ...hook, url: "hooks" } }, /is not a URL/],
    ["a relative key file", { webhook: { ...hook, keyFile: "webhook.key" } }, /keyFile must be an absolute path/],
    ["no key file", { webhook: { url: hook.url } }, /keyFile must be an absolute path/],
    ["zero attempts", { webhook: { ...hook, maxAttempts: 0 } }, /maxAttempts/],
    ["a timeout over a minute", { webhook: { ...hook, timeoutMs: 60_001 } }, /timeoutMs/],
  ])("refuses %s", (_what, monitoring, detail) => {
    expectRefusal(() => parseConfig({ ...base(), monitoring }), "PC_CONFIG_INVALID", detail);
  });

  it("webhook URLs: https anywhere, http only to a loopback name or address", () => {
    expect(webhookUrlReason("https://hooks.example/a")).toBeUndefined();
    expect(webhookUrlReason("http://localhost:8080/a")).toBeUndefined();
    expect(webhookUrlReason("http://[::1]:8080/a")).toBeUndefined();
    expect(webhookUrlReason("http://10.0.0.1/a")).toMatch(/https/);
    expect(webhookUrlReason("ftp://hooks.example/a")).toMatch(/https/);
  });
});
