/**
 * Check `runtime-class`: which runtime a deployment may use.
 *
 * Restricted field and allowed values:
 * - spec.runtime: `sandboxed` (gVisor) when params.required is "sandboxed" or the
 *   namespace carries the label portcullis.io/runtime=sandboxed (whatever the params
 *   say); otherwise `sandboxed` or `standard` (params.required "any", the default).
 */
import { ParamReader } from "../params.js";
import { deny, ok } from "../results.js";
import { RUNTIME_LABEL, type CheckDefinition } from "../types.js";

export interface RuntimeClassParams {
  readonly required: "sandboxed" | "any";
}

const NAME = "runtime-class";

export const runtimeClassCheck: CheckDefinition<RuntimeClassParams> = {
  name: NAME,
  validateParams(raw) {
    const r = new ParamReader(raw, ["required"]);
    return r.result({ required: r.oneOf("required", ["sandboxed", "any"] as const, "any") });
  },
  run(attrs, params) {
    const { runtime } = attrs.spec;
    const ns = attrs.namespace;
    const byLabel = ns.labels[RUNTIME_LABEL] === "sandboxed";
    if (runtime === "sandboxed") return [ok(NAME, "spec.runtime is sandboxed", "spec.runtime")];
    if (byLabel) {
      return [deny(NAME, "spec.runtime", "sandboxed runtime required", `spec.runtime is ${runtime}; namespace ${ns.name} carries ${RUNTIME_LABEL}=sandboxed`)];
    }
    if (params.required === "sandboxed") {
      return [deny(NAME, "spec.runtime", "sandboxed runtime required", `spec.runtime is ${runtime}; the policy requires sandboxed in ${ns.name}`)];
    }
    return [ok(NAME, `spec.runtime is ${runtime}; any runtime is allowed in ${ns.name}`, "spec.runtime")];
  },
};
