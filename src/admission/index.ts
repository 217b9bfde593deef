/** The admission domain: checks, the chain that runs them, policies and offline tests. */
export * from "./types.js";
export * from "./checks/index.js";
export { BUILT_IN_POLICY, evaluate, NO_POLICY_REASON, policySelects, waiverApplies, type EvaluateOptions } from "./chain.js";
export { admittedImageDigest, DEFAULT_REGISTRY, imageName, type ImageName } from "./image.js";
export {
  describePolicyIssues,
  MAX_POLICY_BYTES,
  MAX_POLICY_FILES,
  parseAdmissionPolicies,
  POLICY_API_VERSION,
  POLICY_KIND,
  type AdmissionPolicyIssue,
} from "./policy.js";
export { SHIPPED_ADMISSION_DIR_URL, shippedAdmissionPolicyFiles, shippedAdmissionPolicySet } from "./shipped.js";
export {
  formatAdmissionTestReport,
  MAX_ADMISSION_TEST_BYTES,
  parseAdmissionTestFile,
  runAdmissionTestFile,
  runAdmissionTests,
  runParsedAdmissionTests,
  type AdmissionTestCase,
  type AdmissionTestCaseResult,
  type AdmissionTestFile,
  type AdmissionTestIssue,
  type AdmissionTestOptions,
  type AdmissionTestReport,
  type Verdict as AdmissionVerdict,
} from "./policy-test.js";
export {
  AdmissionPolicyService,
  normalizeAdmissionPolicyFiles,
  type AdmissionPolicyActor,
  type AdmissionPolicyChange,
  type AdmissionPolicyFile,
  type AdmissionPolicyHistoryEntry,
  type AdmissionPolicySnapshot,
  type AdmissionPolicyVersion,
} from "./policy-service.js";
export {
  MAX_WAIVER_FINDINGS,
  MAX_WAIVER_MS,
  WaiverService,
  waiverExpiry,
  waiverStatus,
  type WaiverActor,
  type WaiverInput,
  type WaiverListOptions,
  type WaiverStatus,
  type WaiverView,
} from "./waivers.js";
export {
  BuiltinScanner,
  cachedScanHook,
  cleanupVulnDb,
  importVulnDb,
  inventoryImage,
  judgeScan,
  readImageFiles,
  sbomOf,
  VulnDb,
  type VulnDbImportResult,
  type VulnDbStatus,
  locateTrivy,
  ScanCache,
  selectScanner,
  TrivyScanner,
  type CachedScanHook,
  type ExportImage,
  type InventorySummary,
  type ScanDatabase,
  type ScanFinding,
  type Scanner,
  type ScannerChoice,
  type ScanResult,
} from "./scanner/index.js";
