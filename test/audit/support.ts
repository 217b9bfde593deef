import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { CompactSign } from "jose";
import { DEFAULT_LIFETIMES, ManualClock } from "../../src/core/index.js";
import { CertificateAuthority, derToPem, spkiDer } from "../../src/pki/index.js";
import { CHECKPOINT_TYP, type CheckpointPayload, type EntryBody, type EntryHead, type Outcome } from "../../src/audit/format.js";
import { exportBundle } from "../../src/audit/export.js";
import { MemoryAuditSource } from "../../src/audit/memory-source.js";
import type { ExportFilter } from "../../src/audit/format.js";
import { prng } from "../support/prng.js";

/**
 * Realistic audit logs for the export and verify tests: a real CA (root + issuing CA),
 * an audit certificate issued by it for service:audit, checkpoints signed with jose.
 */

export const TD = "example.test";
export const START = Date.parse("2026-03-01T09:00:00.000Z");

export interface Pki {
  readonly ca: CertificateAuthority;
  readonly clock: ManualClock;
}

export function makePki(td = TD): Pki {
  const clock = new ManualClock(START - 3_600_000);
  return { ca: CertificateAuthority.create(td, clock, DEFAULT_LIFETIMES), clock };
}

export interface Signer {
  readonly key: KeyObject;
  /** [audit certificate, issuing CA], base64 DER. */
  readonly x5c: readonly string[];
  readonly leafPem: string;
}

/** An audit key certified by `pki.ca` for `identity` (service:audit unless told). */
export function auditSigner(pki: Pki, name = "audit", lifetimeMs = 30 * 86_400_000): Signer {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = pki.ca.issueLeaf({ spki: spkiDer(publicKey), profile: "client", identity: { kind: "service", name }, lifetimeMs });
  return {
    key: privateKey,
    x5c: [leaf.der.toString("base64"), pki.ca.material.intermediateDer.toString("base64")],
    leafPem: derToPem(leaf.der, "CERTIFICATE"),
  };
}

/** A key that claims the audit certificate's chain without being certified for it. */
export function rogueKeyWithChain(real: Signer): Signer {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { ...real, key: privateKey };
}

export async function signCheckpoint(s: Signer, p: CheckpointPayload): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(p)))
    .setProtectedHeader({ alg: "ES256", typ: CHECKPOINT_TYP, x5c: [...s.x5c] })
    .sign(s.key);
}

export interface LogOptions {
  readonly entries: number;
  readonly checkpointEvery?: number;
  /** Checkpoint the last entry too (default true). */
  readonly checkpointEnd?: boolean;
  readonly seed?: number;
  /** Milliseconds between entries (default 1,200: 3,000 entries span an hour). */
  readonly stepMs?: number;
  readonly td?: string;
}

export interface TestLog {
  readonly pki: Pki;
  readonly signer: Signer;
  readonly source: MemoryAuditSource;
  readonly timeOf: (seq: number) => string;
}

const TYPES = ["api.request", "authz.decision", "api.request", "pki.certificate_issued", "rbac.policy_changed"] as const;
const ROUTES = ["GET /v1/whoami", "POST /v1/deploys", "GET /v1/nodes", "POST /v1/certificates", "PUT /v1/policies/rbac"] as const;

export function entryFor(rand: () => number, time: string): { head: Omit<EntryHead, "v" | "seq">; body: EntryBody } {
  const r = rand();
  const outcome: Outcome = r < 0.8 ? "allowed" : r < 0.95 ? "denied" : "error";
  const type = TYPES[Math.floor(rand() * TYPES.length)] as string;
  const ns = `team-${Math.floor(rand() * 8)}`;
  const head = {
    time,
    type,
    outcome,
    actor: rand() < 0.1 ? "anonymous" : `user:u${Math.floor(rand() * 40)}`,
    action: ROUTES[Math.floor(rand() * ROUTES.length)] as string,
    resource: rand() < 0.5 ? "deployments" : "certificates",
    ...(rand() < 0.7 ? { namespace: ns } : {}),
  };
  const body: EntryBody = {
    actorSerial: Math.floor(rand() * 2 ** 48).toString(16),
    source: `10.0.${Math.floor(rand() * 255)}.${Math.floor(rand() * 255)}:${40000 + Math.floor(rand() * 20000)}`,
    status: outcome === "allowed" ? 200 : outcome === "denied" ? 403 : 500,
    requestId: `req-${Math.floor(rand() * 2 ** 40).toString(36)}`,
    ...(outcome === "denied" ? { reasons: ["rbac: no rule allows", `namespace ${ns}`] } : {}),
    ...(rand() < 0.3 ? { bodySha256: Math.floor(rand() * 2 ** 52).toString(16).padStart(64, "0") } : {}),
    ...(rand() < 0.2 ? { target: `serial:${Math.floor(rand() * 2 ** 32).toString(16)}` } : {}),
  };
  return { head, body };
}

/** A log with a genesis entry, `entries - 1` generated entries, and checkpoints. */
export async function buildLog(o: LogOptions, pki: Pki = makePki(o.td ?? TD), signer: Signer = auditSigner(pki)): Promise<TestLog> {
  const td = o.td ?? TD;
  const every = o.checkpointEvery ?? 1000;
  const step = o.stepMs ?? 1200;
  const rand = prng(o.seed ?? 1);
  const source = new MemoryAuditSource(td, pki.ca.rootFingerprint, [derToPem(pki.ca.material.rootDer, "CERTIFICATE"), pki.ca.intermediatePem, signer.leafPem]);
  const timeOf = (seq: number) => new Date(START + seq * step).toISOString();
  const checkpoint = async (seq: number, hash: string) =>
    source.addCheckpoint(seq, await signCheckpoint(signer, { seq, hash, time: new Date(Date.parse(timeOf(seq)) + 1).toISOString(), trustDomain: td }));
  const g = source.append(
    { time: timeOf(0), type: "audit.genesis", outcome: "allowed", actor: "service:gateway" },
    { genesis: { trustDomain: td, caFingerprint: pki.ca.rootFingerprint } },
  );
  let last = g;
  for (let seq = 1; seq < o.entries; seq++) {
    const { head, body } = entryFor(rand, timeOf(seq));
    last = source.append(head, body);
    if ((seq + 1) % every === 0) await checkpoint(seq, last.hash);
  }
  if ((o.checkpointEnd ?? true) && source.head().seq !== [...source.checkpoints(0)].at(-1)?.seq) await checkpoint(last.head.seq, last.hash);
  return { pki, signer, source, timeOf };
}

/** Exports to an array of lines. */
export async function exportLines(source: MemoryAuditSource, filter: ExportFilter = {}): Promise<string[]> {
  const lines: string[] = [];
  await exportBundle(source, filter, (l) => {
    lines.push(l);
  });
  return lines;
}

export type Line = Record<string, unknown> & { kind: string; entry?: Record<string, unknown> & { head: Record<string, unknown> } };
export const parse = (l: string): Line => JSON.parse(l) as Line;

/** The index in `lines` of the entry (full or sealed) with this seq. */
export function lineOfSeq(lines: readonly string[], seq: number): number {
  const i = lines.findIndex((l) => {
    const o = parse(l);
    return (o.kind === "entry" || o.kind === "sealed") && o.entry?.head.seq === seq;
  });
  if (i < 0) throw new Error(`no line for seq ${seq}`);
  return i;
}
