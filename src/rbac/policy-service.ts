import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { AuditSink, Clock } from "../core/index.js";
import { isPortcullisError, pcError, PortcullisError } from "../core/index.js";
import type { PolicyVersionRecord, Store } from "../store/index.js";
import { checkNoEscalation } from "./escalation.js";
import { FastEnforcer } from "./fast-enforcer.js";
import { formatPolicyCsv, parsePolicyCsv, policyDiff } from "./policy-csv.js";
import type { Decision, Policy, PolicyEnforcer, RoleBinding } from "./types.js";
import { CLUSTER } from "./types.js";
import { assertValidPolicy } from "./validate.js";
import { assertNamespaceName, type NamespaceActor } from "./namespaces.js";

/** The shipped model and default policy, as security teams find them in `policies/rbac/`. */
export const SHIPPED_MODEL_URL = new URL("../../policies/rbac/model.conf", import.meta.url);
export const SHIPPED_POLICY_URL = new URL("../../policies/rbac/policy.csv", import.meta.url);

export function shippedPolicyCsv(): string {
  return readFileSync(SHIPPED_POLICY_URL, "utf8");
}

export interface PolicySnapshot {
  readonly version: number;
  readonly csv: string;
  readonly policy: Policy;
  readonly enforcer: PolicyEnforcer;
}

export interface PolicyChange {
  readonly version: number;
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

export interface PolicyHistoryEntry {
  readonly version: number;
  readonly author: string;
  readonly time: string;
  readonly message: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly rollbackOf: number | null;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * The policy in force and its history. Every version is immutable; the highest is in
 * force. A change is validated as a whole, checked for escalation against the caller's
 * current powers, written with its audit event in one transaction, and then swapped in
 * as one object, so each request sees the old policy or the new one. A store with no
 * policy, a version whose checksum does not match, or one that no longer validates
 * makes every decision fail with PC_RBAC_POLICY_UNAVAILABLE: never an allow.
 */
export class PolicyService {
  private snapshot: PolicySnapshot | undefined;
  private snapshotDataVersion = -1;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly makeEnforcer: (p: Policy) => PolicyEnforcer = (p) => new FastEnforcer(p),
  ) {}

  /** Writes version 1 (at init). Refused if any version exists. */
  seed(csv: string, author: string): PolicyChange {
    const policy = parsePolicyCsv(csv);
    assertValidPolicy(policy);
    return this.store.transaction(() => {
      if (this.store.policyVersions.latest()) throw pcError("PC_RBAC_POLICY_INVALID", "a policy is already in force");
      return this.write(policy, { version: 0, policy: { rules: [], bindings: [] } }, "initial policy", { identity: author }, null);
    });
  }

  /** The policy in force. Throws PC_RBAC_POLICY_UNAVAILABLE when it cannot be trusted. */
  current(): PolicySnapshot {
    // The policy changes only through this service (which drops the snapshot) or through
    // another connection (which moves data_version): only then is the row read again.
    let dataVersion: number;
    let latest: PolicyVersionRecord | undefined;
    try {
      dataVersion = this.store.dataVersion();
      if (this.snapshot && this.snapshotDataVersion === dataVersion) return this.snapshot;
      latest = this.store.policyVersions.latest();
    } catch (e) {
      throw pcError("PC_RBAC_POLICY_UNAVAILABLE", "the policy store is unreadable", e);
    }
    if (!latest) throw pcError("PC_RBAC_POLICY_UNAVAILABLE", "no policy is in force");
    if (this.snapshot && this.snapshot.version === latest.version && this.snapshot.csv === latest.csv) {
      this.snapshotDataVersion = dataVersion;
      return this.snapshot;
    }
    if (sha256(latest.csv) !== latest.sha256) throw pcError("PC_RBAC_POLICY_UNAVAILABLE", `policy version ${latest.version} fails its checksum`);
    let policy: Policy;
    try {
      policy = parsePolicyCsv(latest.csv);
      assertValidPolicy(policy);
    } catch (e) {
      throw pcError("PC_RBAC_POLICY_UNAVAILABLE", `policy version ${latest.version} does not validate`, e);
    }
    this.snapshot = { version: latest.version, csv: latest.csv, policy, enforcer: this.makeEnforcer(policy) };
    this.snapshotDataVersion = dataVersion;
    return this.snapshot;
  }

  /** Decides a request; any failure is PC_RBAC_POLICY_UNAVAILABLE, never an allow. */
  decide(subject: string, namespace: string, resource: string, action: string): Decision & { version: number } {
    try {
      const s = this.current();
      const d = s.enforcer.decide(subject, namespace, resource, action);
      return { allowed: d.allowed === true, rule: d.rule, version: s.version };
    } catch (e) {
      if (isPortcullisError(e) && e.code === "PC_RBAC_POLICY_UNAVAILABLE") throw e;
      throw pcError("PC_RBAC_POLICY_UNAVAILABLE", "the enforcer failed", e);
    }
  }

