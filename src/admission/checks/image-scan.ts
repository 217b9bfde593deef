/**
 * Check `image-scan`: the image passes the vulnerability scanner.
 *
 * Restricted input and allowed values: spec.image, as the configured ScanHook judges it;
 * each finding it returns is a violation (waivers may exempt findings by id). A scanner
 * that fails or takes longer than its timeout (default 2 s) denies. With no scanner
 * configured the result is "ok" with the detail "no scanner configured".
 */
import { runHook } from "../hook.js";
import { noParams } from "../params.js";
import { ok } from "../results.js";
import type { CheckDefinition } from "../types.js";

const NAME = "image-scan";

export const imageScanCheck: CheckDefinition<Record<string, never>> = {
  name: NAME,
  validateParams: noParams,
  run(attrs, _params, context) {
    const hook = context.hooks.scan;
    if (hook === undefined) return [ok(NAME, "no scanner configured", "spec.image")];
    return runHook({
      check: NAME,
      what: "scanner",
      field: "spec.image",
      timeoutMs: hook.timeoutMs,
      okDetail: `the scanner found nothing in ${attrs.spec.image}`,
      call: (signal) => hook.scan(attrs, signal),
    });
  },
};
