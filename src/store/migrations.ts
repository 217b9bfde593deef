/**
 * Versioned schema migrations. Each runs once, in order, inside a transaction; the
 * database's user_version records the last one applied. Append only: never edit a
 * migration that has shipped.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "pki and access events",
    sql: `
      CREATE TABLE certificates (
        serial       TEXT PRIMARY KEY,
        identity     TEXT NOT NULL,
        kind         TEXT NOT NULL,
        profile      TEXT NOT NULL,
        fingerprint  TEXT NOT NULL UNIQUE,
        not_before   INTEGER NOT NULL,
        not_after    INTEGER NOT NULL,
        issued_at    INTEGER NOT NULL,
        pem          TEXT NOT NULL,
        revoked_at   INTEGER,
        revocation_reason TEXT
      );
      CREATE INDEX certificates_identity ON certificates(identity);
      CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;

      CREATE TABLE enroll_tokens (
        id           TEXT PRIMARY KEY,
        token_hash   TEXT NOT NULL UNIQUE,
        identity     TEXT NOT NULL,
        created_by   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        cert_ttl_ms  INTEGER,
        used_at      INTEGER,
        used_serial  TEXT,
        revoked_at   INTEGER
      );
      CREATE INDEX enroll_tokens_identity ON enroll_tokens(identity);

      CREATE TABLE crl_state (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        crl_number   INTEGER NOT NULL
      );
      INSERT INTO crl_state (id, crl_number) VALUES (1, 0);

      CREATE TABLE access_events (
        id           INTEGER PRIMARY KEY, -- no AUTOINCREMENT: rows are never deleted, so ids only grow
        at           INTEGER NOT NULL,
        type         TEXT NOT NULL,
        outcome      TEXT NOT NULL CHECK (outcome IN ('allowed','denied','error')),
        actor        TEXT NOT NULL,
        actor_serial TEXT,
        source       TEXT,
        method       TEXT,
        route        TEXT,
        status       INTEGER,
        request_id   TEXT,
        reason       TEXT,
        target       TEXT
      );
      CREATE TRIGGER access_events_no_update BEFORE UPDATE ON access_events
        BEGIN SELECT RAISE(ABORT, 'access_events is append-only'); END;
      CREATE TRIGGER access_events_no_delete BEFORE DELETE ON access_events
        BEGIN SELECT RAISE(ABORT, 'access_events is append-only'); END;
    `,
  },
  {
    version: 2,
    name: "namespaces and RBAC policy versions",
    sql: `
      CREATE TABLE namespaces (
        name         TEXT PRIMARY KEY,
        labels       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        created_by   TEXT NOT NULL
      );

      CREATE TABLE policy_versions (
        version      INTEGER PRIMARY KEY,
        csv          TEXT NOT NULL,
        sha256       TEXT NOT NULL,
        author       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        message      TEXT NOT NULL,
        diff         TEXT NOT NULL,
        rollback_of  INTEGER
      );
      CREATE TRIGGER policy_versions_no_update BEFORE UPDATE ON policy_versions
        BEGIN SELECT RAISE(ABORT, 'policy versions are immutable'); END;
      CREATE TRIGGER policy_versions_no_delete BEFORE DELETE ON policy_versions
        BEGIN SELECT RAISE(ABORT, 'policy versions are immutable'); END;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
