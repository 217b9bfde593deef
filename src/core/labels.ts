/**
 * Labels on namespaces and nodes, Kubernetes style: a key is an optional DNS-subdomain
 * prefix and `/`, then a name of up to 63 characters (letters, digits, `-`, `_`, `.`,
 * beginning and ending with a letter or digit); a value is empty or such a name. At
 * most 64 labels. Each domain reports a refusal with its own error code.
 */
const LABEL_KEY_RE = /^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
export const MAX_LABELS = 64;

/** Why a label set is refused, or undefined when it is good. */
export function labelsReason(labels: Readonly<Record<string, unknown>>): string | undefined {
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) return "labels must be an object";
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) return `at most ${MAX_LABELS} labels`;
  for (const [k, v] of entries) {
    if (!LABEL_KEY_RE.test(k)) return `key ${JSON.stringify(k.slice(0, 70))}`;
    if (typeof v !== "string" || !LABEL_VALUE_RE.test(v)) return `value of ${k}`;
  }
  return undefined;
}

/** The same labels, keys in code-point order (the stored form). */
export function sortedLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
