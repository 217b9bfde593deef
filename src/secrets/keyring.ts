/**
 * The keyring: the key-encryption keys of the secret store, one of them active (new data
 * keys are wrapped under it). It is read from its source once; every change is persisted
 * through the source before this process uses it, so no data key is ever wrapped under
 * a KEK that a restart would not find.
 */
import type { Clock } from "../core/index.js";
import { pcError } from "../core/index.js";
import { newKek, type KeyringDocument } from "./kek-sources.js";
import type { Kek, KekSource } from "./types.js";

export class Keyring {
  private activeId: string;
  private readonly keys = new Map<string, Kek>();

  private constructor(
    private readonly source: KekSource,
    doc: KeyringDocument,
  ) {
    this.activeId = doc.active;
    for (const k of doc.keys) this.keys.set(k.id, k);
  }

  /** Loads the keyring from `source`; PC_SECRETS_KEYRING_MISSING / _INVALID as the source reports. */
  static open(source: KekSource): Keyring {
    return new Keyring(source, source.load());
  }

  get description(): string {
    return this.source.description;
  }

  get writable(): boolean {
    return this.source.writable;
  }

  active(): Kek {
    const k = this.keys.get(this.activeId);
    if (k === undefined) throw pcError("PC_SECRETS_KEYRING_INVALID", `${this.source.description}: the active KEK is missing`);
    return k;
  }

  get(id: string): Kek | undefined {
    return this.keys.get(id);
  }

  /** The KEK ids in keyring order: the order they were added in. */
  ids(): string[] {
    return [...this.keys.keys()];
  }

  /**
   * Adds a new random KEK and makes it active, persisted before it is used. `beforeSave`
   * sees the new KEK's id first (the audit entry of the change); if it throws, nothing
   * changes.
   */
  add(clock: Clock, beforeSave?: (kek: Kek) => void): Kek {
    if (!this.source.writable) throw pcError("PC_SECRETS_KEYRING_READONLY", `the keyring comes from the ${this.source.description}`);
    let kek = newKek(clock);
    while (this.keys.has(kek.id)) kek = newKek(clock);
    beforeSave?.(kek);
    this.source.save({ active: kek.id, keys: [...this.keys.values(), kek] });
    this.keys.set(kek.id, kek);
    this.activeId = kek.id;
    return kek;
  }

  /**
   * Removes a KEK that is not active (the caller checks that it wraps nothing).
   * `beforeSave` runs before the change is persisted; if it throws, nothing changes.
   */
  retire(id: string, beforeSave?: () => void): void {
    if (!this.keys.has(id)) throw pcError("PC_SECRETS_KEK_NOT_FOUND", id);
    if (id === this.activeId) throw pcError("PC_SECRETS_KEK_IN_USE", `${id} is the active KEK`);
    if (!this.source.writable) throw pcError("PC_SECRETS_KEYRING_READONLY", `the keyring comes from the ${this.source.description}`);
    beforeSave?.();
    this.source.save({ active: this.activeId, keys: [...this.keys.values()].filter((k) => k.id !== id) });
    const k = this.keys.get(id);
    this.keys.delete(id);
    if (k && k.key instanceof Uint8Array) k.key.fill(0);
  }
}
