/** The deploy domain: manifests, signed deploy requests, the replay guard, offline evidence. */
export * from "./types.js";
export { MAX_MANIFEST_BYTES, manifestIssues, parseManifest, validateManifest, type ManifestIssue, type ParsedManifest } from "./manifest.js";
export {
  dnsLabelReason,
  formatMs,
  labelKeyReason,
  labelValueReason,
  MAX_CPUS,
  MAX_IMAGE_LENGTH,
  MAX_LABELS,
  MAX_MEMORY_BYTES,
  MIN_MEMORY_BYTES,
  parseCpus,
  parseDurationMs,
  parseImageReference,
  parseMemory,
  RESERVED_LABEL_PREFIX,
  type ImageReference,
} from "./manifest-values.js";
export { MAX_ARGV_ITEMS, MAX_ENV, MAX_PIDS, MAX_PORTS, MAX_REPLICAS } from "./manifest-schema.js";
export { DIGEST_RE, manifestDigest } from "./digest.js";
export { DEFAULT_REQUEST_LIFETIME_S, signDeployRequest, type SignDeployRequestOptions } from "./sign.js";
export {
  algorithmForKey,
  certificateThumbprint,
  DEPLOY_ALGORITHMS,
  MAX_JWS_BYTES,
  type DeployAlgorithm,
  type DeployHeader,
} from "./jws-compact.js";
export { CLAIM_NAMES, JTI_RE, MAX_IAT_SKEW_S, type ClaimExpectations } from "./claims.js";
export { checkManifest, verifyDeployRequest, type VerifyContext } from "./verify.js";
export { ReplayGuard, type ReplayVerdict, type StoredDeployRequest } from "./replay.js";
export { DeployRequestVerifier, type CheckedDeployRequest } from "./verifier.js";
export {
  APPROVAL_CLAIM_NAMES,
  APPROVAL_JWS_TYPE,
  approvalSha256,
  DEFAULT_APPROVAL_LIFETIME_S,
  signApproval,
  verifyApproval,
  type ApprovalClaims,
  type ApprovalExpectations,
  type SignApprovalOptions,
  type VerifiedApproval,
  type VerifyApprovalContext,
} from "./approval.js";
export {
  verifySignedRequestEvidence,
  type EvidenceTrust,
  type SignedRequestEvidence,
  type VerifiedEvidence,
} from "./evidence.js";
export {
  SECRETS_MOUNT_PATH,
  secretMountProblems,
  secretPathReason,
  secretRelativePath,
  type SecretMountProblem,
} from "./secret-mounts.js";
