/** The checks policies may name, by name. */
import type { CheckDefinition } from "../types.js";
import { approvalsCheck } from "./approvals.js";
import { hardeningCheck } from "./hardening.js";
import { imageIdentityCheck } from "./image-identity.js";
import { imageReferenceCheck } from "./image-reference.js";
import { imageScanCheck } from "./image-scan.js";
import { resourcesCheck } from "./resources.js";
import { runtimeClassCheck } from "./runtime-class.js";
import { SECRET_REFERENCES_CHECK, secretReferencesCheck, secretReferencesHook, type SecretReferenceFacts } from "./secret-references.js";
import { signerCheck } from "./signer.js";

export { approvalsCheck, hardeningCheck, imageIdentityCheck, imageReferenceCheck, imageScanCheck, resourcesCheck, runtimeClassCheck, secretReferencesCheck, signerCheck };
export { SECRET_REFERENCES_CHECK, secretReferencesHook, type SecretReferenceFacts };
/** The name of the image-scan check. */
export const IMAGE_SCAN_CHECK = imageScanCheck.name;
export type { HardeningParams } from "./hardening.js";
export { validateImageScanParams, type ImageScanParams } from "./image-scan.js";
export type { ImageReferenceParams } from "./image-reference.js";
export type { ResourcesParams } from "./resources.js";
export type { RuntimeClassParams } from "./runtime-class.js";

const ALL = [
  hardeningCheck,
  resourcesCheck,
  runtimeClassCheck,
  imageReferenceCheck,
  imageIdentityCheck,
  signerCheck,
  approvalsCheck,
  imageScanCheck,
  secretReferencesCheck,
] as const;

/** Every check, by the name policies use. */
export const CHECKS: ReadonlyMap<string, CheckDefinition<unknown>> = new Map(
  ALL.map((c) => [c.name, c as unknown as CheckDefinition<unknown>]),
);
