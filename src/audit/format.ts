import { createHash } from "node:crypto";
import { canonicalize } from "../core/index.js";

/**
 * The audit log's data formats. Everything an offline verifier needs to recompute is
 * defined here, in one place, as pure functions.
 *
 * An entry has a HEAD (the fields a filter selects on, always shown) and a BODY (the
 * rest). The body is committed by its digest, so that an entry can be shown *sealed*:
 * its head and body digest, without the body. The chain runs over the sealed form:
 *
 *   sealed  = { ...head, bodyDigest, prevHash }
 *   hash    = SHA-256( prevHash (32 raw bytes) || UTF-8( RFC 8785 canonical JSON of sealed ) )
 *   bodyDigest = hex SHA-256( UTF-8( canonical JSON of body ) )
 *
 * So a filtered export can show the entries that match in full, and every other entry of
 * the range sealed: the verifier recomputes every link, and checks from the heads that no
 * sealed entry matches the filter. Nothing is hidden between the shown entries.
 */

export const ENTRY_VERSION = 1;
export const ZERO_HASH = "0".repeat(64);

export type Outcome = "allowed" | "denied" | "error";

/** The fields a filter selects on; shown for every entry of an export's range. */
export interface EntryHead {
  readonly v: 1;
  readonly seq: number;
  /** ISO 8601, UTC, millisecond precision. */
  readonly time: string;
  /** What happened: `audit.genesis`, `api.request`, `authz.decision`, `pki.certificate_issued`, ... */
  readonly type: string;
  readonly outcome: Outcome;
  /** `user:alice`, `service:gateway`, or `anonymous`. */
  readonly actor: string;
  /** The route (`GET /v1/whoami`) or the resource:action an event is about. */
  readonly action?: string;
  readonly resource?: string;
  readonly namespace?: string;
}

/**
 * The rest of an entry. Every field is declared: nothing undeclared can enter. Values
 * that could carry a secret are never stored; identifiers that must be matched but not
 * shown are stored only as `targetHmac` (HMAC-SHA256 under the log's key).
 */
export interface EntryBody {
  readonly actorSerial?: string;
  readonly source?: string;
  readonly status?: number;
  readonly reasons?: readonly string[];
  readonly requestId?: string;
  /** Hex SHA-256 of the request body, never the body. */
  readonly bodySha256?: string;
  /** A non-secret identifier of the subject of the action (a serial, an identity, a policy version). */
  readonly target?: string;
  readonly targetHmac?: string;
  /** Only in the genesis entry (seq 0). */
  readonly genesis?: { readonly trustDomain: string; readonly caFingerprint: string };
}

export const HEAD_FIELDS = ["v", "seq", "time", "type", "outcome", "actor", "action", "resource", "namespace"] as const;
export const BODY_FIELDS = ["actorSerial", "source", "status", "reasons", "requestId", "bodySha256", "target", "targetHmac", "genesis"] as const;

/** A full entry as stored and exported. */
export interface AuditEntry {
  readonly head: EntryHead;
  readonly body: EntryBody;
  readonly bodyDigest: string;
  readonly prevHash: string;
  readonly hash: string;
}

/** An entry without its body, as a filtered export shows the entries it does not select. */
export interface SealedEntry {
  readonly head: EntryHead;
  readonly bodyDigest: string;
  readonly prevHash: string;
  readonly hash: string;
}

const sha256hex = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Keeps only the declared fields, in their declared order, dropping undefined. */
function pick<T extends object>(o: T, fields: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = (o as Record<string, unknown>)[f];
    if (v !== undefined) out[f] = v;
  }
  return out as T;
}

export function bodyDigestOf(body: EntryBody): string {
  return sha256hex(canonicalize(pick(body, BODY_FIELDS)));
}

export function sealedForm(head: EntryHead, bodyDigest: string, prevHash: string): Record<string, unknown> {
  return { ...pick(head, HEAD_FIELDS), bodyDigest, prevHash };
}

export function entryHash(head: EntryHead, bodyDigest: string, prevHash: string): string {
  if (!/^[0-9a-f]{64}$/.test(prevHash)) throw new Error("prevHash must be 64 hex digits");
  return createHash("sha256")
    .update(Buffer.from(prevHash, "hex"))
    .update(canonicalize(sealedForm(head, bodyDigest, prevHash)), "utf8")
    .digest("hex");
}

