/** What admission reads from an image reference. */
import { parseImageReference, type ImageReference } from "../deploy/index.js";
import type { AdmissionAttributes } from "./types.js";

export const DEFAULT_REGISTRY = "docker.io";

export interface ImageName {
  /** `host[:port]`, `docker.io` when the reference names none. */
  readonly registry: string;
  /** `registry/path`, with `library/` for a one-part Docker Hub name. */
  readonly repository: string;
}

/** The registry and the full repository name of a reference's repository. */
export function imageName(repository: string): ImageName {
  const slash = repository.indexOf("/");
  const first = slash < 0 ? "" : repository.slice(0, slash);
  const isHost = first !== "" && (first.includes(".") || first.includes(":") || first === "localhost");
  if (isHost) return { registry: first, repository };
  const path = slash < 0 ? `library/${repository}` : repository;
  return { registry: DEFAULT_REGISTRY, repository: `${DEFAULT_REGISTRY}/${path}` };
}

export function parsedImage(attrs: AdmissionAttributes): ImageReference | undefined {
  return parseImageReference(attrs.spec.image);
}

/**
 * The digest the request admits: the reference's digest, else (a tag) the one image id
 * every node holding the image agrees on; undefined when neither is known.
 */
export function admittedImageDigest(attrs: AdmissionAttributes): string | undefined {
  const ref = parsedImage(attrs);
  if (ref?.digest !== undefined) return ref.digest;
  const ids = new Set(Object.values(attrs.image?.idsByNode ?? {}));
  return ids.size === 1 ? [...ids][0] : undefined;
}
