import { hash } from "node:crypto";
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
  /** The facts of a deploy: what references the decision record, the signed request and what ran. */
  readonly deploy?: EntryDeploy;
}

/**
 * The facts of a deploy in an entry's body. Every key is declared and optional; the
 * verifier rejects any other key and any value of another type.
 */
export interface EntryDeploy {
  /** The deployment revision (a positive integer). */
  readonly revision?: number;
  /** The `jti` of the signed deploy request. */
  readonly jti?: string;
  /** `sha256:<hex>` of the manifest as signed (RFC 8785 canonical JSON). */
  readonly digest?: string;
  /** The image id the revision runs, `sha256:<hex>`. */
  readonly imageId?: string;
  /** The runtime the spec asked for (`runsc` or `runc`). */
  readonly runtime?: string;
  /** The runtime of each created container, as its engine reported it after create. */
  readonly actualRuntimes?: readonly string[];
  /** The nodes the containers were placed on. */
  readonly nodes?: readonly string[];
  /** The names of the created containers. */
  readonly containers?: readonly string[];
  /** The number of replicas asked for (a non-negative integer). */
  readonly replicas?: number;
  /** Hex SHA-256 of the decision record's RFC 8785 canonical JSON. */
  readonly decisionSha256?: string;
}

export const HEAD_FIELDS = ["v", "seq", "time", "type", "outcome", "actor", "action", "resource", "namespace"] as const;
export const BODY_FIELDS = ["actorSerial", "source", "status", "reasons", "requestId", "bodySha256", "target", "targetHmac", "genesis", "deploy"] as const;
/** The keys of `deploy`, in RFC 8785 order, each with the kind of value it holds. */
export const DEPLOY_FIELDS = {
  actualRuntimes: "strings",
  containers: "strings",
  decisionSha256: "string",
  digest: "string",
  imageId: "string",
  jti: "string",
  nodes: "strings",
  replicas: "integer",
  revision: "integer",
  runtime: "string",
} as const satisfies Record<keyof EntryDeploy, "string" | "strings" | "integer">;
/** The audit entry type the deploy domain writes when it accepts a signed request (`target` = jti, `deploy.digest`). */
export const DEPLOY_ACCEPTED_TYPE = "deploy.request_accepted";

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

/** Hex SHA-256 of a string's UTF-8 (one-shot: no Hash object per call). */
export const sha256hex = (s: string): string => hash("sha256", s, "hex");
const HEX64 = /^[0-9a-f]{64}$/;
const q = JSON.stringify;

/** Keeps only the declared fields, in their declared order, dropping undefined. */
function pick<T extends object>(o: T, fields: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = (o as Record<string, unknown>)[f];
    if (v !== undefined) out[f] = v;
  }
  return out as T;
}

const optStr = (v: unknown) => v === undefined || typeof v === "string";

/** Does `v` have the declared kind of a `deploy` key? (Shared by the fast path and the verifier.) */
export function deployValueOk(kind: "string" | "strings" | "integer", v: unknown): boolean {
  if (kind === "string") return typeof v === "string";
  if (kind === "integer") return Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== "string") return false;
  return true;
}

