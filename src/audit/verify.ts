import { X509Certificate } from "node:crypto";
import { createReadStream } from "node:fs";
import { pcError } from "../core/index.js";
import { formatFingerprint, parseFingerprint } from "../pki/index.js";
import { CheckpointVerifier, findRoot } from "./checkpoint-verify.js";
import { evidenceAnchorsPem, SignedRequestChecker } from "./verify-signed-requests.js";
import { BUNDLE_FORMAT, canonicalBody, chainHash, matchesFilter, sha256hex, SIGNED_REQUEST_KIND, signedRequestLine, ZERO_HASH, type AuditSource, type EntryBody, type ExportFilter } from "./format.js";
import { HashStore, HEX64, isObj, isSeq, isStr, parseHeader, validBody, validHead, type Header, type Obj } from "./verify-lines.js";

/**
 * Offline verification of an export bundle (and, through the same checks, of the live
 * log). Streams: one pass over the lines; it keeps 32 bytes per entry of the range (the
 * hashes that checkpoints, which come after the entries, are compared with) and nothing
 * else. It stops at the first problem and names its seq, or the jti of a signed request
 * whose evidence does not verify. See docs/audit.md.
 */

const str = JSON.stringify;

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
  | "uncovered"
  | "bad signed request"
  | "not in the chain"
  | "missing signed request";

export interface VerifyError {
  /** The first bad seq, when the problem is at an entry or a checkpoint. */
  readonly seq: number | null;
  readonly kind: VerifyErrorKind;
  readonly message: string;
  /** The bundle line (1-based) where it was found; absent for the live log. */
  readonly line?: number;
  /** The jti of the signed-request line at fault, when it can be shown. */
  readonly signedRequest?: string;
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
  /** Signed-request lines whose JWS and signer were re-verified. */
  readonly signedRequests: number;
  readonly error?: VerifyError;
}

export interface VerifyOptions {
  /** The root CA fingerprint the auditor trusts: `SHA256:<hex>` or hex. */
  readonly caFingerprint?: string;
}

class Failure extends Error {
  constructor(readonly v: VerifyError) {
    super(v.message);
  }
}

/**
 * The verifier's state machine: header, ca, entries (full or sealed) in seq order,
 * checkpoints, end. Feed it parsed lines with `push`, then call `finish`.
 */
export class BundleVerifier {
  private phase: "header" | "ca" | "entries" | "checkpoints" | "signed-requests" | "end" = "header";
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
  private signedRequests: SignedRequestChecker | undefined;
  private signedChecked = 0;
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
        if (kind === SIGNED_REQUEST_KIND) {
          this.phase = "signed-requests";
          return this.onSignedRequest(o);
        }
        return this.fail("format", null, `line ${this.line}: unexpected ${str(kind).slice(0, 40)} line`);
      case "signed-requests":
        if (kind === SIGNED_REQUEST_KIND) return this.onSignedRequest(o);
        if (kind === "end") return this.onEnd(o);
        return this.fail("format", null, `line ${this.line}: unexpected ${str(kind).slice(0, 40)} line after the signed requests`);
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
    this.signedRequests = new SignedRequestChecker({ rootCertificatesPem: evidenceAnchorsPem(root.cert, certs), trustDomain: h.trustDomain }, h.filter);
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
    (this.signedRequests as SignedRequestChecker).noteEntry(head, full ? (e.body as EntryBody) : undefined);
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

  private onSignedRequest(o: Obj): void {
    const r = (this.signedRequests as SignedRequestChecker).check(o);
    if (!r.ok) throw new Failure({ seq: null, kind: r.kind, message: r.message, line: this.line, ...(r.jti !== null ? { signedRequest: r.jti } : {}) });
    this.signedChecked++;
  }

  private onEnd(o: Obj): void {
    // Bundles written before signed-request lines existed have no count: they hold none.
    const signed = o.signedRequests === undefined ? 0 : o.signedRequests;
    if (o.entries !== this.entries || o.sealed !== this.sealed || o.checkpoints !== this.checkpoints || signed !== this.signedChecked) {
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
        const missing = this.signedRequests?.missing();
        if (missing !== undefined) {
          this.fail("missing signed request", missing.seq, "an accepted deploy request shown in the bundle comes without its signed request");
        }
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
      signedRequests: this.signedChecked,
      ...(this.error ? { error: this.error } : {}),
    };
  }
}

function isAsync<T>(x: AsyncIterable<T> | Iterable<T>): x is AsyncIterable<T> {
  return typeof (x as AsyncIterable<T>)[Symbol.asyncIterator] === "function";
}

export { formatVerifyReport } from "./verify-report.js";

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
  let signedRequests = 0;
  for (const r of source.signedRequests?.(undefined, undefined, undefined) ?? []) {
    signedRequests++;
    if (!(await feed(signedRequestLine(r)))) return v.finish();
  }
  await feed({ kind: "end", entries, sealed: 0, checkpoints, signedRequests });
  return v.finish();
}
