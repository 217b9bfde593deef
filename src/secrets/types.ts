/**
 * The secrets vocabulary: what a manifest references, what a revision pins, what the
 * runtime writes into a container's secret directory, and what anyone may see of a
 * secret without the right to read its value (its metadata).
 *
 * A value never leaves this module except as a SecretFile handed to the runtime for
 * injection, or through SecretService.read (an explicit, authorised and audited read).
 */

/** The largest value a secret version may hold. */
export const MAX_SECRET_BYTES = 64 * 1024;
/** Secret names: lower-case letters, digits, '-' and '.', 1..63, starting and ending alphanumeric. */
export const SECRET_NAME_RE = /^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$/;
/** The JWE `typ` of a sealed value and of a wrapped data key. */
export const SECRET_VALUE_TYP = "portcullis-secret+jwe";
export const WRAPPED_KEY_TYP = "portcullis-data-key+jwe";

/**
 * A reference as a manifest writes it (spec.secrets[i]; deploy's SecretMount without its
 * namespace); `version` absent = the latest when the request is accepted.
 */
export interface SecretReference {
  readonly name: string;
  /** Absolute, below /run/secrets, e.g. /run/secrets/db-password. */
  readonly path: string;
  readonly version?: number;
}

/** A reference with its version fixed: what a revision keeps until it is redeployed. */
export interface PinnedSecret {
  readonly name: string;
  readonly path: string;
  readonly version: number;
}

/**
 * One decrypted value on its way into a container: `relativePath` is the path below
 * /run/secrets ("db-password", "db/password"). The runtime writes it and then zeroes
 * `value` (SecretFile values are never logged, audited or returned).
 */
export interface SecretFile {
  readonly relativePath: string;
  readonly value: Buffer;
}

export interface SecretVersionMeta {
  readonly version: number;
  /** Size of the value in bytes. */
  readonly size: number;
  readonly createdAt: string;
  readonly createdBy: string;
  /** The KEK that wraps this version's data key. */
  readonly kekId: string;
}

/** What `secret list|get` shows: never the value, never a hash of it. */
export interface SecretMeta {
  readonly namespace: string;
  readonly name: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly latest: number;
  readonly versions: readonly SecretVersionMeta[];
  /** Deployments whose revision in force pins a version of this secret. */
  readonly usedBy: readonly { readonly deployment: string; readonly revision: number; readonly version: number; readonly path: string }[];
}

/** The one key-encryption key material: 32 bytes, and its id. */
export interface Kek {
  readonly id: string;
  readonly key: Uint8Array;
  readonly createdAt: string;
}

/** Where the keyring lives: a 0600 file in the data dir, an environment variable, later a KMS. */
export interface KekSource {
  /** For messages: "file /data/keys/keyring.json", "environment variable PORTCULLIS_KEYRING". */
  readonly description: string;
  /** Reads the keyring; throws PC_SECRETS_KEYRING_MISSING / _INVALID (never a key in the message). */
  load(): { readonly active: string; readonly keys: readonly Kek[] };
  /** Whether `save` can persist a change (a file can, the environment cannot). */
  readonly writable: boolean;
  /** Persists the keyring atomically; throws PC_SECRETS_KEYRING_READONLY when not writable. */
  save(ring: { readonly active: string; readonly keys: readonly Kek[] }): void;
}

/** How many data keys each KEK wraps; the rotation is finished when only the active one has any. */
export interface KekStatus {
  readonly active: string;
  readonly keks: readonly { readonly id: string; readonly createdAt: string; readonly active: boolean; readonly dataKeys: number }[];
  /** True while data keys wrapped by a KEK other than the active one remain. */
  readonly rewrapping: boolean;
}

/** What the runtime needs of the secret store: pin references at acceptance, open pins at placement. */
export interface SecretResolver {
  /**
   * Fixes each reference's version (its own, or the latest now). Throws PC_SECRETS_NOT_FOUND
   * or PC_SECRETS_VERSION_NOT_FOUND naming the reference (never a value).
   */
  pin(namespace: string, refs: readonly SecretReference[]): PinnedSecret[];
  /**
   * Decrypts pinned versions for one container. Throws PC_SECRETS_NOT_FOUND /
   * _VERSION_NOT_FOUND when one is gone, PC_SECRETS_DECRYPT_FAILED when one does not open.
   */
  open(namespace: string, pins: readonly PinnedSecret[]): Promise<SecretFile[]>;
}
