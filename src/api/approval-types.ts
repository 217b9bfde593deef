/** The vocabulary of the approval flow (the two-person rule) as the API answers it. */
import type { PendingRequestRecord } from "../store/index.js";

/** What RBAC says now about an identity in the approval's namespace. */
export type RbacAnswer = { readonly rule: string; readonly policyVersion: number; readonly allowed: boolean };

export interface ApproveMeta {
  readonly namespace: string;
  readonly requestId: string;
  readonly sourceAddress: string;
  readonly trustDomain: string;
  /** RBAC in force now: `deployments deploy` for the requester, `approvals approve` for approvers. */
  readonly decide: (identity: string, resource: "deployments" | "approvals", action: "deploy" | "approve") => RbacAnswer;
}

/** The answer to a deploy request (202) or an approval that leaves it waiting. */
export interface PendingAnswer {
  readonly pending: true;
  readonly requestId: string;
  readonly namespace: string;
  readonly name: string;
  readonly requester: string;
  readonly jti: string;
  readonly manifestDigest: string;
  readonly required: number;
  /** The approvers whose approvals count now. */
  readonly approvals: readonly string[];
  readonly expiresAt: string;
}

/** One approval as a decision record lists it. */
export interface ApprovalEvidence {
  readonly approver: string;
  readonly at: string;
  readonly jwsSha256: string;
  readonly certificateSha256: string;
}

/** A request waiting for approvals, as approvers see it. */
export interface PendingView extends PendingAnswer {
  readonly state: PendingRequestRecord["state"];
  readonly operation: string;
  readonly createdAt: string;
  readonly decisionId: string | null;
}
