import type { FastifyRequest } from "fastify";
import type { AuditSink, MetricsSink } from "../core/index.js";
import { isPortcullisError, pcError } from "../core/index.js";
import { assertNamespaceName, CLUSTER } from "../rbac/index.js";
import type { Authorizer } from "./authz.js";
import type { Authz, NamespaceSource } from "./route.js";
import type { Caller } from "./identity.js";

/**
 * The namespace a request is about, from its declared source. Path and query values are
 * already decoded by the router; anything that is not a DNS label (`..`, `%2e%2e`, upper
 * case, slashes) is refused before authorization, so it can reach no other decision.
 */
export function namespaceOf(req: FastifyRequest, source: NamespaceSource): string {
  if ("cluster" in source) return CLUSTER;
  const bag = ("param" in source ? req.params : req.query) as Record<string, unknown> | undefined;
  const v = bag?.["param" in source ? source.param : source.query];
  if (typeof v !== "string") throw pcError("PC_RBAC_NAMESPACE_INVALID", "missing namespace");
  return v === CLUSTER ? CLUSTER : assertNamespaceName(v);
}

/**
 * Authorizes one request before its body is read: decides, records the decision with
 * the rule that decided, then refuses or lets it through. An authorizer failure is a
 * 503 with its code; a failed audit write is a 503 too. Neither ever allows.
 */
export function authorizeRequest(
  req: FastifyRequest,
  caller: Caller,
  authz: Extract<Authz, { kind: "rbac" }>,
  authorizer: Authorizer,
  audit: AuditSink,
  metrics?: MetricsSink,
): void {
  const namespace = namespaceOf(req, authz.namespace);
  let allowed = false;
  let rule = "error";
  let failure: unknown;
  try {
    const d = authorizer.authorize(caller.identity, authz.resource, authz.action, namespace);
    allowed = d.allowed === true;
    rule = d.rule;
  } catch (e) {
    failure = e;
    req.log.error({ err: isPortcullisError(e) ? e.code : String(e) }, "authorizer failed; denying");
  }
  metrics?.authz(authz.resource, authz.action, allowed);
  audit.record({
    type: "authz.decision",
    outcome: failure ? "error" : allowed ? "allowed" : "denied",
    actor: caller.id,
    actorSerial: caller.serial,
    sourceAddress: req.ip,
    route: `${authz.resource}:${authz.action}`,
    target: namespace,
    requestId: req.id,
    reason: rule,
  });
  if (failure) {
    throw isPortcullisError(failure) && failure.status === 503 ? failure : pcError("PC_RBAC_POLICY_UNAVAILABLE", undefined, failure);
  }
  if (!allowed) throw pcError("PC_API_FORBIDDEN", `${authz.resource}:${authz.action} in ${namespace}`);
}
