import { pcError } from "../core/index.js";
import { sealEntry, ZERO_HASH, type AuditEntry, type AuditSource, type EntryBody, type EntryHead, type SignedRequestRecord } from "./format.js";

/**
 * An AuditSource held in memory: for tests, and for offline tools that already hold a
 * small log. It appends through `sealEntry`, so its chain is the real one.
 */
export class MemoryAuditSource implements AuditSource {
  private readonly list: AuditEntry[] = [];
  private readonly cps: { readonly seq: number; readonly jws: string }[] = [];
  private readonly requests: SignedRequestRecord[] = [];

  constructor(
    readonly trustDomain: string,
    readonly caFingerprint: string,
    private readonly chainPem: readonly string[],
  ) {}

  caChainPem(): string[] {
    return [...this.chainPem];
  }

  head(): { readonly seq: number; readonly hash: string } {
    const last = this.list[this.list.length - 1];
    return last ? { seq: last.head.seq, hash: last.hash } : { seq: -1, hash: ZERO_HASH };
  }

  /** Seals and appends an entry; seq and version are assigned here. */
  append(head: Omit<EntryHead, "v" | "seq">, body: EntryBody): AuditEntry {
    const h = this.head();
    const e = sealEntry({ ...head, v: 1, seq: h.seq + 1 }, body, h.hash);
    this.list.push(e);
    return e;
  }

  /** Appends an entry sealed elsewhere; it must continue the chain. */
  appendSealed(e: AuditEntry): void {
    const h = this.head();
    if (e.head.seq !== h.seq + 1 || e.prevHash !== h.hash) throw pcError("PC_AUDIT_WRITE_FAILED", "entry does not continue the chain");
    this.list.push(e);
  }

  addCheckpoint(seq: number, jws: string): void {
    const last = this.cps[this.cps.length - 1];
    if (seq > this.head().seq || (last && seq <= last.seq)) throw pcError("PC_AUDIT_WRITE_FAILED", "checkpoint out of order");
    this.cps.push({ seq, jws });
  }

  *entries(from: number, to: number): Iterable<AuditEntry> {
    for (let s = Math.max(0, from); s <= to && s < this.list.length; s++) yield this.list[s] as AuditEntry;
  }

  *checkpoints(from: number): Iterable<{ readonly seq: number; readonly jws: string }> {
    for (const c of this.cps) if (c.seq >= from) yield c;
  }

  /** Keeps the evidence of an accepted signed request. */
  addSignedRequest(r: SignedRequestRecord): void {
    this.requests.push(r);
  }

  *signedRequests(sinceMs: number | undefined, untilMs: number | undefined, namespace: string | undefined): Iterable<SignedRequestRecord> {
    const inWindow = (r: SignedRequestRecord) => (sinceMs === undefined || r.receivedAt >= sinceMs) && (untilMs === undefined || r.receivedAt < untilMs);
    const sorted = [...this.requests].sort((a, b) => a.receivedAt - b.receivedAt || (a.jti < b.jti ? -1 : a.jti > b.jti ? 1 : 0));
    for (const r of sorted) if (inWindow(r) && (namespace === undefined || r.namespace === namespace)) yield r;
  }

  firstSeqAtOrAfter(time: string): number | undefined {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.list[mid] as AuditEntry).head.time < time) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.list.length ? lo : undefined;
  }
}