/** A `deploy` object with only declared keys, each of its declared kind (undefined values aside). */
export function plainDeploy(d: unknown): d is EntryDeploy {
  if (typeof d !== "object" || d === null || Array.isArray(d)) return false;
  for (const k of Object.keys(d)) {
    const v = (d as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (!Object.hasOwn(DEPLOY_FIELDS, k) || !deployValueOk(DEPLOY_FIELDS[k as keyof EntryDeploy], v)) return false;
  }
  return true;
}

function strings(a: readonly string[]): string {
  let s = "[";
  for (let i = 0; i < a.length; i++) s += i === 0 ? q(a[i]) : `,${q(a[i])}`;
  return `${s}]`;
}

/** `deploy`'s canonical JSON, for a `plainDeploy` object: keys in DEPLOY_FIELDS (sorted) order. */
function canonicalDeploy(d: EntryDeploy): string {
  let s = "";
  for (const k of Object.keys(DEPLOY_FIELDS) as (keyof EntryDeploy)[]) {
    const v = d[k];
    if (v === undefined) continue;
    s += `,${q(k)}:${typeof v === "string" ? q(v) : typeof v === "number" ? String(v) : strings(v)}`;
  }
  return s === "" ? "{}" : `{${s.slice(1)}}`;
}

/** A head whose declared fields have their declared types (what `canonicalSealed` writes directly). */
function plainHead(h: EntryHead): boolean {
  return (
    h.v === 1 &&
    Number.isSafeInteger(h.seq) &&
    typeof h.time === "string" &&
    typeof h.type === "string" &&
    typeof h.outcome === "string" &&
    typeof h.actor === "string" &&
    optStr(h.action) &&
    optStr(h.resource) &&
    optStr(h.namespace)
  );
}

/** A body whose declared fields have their declared types (what `canonicalBody` writes directly). */
function plainBody(b: EntryBody): boolean {
  if (!(optStr(b.actorSerial) && optStr(b.source) && optStr(b.requestId) && optStr(b.bodySha256) && optStr(b.target) && optStr(b.targetHmac))) return false;
  if (b.status !== undefined && !(typeof b.status === "number" && Number.isFinite(b.status))) return false;
  const r = b.reasons;
  if (r !== undefined) {
    if (!Array.isArray(r)) return false;
    for (let i = 0; i < r.length; i++) if (typeof r[i] !== "string") return false;
  }
  const g = b.genesis;
  if (g !== undefined) {
    if (typeof g !== "object" || g === null || Array.isArray(g) || Object.keys(g).length !== 2) return false;
    if (!Object.hasOwn(g, "trustDomain") || !Object.hasOwn(g, "caFingerprint") || typeof g.trustDomain !== "string" || typeof g.caFingerprint !== "string") return false;
  }
  return b.deploy === undefined || plainDeploy(b.deploy);
}

/**
 * RFC 8785 canonical JSON of the sealed form `{ ...head, bodyDigest, prevHash }` (declared
 * head fields only), written directly with the keys in their sorted order. Byte for byte
 * equal to `canonicalize(sealedForm(head, bodyDigest, prevHash))`, which it falls back to
 * for a head whose fields do not have their declared types; a test holds the two together.
 */
export function canonicalSealed(h: EntryHead, bodyDigest: string, prevHash: string): string {
  if (!plainHead(h) || typeof bodyDigest !== "string" || typeof prevHash !== "string") return canonicalize(sealedForm(h, bodyDigest, prevHash));
  let s = "{";
  if (h.action !== undefined) s += `"action":${q(h.action)},`;
  s += `"actor":${q(h.actor)},"bodyDigest":${q(bodyDigest)}`;
  if (h.namespace !== undefined) s += `,"namespace":${q(h.namespace)}`;
  s += `,"outcome":${q(h.outcome)},"prevHash":${q(prevHash)}`;
  if (h.resource !== undefined) s += `,"resource":${q(h.resource)}`;
  return `${s},"seq":${h.seq},"time":${q(h.time)},"type":${q(h.type)},"v":1}`;
}

/**
 * RFC 8785 canonical JSON of a body's declared fields, written directly with the keys in
 * their sorted order: what the store keeps and what `bodyDigest` hashes. Byte for byte
 * equal to `canonicalize(pick(body, BODY_FIELDS))`, which it falls back to for a body
 * whose fields do not have their declared types; a test holds the two together.
 */
export function canonicalBody(b: EntryBody): string {
  if (!plainBody(b)) return canonicalize(pick(b, BODY_FIELDS));
  let s = "";
  if (b.actorSerial !== undefined) s += `,"actorSerial":${q(b.actorSerial)}`;
  if (b.bodySha256 !== undefined) s += `,"bodySha256":${q(b.bodySha256)}`;
  if (b.deploy !== undefined) s += `,"deploy":${canonicalDeploy(b.deploy)}`;
  if (b.genesis !== undefined) s += `,"genesis":{"caFingerprint":${q(b.genesis.caFingerprint)},"trustDomain":${q(b.genesis.trustDomain)}}`;
  if (b.reasons !== undefined) s += `,"reasons":${strings(b.reasons)}`;
  if (b.requestId !== undefined) s += `,"requestId":${q(b.requestId)}`;
  if (b.source !== undefined) s += `,"source":${q(b.source)}`;
  if (b.status !== undefined) s += `,"status":${b.status}`;
  if (b.target !== undefined) s += `,"target":${q(b.target)}`;
  if (b.targetHmac !== undefined) s += `,"targetHmac":${q(b.targetHmac)}`;
  return s === "" ? "{}" : `{${s.slice(1)}}`;
}

/** Hex SHA-256 of a body's canonical JSON. */
export function bodyDigestOf(body: EntryBody): string {
  return sha256hex(canonicalBody(body));
}

export function sealedForm(head: EntryHead, bodyDigest: string, prevHash: string): Record<string, unknown> {
  return { ...pick(head, HEAD_FIELDS), bodyDigest, prevHash };
}

/** The chain hash, for a prevHash already known to be 64 lowercase hex digits. */
export function chainHash(head: EntryHead, bodyDigest: string, prevHash: string): string {
  const sealed = canonicalSealed(head, bodyDigest, prevHash);
  const buf = Buffer.allocUnsafe(32 + Buffer.byteLength(sealed, "utf8"));
  buf.write(prevHash, 0, 32, "hex");
  buf.write(sealed, 32, "utf8");
  return hash("sha256", buf, "hex");
}

export function entryHash(head: EntryHead, bodyDigest: string, prevHash: string): string {
  if (!HEX64.test(prevHash)) throw new Error("prevHash must be 64 hex digits");
  return chainHash(head, bodyDigest, prevHash);
}

/** Seals a new entry onto the chain. */
export function sealEntry(head: EntryHead, body: EntryBody, prevHash: string): AuditEntry {
  return sealEntryWithBodyJson(head, body, prevHash).entry;
}

/**
 * `sealEntry`, also returning the body's canonical JSON (what the store keeps): each
 * body is serialised once, and the digest is over that same string.
 */
export function sealEntryWithBodyJson(head: EntryHead, body: EntryBody, prevHash: string): { entry: AuditEntry; bodyJson: string } {
  const h = pick(head, HEAD_FIELDS);
  const b = pick(body, BODY_FIELDS);
  const bodyJson = canonicalBody(b);
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
 *   header, ca, then entries and sealed entries in seq order, checkpoints, signed
 *   requests, end.
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
  | SignedRequestLine
  | { readonly kind: "end"; readonly entries: number; readonly sealed: number; readonly checkpoints: number; readonly signedRequests: number };

export const SIGNED_REQUEST_KIND = "signed-request";

/**
 * The evidence of one accepted signed deploy request: the JWS exactly as received and
 * the certificate that signed it, so that an auditor re-verifies the signature offline.
 * Its acceptance entry (`deploy.request_accepted`, `target` = jti, `deploy.digest`) is in
 * the bundle's range.
 */
export interface SignedRequestLine {
  readonly kind: typeof SIGNED_REQUEST_KIND;
  readonly jti: string;
  /** The identity that signed, `user:alice`. */
  readonly requester: string;
  /** `create`, `update`, `scale` or `delete`. */
  readonly operation: string;
  readonly namespace: string;
  readonly name: string;
  /** `sha256:<hex>` of the manifest as signed. */
  readonly digest: string;
  /** ISO 8601, UTC, milliseconds. */
  readonly receivedAt: string;
  /** The compact JWS as received. */
  readonly jws: string;
  /** The signing certificate, PEM. */
  readonly signerCertificate: string;
}

/** An accepted signed request as a source holds it. */
export interface SignedRequestRecord {
  readonly jti: string;
  readonly requester: string;
  readonly operation: string;
  readonly namespace: string;
  readonly name: string;
  readonly digest: string;
  readonly jws: string;
  readonly signerCertificatePem: string;
  /** Milliseconds since the epoch. */
  readonly receivedAt: number;
}

/** The bundle line of a signed request. */
export function signedRequestLine(r: SignedRequestRecord): Record<string, string> {
  return {
    kind: SIGNED_REQUEST_KIND,
    jti: r.jti,
    requester: r.requester,
    operation: r.operation,
    namespace: r.namespace,
    name: r.name,
    digest: r.digest,
    receivedAt: new Date(r.receivedAt).toISOString(),
    jws: r.jws,
    signerCertificate: r.signerCertificatePem,
  };
}

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
  /**
   * Accepted signed deploy requests with sinceMs <= receivedAt < untilMs (either bound
   * open when undefined), of one namespace when given, in the order received. A source
   * without deploy evidence leaves it out.
   */
  signedRequests?(sinceMs: number | undefined, untilMs: number | undefined, namespace: string | undefined): Iterable<SignedRequestRecord>;
}
