import { formatFingerprint } from "../pki/index.js";
import type { ExportFilter } from "./format.js";
import type { VerifyError, VerifyReport } from "./verify.js";

const filterText = (f: ExportFilter): string => {
  const parts = Object.entries(f).map(([k, v]) => `${k}=${String(v)}`);
  return parts.length > 0 ? parts.join(" ") : "none (every entry shown)";
};

/** What `audit verify` prints. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  if (r.ok) {
    lines.push(`ok: ${r.entries} entries, seq ${r.from}..${r.to}, last checkpoint at seq ${r.lastCheckpoint}, ${r.signedRequests} signed requests`);
    if (r.sealed > 0) lines.push(`  ${r.sealed} other entries of the range are sealed; none of them matches the filter`);
  } else {
    const e = r.error as VerifyError;
    const at =
      e.signedRequest !== undefined ? `FAIL at signed-request ${e.signedRequest}` : e.seq !== null ? `FAIL at seq ${e.seq}` : e.line !== undefined ? `FAIL at line ${e.line}` : "FAIL";
    lines.push(`${at}: ${e.kind}: ${e.message}`);
  }
  if (r.filter) lines.push(`  filter: ${filterText(r.filter)}`);
  if (r.rootFingerprint) {
    lines.push(
      `  root CA: ${formatFingerprint(r.rootFingerprint)}${r.rootPinned ? " (pinned)" : " (not pinned: compare it with the fingerprint you trust, or pass --ca-fingerprint)"}`,
    );
  }
  return lines.join("\n");
}
