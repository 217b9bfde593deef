import { describe, expect, it } from "vitest";
import { ERRORS, isErrorCode, isPortcullisError, pcError, PortcullisError, toPortcullisError } from "../../src/core/index.js";

describe("PortcullisError", () => {
  it("takes its status and message from the registry", () => {
    const e = pcError("PC_PKI_TOKEN_USED");
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe("PC_PKI_TOKEN_USED");
    expect(e.status).toBe(ERRORS.PC_PKI_TOKEN_USED.status);
    expect(e.message).toBe(ERRORS.PC_PKI_TOKEN_USED.message);
    expect(e.publicMessage).toBe(e.message);
    expect(e.detail).toBeUndefined();
  });

  it("appends the public detail and keeps the internal cause out of the message", () => {
    const cause = new Error("SQLITE_IOERR: disk I/O error at /secret/path");
    const e = pcError("PC_STORE_CORRUPT", "config.json is not JSON", cause);
    expect(e.publicMessage).toBe("data directory is corrupt: config.json is not JSON");
    expect(e.detail).toBe("config.json is not JSON");
    expect(e.internal).toBe(cause);
    expect(e.publicMessage).not.toContain("SQLITE");
  });

  it("wraps foreign errors as PC_INTERNAL (or a given code), keeping them internal", () => {
    const cause = new TypeError("x is undefined");
    const w = toPortcullisError(cause);
    expect(w.code).toBe("PC_INTERNAL");
    expect(w.status).toBe(500);
    expect(w.publicMessage).toBe("internal error");
    expect(w.internal).toBe(cause);
    expect(toPortcullisError("a string", "PC_STORE_UNAVAILABLE").code).toBe("PC_STORE_UNAVAILABLE");
    const own = pcError("PC_API_FORBIDDEN");
    expect(toPortcullisError(own)).toBe(own);
  });

  it("recognises codes and errors", () => {
    expect(isErrorCode("PC_INTERNAL")).toBe(true);
    expect(isErrorCode("PC_NOPE")).toBe(false);
    expect(isErrorCode("toString")).toBe(false);
    expect(isErrorCode("__proto__")).toBe(false);
    expect(isErrorCode(1)).toBe(false);
    expect(isPortcullisError(new PortcullisError("PC_INTERNAL"))).toBe(true);
    expect(isPortcullisError(new Error("x"))).toBe(false);
  });
});
