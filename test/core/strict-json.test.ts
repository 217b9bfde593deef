import { describe, expect, it } from "vitest";
import { parseStrictJson } from "../../src/core/index.js";
import { refusal } from "../support/refusal.js";

/** Runs `fn` and returns the PortcullisError it throws. */

describe("parseStrictJson: duplicate keys", () => {
  it.each([
    ["top level", `{"a":1,"a":2}`, "a"],
    ["same value twice", `{"a":1,"a":1}`, "a"],
    ["nested object", `{"a":{"b":1,"b":2}}`, "a.b"],
    ["deeply nested", `{"a":{"b":{"c":{"d":1,"d":{}}}}}`, "a.b.c.d"],
    ["object inside an array", `{"spec":{"env":[{"name":"x"},{"name":"y","name":"z"}]}}`, "spec.env[1].name"],
    ["top-level array", `[{"k":1,"k":2}]`, "[0].k"],
    ["array of arrays", `{"m":[[],[{"x":0}],[{"y":0,"y":0}]]}`, "m[2][0].y"],
    ["the same key after unescaping", `{"a":1,"\\u0061":2}`, "a"],
    ["an escaped key twice", `{"q\\"":1,"q\\u0022":2}`, 'q"'],
    ["__proto__ twice", `{"__proto__":{},"__proto__":{}}`, "__proto__"],
    ["after whitespace", ` { "a" : 1 ,\n\t"a" : 2 } `, "a"],
  ])("%s: %s gives PC_API_DUPLICATE_KEY at %s", (_name, text, path) => {
    const e = refusal(() => parseStrictJson(text));
    expect(e.code).toBe("PC_API_DUPLICATE_KEY");
    expect(e.status).toBe(400);
    expect(e.detail).toBe(path);
    // JSON.parse itself lets every one of these through, keeping the last value.
    expect(() => JSON.parse(text)).not.toThrow();
  });

  it("refuses the empty key twice (the path is empty)", () => {
    const e = refusal(() => parseStrictJson(`{"":1,"":2}`));
    expect(e.code).toBe("PC_API_DUPLICATE_KEY");
    expect(e.detail).toBe("");
  });

  it("allows the same key in sibling objects and at different depths", () => {
    expect(parseStrictJson(`{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}`)).toEqual({ a: { a: { a: 1 } }, b: [{ a: 1 }, { a: 2 }] });
  });

  it("treats keys that differ only in case or normalisation as different", () => {
    expect(parseStrictJson(`{"a":1,"A":2,"\\u00e9":3,"e\\u0301":4}`)).toEqual({ a: 1, A: 2, "\u00e9": 3, "e\u0301": 4 });
  });
});

describe("parseStrictJson: malformed input", () => {
  it.each([
    ["empty", "", "unexpected end of input"],
    ["white space only", " \n\t", "unexpected end of input"],
    ["unclosed object", "{", "expected a key"],
    ["unclosed array", "[1", "expected ',' or ']'"],
    ["stray close", "}", "unexpected token"],
    ["trailing comma in array", "[1,]", "unexpected token"],
    ["trailing comma in object", `{"a":1,}`, "expected a key"],
    ["unquoted key", "{a:1}", "expected a key"],
    ["single-quoted string", "'a'", "unexpected token"],
    ["missing colon", `{"a" 1}`, "expected ':'"],
    ["missing comma", "[1 2]", "expected ',' or ']'"],
    ["missing comma between members", `{"a":1 "b":2}`, "expected ',' or '}'"],
    ["leading zero", "01", "trailing data"],
    ["leading plus", "+1", "unexpected token"],
    ["bare minus", "-", "invalid number"],
    ["fraction without digits", "1.", "trailing data"],
    ["fraction without integer", ".5", "unexpected token"],
    ["exponent without digits", "1e", "trailing data"],
    ["hex number", "0x10", "trailing data"],
    ["NaN", "NaN", "unexpected token"],
    ["Infinity", "Infinity", "unexpected token"],
    ["truncated literal", "tru", "unexpected token"],
    ["capitalised literal", "True", "unexpected token"],
    ["bad escape", `"\\x41"`, "invalid string escape"],
    ["short unicode escape", `"\\u12"`, "invalid string escape"],
    ["unterminated string", `"abc`, "unterminated string"],
    ["backslash at the end", `"abc\\`, "unterminated string"],
    ["raw newline in string", `"a\nb"`, "control character in string"],
    ["raw tab in string", `"a\tb"`, "control character in string"],
    ["NUL in string", `"a\u0000b"`, "control character in string"],
    ["two values", "1 2", "trailing data"],
    ["trailing garbage", "[1]x", "trailing data"],
    ["extra close", `{"a":1}}`, "trailing data"],
    ["comment", "/* c */ {}", "unexpected token"],
    ["byte order mark", "\uFEFF{}", "unexpected token"],
    ["non-breaking space as white space", "\u00A0{}", "unexpected token"],
    ["vertical tab as white space", "\u000B{}", "unexpected token"],
  ])("%s: %j gives PC_API_MALFORMED_JSON (%s)", (_name, text, reason) => {
    const e = refusal(() => parseStrictJson(text));
    expect(e.code).toBe("PC_API_MALFORMED_JSON");
    expect(e.status).toBe(400);
    expect(e.detail).toMatch(new RegExp(`^${reason.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} at offset \\d+$`));
    // Whatever this parser refuses, JSON.parse refuses too (duplicates aside).
    expect(() => JSON.parse(text)).toThrow();
  });

  it("reports the offset of the problem", () => {
    expect(refusal(() => parseStrictJson(`{"a":[1,2,}`)).detail).toBe("unexpected token at offset 10");
    expect(refusal(() => parseStrictJson("[true, fals]")).detail).toBe("unexpected token at offset 7");
  });
});

