import { describe, expect, it } from "vitest";
import { canonicalize, parseStrictJson } from "../../src/core/index.js";

/** A double from its IEEE 754 bit pattern, as RFC 8785 Appendix B lists them. */
function fromBits(hex: string): number {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setBigUint64(0, BigInt(`0x${hex}`));
  return dv.getFloat64(0);
}

describe("canonicalize: RFC 8785 §3.2.3 example", () => {
  it("produces the RFC's output for its input", () => {
    const input = `{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
      "literals": [null, true, false]
    }`;
    expect(canonicalize(parseStrictJson(input))).toBe(
      `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA'B\\"\\\\\\\\\\"/"}`,
    );
  });
});

describe("canonicalize: key order by UTF-16 code units (RFC 8785 §3.2.3)", () => {
  it("sorts the RFC's example keys", () => {
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis",
    };
    const out = canonicalize(input);
    // (Object.keys would list "1" first, as an array index; read the order from the text.)
    const keys = [...out.matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    // U+1F600 (surrogates D83D DE00) sorts before U+FB33: by code units, not code points.
    expect(keys).toEqual(["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"]);
    expect(out).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it.each([
    [{ b: 1, a: 2, c: 3 }, `{"a":2,"b":1,"c":3}`],
    [{ B: 1, a: 2, _: 3 }, `{"B":1,"_":3,"a":2}`],
    [{ "10": 1, "9": 2, "1": 3 }, `{"1":3,"10":1,"9":2}`],
    [{ ab: 1, a: 2, "": 3 }, `{"":3,"a":2,"ab":1}`],
    [{ z: { y: 1, x: [{ b: 1, a: 2 }] }, a: null }, `{"a":null,"z":{"x":[{"a":2,"b":1}],"y":1}}`],
  ])("%j → %s", (value, expected) => {
    expect(canonicalize(value)).toBe(expected);
  });

  it("does not depend on insertion order", () => {
    const a = canonicalize({ x: 1, y: { p: [1, 2], q: "s" } });
    const b = canonicalize({ y: { q: "s", p: [1, 2] }, x: 1 });
    expect(a).toBe(b);
  });
});

describe("canonicalize: numbers (RFC 8785 Appendix B)", () => {
  it.each([
    ["0000000000000000", "0"],
    ["8000000000000000", "0"],
    ["0000000000000001", "5e-324"],
    ["8000000000000001", "-5e-324"],
    ["7fefffffffffffff", "1.7976931348623157e+308"],
    ["ffefffffffffffff", "-1.7976931348623157e+308"],
    ["4340000000000000", "9007199254740992"],
    ["c340000000000000", "-9007199254740992"],
    ["4430000000000000", "295147905179352830000"],
    ["44b52d02c7e14af5", "9.999999999999997e+22"],
    ["44b52d02c7e14af6", "1e+23"],
    ["44b52d02c7e14af7", "1.0000000000000001e+23"],
    ["444b1ae4d6e2ef4e", "999999999999999700000"],
    ["444b1ae4d6e2ef4f", "999999999999999900000"],
    ["444b1ae4d6e2ef50", "1e+21"],
    ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
    ["3eb0c6f7a0b5ed8d", "0.000001"],
    ["41b3de4355555553", "333333333.3333332"],
    ["41b3de4355555554", "333333333.33333325"],
    ["41b3de4355555555", "333333333.3333333"],
    ["41b3de4355555556", "333333333.3333334"],
    ["41b3de4355555557", "333333333.33333343"],
    ["becbf647612f3696", "-0.0000033333333333333333"],
    ["43143ff3c1cb0959", "1424953923781206.2"],
  ])("%s → %s", (bits, expected) => {
    expect(canonicalize(fromBits(bits))).toBe(expected);
  });

  it.each([
    [-0, "0"],
    [1e21, "1e+21"],
    [1e20, "100000000000000000000"],
    [0.000001, "0.000001"],
    [0.0000001, "1e-7"],
    [4.5, "4.5"],
    [100, "100"],
    [-1.5e-10, "-1.5e-10"],
  ])("%s → %s", (n, expected) => {
    expect(canonicalize(n)).toBe(expected);
    expect(canonicalize([n])).toBe(`[${expected}]`);
  });

  it.each([NaN, Infinity, -Infinity])("refuses %s", (n) => {
    expect(() => canonicalize(n)).toThrow(TypeError);
    expect(() => canonicalize({ a: [n] })).toThrow(TypeError);
  });
});

describe("canonicalize: strings", () => {
  it.each([
    ["\u0000", '"\\u0000"'],
    ["\u0001\u001f", '"\\u0001\\u001f"'],
    ["\b\t\n\f\r", '"\\b\\t\\n\\f\\r"'],
    ["\u000b", '"\\u000b"'],
    ['"', '"\\""'],
    ["\\", '"\\\\"'],
    ["/", '"/"'],
    ["\u007f", '"\u007f"'],
    ["é€😀", '"é€😀"'],
    ["\u2028\u2029", '"\u2028\u2029"'],
    ["\u00e9", '"é"'],
    ["e\u0301", '"e\u0301"'],
  ])("%j → %s", (s, expected) => {
    expect(canonicalize(s)).toBe(expected);
  });

  it("escapes keys like values", () => {
    expect(canonicalize({ "a\nb": 1, 'q"': 2 })).toBe(`{"a\\nb":1,"q\\"":2}`);
  });
});

describe("canonicalize: structure", () => {
  it.each([
    [null, "null"],
    [true, "true"],
    [false, "false"],
    [[], "[]"],
    [{}, "{}"],
    [[1, "a", null, [true, {}]], `[1,"a",null,[true,{}]]`],
    [{ a: undefined, b: 1 }, `{"b":1}`],
  ])("%j → %s", (v, expected) => {
    expect(canonicalize(v)).toBe(expected);
  });

  it("has no insignificant white space", () => {
    const out = canonicalize(parseStrictJson(`{ "a" : [ 1 , 2 , { "b" : "c d" } ] }`));
    expect(out).toBe(`{"a":[1,2,{"b":"c d"}]}`);
  });

  it("is idempotent through a parse", () => {
    const v = { z: [1.5, "x", { y: null }], a: { "€": true, "\u0080": false } };
    const once = canonicalize(v);
    expect(canonicalize(parseStrictJson(once))).toBe(once);
  });

  it.each([
    ["bigint", 1n],
    ["function", () => 1],
    ["symbol", Symbol("s")],
    ["undefined", undefined],
  ])("refuses a %s", (_name, v) => {
    expect(() => canonicalize(v)).toThrow(TypeError);
    expect(() => canonicalize([v])).toThrow(TypeError);
  });
});
