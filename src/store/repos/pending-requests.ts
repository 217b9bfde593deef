import type { Db } from "../db.js";

export type PendingState = "pending" | "approved" | "expired" | "failed";

/** A signed deploy request that admission would let through once it holds its approvals. */
export interface PendingRequestRecord {
  /** The request id of the deploy call that stored it. */
  readonly id: string;
  readonly jti: string;
  readonly requester: string;
  readonly namespace: string;
  readonly name: string;
  readonly operation: string;
  readonly digest: string;
  readonly jws: string;
  /** The requester's certificate, PEM: what the request was signed with. */
  readonly signerCertificatePem: string;
  readonly required: number;
  readonly createdAt: number;
  /** Epoch ms: the request's exp. Its approvals expire with it. */
  readonly expiresAt: number;
  readonly state: PendingState;
  readonly decisionId: string | null;
}

/** One approval of a pending request, kept as evidence. */
export interface ApprovalRecord {
  readonly requestId: string;
  readonly approver: string;
  readonly jws: string;
  readonly signerCertificatePem: string;
  readonly createdAt: number;
}

interface Row {
  id: string;
  jti: string;
  requester: string;
  namespace: string;
  name: string;
  operation: string;
  digest: string;
  jws: string;
  signer_cert: string;
  required: number;
  created_at: number;
  expires_at: number;
  state: PendingState;
  decision_id: string | null;
}

interface ApprovalRow {
  request_id: string;
  approver: string;
  jws: string;
  signer_cert: string;
  created_at: number;
}

const fromRow = (r: Row): PendingRequestRecord => ({
  id: r.id,
  jti: r.jti,
  requester: r.requester,
  namespace: r.namespace,
  name: r.name,
  operation: r.operation,
  digest: r.digest,
  jws: r.jws,
  signerCertificatePem: r.signer_cert,
  required: r.required,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  state: r.state,
  decisionId: r.decision_id,
});

const approvalFromRow = (r: ApprovalRow): ApprovalRecord => ({
  requestId: r.request_id,
  approver: r.approver,
  jws: r.jws,
  signerCertificatePem: r.signer_cert,
  createdAt: r.created_at,
});

/** Requests waiting for approvals, and the approvals (written once, never changed). */
export class PendingRequestRepo {
  private readonly ins;
  private readonly one;
  private readonly byJti;
  private readonly pendingIn;
  private readonly transition;
  private readonly insApproval;
  private readonly approvalsOf;

  constructor(db: Db) {
    this.ins = db.prepare(
      `INSERT OR IGNORE INTO pending_requests (id, jti, requester, namespace, name, operation, digest, jws, signer_cert, required, created_at, expires_at, state, decision_id)
       VALUES (@id, @jti, @requester, @namespace, @name, @operation, @digest, @jws, @signerCertificatePem, @required, @createdAt, @expiresAt, 'pending', NULL)`,
    );
    this.one = db.prepare<[string], Row>(`SELECT * FROM pending_requests WHERE id = ?`);
    this.byJti = db.prepare<[string], Row>(`SELECT * FROM pending_requests WHERE jti = ?`);
    this.pendingIn = db.prepare<[string, number], Row>(
      `SELECT * FROM pending_requests WHERE namespace = ? AND state = 'pending' AND expires_at > ? ORDER BY created_at, id`,
    );
    this.transition = db.prepare<[PendingState, string | null, string, PendingState]>(
      `UPDATE pending_requests SET state = ?, decision_id = ? WHERE id = ? AND state = ?`,
    );
    this.insApproval = db.prepare(
      `INSERT OR IGNORE INTO approvals (request_id, approver, jws, signer_cert, created_at)
       VALUES (@requestId, @approver, @jws, @signerCertificatePem, @createdAt)`,
    );
    this.approvalsOf = db.prepare<[string], ApprovalRow>(`SELECT * FROM approvals WHERE request_id = ? ORDER BY created_at, approver`);
  }

  /** False when the id or the jti is taken. */
  insert(rec: Omit<PendingRequestRecord, "state" | "decisionId">): boolean {
    return this.ins.run(rec).changes === 1;
  }

  get(id: string): PendingRequestRecord | undefined {
    const r = this.one.get(id);
    return r ? fromRow(r) : undefined;
  }

  getByJti(jti: string): PendingRequestRecord | undefined {
    const r = this.byJti.get(jti);
    return r ? fromRow(r) : undefined;
  }

  /** The requests of a namespace still waiting at `now` (epoch ms), oldest first. */
  listPending(namespace: string, now: number): PendingRequestRecord[] {
    return this.pendingIn.all(namespace, now).map(fromRow);
  }

  /** Moves a request from `from` to `to`; false if it was not in `from` (someone else moved it). */
  setState(id: string, from: PendingState, to: PendingState, decisionId: string | null = null): boolean {
    return this.transition.run(to, decisionId, id, from).changes === 1;
  }

  /** False when this approver already approved the request. */
  addApproval(rec: ApprovalRecord): boolean {
    return this.insApproval.run(rec).changes === 1;
  }

  approvals(requestId: string): ApprovalRecord[] {
    return this.approvalsOf.all(requestId).map(approvalFromRow);
  }
}
