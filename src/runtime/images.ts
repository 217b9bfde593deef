/**
 * Images on one engine: a manifest's reference resolved to the image id a container is
 * created from, and the user it runs as.
 *
 * References (anything else is refused as malformed):
 * - `sha256:<hex>`: an image id;
 * - `repo@sha256:<hex>`: a repository digest the engine knows, or, for an image that was
 *   imported or loaded locally and so has no repository digest, the image id itself;
 * - `repo:tag`: a tag, resolved once, here; the container is then created from the id.
 *
 * The user fails closed: without a user in the manifest, the image's own user must be a
 * numeric, non-root `uid:gid`. An empty user, root, uid or gid 0, a name (which the
 * image's /etc/passwd could map to root) or a uid without a gid is refused.
 */
import type { DockerEngine } from "./engine.js";
import { imageInvalid } from "./runtime-errors.js";
import { checkUser } from "./spec-checks.js";

export interface ResolvedImage {
  /** `sha256:<hex>`, the id to create containers from. */
  readonly id: string;
  /** The image's configured user, as written in the image ("" when it sets none). */
  readonly user: string;
  readonly repoTags: string[];
  readonly repoDigests: string[];
}

const HEX_DIGEST = "sha256:[a-f0-9]{64}";
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN_PART = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = `${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]{1,5})?`;
const NAME = `(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*`;
const TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";

const ID_RE = new RegExp(`^${HEX_DIGEST}$`);
const DIGEST_REF_RE = new RegExp(`^(${NAME})@(${HEX_DIGEST})$`);
const TAG_REF_RE = new RegExp(`^(${NAME}):(${TAG})$`);
const MAX_NAME_LENGTH = 255;

export type ImageReference =
  | { readonly kind: "id"; readonly id: string }
  | { readonly kind: "digest"; readonly repository: string; readonly digest: string }
  | { readonly kind: "tag"; readonly repository: string; readonly tag: string };

/** Parses a reference of one of the three accepted forms; throws PC_RUNTIME_IMAGE_INVALID. */
export function parseImageReference(ref: unknown): ImageReference {
  if (typeof ref !== "string" || ref.length === 0 || ref.length > 512) {
    throw imageInvalid("image reference is not a digest, an image id or a tag");
  }
  if (ID_RE.test(ref)) return { kind: "id", id: ref };
  const d = DIGEST_REF_RE.exec(ref);
  if (d && d[1]!.length <= MAX_NAME_LENGTH) return { kind: "digest", repository: d[1]!, digest: d[2]! };
  const t = TAG_REF_RE.exec(ref);
  // "sha256:<HEX>" would read as repository "sha256": an id spelt wrongly, not a tag.
  if (t && t[1]!.length <= MAX_NAME_LENGTH && t[1] !== "sha256") return { kind: "tag", repository: t[1]!, tag: t[2]! };
  throw imageInvalid(`image reference ${JSON.stringify(ref.slice(0, 128))} is not a digest, an image id or a tag`);
}

function resolved(info: { id: string; user: string; repoTags: readonly string[]; repoDigests: readonly string[] }): ResolvedImage {
  return { id: info.id, user: info.user, repoTags: [...info.repoTags], repoDigests: [...info.repoDigests] };
}

/**
 * The image a reference names on this engine, or undefined when the engine does not
 * have it. Throws PC_RUNTIME_IMAGE_INVALID on a malformed reference.
 */
export async function resolveImage(engine: DockerEngine, ref: string): Promise<ResolvedImage | undefined> {
  const parsed = parseImageReference(ref);
  switch (parsed.kind) {
    case "id": {
      const info = await engine.inspectImage(parsed.id);
      return info !== undefined && info.id === parsed.id ? resolved(info) : undefined;
    }
    case "digest": {
      const byDigest = await engine.inspectImage(ref);
      if (byDigest !== undefined && byDigest.repoDigests.some((d) => d.endsWith(`@${parsed.digest}`))) {
        return resolved(byDigest);
      }
      // An image imported or loaded locally has no repository digest: the digest must
      // then be its id (the digest of its configuration), and the image must carry a tag
      // of the repository named, so that a reference cannot borrow an allowed
      // repository's name for any image the engine holds.
      const byId = await engine.inspectImage(parsed.digest);
      if (byId === undefined || byId.id !== parsed.digest) return undefined;
      return byId.repoTags.some((t) => t.slice(0, t.lastIndexOf(":")) === parsed.repository) ? resolved(byId) : undefined;
    }
    case "tag": {
      const info = await engine.inspectImage(ref);
      return info === undefined ? undefined : resolved(info);
    }
  }
}

const NUMERIC_USER_RE = /^([0-9]{1,10}):([0-9]{1,10})$/;
const SET_USER = "set spec.user to a non-root uid:gid";

/**
 * The user a container runs as: the manifest's when it sets one (checked again: numeric,
 * non-root), otherwise the image's, which must be a numeric, non-root `uid:gid`.
 */
export function effectiveUser(specUser: string | undefined, imageUser: string): string {
  if (specUser !== undefined) return checkUser(specUser, "user");
  const user = typeof imageUser === "string" ? imageUser.trim() : "";
  if (user === "" || /^root(:|$)/.test(user) || /^0+(:|$)/.test(user)) {
    throw imageInvalid(`image runs as root; ${SET_USER}`);
  }
  const m = NUMERIC_USER_RE.exec(user);
  if (!m) {
    const shown = JSON.stringify(user.slice(0, 64));
    throw imageInvalid(`image user ${shown} is not a numeric uid:gid (a name or a bare uid may map to root); ${SET_USER}`);
  }
  if (Number(m[2]) === 0) throw imageInvalid(`image runs in the root group; ${SET_USER}`);
  if (Number(m[1]) > 2_147_483_647 || Number(m[2]) > 2_147_483_647) {
    throw imageInvalid(`image user is out of range; ${SET_USER}`);
  }
  return `${Number(m[1])}:${Number(m[2])}`;
}
