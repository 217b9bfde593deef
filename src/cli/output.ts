/** `csv` is the policy's own text, for `policy get` only (refused elsewhere before a command runs). */
export type OutputFormat = "table" | "json" | "csv";

/** Prints records as an aligned table or as JSON. */
export function print(format: OutputFormat, data: unknown, columns?: readonly string[]): void {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return;
  }
  const rows = Array.isArray(data) ? (data as Record<string, unknown>[]) : [data as Record<string, unknown>];
  if (!Array.isArray(data) && !columns) {
    const obj = data as Record<string, unknown>;
    const w = Math.max(...Object.keys(obj).map((k) => k.length));
    for (const [k, v] of Object.entries(obj)) process.stdout.write(`${k.padEnd(w)}  ${cell(v)}\n`);
    return;
  }
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => `${vals.map((v, i) => v.padEnd(widths[i] as number)).join("  ").trimEnd()}\n`;
  process.stdout.write(line(cols.map((c) => c.toUpperCase())));
  for (const r of rows) process.stdout.write(line(cols.map((c) => cell(r[c]))));
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return "-";
  if (Array.isArray(v)) return v.map(cell).join(",");
  if (typeof v === "object") {
    const e = Object.entries(v as Record<string, unknown>);
    return e.length === 0 ? "-" : e.map(([k, x]) => `${k}=${cell(x)}`).join(",");
  }
  return String(v);
}

/**
 * A refused deploy's decision record as a readable list: one line per reason, with the
 * check, the field path and the detail; then the warnings.
 */
export function formatDenial(decision: unknown): string {
  const d = decision as { admission?: { denials?: unknown; warnings?: unknown } } | null;
  const list = (v: unknown): { check?: unknown; field?: unknown; reason?: unknown; detail?: unknown; waiver?: unknown }[] =>
    Array.isArray(v) ? (v as { check?: unknown }[]) : [];
  const line = (r: { check?: unknown; field?: unknown; reason?: unknown; detail?: unknown; waiver?: unknown }) =>
    `  - ${String(r.check)}${r.field ? ` (${String(r.field)})` : ""}: ${String(r.reason)}${r.detail ? ` — ${String(r.detail)}` : ""}${r.waiver ? ` [waived by ${String(r.waiver)}]` : ""}\n`;
  const denials = list(d?.admission?.denials);
  const warnings = list(d?.admission?.warnings);
  let out = denials.length > 0 ? "denied because:\n" + denials.map(line).join("") : "";
  if (warnings.length > 0) out += "warnings:\n" + warnings.map(line).join("");
  return out;
}
