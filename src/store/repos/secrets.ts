import type { Db } from "../db.js";

/** A secret as stored: its values live only in its versions, encrypted. */
export interface SecretRecord {
  readonly namespace: string;
  readonly name: string;
  readonly createdAt: number;
  readonly createdBy: string;
}

/** One version's metadata: everything but the sealed value and the wrapped key. */
export interface SecretVersionInfo {
  readonly namespace: string;
  readonly name: string;
  readonly version: number;
  readonly kekId: string;
  readonly size: number;
  readonly createdAt: number;
  readonly createdBy: string;
}

/** One version as stored: the value JWE and the data key wrapped under `kekId`. */
export interface SecretVersionRecord extends SecretVersionInfo {
  readonly valueJwe: string;
  readonly wrappedKey: string;
}

/** A version pinned by a revision, and where it is mounted. */
export interface RevisionSecretRecord {
  readonly namespace: string;
  readonly deployment: string;
  readonly revision: number;
  readonly secret: string;
  readonly version: number;
  readonly path: string;
}

interface VersionRow {
  namespace: string;
  name: string;
  version: number;
  value_jwe: string;
  wrapped_key: string;
  kek_id: string;
  size: number;
  created_at: number;
  created_by: string;
}

type InfoRow = Omit<VersionRow, "value_jwe" | "wrapped_key">;

