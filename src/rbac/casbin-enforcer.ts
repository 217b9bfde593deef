/**
 * Stock node-casbin over our model and policy: the reference that FastEnforcer is
 * tested against and the baseline of the RBAC benchmark. Nothing here changes how
 * Casbin decides; the policy is handed to it through a minimal in-memory adapter.
 */
import { newEnforcer, newModelFromString, type Adapter, type Enforcer, type Model } from "casbin";
import type { Decision, Policy, PolicyEnforcer } from "./types.js";

const DEFAULT_DENY: Decision = Object.freeze({ allowed: false, rule: "default-deny" });

/**
 * Loads every `p` and `g` line into the model in policy order, as Casbin's file and
 * string adapters do (they append line by line without de-duplicating). Going through
 * `addPolicy` instead would de-duplicate with a linear scan per rule, which is
 * quadratic on large policies.
 */
class PolicyArrayAdapter implements Adapter {
  constructor(private readonly policy: Policy) {}

  async loadPolicy(model: Model): Promise<void> {
    const p = model.model.get("p")?.get("p");
    const g = model.model.get("g")?.get("g");
    if (!p || !g) throw new Error("the RBAC model must define p and g");
    for (const r of this.policy.rules) p.policy.push([r.subject, r.namespace, r.resource, r.action, r.effect]);
    for (const b of this.policy.bindings) g.policy.push([b.member, b.role, b.namespace]);
  }

  async savePolicy(): Promise<boolean> {
    return false;
  }

  async addPolicy(): Promise<void> {
    throw new Error("read-only adapter");
  }

  async removePolicy(): Promise<void> {
    throw new Error("read-only adapter");
  }

  async removeFilteredPolicy(): Promise<void> {
    throw new Error("read-only adapter");
  }
}

/** A stock Casbin `Enforcer` for one policy version. */
export class StockCasbinEnforcer implements PolicyEnforcer {
  private constructor(private readonly enforcer: Enforcer) {}

  /** `model` is the model text (policies/rbac/model.conf). */
  static async create(model: string, policy: Policy): Promise<StockCasbinEnforcer> {
    const e = await newEnforcer(newModelFromString(model), new PolicyArrayAdapter(policy));
    return new StockCasbinEnforcer(e);
  }

  /** `enforceExSync`: the decision and the rule Casbin reports as its reason. */
  decide(subject: string, namespace: string, resource: string, action: string): Decision {
    const [allowed, explain] = this.enforcer.enforceExSync(subject, namespace, resource, action);
    if (explain.length === 0) return allowed ? { allowed, rule: "(no rule)" } : DEFAULT_DENY;
    return { allowed, rule: `p, ${explain.join(", ")}` };
  }

  /** `enforceSync`: the decision alone, as a caller of stock Casbin would ask for it. */
  allows(subject: string, namespace: string, resource: string, action: string): boolean {
    return this.enforcer.enforceSync(subject, namespace, resource, action);
  }
}
