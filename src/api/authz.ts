import type { Identity } from "../core/index.js";
import type { Action, Resource } from "./route.js";

export interface AuthzDecision {
  readonly allowed: boolean;
  /** The rule that decided, for the audit log. */
  readonly rule: string;
}

/** Decides whether an identity may perform an action. Any failure must mean deny. */
export interface Authorizer {
  authorize(identity: Identity, resource: Resource, action: Action, namespace: string): AuthzDecision;
}
