/**
 * Reading a check's parameters: a map with known keys only, each of a fixed type and
 * range. Every problem is collected with its parameter path; nothing is coerced.
 */
import type { ParamIssue, ParamsValidation } from "./types.js";

export class ParamReader {
  readonly issues: ParamIssue[] = [];
  private readonly map: Readonly<Record<string, unknown>>;

  /** `raw` undefined (no params given) reads as an empty map. */
  constructor(raw: unknown, allowed: readonly string[]) {
    if (raw === undefined || raw === null) {
      this.map = {};
      return;
    }
    if (typeof raw !== "object" || Array.isArray(raw)) {
      this.issues.push({ field: "", reason: `must be a map of ${allowed.length > 0 ? allowed.join(", ") : "nothing (this check takes no parameters)"}` });
      this.map = {};
      return;
    }
    this.map = raw as Record<string, unknown>;
    for (const key of Object.keys(this.map)) {
      if (!allowed.includes(key)) {
        const known = allowed.length > 0 ? `allowed: ${allowed.join(", ")}` : "this check takes no parameters";
        this.issues.push({ field: key, reason: `unknown parameter (${known})` });
      }
    }
  }

  private bad(field: string, reason: string): undefined {
    this.issues.push({ field, reason });
    return undefined;
  }

  has(key: string): boolean {
    return this.map[key] !== undefined;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.map[key];
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") return this.bad(key, "must be true or false") ?? fallback;
    return v;
  }

  int(key: string, min: number, max: number): number | undefined {
    const v = this.map[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isSafeInteger(v)) return this.bad(key, "must be an integer");
    if (v < min || v > max) return this.bad(key, `must be between ${min} and ${max}`);
    return v;
  }

  /** A value parsed by `parse`, which returns the value or a reason. */
  parsed<T>(key: string, parse: (v: unknown) => T | string): T | undefined {
    const v = this.map[key];
    if (v === undefined) return undefined;
    const out = parse(v);
    if (typeof out === "string") return this.bad(key, out);
    return out;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback: T): T {
    const v = this.map[key];
    if (v === undefined) return fallback;
    if (typeof v !== "string" || !(values as readonly string[]).includes(v)) {
      return this.bad(key, `must be one of ${values.join(", ")}`) ?? fallback;
    }
    return v as T;
  }

  /** A list of distinct strings, each checked by `reason` (which returns why it is bad). */
  strings(key: string, fallback: readonly string[], reason: (s: string) => string | undefined): readonly string[] {
    const v = this.map[key];
    if (v === undefined) return fallback;
    if (!Array.isArray(v)) return this.bad(key, "must be a list of strings") ?? fallback;
    const out: string[] = [];
    v.forEach((item, i) => {
      const field = `${key}[${i}]`;
      if (typeof item !== "string") return this.bad(field, "must be a string");
      const why = reason(item);
      if (why !== undefined) return this.bad(field, why);
      if (out.includes(item)) return this.bad(field, `repeats ${JSON.stringify(item)}`);
      out.push(item);
      return undefined;
    });
    return out;
  }

  result<P>(params: P): ParamsValidation<P> {
    return this.issues.length > 0 ? { ok: false, issues: this.issues } : { ok: true, params };
  }
}

/** A validator for a check without parameters. */
export function noParams(raw: unknown): ParamsValidation<Record<string, never>> {
  return new ParamReader(raw, []).result({});
}
