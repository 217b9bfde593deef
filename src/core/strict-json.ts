import { pcError } from "./errors.js";
import type { JsonValue } from "./canonical-json.js";

/**
 * A JSON parser for untrusted input that refuses what JSON.parse lets through:
 * duplicate object keys (JSON.parse keeps the last one silently) and nesting deeper
 * than `maxDepth`. Everything else follows RFC 8259; values come from JSON.parse for
 * exact number and string semantics.
 */
export function parseStrictJson(text: string, maxDepth = 64): JsonValue {
  let i = 0;
  const n = text.length;

  const fail = (what: string): never => {
    throw pcError("PC_API_MALFORMED_JSON", `${what} at offset ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        try {
          return JSON.parse(text.slice(start, i)) as string;
        } catch {
          return fail("invalid string escape");
        }
      }
      if (c === 0x5c) i += 2;
      else if (c < 0x20) fail("control character in string");
      else i++;
    }
    return fail("unterminated string");
  };
  const num = (): number => {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = i;
    const r = m.exec(text);
    if (!r) return fail("invalid number");
    i += r[0].length;
    return Number(r[0]);
  };
  const lit = (word: string, v: JsonValue): JsonValue => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return v;
    }
    return fail("unexpected token");
  };
  const value = (depth: number, path: string): JsonValue => {
    if (depth > maxDepth) fail("nesting too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const out: Record<string, JsonValue> = Object.create(null) as Record<string, JsonValue>;
      const seen = new Set<string>();
      ws();
      if (text[i] === "}") {
        i++;
        return { ...out };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const k = str();
        if (seen.has(k)) {
          throw pcError("PC_API_DUPLICATE_KEY", `${path}${path ? "." : ""}${k}`);
        }
        seen.add(k);
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        out[k] = value(depth + 1, `${path}${path ? "." : ""}${k}`);
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return { ...out };
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1, `${path}[${arr.length}]`));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (c === "t") return lit("true", true);
    if (c === "f") return lit("false", false);
    if (c === "n") return lit("null", null);
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return num();
    return fail(c === undefined ? "unexpected end of input" : "unexpected token");
  };

  const v = value(0, "");
  ws();
  if (i !== n) fail("trailing data");
  return v;
}
