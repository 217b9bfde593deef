/**
 * Check `image-reference`: which images a deployment may name, and how.
 *
 * Restricted field and allowed values (spec.image):
 * - always refused: a reference that does not parse, a bare repository (no tag and no
 *   digest), the tag `latest` (even with a digest).
 * - params.requireDigest (default true): `repo@sha256:<hex>` or an image id
 *   `sha256:<hex>`; a tag alone is refused.
 * - params.allowedRegistries: the registry (`host[:port]`, docker.io when none is
 *   written) must equal one of them; empty allows any.
 * - params.allowedRepositories: the full repository name (`registry/path`) must equal one
 *   of them or lie under one (whole path parts: `r.example/team` allows
 *   `r.example/team/web`, not `r.example/teamx`); empty allows any.
 * An image id names no registry or repository, so an allow-list refuses it.
 */
import { deny, violationsOrOk } from "../results.js";
import { ParamReader } from "../params.js";
import { imageName, parsedImage } from "../image.js";
import type { CheckDefinition, CheckResult } from "../types.js";

export interface ImageReferenceParams {
  readonly requireDigest: boolean;
  readonly allowedRegistries: readonly string[];
  readonly allowedRepositories: readonly string[];
}

const NAME = "image-reference";
const FIELD = "spec.image";
const REGISTRY_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?$/;
const REPOSITORY_RE = /^[a-zA-Z0-9.:-]+(?:\/[a-z0-9._-]+)*$/;

export const imageReferenceCheck: CheckDefinition<ImageReferenceParams> = {
  name: NAME,
  validateParams(raw) {
    const r = new ParamReader(raw, ["requireDigest", "allowedRegistries", "allowedRepositories"]);
    const requireDigest = r.bool("requireDigest", true);
    const allowedRegistries = r.strings("allowedRegistries", [], (s) => (REGISTRY_RE.test(s) ? undefined : "must be a registry host[:port], without wildcards"));
    const allowedRepositories = r.strings("allowedRepositories", [], (s) =>
      REPOSITORY_RE.test(s) && s.includes("/") && !s.endsWith("/") ? undefined : "must be registry/path, without wildcards or a trailing slash",
    );
    return r.result({ requireDigest, allowedRegistries, allowedRepositories });
  },
  run(attrs, params) {
    const image = attrs.spec.image;
    const ref = parsedImage(attrs);
    if (ref === undefined) return [deny(NAME, FIELD, "invalid image reference", `spec.image ${JSON.stringify(image)} is not an image reference`)];
    const out: CheckResult[] = [];
    if (ref.tag === "latest") out.push(deny(NAME, FIELD, "latest tag", `spec.image ${image} uses the tag latest; pin a digest`));
    if (!ref.isImageId && ref.tag === undefined && ref.digest === undefined) {
      out.push(deny(NAME, FIELD, "no tag or digest", `spec.image ${image} names a repository only; pin a digest`));
    } else if (params.requireDigest && ref.digest === undefined) {
      out.push(deny(NAME, FIELD, "digest required", `spec.image ${image} is a tag; use repo@sha256:<digest> or an image id`));
    }
    const restricted = params.allowedRegistries.length > 0 || params.allowedRepositories.length > 0;
    if (ref.repository === undefined) {
      if (restricted) out.push(deny(NAME, FIELD, "registry not allowed", `spec.image ${image} is an image id, which names no registry; this policy allows only listed ones`));
      return violationsOrOk(NAME, out, `spec.image ${image} is allowed`);
    }
    const name = imageName(ref.repository);
    if (params.allowedRegistries.length > 0 && !params.allowedRegistries.includes(name.registry)) {
      out.push(deny(NAME, FIELD, "registry not allowed", `spec.image is from ${name.registry}; allowed: ${params.allowedRegistries.join(", ")}`));
    }
    if (params.allowedRepositories.length > 0 && !params.allowedRepositories.some((p) => name.repository === p || name.repository.startsWith(`${p}/`))) {
      out.push(deny(NAME, FIELD, "repository not allowed", `spec.image is ${name.repository}; allowed: ${params.allowedRepositories.join(", ")}`));
    }
    return violationsOrOk(NAME, out, `spec.image ${image} is allowed`);
  },
};
