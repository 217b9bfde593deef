import { X509Certificate } from "node:crypto";
import { createReadStream } from "node:fs";
import { pcError } from "../core/index.js";
import { formatFingerprint, parseFingerprint } from "../pki/index.js";
import { CheckpointVerifier, findRoot } from "./checkpoint-verify.js";
import {
  BODY_FIELDS,
  BUNDLE_FORMAT,
  canonicalBody,
  chainHash,
  sha256hex,
  HEAD_FIELDS,
  matchesFilter,
  ZERO_HASH,
  type AuditSource,
  type EntryBody,
  type EntryHead,
  type ExportFilter,
} from "./format.js";

/**
 * Offline verification of an export bundle (and, through the same checks, of the live
 * log). Streams: one pass over the lines; it keeps 32 bytes per entry of the range (the
 * hashes that checkpoints, which come after the entries, are compared with) and nothing
 * else. It stops at the first problem and names its seq. See docs/audit.md.
 */

export type VerifyErrorKind =
  | "parse"
  | "format"
  | "untrusted CA"
  | "anchor"
  | "gap"
  | "reorder"
  | "duplicate"
  | "hash mismatch"
  | "hidden entry"
  | "filter mismatch"
  | "bad signature"
  | "untrusted signer"
  | "checkpoint mismatch"
  | "truncated"
  | "uncovered";

export interface VerifyError {
  /** The first bad seq, when the problem is at an entry or a checkpoint. */
  readonly seq: number | null;
  readonly kind: VerifyErrorKind;
  readonly message: string;
  /** The bundle line (1-based) where it was found; absent for the live log. */
  readonly line?: number;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Entries shown in full. */
  readonly entries: number;
  /** Entries shown sealed (they do not match the filter). */
  readonly sealed: number;
  /** The seq range verified: from the first entry to the last one checked. */
  readonly from: number | null;
  readonly to: number | null;
  readonly lastCheckpoint: number | null;
  readonly checkpoints: number;
  /** Hex SHA-256 of the root CA certificate the checkpoints chain to. */
  readonly rootFingerprint: string | null;
  /** True when the root was compared with a fingerprint the caller gave. */
  readonly rootPinned: boolean;
  readonly filter: ExportFilter | null;
  readonly error?: VerifyError;
}

