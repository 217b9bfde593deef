/**
 * OSV records: strict validation (osv-record.ts), version matching with OSV's range
 * semantics (osv-match.ts) and severity (osv-severity.ts).
 */
export {
  EVENT_KINDS,
  MAX_OSV_RECORD_CHARS,
  parseOsvRecordJson,
  validateOsvRecord,
  type EventKind,
  type OsvAffected,
  type OsvEvent,
  type OsvRange,
  type OsvRangeType,
  type OsvRecord,
  type OsvSeverityEntry,
} from "./osv-record.js";
export { affectedVersions, normalizePypiName, type AffectedResult } from "./osv-match.js";
export { severityOf, type RecordSeverity, type SeverityLevel } from "./osv-severity.js";
