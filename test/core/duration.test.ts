import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration, PortcullisError } from "../../src/core/index.js";

describe("parseDuration", () => {
  it.each([
    ["1s", 1_000],
    ["90s", 90_000],
    ["15m", 900_000],
    ["24h", 86_400_000],
    ["7d", 604_800_000],
    ["9999999s", 9_999_999_000],
    [" 2h ", 7_200_000],
  ])("%j → %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ["zero", "0s"],
    ["leading zero", "01h"],
    ["no unit", "15"],
    ["unit only", "h"],
    ["unknown unit", "1w"],
    ["milliseconds", "100ms"],
    ["upper-case unit", "1H"],
    ["fraction", "1.5h"],
    ["negative", "-1h"],
    ["two units", "1h30m"],
    ["space inside", "1 h"],
    ["empty", ""],
    ["eight digits", "10000000s"],
    ["ISO 8601", "PT1H"],
  ])("refuses %s (%j) with PC_CONFIG_INVALID", (_name, text) => {
    let err: unknown;
    try {
      parseDuration(text, "ttl");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PortcullisError);
    expect((err as PortcullisError).code).toBe("PC_CONFIG_INVALID");
    expect((err as PortcullisError).detail).toBe("ttl must look like 90s, 15m, 24h or 7d");
  });
});

describe("formatDuration", () => {
  it.each([
    [86_400_000, "1d"],
    [604_800_000, "7d"],
    [3_600_000, "1h"],
    [90 * 60_000, "90m"],
    [60_000, "1m"],
    [90_000, "90s"],
    [1_000, "1s"],
    [25 * 3_600_000, "25h"],
  ])("%d ms → %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});
