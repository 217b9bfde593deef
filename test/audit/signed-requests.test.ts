import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { exportBundle } from "../../src/audit/export.js";
import { DEPLOY_ACCEPTED_TYPE } from "../../src/audit/format.js";
import { formatVerifyReport, verifyBundle, type VerifyReport } from "../../src/audit/verify.js";
import { client, buildDeployLog, JTI_ALICE, JTI_BOB, signedRequest, type DeployLog } from "./signed-request-support.js";
import { auditFixture } from "./audit-fixture.js";
import { exportLines, makePki, parse } from "./support.js";

let d: DeployLog;
let lines: string[];

beforeAll(async () => {
  d = await buildDeployLog();
  lines = await exportLines(d.source);
});

const verify = (ls: readonly string[]): Promise<VerifyReport> => verifyBundle(ls, { caFingerprint: d.pki.ca.rootFingerprint });
const first = async (ls: readonly string[]) => formatVerifyReport(await verify(ls)).split("\n")[0];

/** The index of the signed-request line for `jti`. */
function lineOf(ls: readonly string[], jti: string): number {
  const i = ls.findIndex((l) => parse(l).kind === "signed-request" && parse(l).jti === jti);
  if (i < 0) throw new Error(`no signed-request line for ${jti}`);
  return i;
}

function edit(ls: readonly string[], i: number, f: (o: Record<string, unknown>) => void): string[] {
  const out = [...ls];
  const o = JSON.parse(out[i] as string) as Record<string, unknown>;
  f(o);
  out[i] = JSON.stringify(o);
  return out;
}

const b64json = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const payloadOf = (jws: string) => JSON.parse(Buffer.from(jws.split(".")[1] as string, "base64url").toString("utf8")) as Record<string, unknown>;

describe("export: signed-request lines", () => {
  it("come after the checkpoints, one per accepted request, with the JWS and the signer certificate as stored", () => {
    const kinds = lines.map((l) => parse(l).kind);
    expect(kinds.slice(-4)).toEqual(["checkpoint", "signed-request", "signed-request", "end"]);
    const a = parse(lines[lineOf(lines, JTI_ALICE)] as string);
    const ra = d.requests[0]!;
    expect(a).toEqual({
      kind: "signed-request",
      jti: JTI_ALICE,
      requester: "user:alice",
      operation: "create",
      namespace: "team-a",
      name: "web",
      digest: ra.digest,
      receivedAt: new Date(ra.receivedAt).toISOString(),
      jws: ra.jws,
      signerCertificate: d.alice.certPem,
    });
    expect(parse(lines.at(-1) as string)).toMatchObject({ kind: "end", signedRequests: 2 });
  });

  it("follow the namespace filter and the time bounds", async () => {
    const onlyA = await exportLines(d.source, { namespace: "team-a" });
    expect(onlyA.map(parse).filter((o) => o.kind === "signed-request").map((o) => o.jti)).toEqual([JTI_ALICE]);
    const afterAlice = await exportLines(d.source, { since: d.timeOf(3) });
    expect(afterAlice.map(parse).filter((o) => o.kind === "signed-request").map((o) => o.jti)).toEqual([JTI_BOB]);
    for (const ls of [onlyA, afterAlice]) expect((await verify(ls)).ok).toBe(true);
  });

  it("leave out a request whose acceptance entry is not in the range", async () => {
    const noAccept = await buildDeployLog({ acceptAlice: false });
    const ls = await exportLines(noAccept.source);
    expect(ls.map(parse).filter((o) => o.kind === "signed-request").map((o) => o.jti)).toEqual([JTI_BOB]);
  });
});