describe("parseStrictJson: nesting depth", () => {
  const arrays = (n: number, inner = "") => `${"[".repeat(n)}${inner}${"]".repeat(n)}`;
  const objects = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;

  it("accepts a value inside 64 containers, refuses one inside 65", () => {
    expect(parseStrictJson(arrays(64, "1"))).toEqual(JSON.parse(arrays(64, "1")));
    expect(parseStrictJson(objects(64))).toEqual(JSON.parse(objects(64)));
    for (const text of [arrays(65, "1"), objects(65)]) {
      const e = refusal(() => parseStrictJson(text));
      expect(e.code).toBe("PC_API_MALFORMED_JSON");
      expect(e.detail).toMatch(/^nesting too deep at offset \d+$/);
    }
  });

  it("honours a smaller limit", () => {
    expect(parseStrictJson("[1]", 1)).toEqual([1]);
    expect(refusal(() => parseStrictJson("[[1]]", 1)).code).toBe("PC_API_MALFORMED_JSON");
    expect(refusal(() => parseStrictJson(`{"a":{"b":1}}`, 1)).detail).toMatch(/^nesting too deep/);
  });

  it("refuses hostile nesting without exhausting the stack", () => {
    for (const text of [arrays(200_000), `${'{"a":'.repeat(200_000)}`, `${"[".repeat(1_000_000)}`]) {
      const e = refusal(() => parseStrictJson(text));
      expect(e.code).toBe("PC_API_MALFORMED_JSON");
      expect(e.detail).toMatch(/^nesting too deep/);
    }
  });
});

describe("parseStrictJson: valid input equals JSON.parse", () => {
  it.each([
    "0",
    "-0",
    "1",
    "-1",
    "1.5",
    "1e3",
    "1E+3",
    "-1.25e-7",
    "123456789012345678901234567890",
    "0.1",
    "5e-324",
    "1.7976931348623157e308",
    "true",
    "false",
    "null",
    `""`,
    `"plain"`,
    `"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t"`,
    `"\\u00e9\\u20ac\\ud83d\\ude00"`,
    `"raw é € 😀 \u2028"`,
    `"\\ud800"`,
    "[]",
    "{}",
    "[1,[2,[3,{}]]]",
    ` { "a" : [ 1 , 2 ] , "b" : { "c" : null } }\n`,
    `{"x":{"y":[true,false,null,"s",0.5]},"z":[]}`,
    `{"1":1,"b":2,"a":3}`,
    `{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}`,
  ])("%s", (text) => {
    const expected: unknown = JSON.parse(text);
    const got = parseStrictJson(text);
    // toEqual, not toStrictEqual: the latter compares `.constructor`, which is data here.
    expect(got).toEqual(expected);
    if (typeof expected === "number") expect(Object.is(got, expected)).toBe(true);
    // Key order is kept as written.
    if (expected && typeof expected === "object") expect(JSON.stringify(got)).toBe(JSON.stringify(expected));
  });
});

describe("parseStrictJson: prototype keys", () => {
  it("keeps __proto__ as an own property and pollutes nothing", () => {
    const v = parseStrictJson(`{"__proto__":{"polluted":true},"a":{"__proto__":{"polluted":true}}}`) as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(v, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(v.a)).toBe(Object.prototype);
    expect((v as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect((Object.prototype as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(v)).toEqual(["__proto__", "a"]);
  });

  it("gives plain objects (with Object.prototype) at every level", () => {
    const v = parseStrictJson(`{"a":[{"b":{}}]}`) as { a: [{ b: object }] };
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(v.a[0])).toBe(Object.prototype);
    expect(Object.getPrototypeOf(v.a[0].b)).toBe(Object.prototype);
  });
});
