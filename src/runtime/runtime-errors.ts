/**
 * The errors the runtime reports. They are built here, in one place, so that each
 * failure keeps one stable shape: a code from the registry and a public detail that
 * names what failed, never an engine's own message (that stays internal).

 */
import { pcError, type ErrorCode, type PortcullisError } from "../core/index.js";

const SPEC_INVALID: ErrorCode = "PC_RUNTIME_SPEC_INVALID";
const ENGINE_UNAVAILABLE: ErrorCode = "PC_RUNTIME_ENGINE_UNAVAILABLE";
const ENGINE_FAILED: ErrorCode = "PC_RUNTIME_ENGINE_FAILED";
const CONTAINER_TIMEOUT: ErrorCode = "PC_RUNTIME_CONTAINER_TIMEOUT";

/** A hardened container spec was refused; `field` is the input path, `reason` why. */
export function specInvalid(field: string, reason: string): PortcullisError {
  return pcError(SPEC_INVALID, `container spec ${field}: ${reason}`);
}

/** The engine did not answer. */
export function engineUnavailable(internal: unknown): PortcullisError {
  return pcError(ENGINE_UNAVAILABLE, "container engine unreachable", internal);
}

/** The engine answered with an error while doing `operation`. */
export function engineFailed(operation: string, internal: unknown): PortcullisError {
  return pcError(ENGINE_FAILED, `container engine failed to ${operation}`, internal);
}

/** A container ran longer than it was allowed to and was killed. */
export function containerTimedOut(timeoutMs: number): PortcullisError {
  return pcError(CONTAINER_TIMEOUT, `container did not exit within ${timeoutMs} ms`);
}

/** An image reference is malformed, or the image would run as root; `reason` says which. */
export function imageInvalid(reason: string): PortcullisError {
  return pcError("PC_RUNTIME_IMAGE_INVALID", reason);
}
