/**
 * The small value grammars of a manifest: DNS labels, label keys and values, image
 * references, memory quantities, CPU counts and durations. Each `...Reason` function
 * returns why a value is refused, or undefined when it is good.
 */

export const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Kubernetes label keys: an optional DNS-subdomain prefix and `/`, then a name of up to 63. */
const LABEL_KEY_RE = /^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
/** Empty, or up to 63 letters, digits, `-`, `_`, `.`, beginning and ending with a letter or digit. */
const LABEL_VALUE_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
/** Labels under this prefix are set by the gateway on the containers it creates. */
export const RESERVED_LABEL_PREFIX = "io.portcullis.";
export const MAX_LABELS = 32;

export function dnsLabelReason(v: string): string | undefined {
  return DNS_LABEL_RE.test(v) ? undefined : "must be a DNS label (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)";
}

export function labelKeyReason(k: string): string | undefined {
  if (!LABEL_KEY_RE.test(k)) return "must be a label key (an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_', '.')";
  if (k.startsWith(RESERVED_LABEL_PREFIX)) return `the prefix ${RESERVED_LABEL_PREFIX} is reserved for the gateway`;
  return undefined;
}

export function labelValueReason(v: string): string | undefined {
  return LABEL_VALUE_RE.test(v) ? undefined : "must be empty or up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit";
}

/** A parsed image reference. `digest` pins content; a reference with neither tag nor digest means `latest`. */
export interface ImageReference {
  /** Absent for a bare image id (`sha256:<hex>`). */
  readonly repository?: string;
  readonly tag?: string;
  /** `sha256:<hex>`. */
  readonly digest?: string;
  /** True for `sha256:<hex>`: a local image id rather than a repository. */
  readonly isImageId: boolean;
}

export const MAX_IMAGE_LENGTH = 512;
const HOST_PART = "(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)";
const HOST = `(?:${HOST_PART}(?:\\.${HOST_PART})*(?::[0-9]{1,5})?)`;
const PATH_PART = "(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)";
const REPO = `(?:(?:${HOST}/)?${PATH_PART}(?:/${PATH_PART})*)`;
const IMAGE_ID_RE = /^sha256:[0-9a-f]{64}$/;
const IMAGE_RE = new RegExp(`^(${REPO})(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$`);

/** Parses `repo@sha256:<hex>`, `repo:tag@sha256:<hex>`, `sha256:<hex>`, `repo:tag` or `repo`; undefined if none. */
export function parseImageReference(text: string): ImageReference | undefined {
  if (text.length === 0 || text.length > MAX_IMAGE_LENGTH) return undefined;
  if (IMAGE_ID_RE.test(text)) return { digest: text, isImageId: true };
  const m = IMAGE_RE.exec(text);
  if (!m) return undefined;
  const [, repository, tag, digest] = m;
  const out: { repository: string; tag?: string; digest?: string; isImageId: boolean } = { repository: repository as string, isImageId: false };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

export function imageReason(v: string): string | undefined {
  if (v.length > MAX_IMAGE_LENGTH) return `must be at most ${MAX_IMAGE_LENGTH} characters`;
  if (/\s/.test(v)) return "must not contain white space";
  return parseImageReference(v) ? undefined : "must be repo@sha256:<64 hex>, sha256:<64 hex> or repo:tag";
}

const KI = 1024;
export const MIN_MEMORY_BYTES = 6 * KI * KI;
export const MAX_MEMORY_BYTES = 256 * KI * KI * KI;
const MEMORY_UNITS: Record<string, number> = { "": 1, Ki: KI, Mi: KI * KI, Gi: KI * KI * KI };

/** `128Mi`, `1Gi`, `65536Ki`, or a plain number of bytes (string or integer). */
export function parseMemory(v: unknown): number | string {
  const bad = "must be a quantity like 128Mi (an integer with Ki, Mi or Gi, or plain bytes)";
  let bytes: number;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) return bad;
    bytes = v;
  } else if (typeof v === "string") {
    const m = /^([0-9]{1,15})(Ki|Mi|Gi)?$/.exec(v);
    if (!m) return bad;
    bytes = Number(m[1]) * (MEMORY_UNITS[m[2] ?? ""] as number);
  } else return bad;
  if (bytes < MIN_MEMORY_BYTES || bytes > MAX_MEMORY_BYTES) return "must be between 6Mi and 256Gi";
  return bytes;
}

export const MAX_CPUS = 64;

/** CPUs as a number with at most 3 decimals, > 0 and <= 64; returns nano-CPUs. */
export function parseCpus(v: unknown): number | string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "must be a number of CPUs, like 0.5";
  if (v <= 0 || v > MAX_CPUS) return `must be more than 0 and at most ${MAX_CPUS}`;
  const milli = Math.round(v * 1000);
  if (Math.abs(v * 1000 - milli) > 1e-6) return "must have at most 3 decimals";
  return milli * 1_000_000;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** `500ms`, `5s`, `2m`, `1h` (one unit, a whole number) into milliseconds. */
export function parseDurationMs(v: unknown): number | string {
  const m = typeof v === "string" ? /^(0|[1-9][0-9]{0,8})(ms|s|m|h)$/.exec(v) : null;
  if (!m) return "must be a duration like 500ms, 5s or 2m";
  return Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
}

export function formatMs(ms: number): string {
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
