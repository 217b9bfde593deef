/** The deploy domain: manifests, signed deploy requests, the replay guard. */
export * from "./types.js";
