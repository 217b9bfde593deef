import {
  BODY_FIELDS,
  BUNDLE_FORMAT,
  DEPLOY_FIELDS,
  deployValueOk,
  HEAD_FIELDS,
  type EntryBody,
  type EntryHead,
  type ExportFilter,
} from "./format.js";

/**
 * The shape checks of a bundle's lines (header, entry heads and bodies) and the compact
 * store of entry hashes that the verifier keeps. Pure: no I/O, no crypto.
 */

export const HEX64 = /^[0-9a-f]{64}$/;
export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;
export const OUTCOMES = new Set(["allowed", "denied", "error"]);
const HEAD_KEYS = new Set<string>(HEAD_FIELDS);
const BODY_KEYS = new Set<string>(BODY_FIELDS);
const FILTER_KEYS = new Set(["since", "until", "actor", "action", "namespace", "outcome"]);

export type Obj = Record<string, unknown>;
export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
export const isStr = (v: unknown): v is string => typeof v === "string";
const optStr = (v: unknown) => v === undefined || typeof v === "string";
export const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export function validHead(h: unknown): h is EntryHead {
  if (!isObj(h)) return false;
  for (const k in h) if (!HEAD_KEYS.has(k)) return false;
  return (
    h.v === 1 &&
    isSeq(h.seq) &&
    isStr(h.time) &&
    ISO_MS.test(h.time) &&
    isStr(h.type) &&
    isStr(h.outcome) &&
    OUTCOMES.has(h.outcome) &&
    isStr(h.actor) &&
    optStr(h.action) &&
    optStr(h.resource) &&
    optStr(h.namespace)
  );
}

export function validBody(b: unknown): b is EntryBody {
  if (!isObj(b)) return false;
  for (const k in b) if (!BODY_KEYS.has(k)) return false;
  if (!(optStr(b.actorSerial) && optStr(b.source) && optStr(b.requestId) && optStr(b.bodySha256) && optStr(b.target) && optStr(b.targetHmac))) return false;
  if (b.status !== undefined && !Number.isSafeInteger(b.status)) return false;
  if (b.reasons !== undefined && !(Array.isArray(b.reasons) && b.reasons.every(isStr))) return false;
  if (b.genesis !== undefined) {
    const g = b.genesis;
    if (!isObj(g) || Object.keys(g).length !== 2 || !isStr(g.trustDomain) || !isStr(g.caFingerprint)) return false;
  }
  if (b.deploy !== undefined) {
    const d = b.deploy;
    if (!isObj(d)) return false;
    for (const k in d) if (!Object.hasOwn(DEPLOY_FIELDS, k) || !deployValueOk(DEPLOY_FIELDS[k as keyof typeof DEPLOY_FIELDS], d[k])) return false;
  }
  return true;
}

/** 32 bytes per entry, in chunks. */
export class HashStore {
  private static readonly PER_CHUNK = 1 << 15;
  private readonly chunks: Buffer[] = [];
  set(i: number, hex: string): void {
    const c = Math.floor(i / HashStore.PER_CHUNK);
    while (this.chunks.length <= c) this.chunks.push(Buffer.allocUnsafe(32 * HashStore.PER_CHUNK));
    (this.chunks[c] as Buffer).write(hex, (i % HashStore.PER_CHUNK) * 32, "hex");
  }
  get(i: number): string {
    const off = (i % HashStore.PER_CHUNK) * 32;
    return (this.chunks[Math.floor(i / HashStore.PER_CHUNK)] as Buffer).toString("hex", off, off + 32);
  }
}


export interface Header {
  readonly trustDomain: string;
  readonly caFingerprint: string;
  readonly filter: ExportFilter;
  readonly from: number;
  readonly to: number;
  readonly anchor: { readonly seq: number; readonly hash: string };
}

export function parseHeader(o: Obj): Header | string {
  if (o.format !== BUNDLE_FORMAT) return `not a ${BUNDLE_FORMAT} bundle`;
  if (!isStr(o.trustDomain) || o.trustDomain === "") return "header has no trust domain";
  if (!isStr(o.caFingerprint) || !HEX64.test(o.caFingerprint)) return "header has no CA fingerprint";
  if (!isStr(o.createdAt)) return "header has no creation time";
  const f = o.filter;
  if (!isObj(f) || Object.entries(f).some(([k, v]) => !FILTER_KEYS.has(k) || !isStr(v))) return "header filter is malformed";
  if (f.outcome !== undefined && !OUTCOMES.has(f.outcome as string)) return "header filter is malformed";
  const r = o.range;
  if (!isObj(r) || !isSeq(r.from) || !isSeq(r.to) || r.from > r.to) return "header range is malformed";
  const a = o.anchor;
  if (!isObj(a) || !Number.isSafeInteger(a.seq) || !isStr(a.hash) || !HEX64.test(a.hash)) return "header anchor is malformed";
  return { trustDomain: o.trustDomain, caFingerprint: o.caFingerprint, filter: f as ExportFilter, from: r.from, to: r.to, anchor: { seq: a.seq as number, hash: a.hash } };
}
