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
 * Verifies the whole live log of a data directory in place. Run on the gateway's host by
 * someone who can read its data directory: it first signs a checkpoint over the log's
 * current end with the audit key, so that every entry is covered, then checks the chain
 * from the genesis, every checkpoint, and the coverage.
 */
export async function verifyDataDir(dir: string, opts: VerifyOptions): Promise<VerifyReport> {
  openDataDir(dir);
  const config = loadConfig(dir);
  const p = pkiPaths(dir);
  const bundlePem = readFileSync(p.rootCert, "utf8") + readFileSync(p.intermediateCert, "utf8");
  const rootDer = certificatesFromPem(readFileSync(p.rootCert, "utf8"))[0] as Buffer;
  const store = Store.open(dir);
  const log = new AuditLog(store, systemClock, {
    trustDomain: config.trustDomain,
    hmacKey: loadOrCreateHmacKey(dir),
    signer: auditSignerFrom(loadAuditCredentials(dir), config.trustDomain),
    caBundlePem: bundlePem,
    caFingerprint: createHash("sha256").update(rootDer).digest("hex"),
  });
  try {
    return await verifySource(log, { ...opts, ensureCheckpoint: async () => void (await log.checkpointNow()) });
  } finally {
    await log.close();
    store.close();
  }
}

/**
 * Imports OSV records (zips or directories) into a data directory's vulnerability
 * database, in place: run on the gateway's host by someone who can write its data
 * directory, like `audit verify --data-dir`. The import is written beside the database in
 * force and switched in one transaction with its `vulndb.imported` audit entry; a running
 * gateway sees the new version within seconds and rescans what runs.
 */
export async function importVulnDbIntoDataDir(dir: string, inputs: readonly string[]): Promise<VulnDbImportResult> {
  openDataDir(dir);
  const config = loadConfig(dir);
  const p = pkiPaths(dir);
  const rootDer = certificatesFromPem(readFileSync(p.rootCert, "utf8"))[0] as Buffer;
  const store = Store.open(dir);
  const log = new AuditLog(store, systemClock, {
    trustDomain: config.trustDomain,
    hmacKey: loadOrCreateHmacKey(dir),
    signer: auditSignerFrom(loadAuditCredentials(dir), config.trustDomain),
    caBundlePem: readFileSync(p.rootCert, "utf8") + readFileSync(p.intermediateCert, "utf8"),
    caFingerprint: createHash("sha256").update(rootDer).digest("hex"),
  });
  try {
    return await importVulnDb(store, inputs, { id: `service:portcullis-cli`, sourceAddress: `local:${userInfo().username}` }, { audit: log });
  } finally {
    await log.close();
    store.close();
  }
}
