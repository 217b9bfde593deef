import { expect } from "vitest";
import { PortcullisError } from "../../src/core/index.js";

/** Runs `fn`, expecting a PortcullisError; returns it. Anything else fails the test. */
export function refusal(fn: () => unknown): PortcullisError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PortcullisError) return e;
    throw e;
  }
  throw new Error("expected a PortcullisError, nothing was thrown");
}

/** Awaits `p`, expecting it to reject with a PortcullisError; returns it. */
export async function rejection(p: Promise<unknown>): Promise<PortcullisError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PortcullisError) return e;
    throw e;
  }
  throw new Error("expected a PortcullisError, the promise resolved");
}

/** Expects a refusal with this code (and detail, when given). */
export function expectRefusal(fn: () => unknown, code: string, detail?: string | RegExp): PortcullisError {
  const e = refusal(fn);
  expect(e.code).toBe(code);
  if (typeof detail === "string") expect(e.detail).toBe(detail);
  else if (detail) expect(e.detail).toMatch(detail);
  return e;
}
