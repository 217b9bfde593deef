/**
 * Check `secret-references`: every secret a deployment references exists and may be
 * used in its namespace.
 *
 * Restricted input and allowed values: the manifest's secret references, as the
 * configured SecretHook judges them; each finding is a violation. A hook that fails or
 * takes longer than its timeout (default 2 s) denies. The manifest has no secret
 * references yet: with no hook configured the result is "ok", "no secret references".
 */
import { runHook } from "../hook.js";
import { noParams } from "../params.js";
import { ok } from "../results.js";
import type { CheckDefinition } from "../types.js";

const NAME = "secret-references";

export const secretReferencesCheck: CheckDefinition<Record<string, never>> = {
  name: NAME,
  validateParams: noParams,
  run(attrs, _params, context) {
    const hook = context.hooks.secrets;
    if (hook === undefined) return [ok(NAME, "no secret references")];
    return runHook({
      check: NAME,
      what: "secret store",
      field: "",
      timeoutMs: hook.timeoutMs,
      okDetail: "every secret reference resolves",
      call: (signal) => hook.check(attrs, signal),
    });
  },
};
