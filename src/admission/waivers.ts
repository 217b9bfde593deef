/**
 * Waivers: a security team's time-bound exemption from one admission check, or from
 * named findings of it (CVE ids), for a scope inside one namespace: the whole namespace,
 * one deployment, or one image digest.
 *
 * Every waiver names an owner, a justification, a ticket and an expiry at most 90 days
 * away. It is kept for good: revoking marks it once, nothing deletes it. A waiver is in
 * force while it is neither revoked nor expired; the chain checks the expiry again
 * against the time of the decision, so an expired waiver never applies, whatever path
 * the request came by. Creating and revoking are audited in the same transaction.
 */
import { randomBytes } from "node:crypto";
import type { AuditSink, Clock } from "../core/index.js";
import { parseIdentity, pcError } from "../core/index.js";
import type { Store, WaiverRecord } from "../store/index.js";
import { CHECKS } from "./checks/index.js";
import type { ActiveWaiver } from "./types.js";

/** The longest a waiver may run. */
export const MAX_WAIVER_MS = 90 * 86_400_000;
export const MAX_WAIVER_FINDINGS = 100;
const JUSTIFICATION = { min: 10, max: 2000 } as const;
const TICKET_RE = /^[A-Za-z0-9._:/#-]{1,200}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const DNS_LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A finding id as scanners name them: CVE-2024-1234, GHSA-xxxx-xxxx-xxxx, ... */
const FINDING_RE = /^[A-Za-z][A-Za-z0-9._:-]{2,99}$/;
const DURATION_RE = /^([1-9][0-9]{0,6})(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** An ISO 8601 date-time with a zone (Z or ±hh:mm). */
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** What `create` takes; `expires` is a duration from now (`30d`) or an ISO 8601 time. */
export interface WaiverInput {
  readonly namespace: string;
  readonly deployment?: string | undefined;
  readonly imageDigest?: string | undefined;
  readonly check: string;
  readonly findings?: readonly string[] | undefined;
  readonly owner: string;
  readonly justification: string;
  readonly ticket: string;
  readonly expires: string;
}

/** Who creates or revokes a waiver, as the audit log records it. */
export interface WaiverActor {
  readonly identity: string;
  readonly serial?: string | undefined;
  readonly sourceAddress?: string | undefined;
  readonly requestId?: string | undefined;
}

export type WaiverStatus = "active" | "expired" | "revoked";

/** A waiver as the API and the CLI show it. */
export interface WaiverView {
  readonly id: string;
  readonly namespace: string;
  readonly check: string;
  readonly deployment?: string;
  readonly imageDigest?: string;
  readonly findings?: readonly string[];
  readonly owner: string;
  readonly justification: string;
  readonly ticket: string;
  readonly createdBy: string;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt?: string;
  readonly revokedBy?: string;
  /** As of the time of the answer. */
  readonly status: WaiverStatus;
}

export interface WaiverListOptions {
  /** Only in-force waivers that lapse within this many milliseconds. */
  readonly expiringWithinMs?: number | undefined;
  /** Also the expired and the revoked ones. */
  readonly includeExpired?: boolean | undefined;
}

const invalid = (field: string, reason: string) => pcError("PC_ADMISSION_WAIVER_INVALID", `${field}: ${reason}`);

/** The expiry of `expires` (a duration from `now`, or an ISO 8601 time), in ms since the epoch. */
export function waiverExpiry(expires: string, now: Date): number {
  if (typeof expires !== "string" || expires.trim() === "") throw invalid("expires", "required: a duration like 30d or an ISO 8601 time");
  const text = expires.trim();
  const d = DURATION_RE.exec(text);
  let at: number;
  if (d) at = now.getTime() + Number(d[1]) * (UNIT_MS[d[2] as string] as number);
  else if (ISO_RE.test(text) && Number.isFinite(Date.parse(text))) at = Date.parse(text);
  else throw invalid("expires", "a duration like 30d, 12h, 90m or an ISO 8601 time like 2030-01-31T00:00:00Z");
  if (at <= now.getTime()) throw invalid("expires", "must be in the future");
  if (at - now.getTime() > MAX_WAIVER_MS) throw invalid("expires", "at most 90 days away");
  return at;
}

export function waiverStatus(w: Pick<WaiverRecord, "revokedAt" | "expiresAt">, nowMs: number): WaiverStatus {
  if (w.revokedAt !== null) return "revoked";
  return w.expiresAt > nowMs ? "active" : "expired";
}

function viewOf(w: WaiverRecord, nowMs: number): WaiverView {
  return {
    id: w.id,
    namespace: w.namespace,
    check: w.check,
    ...(w.deployment !== null ? { deployment: w.deployment } : {}),
    ...(w.imageDigest !== null ? { imageDigest: w.imageDigest } : {}),
    ...(w.findings !== null ? { findings: w.findings } : {}),
    owner: w.owner,
    justification: w.justification,
    ticket: w.ticket,
    createdBy: w.createdBy,
    createdAt: new Date(w.createdAt).toISOString(),
    expiresAt: new Date(w.expiresAt).toISOString(),
    ...(w.revokedAt !== null ? { revokedAt: new Date(w.revokedAt).toISOString() } : {}),
    ...(w.revokedBy !== null ? { revokedBy: w.revokedBy } : {}),
    status: waiverStatus(w, nowMs),
  };
}

function activeOf(w: WaiverRecord): ActiveWaiver {
  return {
    id: w.id,
    check: w.check,
    ...(w.findings !== null ? { findings: w.findings } : {}),
    scope: {
      namespace: w.namespace,
      ...(w.deployment !== null ? { deployment: w.deployment } : {}),
      ...(w.imageDigest !== null ? { imageDigest: w.imageDigest } : {}),
    },
    expiresAt: w.expiresAt,
  };
}

/** Checks every field of a waiver request in a fixed order; the first problem refuses it. */
function validate(input: WaiverInput, now: Date): Omit<WaiverRecord, "id" | "createdBy" | "createdAt" | "revokedAt" | "revokedBy"> {
  if (typeof input !== "object" || input === null) throw invalid("waiver", "required");
  if (typeof input.namespace !== "string" || !DNS_LABEL_RE.test(input.namespace)) throw invalid("namespace", "a namespace name");
  if (typeof input.check !== "string" || !CHECKS.has(input.check)) {
    throw invalid("check", `not a known check; one of ${[...CHECKS.keys()].join(", ")}`);
  }
  if (input.deployment !== undefined && (typeof input.deployment !== "string" || !DNS_LABEL_RE.test(input.deployment))) {
    throw invalid("deployment", "a deployment name (a DNS label)");
  }
  if (input.imageDigest !== undefined && (typeof input.imageDigest !== "string" || !DIGEST_RE.test(input.imageDigest))) {
    throw invalid("imageDigest", "sha256: followed by 64 lower-case hex digits");
  }
  let findings: string[] | null = null;
  if (input.findings !== undefined) {
    if (!Array.isArray(input.findings) || input.findings.length === 0) throw invalid("findings", "a non-empty list when given");
    if (input.findings.length > MAX_WAIVER_FINDINGS) throw invalid("findings", `at most ${MAX_WAIVER_FINDINGS}`);
    for (const f of input.findings) if (typeof f !== "string" || !FINDING_RE.test(f)) throw invalid("findings", "each an id like CVE-2024-1234");
    findings = [...new Set(input.findings)];
  }
  if (typeof input.owner !== "string") throw invalid("owner", "required: an identity like user:alice");
  try {
    parseIdentity(input.owner);
  } catch {
    throw invalid("owner", "an identity like user:alice");
  }
  const justification = typeof input.justification === "string" ? input.justification.trim() : "";
  if (justification.length < JUSTIFICATION.min || justification.length > JUSTIFICATION.max) {
    throw invalid("justification", `required: ${JUSTIFICATION.min} to ${JUSTIFICATION.max} characters`);
  }
  if (typeof input.ticket !== "string" || !TICKET_RE.test(input.ticket)) throw invalid("ticket", "required: 1 to 200 characters of A-Z a-z 0-9 . _ : / # -");
  const expiresAt = waiverExpiry(input.expires, now);
  return {
    namespace: input.namespace,
    deployment: input.deployment ?? null,
    imageDigest: input.imageDigest ?? null,
    check: input.check,
    findings,
    owner: input.owner,
    justification,
    ticket: input.ticket,
    expiresAt,
  };
}

export class WaiverService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
  ) {}

  /** Validates and stores a waiver, audited in the same transaction. */
  create(input: WaiverInput, actor: WaiverActor): WaiverView {
    const now = this.clock.now();
    const fields = validate(input, now);
    const rec: Omit<WaiverRecord, "revokedAt" | "revokedBy"> = {
      id: `wv-${randomBytes(8).toString("hex")}`,
      ...fields,
      createdBy: actor.identity,
      createdAt: now.getTime(),
    };
    this.store.transaction(() => {
      if (this.store.namespaces.get(fields.namespace) === undefined) throw invalid("namespace", `no namespace ${fields.namespace}`);
      this.store.waivers.insert(rec);
      this.audit.record({
        type: "admission.waiver_created",
        outcome: "allowed",
        actor: actor.identity,
        actorSerial: actor.serial,
        requestId: actor.requestId,
        sourceAddress: actor.sourceAddress,
        resource: "waivers",
        namespace: fields.namespace,
        target: rec.id,
        reason: `check:${fields.check} expires:${new Date(fields.expiresAt).toISOString()}`,
      });
    });
    return viewOf({ ...rec, revokedAt: null, revokedBy: null }, now.getTime());
  }

  /** The waivers in force in the namespace at `now`, as the chain applies them. */
  active(namespace: string, now: Date): ActiveWaiver[] {
    return this.store.waivers.active(namespace, now.getTime()).map(activeOf);
  }

  /**
   * The waivers of a namespace, soonest expiry first: those in force (only those that
   * lapse within `expiringWithinMs` when given), and with `includeExpired` also the
   * expired and revoked ones.
   */
  list(namespace: string, opts: WaiverListOptions = {}): WaiverView[] {
    const now = this.clock.now().getTime();
    return this.store.waivers
      .listByNamespace(namespace)
      .map((w) => viewOf(w, now))
      .filter((v) => {
        if (v.status !== "active") return opts.includeExpired === true;
        return opts.expiringWithinMs === undefined || Date.parse(v.expiresAt) - now <= opts.expiringWithinMs;
      });
  }

  /** One waiver (of the namespace, when given); PC_ADMISSION_WAIVER_NOT_FOUND otherwise. */
  get(id: string, namespace?: string): WaiverView {
    const w = this.store.waivers.get(id);
    if (w === undefined || (namespace !== undefined && w.namespace !== namespace)) throw pcError("PC_ADMISSION_WAIVER_NOT_FOUND", id);
    return viewOf(w, this.clock.now().getTime());
  }

  /** Revokes a waiver at once; audited. A waiver already revoked is not found again. */
  revoke(id: string, actor: WaiverActor, namespace?: string): WaiverView {
    const now = this.clock.now().getTime();
    return this.store.transaction(() => {
      const w = this.store.waivers.get(id);
      if (w === undefined || (namespace !== undefined && w.namespace !== namespace)) throw pcError("PC_ADMISSION_WAIVER_NOT_FOUND", id);
      if (!this.store.waivers.revoke(id, actor.identity, now)) throw pcError("PC_ADMISSION_WAIVER_NOT_FOUND", `${id} is already revoked`);
      this.audit.record({
        type: "admission.waiver_revoked",
        outcome: "allowed",
        actor: actor.identity,
        actorSerial: actor.serial,
        requestId: actor.requestId,
        sourceAddress: actor.sourceAddress,
        resource: "waivers",
        namespace: w.namespace,
        target: id,
        reason: `check:${w.check}`,
      });
      return viewOf({ ...w, revokedAt: now, revokedBy: actor.identity }, now);
    });
  }
}
