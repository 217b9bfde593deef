import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { AuditLog } from "../../src/audit/index.js";
import { ManualClock, silentLogger, type AuditSink, type Clock } from "../../src/core/index.js";
import { createKeyringFile, FileKekSource, Keyring, keyringPath, SecretService, type RewrapOptions, type SecretActor } from "../../src/secrets/index.js";
import { Store } from "../../src/store/index.js";

export const TD = "portcullis.local";
export const ACTOR: SecretActor = { id: "user:alice", serial: "0a1b2c", requestId: "req-1", sourceAddress: "127.0.0.1" };

export interface SecretsFixture {
  readonly dir: string;
  readonly store: Store;
  readonly keyring: Keyring;
  readonly audit: AuditSink;
  readonly clock: ManualClock;
  readonly secrets: SecretService;
  close(): Promise<void>;
}

/**
 * A data directory of its own below `root` with a real SQLite store, a keyring file, a
 * real audit log (or the given sink) and a SecretService over them.
 */
export function secretsFixture(
  root: string,
  name: string,
  opts: { audit?: (store: Store, clock: Clock) => AuditSink; namespaces?: readonly string[]; rewrap?: RewrapOptions } = {},
): SecretsFixture {
  const dir = join(root, name);
  mkdirSync(dir, { mode: 0o700 });
  const clock = new ManualClock(Date.parse("2026-05-01T10:00:00Z"));
  createKeyringFile(keyringPath(dir), clock);
  return openFixture(dir, clock, opts);
}

/** Opens an existing fixture directory again (another connection, another keyring reader). */
export function openFixture(
  dir: string,
  clock: ManualClock,
  opts: { audit?: (store: Store, clock: Clock) => AuditSink; namespaces?: readonly string[]; rewrap?: RewrapOptions } = {},
): SecretsFixture {
  const store = Store.open(dir);
  const keyring = Keyring.open(new FileKekSource(keyringPath(dir)));
  const audit = opts.audit?.(store, clock) ?? realAudit(store, clock);
  for (const ns of opts.namespaces ?? ["team-a"]) {
    store.namespaces.insert({ name: ns, labels: {}, createdAt: clock.now().getTime(), createdBy: "user:admin" });
  }
  const secrets = new SecretService(store, keyring, audit, clock, silentLogger, { rewrap: opts.rewrap ?? {} });
  return {
    dir,
    store,
    keyring,
    audit,
    clock,
    secrets,
    async close() {
      await secrets.stop();
      if (audit instanceof AuditLog) await audit.close();
      store.close();
    },
  };
}

export function realAudit(store: Store, clock: Clock): AuditLog {
  const log = new AuditLog(store, clock, { trustDomain: TD, hmacKey: randomBytes(32) });
  log.genesis(TD, "00".repeat(32));
  return log;
}
