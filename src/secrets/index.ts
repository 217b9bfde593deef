/** The secrets domain: envelope encryption, the keyring, the secret store, the injection plan. */
export * from "./types.js";
