/**
 * The secret store: versions of secret values, sealed per version under a fresh data key
 * (envelope.ts), the data keys wrapped under the keyring's active KEK.
 *
 * Every change (create, update, delete, KEK rotation and retirement) and every read of a
 * value is audited in the transaction of the change. Audit entries and logs name the
 * namespace, the secret and the version; never a value, a hash of one, or key material.
 */
import type { AuditEvent, AuditSink, Clock, Logger } from "../core/index.js";
import { pcError } from "../core/index.js";
import type { SecretVersionInfo, Store } from "../store/index.js";
import { openVersion, sealVersion } from "./envelope.js";
import type { Keyring } from "./keyring.js";
import { Rewrapper, type RewrapOptions, type RewrapResult } from "./rotation.js";
import {
  MAX_SECRET_BYTES,
  SECRET_NAME_RE,
  type KekStatus,
  type PinnedSecret,
  type SecretFile,
  type SecretMeta,
  type SecretReference,
  type SecretResolver,
  type SecretVersionMeta,
} from "./types.js";

/** Who acts on a secret, as the audit log records it. */
export interface SecretActor {
  readonly id: string;
  readonly serial?: string | undefined;
  readonly requestId?: string | undefined;
  readonly sourceAddress?: string | undefined;
}

const MOUNT_PREFIX = "/run/secrets/";
/** Attempts at a new version when concurrent updates take the number first. */
const UPDATE_ATTEMPTS = 50;

export interface SecretServiceOptions {
  readonly rewrap?: RewrapOptions;
}

