/**
 * Every decision the gateway makes is reported through an AuditSink. The sink decides
 * how it is stored; the domains only describe what happened. Fields are declared, so
 * nothing undeclared (a body, a key, a token) can reach an entry.
 */
export type AuditOutcome = "allowed" | "denied" | "error";

/**
 * The facts of a deploy that an audit entry references: enough to find the decision
 * record, the signed request and what actually ran. Every key is optional; an event
 * carries the ones it knows.
 */
export interface AuditDeployFacts {
  /** The deployment revision the event is about (a positive integer). */
  readonly revision?: number | undefined;
  /** The `jti` of the signed deploy request. */
  readonly jti?: string | undefined;
  /** `sha256:<hex>` of the manifest as signed (RFC 8785 canonical JSON). */
  readonly digest?: string | undefined;
  /** The image id the revision runs, `sha256:<hex>`, as the engine resolved it. */
  readonly imageId?: string | undefined;
  /** The runtime the spec asked for: `runsc` (sandboxed) or `runc`. */
  readonly runtime?: string | undefined;
  /** The runtime of each created container, read back from its engine after create. */
  readonly actualRuntimes?: readonly string[] | undefined;
  /** The nodes the containers were placed on. */
  readonly nodes?: readonly string[] | undefined;
  /** The names of the containers created. */
  readonly containers?: readonly string[] | undefined;
  /** The number of replicas asked for. */
  readonly replicas?: number | undefined;
  /** Hex SHA-256 of the decision record's RFC 8785 canonical JSON. */
  readonly decisionSha256?: string | undefined;
}

export interface AuditEvent {
  /** What happened, e.g. `api.request`, `tls.handshake_refused`, `pki.certificate_issued`. */
  readonly type: string;
  readonly outcome: AuditOutcome;
  /** `user:alice`, or `anonymous` where no identity was established. */
  readonly actor: string;
  readonly actorSerial?: string | undefined;
  readonly sourceAddress?: string | undefined;
  readonly route?: string | undefined;
  readonly method?: string | undefined;
  readonly status?: number | undefined;
  readonly requestId?: string | undefined;
  /** Error code or other stable reason, never free text from the caller. */
  readonly reason?: string | undefined;
  /** The subject of the action: a serial, an identity, a token id (never the token). */
  readonly target?: string | undefined;
  /** The resource kind an action is about (`deployments`, `certificates`, ...). */
  readonly resource?: string | undefined;
  readonly namespace?: string | undefined;
  /** Hex SHA-256 of the request body; the body itself is never recorded. */
  readonly bodySha256?: string | undefined;
  /**
   * An identifier to be matched but not shown: recorded only as HMAC-SHA256 under the
   * log's key, never as itself.
   */
  readonly matchOnly?: string | undefined;
  /** The facts of a deploy (revision, request, digests, placement, runtimes). */
  readonly deploy?: AuditDeployFacts | undefined;
}

export interface AuditSink {
  /** Records the event durably before returning; throws if it cannot. */
  record(event: AuditEvent): void;
  /**
   * Records an event about something already done and answered (a response already
   * sent), in a group commit at the end of the current event-loop turn. Such an event
   * cannot change the outcome it describes, so a failed write is reported by the sink,
   * not thrown here. Decisions that gate an action use `record`.
   */
  recordAfter(event: AuditEvent): void;
  /**
   * Records an event in the next group commit and resolves once it is durable; rejects
   * with PC_AUDIT_WRITE_FAILED otherwise. The API awaits it before releasing a response.
   */
  append(event: AuditEvent): Promise<unknown>;
  /** Writes whatever `recordAfter` has buffered; throws if it cannot. */
  flush(): void;
}

/** Collects events in memory; for unit tests of collaborators, never for the log itself. */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  record(event: AuditEvent): void {
    this.events.push(event);
  }
  recordAfter(event: AuditEvent): void {
    this.events.push(event);
  }
  async append(event: AuditEvent): Promise<unknown> {
    this.events.push(event);
    return undefined;
  }
  flush(): void {}
}