export interface VerifyOptions {
  /** The root CA fingerprint the auditor trusts: `SHA256:<hex>` or hex. */
  readonly caFingerprint?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;
const OUTCOMES = new Set(["allowed", "denied", "error"]);
const HEAD_KEYS = new Set<string>(HEAD_FIELDS);
const BODY_KEYS = new Set<string>(BODY_FIELDS);
const FILTER_KEYS = new Set(["since", "until", "actor", "action", "namespace", "outcome"]);
const str = JSON.stringify;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const optStr = (v: unknown) => v === undefined || typeof v === "string";
const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

function validHead(h: unknown): h is EntryHead {
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

function validBody(b: unknown): b is EntryBody {
  if (!isObj(b)) return false;
  for (const k in b) if (!BODY_KEYS.has(k)) return false;
  if (!(optStr(b.actorSerial) && optStr(b.source) && optStr(b.requestId) && optStr(b.bodySha256) && optStr(b.target) && optStr(b.targetHmac))) return false;
  if (b.status !== undefined && !Number.isSafeInteger(b.status)) return false;
  if (b.reasons !== undefined && !(Array.isArray(b.reasons) && b.reasons.every(isStr))) return false;
  if (b.genesis !== undefined) {
    const g = b.genesis;
    if (!isObj(g) || Object.keys(g).length !== 2 || !isStr(g.trustDomain) || !isStr(g.caFingerprint)) return false;
  }
  return true;
}

/** 32 bytes per entry, in chunks. */
class HashStore {
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

class Failure extends Error {
  constructor(readonly v: VerifyError) {
    super(v.message);
  }
}

interface Header {
  readonly trustDomain: string;
  readonly caFingerprint: string;
  readonly filter: ExportFilter;
  readonly from: number;
  readonly to: number;
  readonly anchor: { readonly seq: number; readonly hash: string };
}

function parseHeader(o: Obj): Header | string {
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

/**
 * The verifier's state machine: header, ca, entries (full or sealed) in seq order,
 * checkpoints, end. Feed it parsed lines with `push`, then call `finish`.
 */
export class BundleVerifier {
  private phase: "header" | "ca" | "entries" | "checkpoints" | "end" = "header";
  private line = 0;
  private header: Header | undefined;
  private checkpointVerifier: CheckpointVerifier | undefined;
  private rootFingerprint: string | null = null;
  private readonly pinned: string | undefined;
  private readonly hashes = new HashStore();
  private expected = 0;
  private lastSeq = -1;
  private prevHash = ZERO_HASH;
  private pendingJump: { expected: number; got: number } | undefined;
  private entries = 0;
  private sealed = 0;
  private checkpoints = 0;
  private lastCheckpoint: number | null = null;
  private error: VerifyError | undefined;

  constructor(opts: VerifyOptions = {}) {
    this.pinned = opts.caFingerprint !== undefined ? parseFingerprint(opts.caFingerprint) : undefined;
  }

  get failed(): boolean {
    return this.error !== undefined;
  }

  private fail(kind: VerifyErrorKind, seq: number | null, message: string): never {
    throw new Failure({ seq, kind, message, line: this.line });
  }

  /** One raw line of the bundle. */
  pushLine(text: string): void | Promise<void> {
    if (this.error) return;
    this.line++;
    if (text === "" || text === "\r") {
      this.line--; // blank lines (a trailing newline) are not counted
      return;
    }
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      this.error = { seq: null, kind: "parse", message: `line ${this.line} is not JSON`, line: this.line };
      return;
    }
    return this.guard(o);
  }

  /** One parsed line (used for the live log, which needs no serialisation). */
  pushObject(o: unknown): void | Promise<void> {
    if (this.error) return;
    this.line++;
    return this.guard(o);
  }

  private guard(o: unknown): void | Promise<void> {
    try {
      const r = this.step(o);
      if (r) return r.catch((e: unknown) => this.record(e));
    } catch (e) {
      this.record(e);
    }
  }

  private record(e: unknown): void {
    if (e instanceof Failure) this.error = e.v;
    else throw e;
  }

  private step(o: unknown): void | Promise<void> {
    if (!isObj(o) || !isStr(o.kind)) this.fail("format", null, `line ${this.line} is not a bundle line`);
    const kind = o.kind;
    switch (this.phase) {
      case "header":
        if (kind !== "header") this.fail("format", null, "the bundle does not start with a header");
        return this.onHeader(o);
      case "ca":
        if (kind !== "ca") this.fail("format", null, "the header is not followed by the CA chain");
        return this.onCa(o);
      case "entries":
        if (kind === "entry" || kind === "sealed") return this.onEntry(o, kind === "entry");
        this.endEntries();
        this.phase = "checkpoints";
        return this.step(o);
      case "checkpoints":
        if (kind === "checkpoint") return this.onCheckpoint(o);
        if (kind === "end") return this.onEnd(o);
        if (kind === "entry" || kind === "sealed") this.fail("format", null, `line ${this.line}: an entry after the checkpoints`);
        return this.fail("format", null, `line ${this.line}: unexpected ${str(kind).slice(0, 40)} line`);
      case "end":
        return this.fail("format", null, `line ${this.line}: content after the end line`);
    }
  }

  private onHeader(o: Obj): void {
    const h = parseHeader(o);
    if (typeof h === "string") this.fail("format", null, h);
    if (h.from === 0 ? h.anchor.seq !== -1 || h.anchor.hash !== ZERO_HASH : h.anchor.seq !== h.from - 1) {
      this.fail("anchor", h.from, "the anchor is not the entry before the range");
    }
    this.header = h;
    this.expected = h.from;
    this.prevHash = h.anchor.hash;
    this.phase = "ca";
  }

  private onCa(o: Obj): void {
    const h = this.header as Header;
    const certs = o.certificates;
    if (!Array.isArray(certs) || !certs.every(isStr)) this.fail("format", null, "the CA line is malformed");
    let root: { cert: X509Certificate; fingerprint: string } | undefined;
    try {
      root = findRoot(certs);
    } catch {
      this.fail("format", null, "the CA line holds malformed certificates");
    }
    if (!root) this.fail("untrusted CA", null, "the CA chain has no single self-signed root");
    this.rootFingerprint = root.fingerprint;
    if (root.fingerprint !== h.caFingerprint) this.fail("untrusted CA", null, "the CA chain's root is not the one the header names");
    if (this.pinned !== undefined && root.fingerprint !== this.pinned) {
      this.fail("untrusted CA", null, `the bundle's root CA ${formatFingerprint(root.fingerprint)} is not the pinned ${formatFingerprint(this.pinned)}`);
    }
    this.checkpointVerifier = new CheckpointVerifier(root.cert, h.trustDomain);
    this.phase = "entries";
  }

  private onEntry(o: Obj, full: boolean): void {
    const h = this.header as Header;
    const e = o.entry;
    if (this.pendingJump) {
      const p = this.pendingJump;
      const s = isObj(e) && isObj(e.head) && isSeq(e.head.seq) ? e.head.seq : Number.POSITIVE_INFINITY;
      if (s < p.got) this.fail("reorder", p.expected, `seq ${p.got} comes before seq ${s}`);
      this.fail("gap", p.expected, `entry ${p.expected} is missing (seq ${p.got} follows seq ${p.expected - 1})`);
    }
    if (!isObj(e) || !validHead(e.head)) this.fail("format", null, `line ${this.line}: malformed entry`);
    const head = e.head;
    const seq = head.seq;
    if (seq !== this.expected) {
      if (seq > this.expected) {
        if (seq > h.to) this.fail("format", seq, `entry beyond the bundle's range (which ends at seq ${h.to})`);
        this.pendingJump = { expected: this.expected, got: seq };
        return;
      }
      if (seq === this.lastSeq) this.fail("duplicate", seq, `seq ${seq} appears twice`);
      if (seq < h.from) this.fail("format", seq, `entry before the bundle's range (which starts at seq ${h.from})`);
      this.fail("reorder", seq, `seq ${seq} comes after seq ${this.lastSeq}`);
    }
    const keys = Object.keys(e);
    if (keys.length !== (full ? 5 : 4) || (full && !validBody(e.body))) this.fail("format", seq, "malformed entry");
    const { bodyDigest, prevHash, hash } = e;
    // A prevHash equal to the previous (already checked) hash is 64 hex digits: test the pattern only otherwise.
    if (!isStr(bodyDigest) || !HEX64.test(bodyDigest) || !isStr(prevHash) || (prevHash !== this.prevHash && !HEX64.test(prevHash)) || !isStr(hash) || !HEX64.test(hash)) {
      this.fail("format", seq, "malformed digest or hash");
    }
    if (prevHash !== this.prevHash) {
      if (seq === h.from) this.fail("anchor", seq, "the first entry does not link to the anchor");
      this.fail("hash mismatch", seq, `prevHash does not link to entry ${seq - 1}`);
    }
    if (full) {
      const body = e.body as EntryBody;
      const digest = sha256hex(canonicalBody(body));
      if (digest !== bodyDigest) this.fail("hash mismatch", seq, "the body does not match its digest");
      if (body.genesis !== undefined && (seq !== 0 || body.genesis.trustDomain !== h.trustDomain || body.genesis.caFingerprint !== h.caFingerprint)) {
        this.fail("untrusted CA", seq, "the genesis entry names another trust domain or CA");
      }
    }
    if (chainHash(head, bodyDigest, prevHash) !== hash) this.fail("hash mismatch", seq, "the stated hash is not the entry's hash");
    const matches = matchesFilter(head, h.filter);
    if (full && !matches) this.fail("filter mismatch", seq, "an entry shown in full does not match the filter");
    if (!full && matches) this.fail("hidden entry", seq, "a sealed (hidden) entry matches the filter");
    if (full) this.entries++;
    else this.sealed++;
    this.hashes.set(seq - h.from, hash);
    this.prevHash = hash;
    this.lastSeq = seq;
    this.expected = seq + 1;
  }

  private endEntries(): void {
    const h = this.header as Header;
    if (this.pendingJump) {
      const p = this.pendingJump;
      this.fail("gap", p.expected, `entry ${p.expected} is missing (seq ${p.got} follows seq ${p.expected - 1})`);
    }
    if (this.lastSeq < h.to) {
      this.fail("truncated", this.lastSeq + 1, `the entries end at seq ${this.lastSeq} but the bundle's range ends at seq ${h.to}`);
    }
  }

  private async onCheckpoint(o: Obj): Promise<void> {
    const h = this.header as Header;
    if (!isStr(o.jws)) this.fail("format", null, `line ${this.line}: malformed checkpoint`);
    const r = await (this.checkpointVerifier as CheckpointVerifier).verify(o.jws);
    if (!r.ok) this.fail(r.kind, r.seq, `checkpoint: ${r.message}`);
    const c = r.payload;
    if (c.seq < h.from) this.fail("format", c.seq, "checkpoint before the bundle's range");
    if (this.lastCheckpoint !== null && c.seq <= this.lastCheckpoint) {
      this.fail(c.seq === this.lastCheckpoint ? "duplicate" : "reorder", c.seq, `checkpoint at seq ${c.seq} follows the one at seq ${this.lastCheckpoint}`);
    }
    if (c.seq > this.lastSeq) {
      this.fail("truncated", this.lastSeq + 1, `a signed checkpoint covers seq ${c.seq} but the entries end at seq ${this.lastSeq}: the log was cut`);
    }
    if (this.hashes.get(c.seq - h.from) !== c.hash) {
      const since = this.lastCheckpoint !== null ? this.lastCheckpoint + 1 : h.from;
      this.fail("checkpoint mismatch", c.seq, `the chain's hash at seq ${c.seq} is not the signed one: an entry in seq ${since}..${c.seq} was changed or the chain rebuilt`);
    }
    this.lastCheckpoint = c.seq;
    this.checkpoints++;
  }

  private onEnd(o: Obj): void {
    if (o.entries !== this.entries || o.sealed !== this.sealed || o.checkpoints !== this.checkpoints) {
      this.fail("format", null, "the end line's counts do not match the bundle");
    }
    this.phase = "end";
  }

  /** Final checks (the end line, coverage) and the report. */
  finish(): VerifyReport {
    if (!this.error) {
      try {
        if (this.phase === "entries") this.endEntries();
        if (this.phase !== "end") this.fail("truncated", this.lastSeq >= 0 ? this.lastSeq + 1 : null, "the bundle ends before its end line");
        if (this.lastCheckpoint === null || this.lastCheckpoint < this.lastSeq) {
          const first = this.lastCheckpoint !== null ? this.lastCheckpoint + 1 : (this.header as Header).from;
          this.fail("uncovered", first, `entries after the last checkpoint that no checkpoint covers (seq ${first}..${this.lastSeq})`);
        }
      } catch (e) {
        this.record(e);
      }
    }
    const started = this.header !== undefined && this.lastSeq >= this.header.from;
    return {
      ok: this.error === undefined,
      entries: this.entries,
      sealed: this.sealed,
      from: started ? (this.header as Header).from : null,
      to: started ? this.lastSeq : null,
      lastCheckpoint: this.lastCheckpoint,
      checkpoints: this.checkpoints,
      rootFingerprint: this.rootFingerprint,
      rootPinned: this.pinned !== undefined,
      filter: this.header?.filter ?? null,
      ...(this.error ? { error: this.error } : {}),
    };
  }
}

function isAsync<T>(x: AsyncIterable<T> | Iterable<T>): x is AsyncIterable<T> {
  return typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === "function";
}

/** Verifies a bundle given as lines (without their newlines). */
export async function verifyBundle(lines: AsyncIterable<string> | Iterable<string>, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const v = new BundleVerifier(opts);
  if (isAsync(lines)) {
    for await (const l of lines) {
      const r = v.pushLine(l);
      if (r) await r;
      if (v.failed) break;
    }
  } else {
    for (const l of lines) {
      const r = v.pushLine(l);
      if (r) await r;
      if (v.failed) break;
    }
  }
  return v.finish();
}

/** The lines of a file, read in large chunks. */
export async function* fileLines(path: string): AsyncGenerator<string> {
  let rest = "";
  try {
    for await (const chunk of createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 20 })) {
      const parts = (rest + (chunk as string)).split("\n");
      rest = parts.pop() as string;
      yield* parts;
    }
  } catch (e) {
    throw pcError("PC_AUDIT_BUNDLE_UNREADABLE", undefined, e);
  }
  if (rest !== "") yield rest;
}

/**
 * Verifies a bundle file: `portcullis audit verify FILE`. The file is read in large
 * chunks and the lines of a chunk are pushed synchronously (no promise per line); only a
 * checkpoint line (a signature check) is awaited.
 */
export async function verifyBundleFile(path: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const v = new BundleVerifier(opts);
  const stream = createReadStream(path, { encoding: "utf8", highWaterMark: 1 << 20 });
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<string>;
  let rest = "";
  try {
    for (;;) {
      let next: IteratorResult<string>;
      try {
        next = await chunks.next();
      } catch (e) {
        throw pcError("PC_AUDIT_BUNDLE_UNREADABLE", undefined, e);
      }
      if (next.done) break;
      const text = rest + next.value;
      let start = 0;
      for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
        const r = v.pushLine(text.slice(start, nl));
        start = nl + 1;
        if (r) await r;
        if (v.failed) return v.finish();
      }
      rest = text.slice(start);
    }
  } finally {
    stream.destroy();
  }
  if (rest !== "") {
    const r = v.pushLine(rest);
    if (r) await r;
  }
  return v.finish();
}

