/**
 * The image scanner: version order per ecosystem, CVSS v3 base scores, OSV records
 * (validation, matching, severity), the offline vulnerability database, the image's own
 * layers and its package inventory, and the CycloneDX SBOM.
 */
export { ScanInputError, isScanInputError, type ScanInputReason } from "./errors.js";
export { cvssMajorVersion, cvssSeverity, parseCvssV3, type CvssV3, type CvssV3Version, type Severity } from "./cvss.js";
export * from "./osv.js";
export {
  compareParsed,
  compareVersions,
  ECOSYSTEMS,
  ecosystemFamily,
  normalizePypiVersion,
  parseVersion,
  type Ecosystem,
  type ParsedVersion,
} from "./versions/index.js";
export * from "./vulndb.js";
export {
  cleanupVulnDb,
  importVulnDb,
  type VulnDbActor,
  type VulnDbCleanupOptions,
  type VulnDbImportOptions,
  type VulnDbImportResult,
} from "./vulndb-import.js";
export {
  DEFAULT_IMAGE_READ_LIMITS,
  readImageFiles,
  type ImageFile,
  type ImageFileView,
  type ImageLayer,
  type ImageReadLimits,
  type ImageReadOptions,
} from "./image-layers.js";
export { inventoryImage, inventoryOf, inventoryWanted, normalizePypiName } from "./inventory.js";
export type * from "./inventory-types.js";
export { purlOf, sbomOf, type CycloneDxBom, type CycloneDxComponent, type SbomOptions } from "./sbom.js";
export {
  dedupeFindings,
  IMAGE_ID_RE,
  SEVERITY_LEVELS,
  severityCounts,
  type ExportImage,
  type FindingSeverity,
  type FindingSeverityLevel,
  type InventorySummary,
  type ScanDatabase,
  type ScanDatabaseState,
  type Scanner,
  type ScannerKind,
  type ScanFinding,
  type ScanResult,
} from "./scanner.js";
export { BuiltinScanner, queryOf, summaryOf, type BuiltinScannerOptions } from "./builtin-scanner.js";
export { TrivyScanner, type TrivyScannerOptions } from "./trivy.js";
export { parseTrivyReport, parseTrivyVersion, TrivyReportError, type TrivyDatabase, type TrivyReport } from "./trivy-report.js";
export { locateTrivy, selectScanner, type ScannerChoice } from "./trivy-select.js";
export { cachedScanHook, ScanCache, type CachedScan, type CachedScanHook, type ScanCacheOptions } from "./scan-cache.js";
export {
  DEFAULT_SCAN_POLICY,
  findingDetail,
  judgedLevel,
  judgeScan,
  SEVERITY_THRESHOLDS,
  type DatabaseAge,
  type ScanPolicy,
  type ScanVerdict,
  type SeverityThreshold,
} from "./scan-verdict.js";