  /** Applies a whole policy file. */
  apply(csv: string, message: string, actor: NamespaceActor): PolicyChange {
    // Validated from the text, so that shape errors and meaning errors are reported together.
    const policy = assertValidPolicy(csv);
    return this.change(policy, message, actor, null);
  }

  rollback(version: number, message: string | undefined, actor: NamespaceActor): PolicyChange {
    const rec = this.store.policyVersions.get(version);
    if (!rec) throw pcError("PC_RBAC_VERSION_NOT_FOUND", String(version));
    const policy = parsePolicyCsv(rec.csv);
    assertValidPolicy(policy);
    return this.change(policy, message ?? `rollback to version ${version}`, actor, version);
  }

  bind(member: string, role: string, namespace: string, actor: NamespaceActor): PolicyChange {
    const cur = this.current();
    const b: RoleBinding = { member, role, namespace: namespace === CLUSTER ? CLUSTER : assertNamespaceName(namespace) };
    if (cur.policy.bindings.some((x) => x.member === b.member && x.role === b.role && x.namespace === b.namespace)) {
      throw pcError("PC_RBAC_BINDING_EXISTS", `${member} ${role} ${namespace}`);
    }
    const policy: Policy = { rules: cur.policy.rules, bindings: [...cur.policy.bindings, b] };
    assertValidPolicy(parsePolicyCsv(formatPolicyCsv(policy)));
    return this.change(policy, `bind ${member} to ${role} in ${namespace}`, actor, null);
  }

  unbind(member: string, role: string, namespace: string, actor: NamespaceActor): PolicyChange {
    const cur = this.current();
    const keep = cur.policy.bindings.filter((x) => !(x.member === member && x.role === role && x.namespace === namespace));
    if (keep.length === cur.policy.bindings.length) throw pcError("PC_RBAC_BINDING_NOT_FOUND", `${member} ${role} ${namespace}`);
    const policy: Policy = { rules: cur.policy.rules, bindings: keep };
    assertValidPolicy(parsePolicyCsv(formatPolicyCsv(policy)));
    return this.change(policy, `unbind ${member} from ${role} in ${namespace}`, actor, null);
  }

  history(): PolicyHistoryEntry[] {
    return this.store.policyVersions.list().map((r) => {
      const d = JSON.parse(r.diff) as { added: string[]; removed: string[] };
      return {
        version: r.version,
        author: r.author,
        time: new Date(r.createdAt).toISOString(),
        message: r.message,
        added: d.added,
        removed: d.removed,
        rollbackOf: r.rollbackOf,
      };
    });
  }

  private change(policy: Policy, message: string, actor: NamespaceActor, rollbackOf: number | null): PolicyChange {
    const cur = this.current();
    const issues = checkNoEscalation(cur.enforcer, actor.identity, policy, cur.policy);
    if (issues.length > 0) {
      throw new PortcullisError("PC_RBAC_ESCALATION", { detail: issues.slice(0, 5).map((i) => i.reason).join("; ") });
    }
    const out = this.store.transaction(() => {
      const latest = this.store.policyVersions.latest();
      if (!latest || latest.version !== cur.version) throw pcError("PC_RBAC_POLICY_UNAVAILABLE", "the policy changed meanwhile; retry");
      return this.write(policy, cur, message, actor, rollbackOf);
    });
    this.snapshot = undefined;
    this.current();
    return out;
  }

  private write(policy: Policy, prev: Pick<PolicySnapshot, "version" | "policy">, message: string, actor: NamespaceActor, rollbackOf: number | null): PolicyChange {
    const csv = formatPolicyCsv(policy);
    const diff = policyDiff(prev.policy, policy);
    const version = prev.version + 1;
    this.store.policyVersions.insert({
      version,
      csv,
      sha256: sha256(csv),
      author: actor.identity,
      createdAt: this.clock.now().getTime(),
      message: message.slice(0, 500),
      diff: JSON.stringify(diff),
      rollbackOf,
    });
    this.audit.record({
      type: "rbac.policy_changed",
      outcome: "allowed",
      actor: actor.identity,
      actorSerial: actor.serial,
      requestId: actor.requestId,
      sourceAddress: actor.sourceAddress,
      target: `policy:v${version}`,
      reason: `+${diff.added.length} -${diff.removed.length}${rollbackOf !== null ? ` rollback-of:v${rollbackOf}` : ""}`,
    });
    return { version, added: diff.added, removed: diff.removed };
  }
}
