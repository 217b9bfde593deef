import { readFileSync } from "node:fs";
import { systemClock } from "../core/index.js";
import { AuditLog, auditSignerFrom, loadAuditCredentials, loadOrCreateHmacKey, verifySource, type VerifyOptions, type VerifyReport } from "../audit/index.js";
import { certificatesFromPem, pkiPaths } from "../pki/index.js";
import { openDataDir, Store } from "../store/index.js";
import { createHash } from "node:crypto";
import { loadConfig } from "../app.js";
import { importVulnDb, type VulnDbImportResult } from "../admission/index.js";
import { userInfo } from "node:os";

/**
 * Runs `fn` with the store and the audit log of a data directory opened in place (the
 * audit key signs checkpoints; the chain head is read inside each transaction, so a
 * running gateway may write beside it), and closes both afterwards.
 */
async function withDataDirAudit<T>(dir: string, fn: (store: Store, log: AuditLog) => Promise<T>): Promise<T> {
  openDataDir(dir);
  const config = loadConfig(dir);
  const p = pkiPaths(dir);
  const rootPem = readFileSync(p.rootCert, "utf8");
  const rootDer = certificatesFromPem(rootPem)[0] as Buffer;
  const store = Store.open(dir);
  const log = new AuditLog(store, systemClock, {
    trustDomain: config.trustDomain,
    hmacKey: loadOrCreateHmacKey(dir),
    signer: auditSignerFrom(loadAuditCredentials(dir), config.trustDomain),
    caBundlePem: rootPem + readFileSync(p.intermediateCert, "utf8"),
    caFingerprint: createHash("sha256").update(rootDer).digest("hex"),
  });
  try {
    return await fn(store, log);
  } finally {
    await log.close();
    store.close();
  }
}

/**
 * Verifies the whole live log of a data directory in place. Run on the gateway's host by
 * someone who can read its data directory: it first signs a checkpoint over the log's
 * current end with the audit key, so that every entry is covered, then checks the chain
 * from the genesis, every checkpoint, and the coverage.
 */
export function verifyDataDir(dir: string, opts: VerifyOptions): Promise<VerifyReport> {
  return withDataDirAudit(dir, (_store, log) => verifySource(log, { ...opts, ensureCheckpoint: async () => void (await log.checkpointNow()) }));
}

/**
 * Imports OSV records (zips or directories) into a data directory's vulnerability
 * database, in place: run on the gateway's host by someone who can write its data
 * directory, like `audit verify --data-dir`. The import is written beside the database in
 * force and switched in one transaction with its `vulndb.imported` audit entry; a running
 * gateway sees the new version within seconds and rescans what runs.
 */
export function importVulnDbIntoDataDir(dir: string, inputs: readonly string[]): Promise<VulnDbImportResult> {
  return withDataDirAudit(dir, (store, log) =>
    importVulnDb(store, inputs, { id: "service:portcullis-cli", sourceAddress: `local:${userInfo().username}` }, { audit: log }),
  );
}
