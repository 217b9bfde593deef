/**
 * Check `approvals`: deploys in a namespace that asks for approvals need them.
 *
 * Restricted input and allowed values:
 * - the namespace label portcullis.io/approvals: absent or 0. A positive count M denies
 *   with "approvals required", because no approval flow exists yet to grant them (fail
 *   closed). A value that is not a whole number also denies.
 */
import { noParams } from "../params.js";
import { deny, ok } from "../results.js";
import { APPROVALS_LABEL, type CheckDefinition } from "../types.js";

const NAME = "approvals";

export const approvalsCheck: CheckDefinition<Record<string, never>> = {
  name: NAME,
  validateParams: noParams,
  run(attrs) {
    const ns = attrs.namespace;
    const label = ns.labels[APPROVALS_LABEL];
    if (label === undefined) return [ok(NAME, `namespace ${ns.name} requires no approvals`)];
    const field = `namespace.labels.${APPROVALS_LABEL}`;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(label)) {
      return [deny(NAME, field, "approvals label invalid", `namespace ${ns.name} carries ${APPROVALS_LABEL}=${label}, which is not a whole number`)];
    }
    const m = Number(label);
    if (m === 0) return [ok(NAME, `namespace ${ns.name} requires no approvals`)];
    return [deny(NAME, field, "approvals required", `${m} approvals required; the approval flow is not available`)];
  },
};
