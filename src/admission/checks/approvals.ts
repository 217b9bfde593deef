/**
 * Check `approvals`: deploys in a namespace that asks for approvals need them.
 *
 * Restricted input and allowed values:
 * - the namespace label portcullis.io/approvals: absent or 0, or a count M from 1 to 10.
 *   With M, the request needs M valid approvals by distinct approvers other than the
 *   requester (attributes.approvals.valid); fewer deny with "approvals required". A value
 *   that is not a whole number from 0 to 10 denies as "approvals label invalid".
 */
import { noParams } from "../params.js";
import { deny, ok } from "../results.js";
import { APPROVALS_LABEL, type CheckDefinition } from "../types.js";

const NAME = "approvals";
/** The most approvals a namespace may ask for. */
export const MAX_APPROVALS = 10;

export const approvalsCheck: CheckDefinition<Record<string, never>> = {
  name: NAME,
  validateParams: noParams,
  run(attrs) {
    const ns = attrs.namespace;
    const label = ns.labels[APPROVALS_LABEL];
    if (label === undefined) return [ok(NAME, `namespace ${ns.name} requires no approvals`)];
    const field = `namespace.labels.${APPROVALS_LABEL}`;
    if (!/^(0|[1-9][0-9]?)$/.test(label) || Number(label) > MAX_APPROVALS) {
      return [deny(NAME, field, "approvals label invalid", `namespace ${ns.name} carries ${APPROVALS_LABEL}=${label}, which is not a whole number from 0 to ${MAX_APPROVALS}`)];
    }
    const m = Number(label);
    if (m === 0) return [ok(NAME, `namespace ${ns.name} requires no approvals`)];
    const valid = new Set((attrs.approvals?.valid ?? []).filter((a) => a !== attrs.requester));
    if (valid.size < m) return [deny(NAME, field, "approvals required", `${m} approvals required; ${valid.size} valid`)];
    return [ok(NAME, `${m} approvals required; ${valid.size} valid: ${[...valid].sort().join(", ")}`)];
  },
};
