/**
 * Check `image-identity`: the image the nodes hold is the image the request admits.
 *
 * Restricted input and allowed values (attrs.image.idsByNode, for spec.image):
 * - at least one node holds the image; none: "image not found" (missing input).
 * - a reference with a digest (`repo@sha256:X` or `sha256:X`): every node's image id
 *   equals X.
 * - a tag: every node holds the same image id.
 */
import { noParams } from "../params.js";
import { deny, ok } from "../results.js";
import { parsedImage } from "../image.js";
import type { CheckDefinition, CheckResult } from "../types.js";

const NAME = "image-identity";
const FIELD = "spec.image";

export const imageIdentityCheck: CheckDefinition<Record<string, never>> = {
  name: NAME,
  validateParams: noParams,
  run(attrs) {
    const image = attrs.spec.image;
    const nodes = Object.entries(attrs.image?.idsByNode ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (nodes.length === 0) return [deny(NAME, FIELD, "image not found", `no node holds ${image}`)];
    const digest = parsedImage(attrs)?.digest;
    if (digest !== undefined) {
      const out: CheckResult[] = nodes
        .filter(([, id]) => id !== digest)
        .map(([node, id]) => deny(NAME, FIELD, "image id mismatch", `node ${node} holds ${id} for ${image}; the admitted digest is ${digest}`));
      return out.length > 0 ? out : [ok(NAME, `every node holding ${image} has ${digest}`, FIELD)];
    }
    const ids = new Set(nodes.map(([, id]) => id));
    if (ids.size === 1) return [ok(NAME, `every node holding ${image} has ${nodes[0]?.[1] ?? ""}`, FIELD)];
    const listed = nodes.map(([node, id]) => `${node}=${id}`).join(", ");
    return [deny(NAME, FIELD, "image ids disagree", `the nodes hold different images for ${image}: ${listed}`)];
  },
};
