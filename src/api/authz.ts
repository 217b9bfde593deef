import type { Identity } from "../core/index.js";
import { formatIdentity } from "../core/index.js";
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

/**
 * The interim authorizer: the identities configured as administrators may do
 * everything; nobody else may do anything that needs a grant. Denies by default.
 */
export class AdminListAuthorizer implements Authorizer {
  private readonly admins: ReadonlySet<string>;
  constructor(admins: readonly string[]) {
    this.admins = new Set(admins);
  }
  authorize(identity: Identity): AuthzDecision {
    const id = formatIdentity(identity);
    return this.admins.has(id) ? { allowed: true, rule: `admins:${id}` } : { allowed: false, rule: "default-deny" };
  }
}
