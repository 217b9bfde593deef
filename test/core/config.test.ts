import { describe, expect, it } from "vitest";
import {
  DEFAULT_LIFETIMES,
  defaultConfig,
  formatHostPort,
  parseConfig,
  parseHostPort,
} from "../../src/core/index.js";
import { refusal } from "../support/refusal.js";


describe("parseHostPort", () => {
  it.each([
    ["127.0.0.1:8443", "127.0.0.1", 8443],
    ["localhost:0", "localhost", 0],
    ["gateway.example.org:443", "gateway.example.org", 443],
    ["[::1]:443", "::1", 443],
    ["[fe80::1]:65535", "fe80::1", 65535],
    ["[::ffff:127.0.0.1]:1", "::ffff:127.0.0.1", 1],
    [" 0.0.0.0:80 ", "0.0.0.0", 80],
  ])("%j → %s port %d", (text, host, port) => {
    const hp = parseHostPort(text);
    expect(hp).toEqual({ host, port });
    expect(parseHostPort(formatHostPort(hp))).toEqual(hp);
  });

  it("brackets IPv6 hosts when formatting", () => {
    expect(formatHostPort({ host: "::1", port: 8443 })).toBe("[::1]:8443");
    expect(formatHostPort({ host: "127.0.0.1", port: 8443 })).toBe("127.0.0.1:8443");
  });

  it.each([
    ["no port", "127.0.0.1"],
    ["no host", ":8443"],
    ["empty port", "localhost:"],
    ["port too large", "localhost:65536"],
    ["six-digit port", "localhost:100000"],
    ["negative port", "localhost:-1"],
    ["named port", "localhost:https"],
    ["unbracketed IPv6", "::1:443"],
    ["bracketed IPv6 without port", "[::1]"],
    ["bad bracketed host", "[zz]:1"],
    ["space in host", "local host:1"],
    ["URL", "https://localhost:443"],
    ["empty", ""],
  ])("refuses %s (%j) with PC_CONFIG_INVALID", (_name, text) => {
    const e = refusal(() => parseHostPort(text, "listen"));
    expect(e.code).toBe("PC_CONFIG_INVALID");
    expect(e.detail).toBe("listen must be HOST:PORT");
  });
});

/** A config.json as it is written: the defaults, through JSON. */
function rawConfig(patch: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...(JSON.parse(JSON.stringify(defaultConfig())) as Record<string, unknown>), ...patch };
}

describe("parseConfig", () => {
  it("accepts the default config as written to config.json", () => {
    expect(parseConfig(rawConfig())).toEqual(defaultConfig());
  });

  it("fills lifetimes that are not given and keeps those that are", () => {
    const cfg = parseConfig(rawConfig({ lifetimes: { userDefault: 3_600_000 } }));
    expect(cfg.lifetimes).toEqual({ ...DEFAULT_LIFETIMES, userDefault: 3_600_000 });
    expect(parseConfig(rawConfig({ lifetimes: undefined })).lifetimes).toEqual(DEFAULT_LIFETIMES);
  });

  const lifetimes = (l: Record<string, unknown>) => ({ lifetimes: l });

  it.each([
    ["not an object", null, "config must be an object"],
    ["an array", [], "config must be an object"],
    ["a string", "{}", "config must be an object"],
    ["an unknown key", rawConfig({ extra: 1 }), "unknown key extra"],
    ["a misspelt key", rawConfig({ trustdomain: "x" }), "unknown key trustdomain"],
    ["a missing trust domain", rawConfig({ trustDomain: undefined }), "trustDomain must be a string"],
    ["a numeric listen", rawConfig({ listen: 8443 }), "listen must be a string"],
    ["a bad listen address", rawConfig({ listen: "8443" }), "listen must be HOST:PORT"],
    ["a bad bootstrap address", rawConfig({ bootstrapListen: "[::1]" }), "bootstrapListen must be HOST:PORT"],
    ["sans that are not strings", rawConfig({ sans: [1] }), "sans must be a list of strings"],
    ["a SAN that is not a name", rawConfig({ sans: ["a b"] }), 'sans: "a b" is not a DNS name or IP address'],
    ["an administrator list (powers come from the RBAC policy)", rawConfig({ admins: ["user:admin"] }), "unknown key admins"],
    ["an unknown lifetime", rawConfig(lifetimes({ user: 60_000 })), "unknown lifetime user"],
    ["an inherited name as lifetime", rawConfig(lifetimes({ toString: 60_000 })), "unknown lifetime toString"],
    ["a __proto__ lifetime", rawConfig({ lifetimes: JSON.parse(`{"__proto__":60000}`) as unknown }), "unknown lifetime __proto__"],
    ["lifetimes that are a number", rawConfig({ lifetimes: 5 }), "lifetimes must be an object"],
    ["lifetimes that are a list", rawConfig({ lifetimes: [] }), "lifetimes must be an object"],
    ["lifetimes that are null", rawConfig({ lifetimes: null }), "lifetimes must be an object"],
    ["a lifetime as text", rawConfig(lifetimes({ userDefault: "24h" })), "lifetimes.userDefault must be at least 60000 ms"],
    ["a lifetime under a minute", rawConfig(lifetimes({ node: 59_999 })), "lifetimes.node must be at least 60000 ms"],
    ["a zero lifetime", rawConfig(lifetimes({ server: 0 })), "lifetimes.server must be at least 60000 ms"],
    ["a negative lifetime", rawConfig(lifetimes({ root: -1 })), "lifetimes.root must be at least 60000 ms"],
    ["a fractional lifetime", rawConfig(lifetimes({ service: 60_000.5 })), "lifetimes.service must be at least 60000 ms"],
    ["an infinite lifetime", rawConfig(lifetimes({ userMax: Infinity })), "lifetimes.userMax must be at least 60000 ms"],
    ["a user default above the maximum", rawConfig(lifetimes({ userDefault: 8 * 86_400_000 })), "lifetimes.userDefault exceeds userMax"],
    [
      "a token default above the maximum",
      rawConfig(lifetimes({ enrollTokenDefault: 3_600_000, enrollTokenMax: 600_000 })),
      "lifetimes.enrollTokenDefault exceeds enrollTokenMax",
    ],
    ["an upper-case trust domain", rawConfig({ trustDomain: "Portcullis.Local" }), "trust domain must be lower-case letters, digits, '.' and '-'"],
    ["a trust domain with a slash", rawConfig({ trustDomain: "td/user" }), "trust domain must be lower-case letters, digits, '.' and '-'"],
    ["an empty trust domain", rawConfig({ trustDomain: "" }), "trust domain must be lower-case letters, digits, '.' and '-'"],
  ])("refuses %s with PC_CONFIG_INVALID", (_name, raw, detail) => {
    const e = refusal(() => parseConfig(raw));
    expect(e.code).toBe("PC_CONFIG_INVALID");
    expect(e.status).toBe(400);
    expect(e.detail).toBe(detail);
  });

  it("leaves Object.prototype alone", () => {
    refusal(() => parseConfig(rawConfig({ lifetimes: JSON.parse(`{"__proto__":{"polluted":1}}`) as unknown })));
    expect((Object.prototype as { polluted?: unknown }).polluted).toBeUndefined();
  });
});
