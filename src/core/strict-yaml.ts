/**
 * Strict YAML for the files security teams write: YAML 1.2 core schema, one document,
 * no duplicate keys, no anchors, aliases or tags, string keys only, finite numbers only.
 * Problems carry their line; a value's line is found again from its field path.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from "yaml";
import type { Document } from "yaml";

export type FieldPath = readonly (string | number)[];

export interface YamlIssue {
  readonly line: number;
  readonly path: FieldPath;
  readonly reason: string;
}

export interface StrictYamlDocument {
  /** The document's JSON data model. */
  readonly value: unknown;
  /** The line of the value at `path`, or of its nearest ancestor present in the file. */
  lineOf(path: FieldPath): number;
}

export type StrictYamlResult = { readonly ok: true; readonly doc: StrictYamlDocument } | { readonly ok: false; readonly issues: readonly YamlIssue[] };

export function readStrictYaml(text: string): StrictYamlResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false, strict: true, schema: "core" });
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 0 : lc.linePos(offset).line);
  const nodeLine = (n: unknown): number => lineAt((n as { range?: [number, number, number] } | null)?.range?.[0]);
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    return {
      ok: false,
      issues: problems.map((e) => ({
        line: lineAt(e.pos[0]),
        path: [],
        reason: e.code === "DUPLICATE_KEY" ? "duplicate key" : e.code === "MULTIPLE_DOCS" ? "more than one document" : firstLine(e.message),
      })),
    };
  }
  const issues: YamlIssue[] = [];
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) issues.push({ line: nodeLine(node), path: [], reason: "aliases are not allowed" });
      else if (node.anchor) issues.push({ line: nodeLine(node), path: [], reason: "anchors are not allowed" });
      else if (node.tag) issues.push({ line: nodeLine(node), path: [], reason: "tags are not allowed" });
      else if (isScalar(node) && typeof node.value === "number" && !Number.isFinite(node.value)) {
        issues.push({ line: nodeLine(node), path: [], reason: ".inf and .nan are not allowed" });
      }
      return undefined;
    },
    Pair(_key, pair) {
      if (!isPair(pair)) return undefined;
      const k = pair.key;
      if (!isScalar(k) || typeof k.value !== "string") issues.push({ line: nodeLine(k), path: [], reason: "keys must be strings" });
      return undefined;
    },
  });
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, doc: { value: doc.toJS({ maxAliasCount: 0 }) as unknown, lineOf: (path) => lineOfPath(doc, path, nodeLine) } };
}

function lineOfPath(doc: Document, path: FieldPath, nodeLine: (n: unknown) => number): number {
  let node: unknown = doc.contents;
  let line = nodeLine(node);
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
      if (pair === undefined) break;
      line = nodeLine(pair.key);
      node = pair.value;
      if (node !== null && node !== undefined) line = nodeLine(node) || line;
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg];
      if (node === undefined) break;
      line = nodeLine(node) || line;
    } else break;
  }
  return line;
}

function firstLine(s: string): string {
  return (s.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
}

/** `spec.checks.resources.params.maxMemory`, `cases[2].expect`, `labels["a.b/c"]`. */
export function formatPath(path: FieldPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** `a.b[0].c` back into segments (parameter paths as checks report them). */
export function parseFieldPath(field: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[2] !== undefined) out.push(Number(m[2]));
    else if (m[1] !== undefined) out.push(m[1]);
  }
  return out;
}

/** A plain map (not a list, not null). */
export function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A problem with a value of a document: its line, its field path as text, why. */
export interface FieldIssue {
  readonly line: number;
  readonly field: string;
  readonly reason: string;
}

/** Records a problem at a path; returns undefined, so that a check can `return bad(...)`. */
export type Bad = (path: FieldPath, reason: string) => undefined;
/** Records every field of a map that is not allowed. */
export type Keys = (v: Record<string, unknown>, path: FieldPath, allowed: readonly string[]) => void;

/** Collects every problem of a document, each with the line of its field. */
export function issueCollector(doc: StrictYamlDocument): { readonly issues: FieldIssue[]; readonly bad: Bad; readonly keys: Keys } {
  const issues: FieldIssue[] = [];
  const bad: Bad = (path, reason) => {
    issues.push({ line: doc.lineOf(path), field: formatPath(path), reason });
    return undefined;
  };
  const keys: Keys = (v, path, allowed) => {
    for (const k of Object.keys(v)) if (!allowed.includes(k)) bad([...path, k], `unknown field (allowed: ${allowed.join(", ")})`);
  };
  return { issues, bad, keys };
}

/**
 * The `cases` of a test file: a non-empty list (of at most `max`), each parsed by
 * `parse` (which reports its own problems), no name twice.
 */
export function namedCases<T extends { readonly name: string; readonly line: number }>(
  list: unknown,
  bad: Bad,
  parse: (c: unknown, path: FieldPath) => T | undefined,
  max = Number.POSITIVE_INFINITY,
): T[] {
  const cases: T[] = [];
  if (!Array.isArray(list) || list.length === 0) bad(["cases"], "must be a non-empty list");
  else if (list.length > max) bad(["cases"], `holds ${list.length} cases; at most ${max}`);
  else {
    const names = new Map<string, number>();
    list.forEach((c: unknown, i: number) => {
      const tc = parse(c, ["cases", i]);
      if (tc === undefined) return;
      const first = names.get(tc.name);
      if (first !== undefined) bad(["cases", i, "name"], `repeats the name of the case on line ${first}`);
      else {
        names.set(tc.name, tc.line);
        cases.push(tc);
      }
    });
  }
  return cases;
}
