/**
 * Reading a manifest. The text is YAML 1.2 (core schema), of which JSON is a subset, at
 * most MAX_MANIFEST_BYTES, read strictly: one document, no duplicate keys, no anchors or
 * aliases, no tags, no merge keys, only string keys, only finite numbers. Anything else
 * is PC_DEPLOY_MANIFEST_UNREADABLE with the line and column.
 *
 * The data is then checked against the schema (manifest-schema.ts); every problem is
 * reported as `<field path>: <reason>` in PC_DEPLOY_MANIFEST_INVALID, joined with `; `,
 * the list itself kept as the error's internal detail.
 */
import { isAlias, isPair, isScalar, LineCounter, parseDocument, visit } from "yaml";
import { canonicalize, pcError } from "../core/index.js";
import { checkManifestValue } from "./manifest-schema.js";
import type { ManifestIssue } from "./manifest-walk.js";
import type { DeploymentSpec, Manifest } from "./types.js";

export type { ManifestIssue } from "./manifest-walk.js";

export const MAX_MANIFEST_BYTES = 64 * 1024;

export interface ParsedManifest {
  /** The manifest as written (its JSON data model): what is signed and digested. */
  readonly manifest: Manifest;
  /** The manifest normalized: units parsed, defaults applied. */
  readonly spec: DeploymentSpec;
}

/** Parses YAML or JSON text into a checked manifest. */
export function parseManifest(text: string): ParsedManifest {
  if (typeof text !== "string") throw pcError("PC_DEPLOY_MANIFEST_UNREADABLE", "the manifest is not text");
  if (Buffer.byteLength(text, "utf8") > MAX_MANIFEST_BYTES) {
    throw pcError("PC_DEPLOY_MANIFEST_UNREADABLE", `the manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, strict: true, schema: "core", prettyErrors: false });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return "";
    const { line, col } = lc.linePos(offset);
    return `line ${line}, column ${col}: `;
  };
  const first = [...doc.errors, ...doc.warnings][0];
  if (first) {
    const reason = first.code === "DUPLICATE_KEY" ? "duplicate key" : first.code === "MULTIPLE_DOCS" ? "more than one document" : firstLine(first.message);
    throw pcError("PC_DEPLOY_MANIFEST_UNREADABLE", `${at(first.pos[0])}${reason}`);
  }
  let refusal: string | undefined;
  const refuse = (node: unknown, reason: string) => {
    refusal ??= `${at((node as { range?: [number, number, number] } | null)?.range?.[0])}${reason}`;
  };
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) refuse(node, "aliases are not allowed");
      else if (node.anchor) refuse(node, "anchors are not allowed");
      else if (node.tag) refuse(node, "tags are not allowed");
      else if (isScalar(node) && typeof node.value === "number" && !Number.isFinite(node.value)) refuse(node, ".inf and .nan are not allowed");
      if (refusal) return visit.BREAK;
      return undefined;
    },
    Pair(_key, pair) {
      const k = pair.key;
      if (isPair(pair) && !(isScalar(k) && typeof k.value === "string")) refuse(k, "keys must be strings");
      else if (isScalar(k) && k.value === "<<") refuse(k, "merge keys are not allowed");
      if (refusal) return visit.BREAK;
      return undefined;
    },
  });
  if (refusal) throw pcError("PC_DEPLOY_MANIFEST_UNREADABLE", refusal);
  return validateManifest(doc.toJS({ maxAliasCount: 0 }) as unknown);
}

/** Checks a manifest that is already JSON data (for example from a signed request's payload). */
export function validateManifest(value: unknown): ParsedManifest {
  let size: number;
  try {
    size = Buffer.byteLength(canonicalize(value), "utf8");
  } catch {
    throw pcError("PC_DEPLOY_MANIFEST_INVALID", "manifest: must be JSON data");
  }
  if (size > MAX_MANIFEST_BYTES) throw pcError("PC_DEPLOY_MANIFEST_INVALID", `manifest: must be at most ${MAX_MANIFEST_BYTES} bytes`);
  const { issues, spec } = checkManifestValue(value);
  if (issues.length > 0 || spec === undefined) throw manifestInvalid(issues);
  return { manifest: value as Manifest, spec };
}

/** Every problem of a manifest value, empty when it is valid. */
export function manifestIssues(value: unknown): ManifestIssue[] {
  return checkManifestValue(value).issues;
}

function manifestInvalid(issues: readonly ManifestIssue[]) {
  const detail = issues.map((i) => `${i.field}: ${i.reason}`).join("; ");
  return pcError("PC_DEPLOY_MANIFEST_INVALID", detail || "manifest: not valid", issues);
}

function firstLine(s: string): string {
  return s.split("\n")[0] ?? s;
}
