/** The admission policies shipped in `policies/admission/`, as security teams find them. */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseAdmissionPolicies } from "./policy.js";
import type { AdmissionPolicySet, PolicyFile } from "./types.js";

export const SHIPPED_ADMISSION_DIR_URL = new URL("../../policies/admission/", import.meta.url);

/** The `*.yaml` files directly in policies/admission/ (not its tests), by name. */
export function shippedAdmissionPolicyFiles(): PolicyFile[] {
  const dir = fileURLToPath(SHIPPED_ADMISSION_DIR_URL);
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".yaml"))
    .map((e) => e.name)
    .sort()
    .map((name) => ({ name, text: readFileSync(new URL(name, SHIPPED_ADMISSION_DIR_URL), "utf8") }));
}

export function shippedAdmissionPolicySet(version = 0): AdmissionPolicySet {
  return parseAdmissionPolicies(shippedAdmissionPolicyFiles(), { version });
}