describe("verify: signed requests", () => {
  it("re-verifies every signed request and ties it to its acceptance entry", async () => {
    const r = await verify(lines);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ ok: true, signedRequests: 2, entries: 6 });
    expect(formatVerifyReport(r).split("\n")[0]).toBe("ok: 6 entries, seq 0..5, last checkpoint at seq 5, 2 signed requests");
  });

  it("carries the signed requests of exactly the acceptance entries it shows", async () => {
    const ls = await exportLines(d.source, { actor: "user:carol" });
    expect(ls.map(parse).filter((o) => o.kind === "signed-request")).toHaveLength(0);
    expect(await verify(ls)).toMatchObject({ ok: true, signedRequests: 0 });
  });

  it("a signed request removed from the bundle (end count adjusted): missing", async () => {
    const i = lineOf(lines, JTI_ALICE);
    const without = [...lines.slice(0, i), ...lines.slice(i + 1)];
    const ls = edit(without, without.length - 1, (o) => void (o.signedRequests = (o.signedRequests as number) - 1));
    const r = await verify(ls);
    expect(r.ok).toBe(false);
    expect(r.error).toMatchObject({ kind: "missing signed request" });
  });

  it("a manifest altered inside the JWS: the signature does not verify", async () => {
    const ls = edit(lines, lineOf(lines, JTI_ALICE), (o) => {
      const [h, , s] = (o.jws as string).split(".");
      const p = payloadOf(o.jws as string);
      (p.manifest as { spec: Record<string, unknown> }).spec.image = "evil.example/miner:latest";
      o.jws = `${h}.${b64json(p)}.${s}`;
    });
    expect(await first(ls)).toBe(`FAIL at signed-request ${JTI_ALICE}: bad signed request: stored signed request does not verify: the signature does not verify`);
  });

  it("the signer certificate swapped for another identity's: not the certificate the header names", async () => {
    const ls = edit(lines, lineOf(lines, JTI_ALICE), (o) => {
      o.signerCertificate = d.bob.certPem;
    });
    expect(await first(ls)).toBe(
      `FAIL at signed-request ${JTI_ALICE}: bad signed request: stored signed request does not verify: the signer certificate is not the one the header names`,
    );
  });

  it("the same claims signed by another identity: the line's requester is not the signer", async () => {
    const byBob = await signedRequest(d.bob, "team-a", "web", JTI_ALICE, d.requests[0]!.receivedAt);
    const ls = edit(lines, lineOf(lines, JTI_ALICE), (o) => {
      o.jws = byBob.jws;
      o.signerCertificate = d.bob.certPem;
    });
    expect(await first(ls)).toBe(`FAIL at signed-request ${JTI_ALICE}: bad signed request: the line's requester is not the signed one`);
  });

  it("a certificate from a foreign CA (same identity): does not chain to the bundle's root", async () => {
    const foreign = client(makePki(), "alice");
    const forged = await signedRequest(foreign, "team-a", "web", JTI_ALICE, d.requests[0]!.receivedAt);
    expect(forged.digest).toBe(d.requests[0]!.digest);
    const ls = edit(lines, lineOf(lines, JTI_ALICE), (o) => {
      o.jws = forged.jws;
      o.signerCertificate = foreign.certPem;
    });
    expect(await first(ls)).toBe(
      `FAIL at signed-request ${JTI_ALICE}: bad signed request: stored signed request does not verify: the signer certificate does not chain to the CA bundle at the time of signing`,
    );
  });

  it("a truncated JWS: malformed", async () => {
    for (const cut of [(j: string) => j.slice(0, Math.floor(j.length / 2)), (j: string) => j.split(".").slice(0, 2).join(".")]) {
      const ls = edit(lines, lineOf(lines, JTI_BOB), (o) => {
        o.jws = cut(o.jws as string);
      });
      expect(await first(ls)).toBe(`FAIL at signed-request ${JTI_BOB}: bad signed request: stored signed request does not verify: the signed request is malformed`);
    }
  });

  it("a line that states another digest, operation or name than the signed one", async () => {
    const cases: [string, unknown][] = [
      ["digest", `sha256:${"0".repeat(64)}`],
      ["operation", "delete"],
      ["name", "other"],
    ];
    for (const [field, value] of cases) {
      const ls = edit(lines, lineOf(lines, JTI_ALICE), (o) => {
        o[field] = value;
      });
      expect(await first(ls), field).toBe(`FAIL at signed-request ${JTI_ALICE}: bad signed request: the line's ${field} is not the signed one`);
    }
  });

  it("an acceptance entry that records another digest: not in the chain", async () => {
    const other = await buildDeployLog({ acceptedDigest: `sha256:${"e".repeat(64)}` });
    const ls = await exportLines(other.source);
    expect(ls.map(parse).filter((o) => o.kind === "signed-request").map((o) => o.jti)).toEqual([JTI_ALICE, JTI_BOB]);
    const r = await verifyBundle(ls, { caFingerprint: other.pki.ca.rootFingerprint });
    expect(formatVerifyReport(r).split("\n")[0]).toBe(`FAIL at signed-request ${JTI_ALICE}: not in the chain: the acceptance entry at seq 2 names another manifest digest`);
  });

  it("evidence that does not fit the bundle's filter: another namespace, or received after until", async () => {
    const bobLine = lines[lineOf(lines, JTI_BOB)] as string;
    const inject = (ls: readonly string[]) => [...ls.slice(0, -1), bobLine, edit(ls, ls.length - 1, (o) => void (o.signedRequests = (o.signedRequests as number) + 1)).at(-1) as string];
    const onlyA = await exportLines(d.source, { namespace: "team-a" });
    expect((await verify(inject(onlyA))).error).toMatchObject({ kind: "filter mismatch", signedRequest: JTI_BOB, message: "a signed request of another namespace than the filter's" });
    const early = await exportLines(d.source, { until: d.timeOf(3) });
    expect((await verify(inject(early))).error).toMatchObject({ kind: "not in the chain", signedRequest: JTI_BOB });
  });

  it("evidence whose acceptance is nowhere in the range", async () => {
    const noAccept = await buildDeployLog({ acceptAlice: false });
    const ls = await exportLines(noAccept.source);
    const alice = noAccept.requests[0]!;
    const line = JSON.stringify({
      kind: "signed-request",
      jti: alice.jti,
      requester: alice.requester,
      operation: alice.operation,
      namespace: alice.namespace,
      name: alice.name,
      digest: alice.digest,
      receivedAt: new Date(alice.receivedAt).toISOString(),
      jws: alice.jws,
      signerCertificate: alice.signerCertificatePem,
    });
    const withAlice = [...ls.slice(0, -1), line, edit(ls, ls.length - 1, (o) => void (o.signedRequests = 2)).at(-1) as string];
    const r = await verifyBundle(withAlice, { caFingerprint: noAccept.pki.ca.rootFingerprint });
    expect(formatVerifyReport(r).split("\n")[0]).toBe(`FAIL at signed-request ${JTI_ALICE}: not in the chain: no deploy.request_accepted entry shown in the bundle names this request`);
  });

  it("a duplicated line, an undeclared field, a removed line (end count) and a line out of place", async () => {
    const i = lineOf(lines, JTI_ALICE);
    const dup = [...lines.slice(0, i + 1), lines[i] as string, ...lines.slice(i + 1)];
    expect((await verify(dup)).error).toMatchObject({ kind: "duplicate", signedRequest: JTI_ALICE });
    const extra = edit(lines, i, (o) => {
      o.manifest = {};
    });
    expect(await first(extra)).toBe(`FAIL at signed-request ${JTI_ALICE}: format: malformed signed-request line`);
    const removed = lines.filter((_, k) => k !== i);
    expect(await first(removed)).toBe("FAIL at line " + (lines.length - 1) + ": format: the end line's counts do not match the bundle");
    const cp = lines.findIndex((l) => parse(l).kind === "checkpoint");
    const early = [...lines.slice(0, cp), lines[i] as string, ...lines.slice(cp).filter((_, k) => k + cp !== i)];
    expect((await verify(early)).error).toMatchObject({ kind: "format", message: expect.stringContaining("after the signed requests") as unknown });
  });
});

