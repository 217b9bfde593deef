/**
 * The error registry. Every error portcullis reports has a stable code
 * `PC_<AREA>_<REASON>`, an HTTP status and a public message. Internal details are
 * logged, never sent. `docs/errors.md` lists every code; a test keeps the two equal.
 */

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export const ERRORS = {
  PC_INTERNAL: { status: 500, message: "internal error" },

  PC_CONFIG_INVALID: { status: 400, message: "invalid configuration" },

  PC_API_MALFORMED_JSON: { status: 400, message: "request body is not valid JSON" },
  PC_API_DUPLICATE_KEY: { status: 400, message: "request body has a duplicate key" },
  PC_API_INVALID_BODY: { status: 400, message: "request does not match its schema" },
  PC_API_BODY_TOO_LARGE: { status: 413, message: "request body is too large" },
  PC_API_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: "unsupported content type" },
  PC_API_NOT_FOUND: { status: 404, message: "no such route" },
  PC_API_UNAUTHENTICATED: { status: 401, message: "a valid client certificate is required" },
  PC_API_FORBIDDEN: { status: 403, message: "not allowed" },
  PC_API_UNAVAILABLE: { status: 503, message: "service unavailable" },
  PC_API_ROUTE_UNDECLARED: { status: 500, message: "route has no authorization declaration" },

  PC_STORE_DATA_DIR_EXISTS: { status: 409, message: "data directory already exists" },
  PC_STORE_DATA_DIR_MISSING: { status: 404, message: "data directory is not initialised" },
  PC_STORE_DATA_DIR_TOO_NEW: {
    status: 500,
    message: "data directory was written by a newer portcullis; refusing to open it",
  },
  PC_STORE_DATA_DIR_PERMISSIONS: {
    status: 500,
    message: "data directory or key file permissions are too open",
  },
  PC_STORE_CORRUPT: { status: 500, message: "data directory is corrupt" },
  PC_STORE_UNAVAILABLE: { status: 503, message: "store unavailable" },

  PC_PKI_PEM_MALFORMED: { status: 400, message: "malformed PEM or DER" },
  PC_PKI_CSR_MALFORMED: { status: 400, message: "malformed certificate signing request" },
  PC_PKI_CSR_SIGNATURE: { status: 400, message: "signature verification failed" },
  PC_PKI_KEY_UNSUPPORTED: { status: 400, message: "unsupported key type" },
  PC_PKI_KEY_TOO_WEAK: { status: 400, message: "key is too weak" },
  PC_PKI_IDENTITY_INVALID: { status: 400, message: "invalid identity" },
  PC_PKI_IDENTITY_MISMATCH: {
    status: 403,
    message: "the request names a different identity than it is entitled to",
  },
  PC_PKI_TTL_INVALID: { status: 400, message: "requested lifetime is not allowed" },
  PC_PKI_PROFILE_REFUSED: { status: 400, message: "this CA does not issue that certificate" },
  PC_PKI_TOKEN_INVALID: { status: 401, message: "enrollment token is not valid" },
  PC_PKI_TOKEN_USED: { status: 401, message: "enrollment token has already been used" },
  PC_PKI_TOKEN_EXPIRED: { status: 401, message: "enrollment token has expired" },
  PC_PKI_TOKEN_REVOKED: { status: 401, message: "enrollment token has been revoked" },
  PC_PKI_CERT_NOT_FOUND: { status: 404, message: "no such certificate" },
  PC_PKI_CERT_REVOKED: { status: 401, message: "certificate has been revoked" },
  PC_PKI_CERT_INVALID: { status: 400, message: "certificate is not valid" },
  PC_PKI_REVOKE_REASON_INVALID: { status: 400, message: "unknown revocation reason" },
  PC_PKI_CA_FINGERPRINT_MISMATCH: {
    status: 502,
    message: "the server's CA does not match the pinned fingerprint",
  },

  PC_RBAC_POLICY_UNAVAILABLE: { status: 503, message: "authorization policy unavailable" },
  PC_RBAC_NAMESPACE_INVALID: { status: 400, message: "namespace name must be a DNS label" },
  PC_RBAC_NAMESPACE_NOT_FOUND: { status: 404, message: "no such namespace" },
  PC_RBAC_NAMESPACE_EXISTS: { status: 409, message: "namespace already exists" },
  PC_RBAC_NAMESPACE_IN_USE: { status: 409, message: "namespace still has deployments or secrets" },
  PC_RBAC_LABEL_INVALID: { status: 400, message: "invalid label" },
  PC_RBAC_VERSION_NOT_FOUND: { status: 404, message: "no such policy version" },
  PC_RBAC_BINDING_EXISTS: { status: 409, message: "role binding already exists" },
  PC_RBAC_BINDING_NOT_FOUND: { status: 404, message: "no such role binding" },
  PC_RBAC_POLICY_INVALID: { status: 400, message: "policy is not valid" },
  PC_RBAC_ESCALATION: { status: 403, message: "the change grants powers the caller does not hold" },
  PC_RBAC_TEST_INVALID: { status: 400, message: "policy test file is not valid" },

  PC_DEPLOY_MANIFEST_UNREADABLE: { status: 400, message: "manifest is not readable YAML or JSON" },
  PC_DEPLOY_MANIFEST_INVALID: { status: 400, message: "manifest is not valid" },
  PC_DEPLOY_REQUEST_MALFORMED: { status: 400, message: "signed request is malformed" },
  PC_DEPLOY_HEADER_INVALID: { status: 400, message: "signed request header is not valid" },
  PC_DEPLOY_ALG_NOT_ALLOWED: { status: 400, message: "signing algorithm or key source not allowed" },
  PC_DEPLOY_SIGNER_MISMATCH: { status: 403, message: "the request is not signed with the caller's certificate" },
  PC_DEPLOY_SIGNATURE_INVALID: { status: 403, message: "signature verification failed" },
  PC_DEPLOY_CLAIMS_INVALID: { status: 400, message: "signed request claims are not valid" },
  PC_DEPLOY_EXPIRED: { status: 400, message: "signed request has expired" },
  PC_DEPLOY_REPLAYED: { status: 409, message: "signed request has already been used" },
  PC_DEPLOY_DIGEST_MISMATCH: { status: 400, message: "manifest digest does not match the manifest" },
  PC_DEPLOY_NOT_FOUND: { status: 404, message: "no such deployment" },
  PC_DEPLOY_EXISTS: { status: 409, message: "deployment already exists" },
  PC_DEPLOY_REVISION_NOT_FOUND: { status: 404, message: "no such deployment revision" },
  PC_DEPLOY_SANDBOX_REQUIRED: { status: 403, message: "the namespace requires the sandboxed runtime" },
  PC_DEPLOY_OPERATION_INVALID: { status: 400, message: "operation does not fit the deployment" },
  PC_DEPLOY_ROLLOUT_FAILED: { status: 409, message: "rollout failed and was rolled back" },
  PC_DEPLOY_EVIDENCE_INVALID: { status: 400, message: "stored signed request does not verify" },
  PC_DEPLOY_DECISION_NOT_FOUND: { status: 404, message: "no such decision record" },

  PC_ADMISSION_POLICY_INVALID: { status: 400, message: "admission policy is not valid" },
  PC_ADMISSION_TEST_INVALID: { status: 400, message: "admission test file is not valid" },
  PC_ADMISSION_DENIED: { status: 403, message: "admission denied the request" },
  PC_ADMISSION_POLICY_MISSING: { status: 403, message: "no admission policy selects the namespace" },
  PC_ADMISSION_POLICY_UNAVAILABLE: { status: 503, message: "admission policy unavailable" },
  PC_ADMISSION_VERSION_NOT_FOUND: { status: 404, message: "no such admission policy version" },
  PC_ADMISSION_APPROVAL_INVALID: { status: 400, message: "approval is not valid" },
  PC_ADMISSION_PENDING_NOT_FOUND: { status: 404, message: "no such request waiting for approvals" },
  PC_ADMISSION_WAIVER_INVALID: { status: 400, message: "waiver is not valid" },
  PC_ADMISSION_WAIVER_NOT_FOUND: { status: 404, message: "no such waiver" },

  PC_RUNTIME_SPEC_INVALID: { status: 400, message: "container spec is not allowed" },
  PC_RUNTIME_ENGINE_UNAVAILABLE: { status: 503, message: "container engine unavailable" },
  PC_RUNTIME_ENGINE_FAILED: { status: 502, message: "container engine failed" },
  PC_RUNTIME_CONTAINER_TIMEOUT: { status: 504, message: "container did not finish in time" },
  PC_RUNTIME_NODE_INVALID: { status: 400, message: "node definition is not valid" },
  PC_RUNTIME_NODE_NOT_FOUND: { status: 404, message: "no such node" },
  PC_RUNTIME_NODE_EXISTS: { status: 409, message: "node already exists" },
  PC_RUNTIME_NODE_IN_USE: { status: 409, message: "node still runs deployments" },
  PC_RUNTIME_NO_CAPACITY: { status: 409, message: "no eligible node has room for the deployment" },
  PC_RUNTIME_IMAGE_NOT_FOUND: { status: 404, message: "image not found on any eligible node" },
  PC_RUNTIME_IMAGE_INVALID: { status: 400, message: "image is not allowed" },

  PC_SECRETS_NAME_INVALID: { status: 400, message: "secret name is not valid" },
  PC_SECRETS_VALUE_INVALID: { status: 400, message: "secret value is not valid" },
  PC_SECRETS_TOO_LARGE: { status: 413, message: "secret value is too large" },
  PC_SECRETS_NOT_FOUND: { status: 404, message: "no such secret" },
  PC_SECRETS_VERSION_NOT_FOUND: { status: 404, message: "no such secret version" },
  PC_SECRETS_EXISTS: { status: 409, message: "secret already exists" },
  PC_SECRETS_IN_USE: { status: 409, message: "secret is used by a running deployment" },
  PC_SECRETS_DECRYPT_FAILED: { status: 500, message: "secret could not be decrypted" },
  PC_SECRETS_KEYRING_MISSING: { status: 500, message: "secret keyring not found" },
  PC_SECRETS_KEYRING_INVALID: { status: 500, message: "secret keyring is not valid" },
  PC_SECRETS_KEYRING_READONLY: { status: 409, message: "secret keyring cannot be changed from here" },
  PC_SECRETS_KEK_NOT_FOUND: { status: 404, message: "no such key-encryption key" },
  PC_SECRETS_KEK_IN_USE: { status: 409, message: "key-encryption key still wraps data keys" },
  PC_SECRETS_ROTATION_RUNNING: { status: 409, message: "a key rotation is still rewrapping data keys" },
  PC_SECRETS_TMPFS_UNAVAILABLE: { status: 503, message: "no in-memory filesystem for secret files" },
  PC_SECRETS_INJECTION_FAILED: { status: 500, message: "secret files could not be written" },

  PC_SCAN_VULNDB_INVALID: { status: 400, message: "vulnerability database is not valid" },
  PC_SCAN_VULNDB_MISSING: { status: 503, message: "no vulnerability database is loaded" },
  PC_SCAN_ARCHIVE_UNSAFE: { status: 400, message: "archive entry is not safe to read" },
  PC_SCAN_FILE_TOO_LARGE: { status: 413, message: "file in the archive is too large" },
  PC_SCAN_IMAGE_UNREADABLE: { status: 422, message: "image cannot be read for scanning" },
  PC_SCAN_FAILED: { status: 502, message: "image scan failed" },
  PC_SCAN_TIMEOUT: { status: 504, message: "image scan timed out" },

  PC_MONITOR_RULES_INVALID: { status: 400, message: "monitoring rules are not valid" },
  PC_MONITOR_RULES_MISSING: { status: 503, message: "no monitoring rules are in force" },
  PC_MONITOR_RULES_VERSION_NOT_FOUND: { status: 404, message: "no such monitoring rules version" },
  PC_MONITOR_EVENTS_INVALID: { status: 400, message: "recorded events are not valid" },
  PC_MONITOR_TEST_INVALID: { status: 400, message: "monitoring rules test file is not valid" },
  PC_MONITOR_ALERT_NOT_FOUND: { status: 404, message: "no such alert" },
  PC_MONITOR_ALERT_ACKED: { status: 409, message: "alert is already acknowledged" },
  PC_MONITOR_QUARANTINED: { status: 409, message: "deployment has a quarantined replica" },
  PC_MONITOR_QUARANTINE_NOT_FOUND: { status: 404, message: "no such quarantine" },
  PC_MONITOR_ACTION_FAILED: { status: 502, message: "response action failed" },
  PC_MONITOR_STREAM_DOWN: { status: 503, message: "event stream of the node is down" },
  PC_MONITOR_WEBHOOK_KEY_INVALID: { status: 500, message: "webhook signing key is missing or not valid" },

  PC_AUDIT_WRITE_FAILED: { status: 503, message: "audit log unavailable" },
  PC_AUDIT_EMPTY: { status: 404, message: "the audit log has no entries" },
  PC_AUDIT_NOT_CHECKPOINTED: { status: 409, message: "the end of the export range is not covered by a checkpoint" },
  PC_AUDIT_FILTER_INVALID: { status: 400, message: "invalid audit export filter" },
  PC_AUDIT_BUNDLE_UNREADABLE: { status: 400, message: "audit bundle cannot be read" },

  PC_CLI_USAGE: { status: 400, message: "bad usage" },
  PC_CLI_PROFILE_MISSING: { status: 400, message: "client profile not found" },
  PC_CLI_PROFILE_INVALID: { status: 400, message: "client profile is invalid" },
  PC_CLI_SERVER_UNREACHABLE: { status: 502, message: "cannot reach the server" },
  PC_CLI_TLS_FAILED: { status: 502, message: "TLS connection to the server failed" },
  PC_CLI_BAD_RESPONSE: { status: 502, message: "unexpected response from the server" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(ERRORS, value);
}

