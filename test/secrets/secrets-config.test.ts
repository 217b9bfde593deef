/** The `secrets` object of config.json: optional, defaults when absent, strictly checked. */
import { describe, expect, it } from "vitest";
import { DEFAULT_SECRETS_CONFIG, defaultConfig, parseConfig, secretsConfigOf } from "../../src/core/index.js";
import { expectRefusal } from "../support/refusal.js";

const base = () => JSON.parse(JSON.stringify(defaultConfig())) as Record<string, unknown>;

describe("config secrets", () => {
  it("a config.json without it stays valid and gets the defaults", () => {
    const cfg = parseConfig(base());
    expect(cfg.secrets).toBeUndefined();
    expect(secretsConfigOf(cfg)).toEqual({ keyring: "file", tmpfsRoot: "/run/portcullis/secrets" });
    expect(DEFAULT_SECRETS_CONFIG).toEqual({ keyring: "file", tmpfsRoot: "/run/portcullis/secrets" });
  });

  it.each([
    [{}, { keyring: "file", tmpfsRoot: "/run/portcullis/secrets" }],
    [{ keyring: "env" }, { keyring: "env", tmpfsRoot: "/run/portcullis/secrets" }],
    [{ keyring: "file", tmpfsRoot: "/dev/shm/pc" }, { keyring: "file", tmpfsRoot: "/dev/shm/pc" }],
  ])("%j → %j", (secrets, expected) => {
    const cfg = parseConfig({ ...base(), secrets });
    expect(cfg.secrets).toEqual(expected);
    expect(parseConfig(JSON.parse(JSON.stringify(cfg)))).toEqual(cfg);
  });

  it.each([
    ["not an object", "file", /secrets must be an object/],
    ["an array", [], /secrets must be an object/],
    ["an unknown key", { keyring: "file", kms: "x" }, /unknown key secrets\.kms/],
    ["another keyring kind", { keyring: "kms" }, /secrets\.keyring/],
    ["keyring not a string", { keyring: 1 }, /secrets\.keyring/],
    ["a relative tmpfsRoot", { tmpfsRoot: "run/secrets" }, /tmpfsRoot/],
    ["a tmpfsRoot with ..", { tmpfsRoot: "/run/../etc" }, /tmpfsRoot/],
    ["a tmpfsRoot with .", { tmpfsRoot: "/run/./x" }, /tmpfsRoot/],
    ["a tmpfsRoot with NUL", { tmpfsRoot: "/run/x\0y" }, /tmpfsRoot/],
    ["tmpfsRoot not a string", { tmpfsRoot: 5 }, /tmpfsRoot/],
  ])("refuses %s: PC_CONFIG_INVALID", (_, secrets, detail) => {
    expectRefusal(() => parseConfig({ ...base(), secrets }), "PC_CONFIG_INVALID", detail);
  });

  it("defaultConfig keeps an explicit secrets object", () => {
    expect(defaultConfig({ secrets: { keyring: "env", tmpfsRoot: "/x" } }).secrets).toEqual({ keyring: "env", tmpfsRoot: "/x" });
    expect("secrets" in defaultConfig()).toBe(false);
  });
});
