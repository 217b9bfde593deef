import type { AuditLogRow } from "../store/index.js";
import { canonicalBody, ENTRY_VERSION, type AuditEntry, type EntryBody, type EntryHead, type Outcome } from "./format.js";

/** An entry as a row of the store's audit_log table. */
export function entryToRow(e: AuditEntry, bodyJson: string = canonicalBody(e.body)): AuditLogRow {
  return {
    seq: e.head.seq,
    time: e.head.time,
    type: e.head.type,
    outcome: e.head.outcome,
    actor: e.head.actor,
    action: e.head.action ?? null,
    resource: e.head.resource ?? null,
    namespace: e.head.namespace ?? null,
    body: bodyJson,
    bodyDigest: e.bodyDigest,
    prevHash: e.prevHash,
    hash: e.hash,
  };
}

/** A row read back as an entry, exactly as stored (the verifier decides whether it holds). */
export function rowToEntry(r: AuditLogRow): AuditEntry {
  const head: { -readonly [K in keyof EntryHead]: EntryHead[K] } = {
    v: ENTRY_VERSION,
    seq: r.seq,
    time: r.time,
    type: r.type,
    outcome: r.outcome as Outcome,
    actor: r.actor,
  };
  if (r.action !== null) head.action = r.action;
  if (r.resource !== null) head.resource = r.resource;
  if (r.namespace !== null) head.namespace = r.namespace;
  return { head, body: JSON.parse(r.body) as EntryBody, bodyDigest: r.bodyDigest, prevHash: r.prevHash, hash: r.hash };
}