export interface VerifySourceOptions extends VerifyOptions {
  /** Called first, so that the log signs a checkpoint over its current end. */
  readonly ensureCheckpoint?: () => void | Promise<void>;
}

/**
 * Verifies the whole live log in place (`audit verify --data-dir`): every entry from the
 * genesis, every checkpoint, coverage of the end. The same checks as for a bundle of the
 * whole log, without serialising it.
 */
export async function verifySource(source: AuditSource, opts: VerifySourceOptions = {}): Promise<VerifyReport> {
  if (opts.ensureCheckpoint) await opts.ensureCheckpoint();
  const head = source.head();
  if (head.seq < 0) throw pcError("PC_AUDIT_EMPTY");
  const v = new BundleVerifier(opts);
  const feed = async (o: unknown) => {
    const r = v.pushObject(o);
    if (r) await r;
    return !v.failed;
  };
  const header = {
    kind: "header",
    format: BUNDLE_FORMAT,
    trustDomain: source.trustDomain,
    caFingerprint: source.caFingerprint,
    createdAt: new Date().toISOString(),
    filter: {},
    range: { from: 0, to: head.seq },
    anchor: { seq: -1, hash: ZERO_HASH },
  };
  if (!(await feed(header)) || !(await feed({ kind: "ca", certificates: source.caChainPem() }))) return v.finish();
  let entries = 0;
  for (const e of source.entries(0, head.seq)) {
    entries++;
    if (!(await feed({ kind: "entry", entry: { head: e.head, body: e.body, bodyDigest: e.bodyDigest, prevHash: e.prevHash, hash: e.hash } }))) return v.finish();
  }
  let checkpoints = 0;
  for (const c of source.checkpoints(0)) {
    checkpoints++;
    if (!(await feed({ kind: "checkpoint", jws: c.jws }))) return v.finish();
  }
  await feed({ kind: "end", entries, sealed: 0, checkpoints });
  return v.finish();
}

const filterText = (f: ExportFilter): string => {
  const parts = Object.entries(f).map(([k, v]) => `${k}=${String(v)}`);
  return parts.length > 0 ? parts.join(" ") : "none (every entry shown)";
};

/** What `audit verify` prints. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  if (r.ok) {
    lines.push(`ok: ${r.entries} entries, seq ${r.from}..${r.to}, last checkpoint at seq ${r.lastCheckpoint}`);
    if (r.sealed > 0) lines.push(`  ${r.sealed} other entries of the range are sealed; none of them matches the filter`);
  } else {
    const e = r.error as VerifyError;
    lines.push(`${e.seq !== null ? `FAIL at seq ${e.seq}` : e.line !== undefined ? `FAIL at line ${e.line}` : "FAIL"}: ${e.kind}: ${e.message}`);
  }
  if (r.filter) lines.push(`  filter: ${filterText(r.filter)}`);
  if (r.rootFingerprint) {
    lines.push(
      `  root CA: ${formatFingerprint(r.rootFingerprint)}${r.rootPinned ? " (pinned)" : " (not pinned: compare it with the fingerprint you trust, or pass --ca-fingerprint)"}`,
    );
  }
  return lines.join("\n");
}
