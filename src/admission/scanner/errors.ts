/**
 * The one error the scanner's pure parts throw for input they refuse: a version string
 * that is not valid in its ecosystem, a CVSS vector that is not well formed, an OSV
 * record that does not match the schema. `reason` is stable and machine-readable;
 * `path` names the offending field (a JSON path such as `$.affected[0].ranges[1].type`,
 * or the argument name for a bare value). The message is public: it quotes the value
 * (truncated), never anything secret, because versions, vectors and records are public
 * data.
 */
export type ScanInputReason =
  | "version_invalid"
  | "ecosystem_unsupported"
  | "cvss_invalid"
  | "osv_invalid";

const MAX_QUOTED = 80;

/** Quotes a value for an error message, truncated so a huge input cannot flood a log. */
export function quote(value: string): string {
  const shown = value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}…` : value;
  return JSON.stringify(shown);
}

export class ScanInputError extends Error {
  readonly reason: ScanInputReason;
  readonly path: string;

  constructor(reason: ScanInputReason, path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = "ScanInputError";
    this.reason = reason;
    this.path = path;
  }
}

export function isScanInputError(e: unknown): e is ScanInputError {
  return e instanceof ScanInputError;
}
