/**
 * Check `secret-references`: every secret a deployment mounts lies where secret files may
 * go, belongs to the deployment's own namespace, exists (in the pinned version when one
 * is given), and may be used by the requester.
 *
 * Restricted fields and allowed values:
 * - `spec.secrets[i].path`: `/run/secrets/<seg>[/<seg>...]`, 1 to 4 segments of letters,
 *   digits, '.', '_' and '-', no "." or ".." segment, no two paths equal or one below the
 *   other (deploy's `secretMountProblems`, the rule the runtime applies again);
 * - `spec.secrets[i].namespace`: absent, or the deployment's own namespace;
 * - `spec.secrets[i].name` / `.version`: a secret of the namespace and one of its
 *   versions, as the configured SecretHook judges them ("secret not found",
 *   "secret version not found");
 * - `spec.secrets`: the requester holds `secrets:use` in the namespace ("secret use not
 *   allowed").
 *
 * No reference is "ok", "no secret references". With references, a missing hook denies
 * ("secret store unavailable"), and a hook that fails or takes longer than its timeout
 * (default 2 s) denies. The chain runs this check in enforce mode for every request that
 * references a secret, even where no policy names it (policy "(built-in)").
 */
import type { SecretMount } from "../../deploy/index.js";
import { secretMountProblems } from "../../deploy/index.js";
import { runHook } from "../hook.js";
import { noParams } from "../params.js";
import { deny, ok } from "../results.js";
import type { AdmissionAttributes, CheckDefinition, CheckResult, HookFinding, SecretHook } from "../types.js";

export const SECRET_REFERENCES_CHECK = "secret-references";
const NAME = SECRET_REFERENCES_CHECK;

export const secretReferencesCheck: CheckDefinition<Record<string, never>> = {
  name: NAME,
  validateParams: noParams,
  async run(attrs, _params, context) {
    const mounts = attrs.spec.secrets ?? [];
    if (mounts.length === 0) return [ok(NAME, "no secret references")];
    const violations: CheckResult[] = secretMountProblems(attrs.namespace.name, mounts).map((p) => deny(NAME, p.field, p.reason, p.detail));
    const hook = context.hooks.secrets;
    if (hook === undefined) {
      violations.push(deny(NAME, "spec.secrets", "secret store unavailable", "no secret store is configured to resolve spec.secrets; the request is denied"));
      return violations;
    }
    const hookResults = await runHook({
      check: NAME,
      what: "secret store",
      field: "spec.secrets",
      timeoutMs: hook.timeoutMs,
      okDetail: `every secret reference of ${mounts.length} resolves and may be used`,
      call: (signal) => hook.check(attrs, signal),
    });
    violations.push(...hookResults.filter((r) => !r.allowed));
    if (violations.length > 0) return violations;
    return hookResults;
  },
};

/** What the secret hook needs to know: the versions of a secret, and whether someone may use secrets. */
export interface SecretReferenceFacts {
  /** The versions a secret of the namespace holds, or undefined when there is no such secret. */
  versions(namespace: string, name: string): readonly number[] | undefined;
  /** Whether the identity holds `secrets:use` in the namespace (RBAC). */
  mayUse(identity: string, namespace: string): boolean;
}

/** The references of the deployment's own namespace, with their index in spec.secrets. */
function ownReferences(attrs: AdmissionAttributes): { mount: SecretMount; index: number }[] {
  const ns = attrs.namespace.name;
  return (attrs.spec.secrets ?? []).map((mount, index) => ({ mount, index })).filter(({ mount }) => mount.namespace === undefined || mount.namespace === ns);
}

/**
 * The SecretHook of a gateway: for each reference of the deployment's own namespace (the
 * others are denied by the check itself), the secret exists and so does its pinned
 * version; and the requester may use secrets in the namespace. Findings name secrets and
 * versions only, never a value.
 */
export function secretReferencesHook(facts: SecretReferenceFacts, timeoutMs?: number): SecretHook {
  return {
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    check: async (attrs) => {
      const ns = attrs.namespace.name;
      const out: HookFinding[] = [];
      const refs = ownReferences(attrs);
      if (refs.length > 0 && !facts.mayUse(attrs.requester, ns)) {
        out.push({
          reason: "secret use not allowed",
          detail: `${attrs.requester} does not hold secrets:use in namespace ${ns}, so may not mount its secrets`,
          field: "spec.secrets",
        });
      }
      for (const { mount, index } of refs) {
        const field = `spec.secrets[${index}]`;
        const versions = facts.versions(ns, mount.name);
        if (versions === undefined) {
          out.push({ reason: "secret not found", detail: `${field}.name: namespace ${ns} has no secret ${mount.name}`, field: `${field}.name` });
        } else if (mount.version !== undefined && !versions.includes(mount.version)) {
          out.push({
            reason: "secret version not found",
            detail: `${field}.version: secret ${mount.name} of namespace ${ns} has no version ${mount.version}`,
            field: `${field}.version`,
          });
        }
      }
      return out;
    },
  };
}