/** Seals a new entry onto the chain. */
export function sealEntry(head: EntryHead, body: EntryBody, prevHash: string): AuditEntry {
  const h = pick(head, HEAD_FIELDS);
  const b = pick(body, BODY_FIELDS);
  const bodyDigest = bodyDigestOf(b);
  return { head: h, body: b, bodyDigest, prevHash, hash: entryHash(h, bodyDigest, prevHash) };
}

/**
 * `sealEntry`, also returning the body's canonical JSON (what the store keeps), so that
 * a writer canonicalizes each body once.
 */
export function sealEntryWithBodyJson(head: EntryHead, body: EntryBody, prevHash: string): { entry: AuditEntry; bodyJson: string } {
  const h = pick(head, HEAD_FIELDS);
  const b = pick(body, BODY_FIELDS);
  const bodyJson = canonicalize(b);
  const bodyDigest = sha256hex(bodyJson);
  return { entry: { head: h, body: b, bodyDigest, prevHash, hash: entryHash(h, bodyDigest, prevHash) }, bodyJson };
}

/**
 * A checkpoint: the audit key's signature over a point of the chain. Serialized as a
 * compact JWS (ES256) with protected header `{ alg: "ES256", typ: CHECKPOINT_TYP,
 * x5c: [audit certificate, issuing CA] }` and this payload.
 */
export const CHECKPOINT_TYP = "portcullis-audit-checkpoint+jws";
export interface CheckpointPayload {
  readonly seq: number;
  readonly hash: string;
  /** ISO 8601, UTC. */
  readonly time: string;
  readonly trustDomain: string;
}

/** The identity whose certificate signs checkpoints. */
export const AUDIT_SIGNER = "service:audit";

/**
 * The export bundle: JSON Lines, one object per line, in this order:
 *   header, ca, then entries and sealed entries in seq order, checkpoints, end.
 */
export const BUNDLE_FORMAT = "portcullis-audit-export/1";

export interface ExportFilter {
  readonly since?: string;
  readonly until?: string;
  readonly actor?: string;
  readonly action?: string;
  readonly namespace?: string;
  readonly outcome?: Outcome;
}

export type BundleLine =
  | {
      readonly kind: "header";
      readonly format: typeof BUNDLE_FORMAT;
      readonly trustDomain: string;
      readonly caFingerprint: string;
      readonly createdAt: string;
      readonly filter: ExportFilter;
      /** The seq range the bundle covers, every entry of it shown or sealed. */
      readonly range: { readonly from: number; readonly to: number };
      /** The hash of the entry before `range.from` (ZERO_HASH when from = 0). */
      readonly anchor: { readonly seq: number; readonly hash: string };
    }
  | { readonly kind: "ca"; readonly certificates: readonly string[] }
  | { readonly kind: "entry"; readonly entry: AuditEntry }
  | { readonly kind: "sealed"; readonly entry: SealedEntry }
  | { readonly kind: "checkpoint"; readonly jws: string }
  | { readonly kind: "end"; readonly entries: number; readonly sealed: number; readonly checkpoints: number };

/** Does an entry's head match the filter? Shared by export and verify. */
export function matchesFilter(head: EntryHead, f: ExportFilter): boolean {
  if (f.since !== undefined && head.time < f.since) return false;
  if (f.until !== undefined && head.time >= f.until) return false;
  if (f.actor !== undefined && head.actor !== f.actor) return false;
  if (f.action !== undefined && head.action !== f.action && head.type !== f.action) return false;
  if (f.namespace !== undefined && head.namespace !== f.namespace) return false;
  if (f.outcome !== undefined && head.outcome !== f.outcome) return false;
  return true;
}

/**
 * Read access to a log, for export and verification. Implemented over the store; tests
 * may implement it in memory. Iterators stream: nothing requires the log in memory.
 */
export interface AuditSource {
  readonly trustDomain: string;
  /** Hex SHA-256 of the root CA certificate (DER). */
  readonly caFingerprint: string;
  /** Root, issuing CA, and every audit certificate that signed a checkpoint (PEM). */
  caChainPem(): string[];
  /** The last entry's seq and hash; seq -1 and ZERO_HASH for an empty log. */
  head(): { readonly seq: number; readonly hash: string };
  /** Entries with from <= seq <= to, in seq order. */
  entries(from: number, to: number): Iterable<AuditEntry>;
  /** Checkpoints with seq >= from, in seq order. */
  checkpoints(from: number): Iterable<{ readonly seq: number; readonly jws: string }>;
  /** The first entry with time >= `time` (ISO), if any. */
  firstSeqAtOrAfter(time: string): number | undefined;
}
