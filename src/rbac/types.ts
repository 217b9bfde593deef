/**
 * The RBAC vocabulary. Requests are (subject, namespace, resource, action); a namespace
 * is a Casbin domain and `*` means cluster-wide. The effect is allow-unless-denied.
 */
export const RESOURCES = [
  "namespaces",
  "certificates",
  "enroll-tokens",
  "policies",
  "role-bindings",
  "audit",
  "nodes",
  "deployments",
  "secrets",
  "secret-metadata",
  "keyring",
  "waivers",
  "approvals",
  "alerts",
  "vulndb",
  "metrics",
  "quarantines",
] as const;
export type Resource = (typeof RESOURCES)[number];

export const ACTIONS = ["create", "read", "update", "delete", "deploy", "use", "approve", "export", "exec"] as const;
export type Action = (typeof ACTIONS)[number];

export type Effect = "allow" | "deny";

/** The cluster-wide namespace. */
export const CLUSTER = "*";

/** `p, SUBJECT, NAMESPACE, RESOURCE, ACTION, EFFECT`; SUBJECT is a role or an identity. */
export interface PolicyRule {
  readonly subject: string;
  readonly namespace: string;
  readonly resource: Resource | "*";
  readonly action: Action | "*";
  readonly effect: Effect;
  /** 1-based line in the source file, when parsed from one. */
  readonly line?: number;
}

/** `g, MEMBER, ROLE, NAMESPACE`; MEMBER is an identity or a role (role inheritance). */
export interface RoleBinding {
  readonly member: string;
  readonly role: string;
  readonly namespace: string;
  readonly line?: number;
}

export interface Policy {
  readonly rules: readonly PolicyRule[];
  readonly bindings: readonly RoleBinding[];
}

export interface Decision {
  readonly allowed: boolean;
  /** The rule that decided, as its CSV line (`p, developer, *, deployments, deploy, allow`), or `default-deny`. */
  readonly rule: string;
}

/** Decides requests against one policy. Implementations must give Casbin's answers. */
export interface PolicyEnforcer {
  decide(subject: string, namespace: string, resource: string, action: string): Decision;
}

export function ruleToCsv(r: PolicyRule): string {
  return `p, ${r.subject}, ${r.namespace}, ${r.resource}, ${r.action}, ${r.effect}`;
}

export function bindingToCsv(b: RoleBinding): string {
  return `g, ${b.member}, ${b.role}, ${b.namespace}`;
}