describe("export from the store: the deploy_requests table and the real log", () => {
  it("exports the accepted requests of the range from SQLite, and the bundle verifies offline", async () => {
    const f = auditFixture();
    try {
      const pki = { ca: f.ca, clock: f.clock };
      const alice = client(pki, "alice");
      const stored = async (jti: string, ns: string, accepted: boolean) => {
        const r = await signedRequest(alice, ns, "web", jti, f.clock.now().getTime(), f.config.trustDomain);
        const inserted = f.store.deployRequests.insert({
          jti: r.jti,
          requester: r.requester,
          operation: "create",
          namespace: r.namespace,
          name: r.name,
          digest: r.digest,
          jws: r.jws,
          jwsSha256: createHash("sha256").update(r.jws).digest("hex"),
          signerCertificatePem: r.signerCertificatePem,
          receivedAt: r.receivedAt,
          expiresAt: r.receivedAt + 120_000,
          result: null,
        });
        expect(inserted).toBe(true);
        if (accepted) f.log.record({ type: DEPLOY_ACCEPTED_TYPE, outcome: "allowed", actor: alice.identity, resource: "deployments", namespace: ns, target: jti, deploy: { jti, digest: r.digest } });
        f.clock.advance(1000);
        return r;
      };
      const a = await stored("store-request-0000001", "team-a", true);
      await stored("store-request-0000002", "team-b", true);
      await stored("store-request-0000003", "team-a", false); // received, never accepted: no evidence line
      const out: string[] = [];
      const s = await exportBundle(f.log, {}, (l) => void out.push(l), { ensureCheckpoint: async () => void (await f.log.checkpointNow()) });
      expect(s.signedRequests).toBe(2);
      expect(out.map(parse).filter((o) => o.kind === "signed-request").map((o) => o.jti)).toEqual(["store-request-0000001", "store-request-0000002"]);
      expect(parse(out[lineOf(out, a.jti)] as string)).toMatchObject({ jws: a.jws, signerCertificate: alice.certPem, receivedAt: new Date(a.receivedAt).toISOString() });
      const r = await verifyBundle(out, { caFingerprint: f.ca.rootFingerprint });
      expect(r.error).toBeUndefined();
      expect(r).toMatchObject({ ok: true, signedRequests: 2 });

      const onlyB: string[] = [];
      await exportBundle(f.log, { namespace: "team-b" }, (l) => void onlyB.push(l));
      expect(onlyB.map(parse).filter((o) => o.kind === "signed-request").map((o) => o.jti)).toEqual(["store-request-0000002"]);
      expect((await verifyBundle(onlyB, { caFingerprint: f.ca.rootFingerprint })).ok).toBe(true);
    } finally {
      f.close();
    }
  });
});