/**
 * The one error class. `detail` is an optional public refinement (for example a field
 * path) and must never carry secret material; `internal` is logged only.
 */
export class PortcullisError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  readonly internal: unknown;
  /**
   * The decision record of a refused request, returned with the error in full (every
   * reason with its field path). Public by construction: it holds no secret material.
   */
  readonly decision: unknown;

  constructor(code: ErrorCode, opts: { detail?: string; internal?: unknown; cause?: unknown; decision?: unknown } = {}) {
    const spec = ERRORS[code];
    super(opts.detail ? `${spec.message}: ${opts.detail}` : spec.message, { cause: opts.cause });
    this.name = "PortcullisError";
    this.code = code;
    this.status = spec.status;
    this.detail = opts.detail;
    this.internal = opts.internal;
    this.decision = opts.decision;
  }

  /** The message that may be shown to a caller. */
  get publicMessage(): string {
    return this.message;
  }
}

export function pcError(
  code: ErrorCode,
  detail?: string,
  internal?: unknown,
): PortcullisError {
  return new PortcullisError(code, { detail, internal });
}

export function isPortcullisError(e: unknown): e is PortcullisError {
  return e instanceof PortcullisError;
}

/** Wraps anything thrown into a PortcullisError, keeping the original as internal detail. */
export function toPortcullisError(e: unknown, fallback: ErrorCode = "PC_INTERNAL"): PortcullisError {
  if (e instanceof PortcullisError) return e;
  return new PortcullisError(fallback, { internal: e, cause: e });
}
