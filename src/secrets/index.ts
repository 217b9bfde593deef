/** The secrets domain: envelope encryption, the keyring, the secret store, the injection plan. */
export * from "./types.js";
export * from "./envelope.js";
export * from "./kek-sources.js";
export * from "./keyring.js";
export * from "./rotation.js";
export * from "./service.js";
