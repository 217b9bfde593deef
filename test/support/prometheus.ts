/**
 * A real Prometheus text-format parser for the tests: the Python client's
 * (`prometheus_client.parser`, Debian's python3-prometheus-client), run by the system
 * Python. It raises on malformed text, so a body that parses here is well-formed.
 */
import { spawnSync } from "node:child_process";

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PromFamily {
  /** The family name (for counters, without `_total`). */
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: readonly PromSample[];
}

const PYTHON = "/usr/bin/python3";
const SCRIPT = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
print(json.dumps(out))
`;

/** Parses a whole exposition; throws with the parser's message when any of it is malformed. */
export function parsePrometheusText(text: string): PromFamily[] {
  const r = spawnSync(PYTHON, ["-c", SCRIPT], { input: text, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`the Prometheus parser refused the text: ${r.stderr.trim().split("\n").slice(-1)[0] ?? ""}`);
  const families = JSON.parse(r.stdout) as { name: string; type: string; help: string; samples: { name: string; labels: Record<string, string>; value: number | string }[] }[];
  return families.map((f) => ({ ...f, samples: f.samples.map((s) => ({ ...s, value: typeof s.value === "number" ? s.value : s.value === "inf" ? Infinity : s.value === "-inf" ? -Infinity : NaN })) }));
}

/** The samples named `name` (a sample name, e.g. `x_total` or `x_bucket`), over all families. */
export function samplesOf(families: readonly PromFamily[], name: string): PromSample[] {
  return families.flatMap((f) => f.samples.filter((s) => s.name === name));
}

/** The one sample named `name` whose labels include `labels`; undefined when none. */
export function sampleOf(families: readonly PromFamily[], name: string, labels: Readonly<Record<string, string>> = {}): PromSample | undefined {
  return samplesOf(families, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}
