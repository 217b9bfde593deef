/**
 * Alpine package versions, compared as apk-tools does (`apk version -t`, src/version.c):
 *
 *   digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}
 *
 * The version is read as a sequence of tokens, each allowed only after certain others:
 * the initial number, `.number` parts, one lower-case letter, `_suffix[number]` parts
 * (`alpha` < `beta` < `pre` < `rc` < no suffix < `cvs` < `svn` < `git` < `hg` < `p`),
 * one `~hexhash`, one `-rN` revision. Tokens of the same kind are compared pairwise:
 * numbers numerically, except that a `.number` part with a leading zero on either side
 * is compared as a string (as Gentoo does); letters and hashes by their characters.
 * When one version runs out or the kinds differ, a pre-release suffix (`_alpha` … `_rc`)
 * makes its side older; otherwise the side that continues with a later kind of token is
 * older (so `1.0` > `1.0_alpha`, `1.0` < `1.0_p1`, `1.0` < `1.0.1`, `1.0-r1` > `1.0`).
 *
 * `compareApkRaw` is the algorithm on any string, like apk itself; `parseApkVersion`
 * refuses what `apk_version_validate` refuses, and `compareApk` refuses invalid input.
 *
 * These are the rules of current apk-tools (the tokenizer rewritten in 2024). The older
 * apk-tools 2.x parser differs only on unusual versions: it compared a `.0N` part by its
 * count of leading zeros, then its number (`1.010` > `1.02` there, < here), accepted
 * digits after the letter (`1.0a1`), had no `~hash`, and held numbers in an int.
 */
import { ScanInputError, quote } from "../errors.js";
import { compareDigits } from "./digits.js";

const enum Token {
  InitialDigit = 0,
  Digit = 1,
  Letter = 2,
  Suffix = 3,
  SuffixNo = 4,
  CommitHash = 5,
  RevisionNo = 6,
  End = 7,
  Invalid = 8,
}

/** Suffix ranks; NONE (5) is the pivot between pre-release and post-release suffixes. */
const SUFFIX_NONE = 5;
const SUFFIXES: ReadonlyMap<string, number> = new Map([
  ["alpha", 1],
  ["beta", 2],
  ["pre", 3],
  ["rc", 4],
  ["cvs", 6],
  ["svn", 7],
  ["git", 8],
  ["hg", 9],
  ["p", 10],
]);

interface TokenState {
  token: Token;
  suffix: number;
  /** The token's text: digits, the letter, the suffix word or the hash. */
  value: string;
}

class Reader {
  pos = 0;
  constructor(readonly s: string) {}

  get done(): boolean {
    return this.pos >= this.s.length;
  }

  span(re: RegExp): string {
    const start = this.pos;
    while (this.pos < this.s.length && re.test(this.s[this.pos] as string)) this.pos++;
    return this.s.slice(start, this.pos);
  }
}

const DIGIT = /[0-9]/;
const LOWER = /[a-z]/;
const HEX = /[0-9a-f]/;

function parseDigits(t: TokenState, r: Reader): void {
  t.value = r.span(DIGIT);
  if (t.value.length === 0) t.token = Token.Invalid;
}

function first(r: Reader): TokenState {
  const t: TokenState = { token: Token.InitialDigit, suffix: 0, value: "" };
  parseDigits(t, r);
  return t;
}

function next(t: TokenState, r: Reader): void {
  if (r.done) {
    t.token = Token.End;
    return;
  }
  const c = r.s[r.pos] as string;
  if (LOWER.test(c)) {
    if (t.token > Token.Digit) return invalid(t);
    t.value = c;
    t.token = Token.Letter;
    r.pos++;
    return;
  }
  if (c === "." || DIGIT.test(c)) {
    if (c === ".") {
      if (t.token > Token.Digit) return invalid(t);
      r.pos++;
    }
    if (t.token === Token.InitialDigit || t.token === Token.Digit) t.token = Token.Digit;
    else if (t.token === Token.Suffix) t.token = Token.SuffixNo;
    else return invalid(t);
    parseDigits(t, r);
    return;
  }
  if (c === "_") {
    if (t.token > Token.SuffixNo) return invalid(t);
    r.pos++;
    t.value = r.span(LOWER);
    const rank = SUFFIXES.get(t.value);
    if (rank === undefined) return invalid(t);
    t.suffix = rank;
    t.token = Token.Suffix;
    return;
  }
  if (c === "~") {
    if (t.token >= Token.CommitHash) return invalid(t);
    r.pos++;
    t.value = r.span(HEX);
    if (t.value.length === 0) return invalid(t);
    t.token = Token.CommitHash;
    return;
  }
  if (c === "-") {
    if (t.token >= Token.RevisionNo) return invalid(t);
    if (r.s[r.pos + 1] !== "r") return invalid(t);
    r.pos += 2;
    t.token = Token.RevisionNo;
    parseDigits(t, r);
    return;
  }
  invalid(t);
}

function invalid(t: TokenState): void {
  t.token = Token.Invalid;
}

/** apk_blob_sort: byte order over the common length, then the shorter first. */
function stringSort(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function tokenCompare(a: TokenState, b: TokenState): -1 | 0 | 1 {
  switch (a.token) {
    case Token.Digit:
      if (a.value.startsWith("0") || b.value.startsWith("0")) return stringSort(a.value, b.value);
      return compareDigits(a.value, b.value);
    case Token.InitialDigit:
    case Token.SuffixNo:
    case Token.RevisionNo:
      return compareDigits(a.value, b.value);
    case Token.Suffix:
      return a.suffix === b.suffix ? 0 : a.suffix < b.suffix ? -1 : 1;
    default:
      return stringSort(a.value, b.value);
  }
}

/** apk-tools' comparison on any two strings (no validation), like `apk version -t`. */
export function compareApkRaw(a: string, b: string): -1 | 0 | 1 {
  const ra = new Reader(a);
  const rb = new Reader(b);
  const ta = first(ra);
  const tb = first(rb);
  while (ta.token === tb.token && ta.token < Token.End) {
    const r = tokenCompare(ta, tb);
    if (r !== 0) return r;
    next(ta, ra);
    next(tb, rb);
  }
  if (ta.token === tb.token) return 0;
  if (ta.token === Token.Suffix && ta.suffix < SUFFIX_NONE) return -1;
  if (tb.token === Token.Suffix && tb.suffix < SUFFIX_NONE) return 1;
  if (ta.token > tb.token) return -1;
  if (tb.token > ta.token) return 1;
  return 0;
}

/** True when apk-tools accepts the string as a version (`apk_version_validate`). */
export function isValidApkVersion(value: string): boolean {
  const r = new Reader(value);
  const t = first(r);
  while (t.token < Token.End) next(t, r);
  return t.token === Token.End;
}

export function parseApkVersion(value: string, path = "version"): string {
  if (!isValidApkVersion(value)) {
    throw new ScanInputError(
      "version_invalid",
      path,
      `invalid Alpine version ${quote(value)}: expected digit{.digit}...{letter}{_suffix{number}}...{~hash}{-rN}`,
    );
  }
  return value;
}

/** Compares two Alpine versions; throws ScanInputError if either is invalid. */
export function compareApk(a: string, b: string): -1 | 0 | 1 {
  return compareApkRaw(parseApkVersion(a, "a"), parseApkVersion(b, "b"));
}
