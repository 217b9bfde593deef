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
  {
    version: 3,
    name: "hash-chained audit log and checkpoints",
    // The audit log replaces the access events table. A view of the same name and shape
    // reads the log back for the tools and tests that list recent events.
    sql: `
      CREATE TABLE audit_log (
        seq          INTEGER PRIMARY KEY, -- assigned by the writer: 0 is the genesis entry
        time         TEXT NOT NULL,
        type         TEXT NOT NULL,
        outcome      TEXT NOT NULL CHECK (outcome IN ('allowed','denied','error')),
        actor        TEXT NOT NULL,
        action       TEXT,
        resource     TEXT,
        namespace    TEXT,
        body         TEXT NOT NULL, -- canonical JSON of the declared body fields
        body_digest  TEXT NOT NULL,
        prev_hash    TEXT NOT NULL,
        hash         TEXT NOT NULL
      );
      -- Only time is searched (an export's range starts at a time); filters are applied
      -- while streaming the range. Every other index would cost each append.
      CREATE INDEX audit_log_time ON audit_log(time);
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

      CREATE TABLE audit_checkpoints (
        seq          INTEGER PRIMARY KEY,
        time         TEXT NOT NULL,
        jws          TEXT NOT NULL
      );
      CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
      CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

      DROP TABLE access_events;
      CREATE VIEW access_events AS SELECT
        seq AS id,
        CAST(strftime('%s', time) AS INTEGER) * 1000 + CAST(substr(time, 21, 3) AS INTEGER) AS at,
        type,
        outcome,
        actor,
        json_extract(body, '$.actorSerial') AS actor_serial,
        json_extract(body, '$.source') AS source,
        CASE WHEN instr(action, ' ') > 0 THEN substr(action, 1, instr(action, ' ') - 1) END AS method,
        CASE WHEN instr(action, ' ') > 0 THEN substr(action, instr(action, ' ') + 1) ELSE action END AS route,
        json_extract(body, '$.status') AS status,
        json_extract(body, '$.requestId') AS request_id,
        json_extract(body, '$.reasons[0]') AS reason,
        json_extract(body, '$.target') AS target,
        resource,
        namespace
      FROM audit_log;
    `,
  },
  {
    version: 4,
    name: "nodes, signed deploy requests, deployments, revisions and replicas",
    sql: `
      CREATE TABLE nodes (
        name         TEXT PRIMARY KEY,
        endpoint     TEXT NOT NULL,
        labels       TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('active','draining')),
        publish_host TEXT NOT NULL DEFAULT '127.0.0.1',
        created_at   INTEGER NOT NULL,
        created_by   TEXT NOT NULL
      );

      -- Every accepted signed request: the replay guard (jti) and the evidence. Kept at
      -- least until expires_at; rows that created a revision are kept for good.
      CREATE TABLE deploy_requests (
        jti          TEXT PRIMARY KEY,
        requester    TEXT NOT NULL,
        operation    TEXT NOT NULL CHECK (operation IN ('create','update','scale','delete')),
        namespace    TEXT NOT NULL,
        name         TEXT NOT NULL,
        digest       TEXT NOT NULL,
        jws          TEXT NOT NULL,
        jws_sha256   TEXT NOT NULL,
        signer_cert  TEXT NOT NULL,
        received_at  INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        result       TEXT
      );
      CREATE INDEX deploy_requests_expiry ON deploy_requests(expires_at);

      CREATE TABLE deployments (
        namespace    TEXT NOT NULL,
        name         TEXT NOT NULL,
        revision     INTEGER NOT NULL,
        replicas     INTEGER NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('active','deleting')),
        -- What an update replaced, so that a failed rollout can restore it.
        prev_revision INTEGER,
        prev_replicas INTEGER,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        PRIMARY KEY (namespace, name)
      );

      CREATE TABLE deployment_revisions (
        namespace    TEXT NOT NULL,
        name         TEXT NOT NULL,
        revision     INTEGER NOT NULL,
        manifest     TEXT NOT NULL,
        digest       TEXT NOT NULL,
        image_id     TEXT NOT NULL,
        runtime      TEXT NOT NULL,
        jti          TEXT NOT NULL REFERENCES deploy_requests(jti),
        requester    TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('pending','complete','failed','superseded')),
        PRIMARY KEY (namespace, name, revision)
      );

      -- The replicas the gateway intends to run: written before a container is created,
      -- so that after a crash the reconciler knows what to look for and where.
      CREATE TABLE replicas (
        container_name TEXT PRIMARY KEY,
        namespace    TEXT NOT NULL,
        name         TEXT NOT NULL,
        revision     INTEGER NOT NULL,
        ordinal      INTEGER NOT NULL,
        node         TEXT NOT NULL,
        container_id TEXT,
        runtime      TEXT,
        restarts     INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        UNIQUE (namespace, name, revision, ordinal)
      );
      CREATE INDEX replicas_node ON replicas(node);
    `,
  },
  {
    version: 5,
    name: "admission policy versions and decision records",
    sql: `
      CREATE TABLE admission_policy_versions (
        version      INTEGER PRIMARY KEY,
        files        TEXT NOT NULL, -- JSON [{ "name": ..., "text": ... }], sorted by name
        sha256       TEXT NOT NULL,
        author       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        message      TEXT NOT NULL,
        rollback_of  INTEGER
      );
      CREATE TRIGGER admission_policy_versions_no_update BEFORE UPDATE ON admission_policy_versions
        BEGIN SELECT RAISE(ABORT, 'admission policy versions are immutable'); END;
      CREATE TRIGGER admission_policy_versions_no_delete BEFORE DELETE ON admission_policy_versions
        BEGIN SELECT RAISE(ABORT, 'admission policy versions are immutable'); END;

      -- The answer to every deploy request, as returned to the caller (canonical JSON).
      CREATE TABLE decision_records (
        id           TEXT PRIMARY KEY,
        request_id   TEXT,
        requester    TEXT NOT NULL,
        namespace    TEXT NOT NULL,
        name         TEXT NOT NULL,
        operation    TEXT NOT NULL,
        allowed      INTEGER NOT NULL CHECK (allowed IN (0, 1)),
        dry_run      INTEGER NOT NULL CHECK (dry_run IN (0, 1)),
        record       TEXT NOT NULL,
        created_at   INTEGER NOT NULL
      );
      CREATE INDEX decision_records_namespace ON decision_records(namespace, created_at);
      CREATE TRIGGER decision_records_no_update BEFORE UPDATE ON decision_records
        BEGIN SELECT RAISE(ABORT, 'decision records are immutable'); END;
      CREATE TRIGGER decision_records_no_delete BEFORE DELETE ON decision_records
        BEGIN SELECT RAISE(ABORT, 'decision records are immutable'); END;
    `,
  },
  {
    version: 6,
    name: "waivers, and deploy requests waiting for approvals",
    sql: `
      -- A waiver exempts one check (or named findings of it) for a scope, until it expires.
      -- Revoking sets revoked_at once; nothing else changes and nothing is deleted.
      CREATE TABLE waivers (
        id            TEXT PRIMARY KEY,
        namespace     TEXT NOT NULL,
        deployment    TEXT,
        image_digest  TEXT,
        check_name    TEXT NOT NULL,
        findings      TEXT,
        owner         TEXT NOT NULL,
        justification TEXT NOT NULL,
        ticket        TEXT NOT NULL,
        created_by    TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        revoked_at    INTEGER,
        revoked_by    TEXT
      );
      CREATE INDEX waivers_namespace ON waivers(namespace, expires_at);
      CREATE TRIGGER waivers_no_delete BEFORE DELETE ON waivers
        BEGIN SELECT RAISE(ABORT, 'waivers are kept'); END;
      CREATE TRIGGER waivers_revoke_only BEFORE UPDATE ON waivers
        WHEN OLD.revoked_at IS NOT NULL
          OR NEW.id IS NOT OLD.id OR NEW.namespace IS NOT OLD.namespace OR NEW.deployment IS NOT OLD.deployment
          OR NEW.image_digest IS NOT OLD.image_digest OR NEW.check_name IS NOT OLD.check_name
          OR NEW.findings IS NOT OLD.findings OR NEW.owner IS NOT OLD.owner
          OR NEW.justification IS NOT OLD.justification OR NEW.ticket IS NOT OLD.ticket
          OR NEW.created_by IS NOT OLD.created_by OR NEW.created_at IS NOT OLD.created_at
          OR NEW.expires_at IS NOT OLD.expires_at
        BEGIN SELECT RAISE(ABORT, 'a waiver can only be revoked, once'); END;

      -- A signed deploy request that admission let through but that waits for approvals.
      CREATE TABLE pending_requests (
        id            TEXT PRIMARY KEY,
        jti           TEXT NOT NULL UNIQUE,
        requester     TEXT NOT NULL,
        namespace     TEXT NOT NULL,
        name          TEXT NOT NULL,
        operation     TEXT NOT NULL,
        digest        TEXT NOT NULL,
        jws           TEXT NOT NULL,
        signer_cert   TEXT NOT NULL,
        required      INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('pending','approved','expired','failed')),
        decision_id   TEXT
      );
      CREATE INDEX pending_requests_namespace ON pending_requests(namespace, state);

      -- Approvals: JWS by approvers over the request's manifest digest; kept as evidence.
      CREATE TABLE approvals (
        request_id    TEXT NOT NULL REFERENCES pending_requests(id),
        approver      TEXT NOT NULL,
        jws           TEXT NOT NULL,
        signer_cert   TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        PRIMARY KEY (request_id, approver)
      );
      CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
        BEGIN SELECT RAISE(ABORT, 'approvals are immutable'); END;
      CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
        BEGIN SELECT RAISE(ABORT, 'approvals are immutable'); END;
    `,
  },
  {
    version: 7,
    name: "secrets: envelope-encrypted versions, and the versions each revision pinned",
    sql: `
      -- A secret of a namespace. Its values live only in secret_versions, encrypted.
      CREATE TABLE secrets (
        namespace     TEXT NOT NULL,
        name          TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        created_by    TEXT NOT NULL,
        PRIMARY KEY (namespace, name)
      );

      -- One version of a secret: the value sealed under a fresh data key (value_jwe,
      -- dir + A256GCM), and that data key wrapped by a key-encryption key (wrapped_key,
      -- A256KW + A256GCM, kid = kek_id). Both protected headers bind namespace, name and
      -- version; the wrapped key's also binds the KEK id. Only wrapped_key and kek_id
      -- ever change (KEK rotation); a version is never edited otherwise.
      CREATE TABLE secret_versions (
        namespace     TEXT NOT NULL,
        name          TEXT NOT NULL,
        version       INTEGER NOT NULL CHECK (version >= 1),
        value_jwe     TEXT NOT NULL,
        wrapped_key   TEXT NOT NULL,
        kek_id        TEXT NOT NULL,
        size          INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        created_by    TEXT NOT NULL,
        PRIMARY KEY (namespace, name, version),
        FOREIGN KEY (namespace, name) REFERENCES secrets(namespace, name) ON DELETE CASCADE
      );
      CREATE INDEX secret_versions_kek ON secret_versions(kek_id);
      CREATE TRIGGER secret_versions_rewrap_only BEFORE UPDATE ON secret_versions
        WHEN NEW.namespace IS NOT OLD.namespace OR NEW.name IS NOT OLD.name OR NEW.version IS NOT OLD.version
          OR NEW.value_jwe IS NOT OLD.value_jwe OR NEW.size IS NOT OLD.size
          OR NEW.created_at IS NOT OLD.created_at OR NEW.created_by IS NOT OLD.created_by
        BEGIN SELECT RAISE(ABORT, 'a secret version can only be rewrapped'); END;

      -- The secret versions a revision was admitted with (pinned until a redeploy), and
      -- where each is mounted in its containers.
      CREATE TABLE revision_secrets (
        namespace     TEXT NOT NULL,
        deployment    TEXT NOT NULL,
        revision      INTEGER NOT NULL,
        secret        TEXT NOT NULL,
        version       INTEGER NOT NULL,
        path          TEXT NOT NULL,
        PRIMARY KEY (namespace, deployment, revision, path)
      );
      CREATE INDEX revision_secrets_secret ON revision_secrets(namespace, secret);
    `,
  },
  {
    version: 8,
    name: "vulnerability database: imports, OSV records by package, scan result cache",
    sql: `
      -- One import of OSV records. The import in force (state 'active', at most one) is
      -- the database version. An import is written in state 'loading' and flipped to
      -- 'active' by one short transaction, which turns the previous one 'replaced'; an
      -- import that failed or whose process died is 'failed'. The rows of replaced and
      -- failed imports are deleted afterwards (purged_at); this row stays as history.
      -- AUTOINCREMENT: a version is never reused, so caches keyed by it cannot go stale.
      CREATE TABLE vulndb_imports (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        source          TEXT NOT NULL,              -- JSON array of the paths as given
        records         INTEGER NOT NULL DEFAULT 0,
        newest_modified TEXT,
        ecosystems      TEXT,                       -- JSON object: ecosystem -> records
        imported_at     INTEGER NOT NULL,
        imported_by     TEXT NOT NULL,
        sha256          TEXT,
        state           TEXT NOT NULL CHECK (state IN ('loading', 'active', 'replaced', 'failed')),
        pid             INTEGER NOT NULL,
        host            TEXT NOT NULL,
        activated_at    INTEGER,
        ended_at        INTEGER,
        purged_at       INTEGER
      );
      CREATE UNIQUE INDEX vulndb_imports_one_active ON vulndb_imports(state) WHERE state = 'active';

      -- The records of an import, as validated text.
      CREATE TABLE vuln_records (
        import_id       INTEGER NOT NULL,
        id              TEXT NOT NULL,
        modified        TEXT NOT NULL,
        withdrawn       TEXT,
        json            TEXT NOT NULL,
        PRIMARY KEY (import_id, id)
      );

      -- Which records name which package: ecosystem without its release suffix
      -- ('Debian:12' -> 'Debian', release '12'; '' for none), package as named (PyPI in its
      -- PEP 503 normal form). The key leads with the import, then (ecosystem, package):
      -- every lookup is for one version of the database.
      CREATE TABLE vuln_affected (
        import_id       INTEGER NOT NULL,
        ecosystem       TEXT NOT NULL,
        package         TEXT NOT NULL,
        release         TEXT NOT NULL,
        record_id       TEXT NOT NULL,
        PRIMARY KEY (import_id, ecosystem, package, release, record_id)
      ) WITHOUT ROWID;

      -- Normalized scan results of an image against one database version.
      CREATE TABLE scan_results (
        image_id        TEXT NOT NULL,
        db_version      INTEGER NOT NULL,
        result          TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        PRIMARY KEY (image_id, db_version)
      );
    `,
  },
  {
    version: 9,
    name: "alerts; vulnerability database versions rescanned",
    sql: `
      -- Alerts the gateway raises (first: new blocking findings of running images after a
      -- vulnerability database import). Kept for good.
      CREATE TABLE alerts (
        id              TEXT PRIMARY KEY,
        kind            TEXT NOT NULL,
        namespace       TEXT NOT NULL,
        deployments     TEXT NOT NULL,              -- JSON array of deployment names
        detail          TEXT NOT NULL,              -- JSON object, per kind
        created_at      INTEGER NOT NULL
      );
      CREATE INDEX alerts_created ON alerts(created_at);

      -- The vulnerability database versions whose rescan of running images is done (or,
      -- for the first one a gateway sees, taken as the baseline): the highest is where
      -- the next rescan starts from, across restarts.
      CREATE TABLE scan_rescans (
        version         INTEGER PRIMARY KEY,
        done_at         INTEGER NOT NULL
      );
    `,
  },
  {
    version: 10,
    name: "runtime monitoring: rules, event cursors and recorded events, alerts, response actions, quarantines, webhook deliveries",
    sql: `
      -- The monitoring rules security teams author (policies/monitoring/rules.yaml),
      -- versioned like the other policies; the highest version is in force.
      CREATE TABLE monitoring_rules_versions (
        version      INTEGER PRIMARY KEY,
        text         TEXT NOT NULL,            -- the rules file as applied (YAML)
        sha256       TEXT NOT NULL,            -- hex SHA-256 of text
        author       TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        message      TEXT NOT NULL,
        rollback_of  INTEGER
      );
      CREATE TRIGGER monitoring_rules_versions_no_update BEFORE UPDATE ON monitoring_rules_versions
        BEGIN SELECT RAISE(ABORT, 'monitoring rules versions are immutable'); END;
      CREATE TRIGGER monitoring_rules_versions_no_delete BEFORE DELETE ON monitoring_rules_versions
        BEGIN SELECT RAISE(ABORT, 'monitoring rules versions are immutable'); END;

      -- Engine events handled, per node: the id makes handling exactly-once (an event
      -- delivered again after a reconnect or a restart is recognised), the rest serves
      -- restart windows and offline replays. Pruned after config.monitoring.eventRetentionMs.
      CREATE TABLE monitor_events (
        id           TEXT PRIMARY KEY,         -- hex SHA-256 of node, timeNano, type, action, actor, attributes
        node         TEXT NOT NULL,
        time_nano    TEXT NOT NULL,            -- the engine's timeNano, decimal (wider than a double)
        time_ms      INTEGER NOT NULL,
        type         TEXT NOT NULL,
        action       TEXT NOT NULL,
        actor        TEXT NOT NULL,            -- the container (or image, network...) id
        attributes   TEXT NOT NULL,            -- JSON object of strings
        received_at  INTEGER NOT NULL
      );
      CREATE INDEX monitor_events_actor ON monitor_events(node, actor, action, time_ms);
      CREATE INDEX monitor_events_time ON monitor_events(time_ms);

      -- Where each node's event stream resumes: the newest engine time handled.
      CREATE TABLE monitor_cursors (
        node         TEXT PRIMARY KEY,
        time_nano    TEXT NOT NULL,
        updated_at   INTEGER NOT NULL
      );

      -- Alerts, from every rule (migration 9's rescan alerts are carried over under the
      -- rule scan-new-findings). Identical alerts (same dedupe key) within the rule's
      -- window are one alert whose count and last_seen grow.
      ALTER TABLE alerts RENAME TO alerts_v9;
      CREATE TABLE alerts (
        id           TEXT PRIMARY KEY,
        rule         TEXT NOT NULL,
        severity     TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
        namespace    TEXT,
        deployment   TEXT,
        node         TEXT,
        container    TEXT,
        dedupe_key   TEXT NOT NULL,
        summary      TEXT NOT NULL,
        evidence     TEXT NOT NULL,            -- JSON: the first event or stats sample, and the last
        count        INTEGER NOT NULL,
        first_seen   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('open', 'acked')),
        acked_by     TEXT,
        acked_at     INTEGER,
        ack_note     TEXT
      );
      INSERT INTO alerts (id, rule, severity, namespace, deployment, node, container, dedupe_key, summary, evidence, count, first_seen, last_seen, status)
        SELECT id, 'scan-new-findings', 'high', namespace,
               CASE json_array_length(deployments) WHEN 1 THEN json_extract(deployments, '$[0]') END,
               NULL, NULL, 'scan-new-findings|' || namespace || '|' || id,
               'new blocking findings in running images',
               json_object('kind', kind, 'deployments', json(deployments), 'detail', json(detail)),
               1, created_at, created_at, 'open'
        FROM alerts_v9;
      DROP TABLE alerts_v9;
      CREATE INDEX alerts_dedupe ON alerts(dedupe_key, last_seen);
      CREATE INDEX alerts_last_seen ON alerts(last_seen);
      CREATE INDEX alerts_namespace ON alerts(namespace, last_seen);

      -- Response actions: written in the transaction that raises their alert, carried
      -- out after it and retried until done (each is idempotent), so a crash between the
      -- two loses none.
      CREATE TABLE monitor_actions (
        id           TEXT PRIMARY KEY,
        alert_id     TEXT NOT NULL REFERENCES alerts(id),
        rule         TEXT NOT NULL,
        event_id     TEXT,                     -- the event or stats sample that caused it
        action       TEXT NOT NULL CHECK (action IN ('stop', 'pause', 'quarantine', 'revoke')),
        node         TEXT,
        container    TEXT,
        namespace    TEXT,
        deployment   TEXT,
        state        TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'skipped')),
        attempts     INTEGER NOT NULL,
        result       TEXT,                     -- what was done, or why not
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      );
      CREATE INDEX monitor_actions_state ON monitor_actions(state, created_at);
      CREATE INDEX monitor_actions_alert ON monitor_actions(alert_id);

      -- Containers held for forensics: paused and off every network. The reconciler does
      -- not replace, restart or remove them, and their deployment does not change, until
      -- the quarantine is released.
      CREATE TABLE quarantines (
        id             TEXT PRIMARY KEY,
        container_name TEXT NOT NULL,
        container_id   TEXT,
        node           TEXT NOT NULL,
        namespace      TEXT,
        deployment     TEXT,
        alert_id       TEXT,
        rule           TEXT NOT NULL,
        networks       TEXT NOT NULL,          -- JSON array: the networks it was taken off
        created_at     INTEGER NOT NULL,
        released_at    INTEGER,
        released_by    TEXT
      );
      CREATE UNIQUE INDEX quarantines_active ON quarantines(container_name) WHERE released_at IS NULL;
      CREATE INDEX quarantines_deployment ON quarantines(namespace, deployment) WHERE released_at IS NULL;

      -- Deliveries of alerts to the webhook: each attempt's outcome; one that ran out of
      -- attempts is dead and kept (the dead-letter record).
      CREATE TABLE alert_deliveries (
        id           TEXT PRIMARY KEY,
        alert_id     TEXT NOT NULL,
        sink         TEXT NOT NULL,            -- the webhook URL
        payload      TEXT NOT NULL,            -- the JSON body, exactly as signed
        state        TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts     INTEGER NOT NULL,
        next_at      INTEGER NOT NULL,
        last_error   TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
      );
      CREATE INDEX alert_deliveries_due ON alert_deliveries(state, next_at);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
