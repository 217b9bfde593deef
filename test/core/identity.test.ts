import { describe, expect, it } from "vitest";
import {
  assertTrustDomain,
  formatIdentity,
  identityFromSpiffe,
  identityToSpiffe,
  parseIdentity,
  sameIdentity,
  validTrustDomain,
} from "../../src/core/index.js";
import { refusal } from "../support/refusal.js";

const TD = "portcullis.local";


const NAME_63 = `a${"b".repeat(61)}c`;
const NAME_64 = `a${"b".repeat(62)}c`;

describe("parseIdentity / formatIdentity", () => {
  it.each([
    ["user:alice", "user", "alice"],
    ["node:worker-1", "node", "worker-1"],
    ["service:api.gateway", "service", "api.gateway"],
    ["user:a", "user", "a"],
    ["user:0", "user", "0"],
    ["user:a_b.c-d", "user", "a_b.c-d"],
    [`user:${NAME_63}`, "user", NAME_63],
  ])("%s", (text, kind, name) => {
    const id = parseIdentity(text);
    expect(id).toEqual({ kind, name });
    expect(formatIdentity(id)).toBe(text);
    expect(parseIdentity(formatIdentity(id))).toEqual(id);
  });

  it.each([
    ["empty", ""],
    ["no colon", "alice"],
    ["empty kind", ":alice"],
    ["empty name", "user:"],
    ["wrong kind", "admin:alice"],
    ["kind in upper case", "User:alice"],
    ["name in upper case", "user:Alice"],
    ["all upper case", "USER:ALICE"],
    ["slash in name", "user:al/ice"],
    ["path in name", "user:alice/../bob"],
    ["backslash", "user:al\\ice"],
    ["second colon", "user:alice:x"],
    ["leading dash", "user:-alice"],
    ["trailing dot", "user:alice."],
    ["leading underscore", "user:_alice"],
    ["space", "user:al ice"],
    ["leading space", " user:alice"],
    ["trailing newline", "user:alice\n"],
    ["non-ASCII", "user:álice"],
    ["look-alike letter", "user:\u0430lice"],
    ["NUL", "user:alice\u0000"],
    ["64 characters", `user:${NAME_64}`],
    ["very long", `user:${"a".repeat(10_000)}`],
    ["percent escape", "user:%61lice"],
    ["plural kind", "users:alice"],
  ])("refuses %s (%j) with PC_PKI_IDENTITY_INVALID", (_name, text) => {
    const e = refusal(() => parseIdentity(text));
    expect(e.code).toBe("PC_PKI_IDENTITY_INVALID");
    expect(e.status).toBe(400);
    expect(e.detail).toMatch(/^identity must be user:NAME, node:NAME or service:NAME/);
  });

  it("compares identities by kind and name", () => {
    expect(sameIdentity(parseIdentity("user:alice"), { kind: "user", name: "alice" })).toBe(true);
    expect(sameIdentity(parseIdentity("user:alice"), parseIdentity("node:alice"))).toBe(false);
    expect(sameIdentity(parseIdentity("user:alice"), parseIdentity("user:alicf"))).toBe(false);
  });
});

describe("SPIFFE IDs", () => {
  it.each(["user:alice", "node:worker-1", "service:api.gateway", `user:${NAME_63}`])("round-trips %s", (text) => {
    const id = parseIdentity(text);
    const uri = identityToSpiffe(id, TD);
    expect(uri).toBe(`spiffe://${TD}/${id.kind}/${id.name}`);
    expect(identityFromSpiffe(uri, TD)).toEqual(id);
  });

  it.each([
    ["another trust domain", "spiffe://example.org/user/alice", "not of this trust domain"],
    ["a longer trust domain", "spiffe://portcullis.local.evil/user/alice", "not of this trust domain"],
    ["a trust domain with a suffix", "spiffe://portcullis.localx/user/alice", "not of this trust domain"],
    ["a sub-domain", "spiffe://x.portcullis.local/user/alice", "not of this trust domain"],
    ["a port", "spiffe://portcullis.local:443/user/alice", "not of this trust domain"],
    ["user info", "spiffe://alice@portcullis.local/user/alice", "not of this trust domain"],
    ["another scheme", "https://portcullis.local/user/alice", "not of this trust domain"],
    ["upper-case scheme", "SPIFFE://portcullis.local/user/alice", "not of this trust domain"],
    ["upper-case trust domain", "spiffe://PORTCULLIS.LOCAL/user/alice", "not of this trust domain"],
    ["no path", "spiffe://portcullis.local", "not of this trust domain"],
    ["only a kind", "spiffe://portcullis.local/user", "malformed SPIFFE ID"],
    ["an extra segment", "spiffe://portcullis.local/user/alice/x", "malformed SPIFFE ID"],
    ["a trailing slash", "spiffe://portcullis.local/user/alice/", "malformed SPIFFE ID"],
    ["an empty segment", "spiffe://portcullis.local//user/alice", "malformed SPIFFE ID"],
    ["a dot-dot segment", "spiffe://portcullis.local/user/../alice", "malformed SPIFFE ID"],
  ])("refuses %s: %s (%s)", (_name, uri, detail) => {
    const e = refusal(() => identityFromSpiffe(uri, TD));
    expect(e.code).toBe("PC_PKI_IDENTITY_INVALID");
    expect(e.detail).toBe(detail);
  });

  it.each([
    ["upper-case kind", "spiffe://portcullis.local/USER/alice"],
    ["upper-case name", "spiffe://portcullis.local/user/Alice"],
    ["unknown kind", "spiffe://portcullis.local/admin/alice"],
    ["a query", "spiffe://portcullis.local/user/alice?x=1"],
    ["a fragment", "spiffe://portcullis.local/user/alice#f"],
    ["a percent escape", "spiffe://portcullis.local/user/%61lice"],
    ["a name too long", `spiffe://portcullis.local/user/${NAME_64}`],
    ["an empty name", "spiffe://portcullis.local/user/"],
  ])("refuses a SPIFFE ID with %s", (_name, uri) => {
    const e = refusal(() => identityFromSpiffe(uri, TD));
    expect(e.code).toBe("PC_PKI_IDENTITY_INVALID");
  });
});

describe("trust domains", () => {
  it.each(["portcullis.local", "a", "example-1.org", "a.b.c", "0", `${"a".repeat(253)}`])("accepts %s", (td) => {
    expect(validTrustDomain(td)).toBe(true);
    expect(assertTrustDomain(td)).toBe(td);
  });

  it.each([
    ["empty", ""],
    ["upper case", "Portcullis.local"],
    ["double dot", "a..b"],
    ["leading dot", ".a"],
    ["trailing dot", "a."],
    ["leading dash", "-a"],
    ["trailing dash", "a-"],
    ["slash", "a/b"],
    ["underscore", "a_b"],
    ["colon and port", "a:443"],
    ["space", "a b"],
    ["too long", "a".repeat(254)],
  ])("refuses %s (%j) with PC_CONFIG_INVALID", (_name, td) => {
    expect(validTrustDomain(td)).toBe(false);
    const e = refusal(() => assertTrustDomain(td));
    expect(e.code).toBe("PC_CONFIG_INVALID");
    expect(e.detail).toMatch(/^trust domain must be/);
  });
});