const infoOf = (r: InfoRow): SecretVersionInfo => ({
  namespace: r.namespace,
  name: r.name,
  version: r.version,
  kekId: r.kek_id,
  size: r.size,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

const recordOf = (r: VersionRow): SecretVersionRecord => ({ ...infoOf(r), valueJwe: r.value_jwe, wrappedKey: r.wrapped_key });

interface SecretRow {
  namespace: string;
  name: string;
  created_at: number;
  created_by: string;
}

const secretOf = (r: SecretRow): SecretRecord => ({ namespace: r.namespace, name: r.name, createdAt: r.created_at, createdBy: r.created_by });

const INFO_COLS = "namespace, name, version, kek_id, size, created_at, created_by";

/**
 * Secrets and their versions. A version is inserted once and afterwards only rewrapped
 * (wrapped_key and kek_id; the table's trigger holds the rest); deleting a secret
 * deletes its versions (ON DELETE CASCADE).
 */
export class SecretRepo {
  private readonly insSecret;
  private readonly oneSecret;
  private readonly secretsOf;
  private readonly delSecret;
  private readonly countNs;
  private readonly insVersion;
  private readonly oneVersion;
  private readonly maxVersion;
  private readonly versionsOfSecret;
  private readonly versionsOfNs;
  private readonly staleAfter;
  private readonly rewrapStmt;
  private readonly perKek;
  private readonly staleCount;
  private readonly usedByStmt;
  private readonly insPin;
  private readonly pinsOf;

  constructor(private readonly db: Db) {
    this.insSecret = db.prepare(`INSERT INTO secrets (namespace, name, created_at, created_by) VALUES (@namespace, @name, @createdAt, @createdBy) ON CONFLICT DO NOTHING`);
    this.oneSecret = db.prepare<[string, string], SecretRow>(`SELECT * FROM secrets WHERE namespace = ? AND name = ?`);
    this.secretsOf = db.prepare<[string], SecretRow>(`SELECT * FROM secrets WHERE namespace = ? ORDER BY name`);
    this.delSecret = db.prepare<[string, string]>(`DELETE FROM secrets WHERE namespace = ? AND name = ?`);
    this.countNs = db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM secrets WHERE namespace = ?`);
    this.insVersion = db.prepare(
      `INSERT INTO secret_versions (namespace, name, version, value_jwe, wrapped_key, kek_id, size, created_at, created_by)
       VALUES (@namespace, @name, @version, @valueJwe, @wrappedKey, @kekId, @size, @createdAt, @createdBy)`,
    );
    this.oneVersion = db.prepare<[string, string, number], VersionRow>(`SELECT * FROM secret_versions WHERE namespace = ? AND name = ? AND version = ?`);
    this.maxVersion = db.prepare<[string, string], { v: number | null }>(`SELECT max(version) AS v FROM secret_versions WHERE namespace = ? AND name = ?`);
    this.versionsOfSecret = db.prepare<[string, string], InfoRow>(`SELECT ${INFO_COLS} FROM secret_versions WHERE namespace = ? AND name = ? ORDER BY version`);
    this.versionsOfNs = db.prepare<[string], InfoRow>(`SELECT ${INFO_COLS} FROM secret_versions WHERE namespace = ? ORDER BY name, version`);
    this.staleAfter = db.prepare<[string, string, string, number, number], VersionRow>(
      `SELECT * FROM secret_versions WHERE kek_id <> ? AND (namespace, name, version) > (?, ?, ?)
       ORDER BY namespace, name, version LIMIT ?`,
    );
    this.rewrapStmt = db.prepare<[string, string, string, string, number, string, string]>(
      `UPDATE secret_versions SET wrapped_key = ?, kek_id = ?
       WHERE namespace = ? AND name = ? AND version = ? AND kek_id = ? AND wrapped_key = ?`,
    );
    this.perKek = db.prepare<[], { kek_id: string; n: number }>(`SELECT kek_id, count(*) AS n FROM secret_versions GROUP BY kek_id ORDER BY kek_id`);
    this.staleCount = db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM secret_versions WHERE kek_id <> ?`);
    this.usedByStmt = db.prepare<[string, string], { deployment: string; revision: number; version: number; path: string }>(
      `SELECT rs.deployment, rs.revision, rs.version, rs.path
       FROM revision_secrets rs
       JOIN deployments d ON d.namespace = rs.namespace AND d.name = rs.deployment AND d.revision = rs.revision
       WHERE rs.namespace = ? AND rs.secret = ? AND d.state = 'active'
       ORDER BY rs.deployment, rs.path`,
    );
    this.insPin = db.prepare(
      `INSERT INTO revision_secrets (namespace, deployment, revision, secret, version, path) VALUES (@namespace, @deployment, @revision, @secret, @version, @path)`,
    );
    this.pinsOf = db.prepare<[string, string, number], RevisionSecretRecord>(
      `SELECT namespace, deployment, revision, secret, version, path FROM revision_secrets
       WHERE namespace = ? AND deployment = ? AND revision = ? ORDER BY path`,
    );
  }

  /** Runs `fn` in a transaction that takes the write lock at once (BEGIN IMMEDIATE). */
  immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Inserts a secret; false when one of that name exists in the namespace. */
  insertSecret(rec: SecretRecord): boolean {
    return this.insSecret.run(rec).changes === 1;
  }

  get(namespace: string, name: string): SecretRecord | undefined {
    const r = this.oneSecret.get(namespace, name);
    return r ? secretOf(r) : undefined;
  }

  list(namespace: string): SecretRecord[] {
    return this.secretsOf.all(namespace).map(secretOf);
  }

  /** Deletes a secret and every version of it; false when there was none. */
  delete(namespace: string, name: string): boolean {
    return this.delSecret.run(namespace, name).changes === 1;
  }

  countInNamespace(namespace: string): number {
    return this.countNs.get(namespace)?.n ?? 0;
  }

  insertVersion(rec: SecretVersionRecord): void {
    this.insVersion.run(rec);
  }

  getVersion(namespace: string, name: string, version: number): SecretVersionRecord | undefined {
    const r = this.oneVersion.get(namespace, name, version);
    return r ? recordOf(r) : undefined;
  }

  /** The highest version of a secret, 0 when it has none. */
  latestVersion(namespace: string, name: string): number {
    return this.maxVersion.get(namespace, name)?.v ?? 0;
  }

  versions(namespace: string, name: string): SecretVersionInfo[] {
    return this.versionsOfSecret.all(namespace, name).map(infoOf);
  }

  versionsInNamespace(namespace: string): SecretVersionInfo[] {
    return this.versionsOfNs.all(namespace).map(infoOf);
  }

  /**
   * Up to `limit` versions whose data key is wrapped by another KEK than `kekId`, after
   * the position `after` (namespace, name, version order), for a resumable pass.
   */
  wrappedByOthers(kekId: string, after: { namespace: string; name: string; version: number } | undefined, limit: number): SecretVersionRecord[] {
    const a = after ?? { namespace: "", name: "", version: 0 };
    return this.staleAfter.all(kekId, a.namespace, a.name, a.version, limit).map(recordOf);
  }

  /**
   * Replaces a version's wrapped key if it is still the one that was read (`from`);
   * false when another writer changed or removed the row meanwhile.
   */
  rewrap(v: { namespace: string; name: string; version: number }, from: { wrappedKey: string; kekId: string }, to: { wrappedKey: string; kekId: string }): boolean {
    return this.rewrapStmt.run(to.wrappedKey, to.kekId, v.namespace, v.name, v.version, from.kekId, from.wrappedKey).changes === 1;
  }

  /** How many data keys each KEK id wraps. */
  countByKek(): { kekId: string; count: number }[] {
    return this.perKek.all().map((r) => ({ kekId: r.kek_id, count: r.n }));
  }

  countWrappedByOthers(kekId: string): number {
    return this.staleCount.get(kekId)?.n ?? 0;
  }

  /** The revisions in force (deployment active, its current revision) that pin the secret. */
  usedBy(namespace: string, name: string): { deployment: string; revision: number; version: number; path: string }[] {
    return this.usedByStmt.all(namespace, name);
  }

  /** Records the versions a revision was admitted with. */
  insertRevisionSecrets(pins: readonly RevisionSecretRecord[]): void {
    for (const p of pins) this.insPin.run(p);
  }

  revisionSecrets(namespace: string, deployment: string, revision: number): RevisionSecretRecord[] {
    return this.pinsOf.all(namespace, deployment, revision);
  }
}
