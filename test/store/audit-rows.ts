import { createHash } from "node:crypto";
import type { AuditLogRow } from "../../src/store/index.js";

/**
 * A row of audit_log for tests of the store alone. The store does not check the chain
 * (the audit domain seals entries), so the hashes here are only distinct and well-formed.
 */
export function auditRow(seq: number, over: Partial<AuditLogRow> = {}): AuditLogRow {
  const h = (s: string) => createHash("sha256").update(s).digest("hex");
  return {
    seq,
    time: new Date(Date.UTC(2026, 0, 1) + seq * 1000).toISOString(),
    type: "api.request",
    outcome: "allowed",
    actor: "user:alice",
    action: null,
    resource: null,
    namespace: null,
    body: "{}",
    bodyDigest: h("{}"),
    prevHash: seq === 0 ? "0".repeat(64) : h(`entry ${seq - 1}`),
    hash: h(`entry ${seq}`),
    ...over,
  };
}