export class SecretService implements SecretResolver {
  private readonly rewrapper: Rewrapper;

  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly logger: Logger,
    opts: SecretServiceOptions = {},
  ) {
    this.rewrapper = new Rewrapper(store, keyring, audit, logger, opts.rewrap);
  }

  /** Creates a secret with its first version. */
  async create(namespace: string, name: string, value: Uint8Array, actor: SecretActor): Promise<SecretMeta> {
    checkName(name);
    checkValue(value);
    this.requireNamespace(namespace);
    if (this.store.secrets.get(namespace, name) !== undefined) throw pcError("PC_SECRETS_EXISTS", `${namespace}/${name}`);
    const kek = this.keyring.active();
    const sealed = await sealVersion({ namespace, name, version: 1 }, value, kek);
    const at = this.clock.now().getTime();
    this.store.secrets.immediate(() => {
      this.requireNamespace(namespace);
      if (!this.store.secrets.insertSecret({ namespace, name, createdAt: at, createdBy: actor.id })) throw pcError("PC_SECRETS_EXISTS", `${namespace}/${name}`);
      this.store.secrets.insertVersion({ namespace, name, version: 1, ...sealed, size: value.length, createdAt: at, createdBy: actor.id });
      this.audit.record(this.event("secret.created", actor, namespace, name, "version:1"));
    });
    return this.get(namespace, name);
  }

  /**
   * Adds a version (the highest so far + 1). The number is taken in the transaction that
   * inserts it; when a concurrent update took it first, the value is sealed again for the
   * next number, so concurrent updates each get their own version and none is lost.
   */
  async update(namespace: string, name: string, value: Uint8Array, actor: SecretActor): Promise<SecretMeta> {
    checkName(name);
    checkValue(value);
    const kek = this.keyring.active();
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      if (this.store.secrets.get(namespace, name) === undefined) throw pcError("PC_SECRETS_NOT_FOUND", `${namespace}/${name}`);
      const latest = this.store.secrets.latestVersion(namespace, name);
      const version = latest + 1;
      const sealed = await sealVersion({ namespace, name, version }, value, kek);
      const at = this.clock.now().getTime();
      const inserted = this.store.secrets.immediate(() => {
        if (this.store.secrets.get(namespace, name) === undefined) throw pcError("PC_SECRETS_NOT_FOUND", `${namespace}/${name}`);
        if (this.store.secrets.latestVersion(namespace, name) !== latest) return false;
        this.store.secrets.insertVersion({ namespace, name, version, ...sealed, size: value.length, createdAt: at, createdBy: actor.id });
        this.audit.record(this.event("secret.updated", actor, namespace, name, `version:${version}`));
        return true;
      });
      if (inserted) return this.get(namespace, name);
    }
    throw pcError("PC_STORE_UNAVAILABLE", `${namespace}/${name}: too many concurrent updates`);
  }

  /** The secrets of a namespace, by name, with their versions and users; never a value. */
  list(namespace: string): SecretMeta[] {
    const versions = new Map<string, SecretVersionInfo[]>();
    for (const v of this.store.secrets.versionsInNamespace(namespace)) {
      const list = versions.get(v.name) ?? [];
      list.push(v);
      versions.set(v.name, list);
    }
    return this.store.secrets.list(namespace).map((s) => this.metaOf(s, versions.get(s.name) ?? []));
  }

  /** One secret's metadata; PC_SECRETS_NOT_FOUND when there is none. */
  get(namespace: string, name: string): SecretMeta {
    const s = this.store.secrets.get(namespace, name);
    if (s === undefined) throw pcError("PC_SECRETS_NOT_FOUND", `${namespace}/${name}`);
    return this.metaOf(s, this.store.secrets.versions(namespace, name));
  }

  /** Reads a value (the latest version unless one is given); audited before it is returned. */
  async read(namespace: string, name: string, version: number | undefined, actor: SecretActor): Promise<{ version: number; value: Buffer }> {
    const v = this.resolveVersion(namespace, name, version);
    const value = await this.openOne(namespace, name, v);
    try {
      this.audit.record(this.event("secret.read", actor, namespace, name, `version:${v}`));
    } catch (e) {
      value.fill(0);
      throw e;
    }
    return { version: v, value };
  }

  /** Deletes a secret and all its versions, audited. Whether it may be deleted while in use is the caller's decision. */
  delete(namespace: string, name: string, actor: SecretActor): void {
    this.store.secrets.immediate(() => {
      if (!this.store.secrets.delete(namespace, name)) throw pcError("PC_SECRETS_NOT_FOUND", `${namespace}/${name}`);
      this.audit.record(this.event("secret.deleted", actor, namespace, name, undefined));
    });
  }

  pin(namespace: string, refs: readonly SecretReference[]): PinnedSecret[] {
    return refs.map((r) => ({ name: r.name, path: r.path, version: this.resolveVersion(namespace, r.name, r.version) }));
  }

  async open(namespace: string, pins: readonly PinnedSecret[]): Promise<SecretFile[]> {
    const files: SecretFile[] = [];
    try {
      for (const p of pins) {
        if (!p.path.startsWith(MOUNT_PREFIX) || p.path.length === MOUNT_PREFIX.length) {
          throw pcError("PC_SECRETS_INJECTION_FAILED", `${namespace}/${p.name}: the path must lie below ${MOUNT_PREFIX}`);
        }
        this.resolveVersion(namespace, p.name, p.version);
        files.push({ relativePath: p.path.slice(MOUNT_PREFIX.length), value: await this.openOne(namespace, p.name, p.version) });
      }
    } catch (e) {
      for (const f of files) f.value.fill(0);
      throw e;
    }
    return files;
  }

  countInNamespace(namespace: string): number {
    return this.store.secrets.countInNamespace(namespace);
  }

  kekStatus(): KekStatus {
    const active = this.keyring.active().id;
    const counts = new Map(this.store.secrets.countByKek().map((c) => [c.kekId, c.count]));
    const keks = this.keyring.ids().map((id) => ({
      id,
      createdAt: this.keyring.get(id)?.createdAt ?? "",
      active: id === active,
      dataKeys: counts.get(id) ?? 0,
    }));
    const rewrapping = [...counts].some(([id, n]) => id !== active && n > 0);
    return { active, keks, rewrapping };
  }

  /**
   * Adds a KEK and makes it active (persisted first, audited), then starts rewrapping
   * the data keys under it. Refused while a previous rotation is still rewrapping.
   */
  rotateKek(actor: SecretActor): KekStatus {
    if (!this.keyring.writable) throw pcError("PC_SECRETS_KEYRING_READONLY", `the keyring comes from the ${this.keyring.description}`);
    if (this.kekStatus().rewrapping) throw pcError("PC_SECRETS_ROTATION_RUNNING");
    const previous = this.keyring.active().id;
    this.store.transaction(() => {
      this.keyring.add(this.clock, (kek) => this.audit.record(this.keyringEvent("keyring.kek_added", actor, kek.id, `previous:${previous}`)));
    });
    this.logger.info({ kek: this.keyring.active().id, previous }, "key-encryption key added");
    this.startRewrap();
    return this.kekStatus();
  }

  /** Removes a KEK that is neither active nor wrapping any data key; audited. */
  retireKek(id: string, actor: SecretActor): KekStatus {
    if (this.keyring.get(id) === undefined) throw pcError("PC_SECRETS_KEK_NOT_FOUND", id);
    if (!this.keyring.writable) throw pcError("PC_SECRETS_KEYRING_READONLY", `the keyring comes from the ${this.keyring.description}`);
    if (id === this.keyring.active().id) throw pcError("PC_SECRETS_KEK_IN_USE", `${id} is the active KEK`);
    this.store.secrets.immediate(() => {
      const wraps = this.store.secrets.countByKek().find((c) => c.kekId === id)?.count ?? 0;
      if (wraps > 0) throw pcError("PC_SECRETS_KEK_IN_USE", `${id} still wraps ${wraps} data keys`);
      this.keyring.retire(id, () => this.audit.record(this.keyringEvent("keyring.kek_retired", actor, id, undefined)));
    });
    this.logger.info({ kek: id }, "key-encryption key retired");
    return this.kekStatus();
  }

  /** Starts the background rewrap (at start-up, after a rotation); a no-op while one runs. */
  startRewrap(): void {
    void this.rewrapper.start();
  }

  /** Runs a rewrap pass to its end (tools and tests); joins one that runs. */
  rewrap(): Promise<RewrapResult> {
    return this.rewrapper.join();
  }

  /** Stops the background rewrap after its current batch. */
  stop(): Promise<void> {
    return this.rewrapper.stop();
  }

  private requireNamespace(namespace: string): void {
    if (this.store.namespaces.get(namespace) === undefined) throw pcError("PC_RBAC_NAMESPACE_NOT_FOUND", namespace);
  }

  /** The version asked for, or the latest; NOT_FOUND / VERSION_NOT_FOUND naming the reference. */
  private resolveVersion(namespace: string, name: string, version: number | undefined): number {
    if (this.store.secrets.get(namespace, name) === undefined) throw pcError("PC_SECRETS_NOT_FOUND", `${namespace}/${name}`);
    if (version === undefined) {
      const latest = this.store.secrets.latestVersion(namespace, name);
      if (latest === 0) throw pcError("PC_SECRETS_VERSION_NOT_FOUND", `${namespace}/${name} has no version`);
      return latest;
    }
    if (!Number.isSafeInteger(version) || version < 1 || this.store.secrets.getVersion(namespace, name, version) === undefined) {
      throw pcError("PC_SECRETS_VERSION_NOT_FOUND", `${namespace}/${name} version ${String(version).slice(0, 20)}`);
    }
    return version;
  }

  private async openOne(namespace: string, name: string, version: number): Promise<Buffer> {
    const row = this.store.secrets.getVersion(namespace, name, version);
    if (row === undefined) throw pcError("PC_SECRETS_VERSION_NOT_FOUND", `${namespace}/${name} version ${version}`);
    return openVersion({ namespace, name, version }, row, this.keyring);
  }

  private metaOf(s: { namespace: string; name: string; createdAt: number; createdBy: string }, versions: readonly SecretVersionInfo[]): SecretMeta {
    const vs: SecretVersionMeta[] = versions.map((v) => ({
      version: v.version,
      size: v.size,
      createdAt: new Date(v.createdAt).toISOString(),
      createdBy: v.createdBy,
      kekId: v.kekId,
    }));
    return {
      namespace: s.namespace,
      name: s.name,
      createdAt: new Date(s.createdAt).toISOString(),
      createdBy: s.createdBy,
      latest: vs.reduce((m, v) => Math.max(m, v.version), 0),
      versions: vs,
      usedBy: this.store.secrets.usedBy(s.namespace, s.name),
    };
  }

  private event(type: string, actor: SecretActor, namespace: string, name: string, reason: string | undefined): AuditEvent {
    return { ...this.actorEvent(type, actor, "secrets", name, reason), namespace };
  }

  private keyringEvent(type: string, actor: SecretActor, kekId: string, reason: string | undefined): AuditEvent {
    return this.actorEvent(type, actor, "keyring", kekId, reason);
  }

  /** An allowed action of `actor` on `resource` (never a value, a hash of one or key material). */
  private actorEvent(type: string, actor: SecretActor, resource: "secrets" | "keyring", target: string, reason: string | undefined): AuditEvent {
    return {
      type,
      outcome: "allowed",
      actor: actor.id,
      actorSerial: actor.serial,
      requestId: actor.requestId,
      sourceAddress: actor.sourceAddress,
      resource,
      target,
      ...(reason === undefined ? {} : { reason }),
    };
  }
}

function checkName(name: string): void {
  if (typeof name !== "string" || !SECRET_NAME_RE.test(name)) throw pcError("PC_SECRETS_NAME_INVALID", JSON.stringify(String(name).slice(0, 70)));
}

function checkValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) throw pcError("PC_SECRETS_VALUE_INVALID", "the value must be bytes");
  if (value.length === 0) throw pcError("PC_SECRETS_VALUE_INVALID", "the value is empty");
  if (value.length > MAX_SECRET_BYTES) throw pcError("PC_SECRETS_TOO_LARGE", `${value.length} bytes, at most ${MAX_SECRET_BYTES}`);
}
