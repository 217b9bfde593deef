/**
 * A small vulnerability database for test gateways: the OSV records under
 * test/admission/scanner/fixtures/osv/ (zlib's CVE-2022-37434 for Debian, one npm
 * advisory), imported the way `portcullis vulndb import DIR` imports them.
 */
import { fileURLToPath } from "node:url";
import { importVulnDb, type VulnDbImportResult } from "../../src/admission/index.js";
import type { AuditSink } from "../../src/core/index.js";
import { Store } from "../../src/store/index.js";

export const FIXTURE_OSV_DIR = fileURLToPath(new URL("../admission/scanner/fixtures/osv/", import.meta.url));

/** Imports the fixture records into an open store. */
export function importFixtureVulnDb(store: Store, audit?: AuditSink): Promise<VulnDbImportResult> {
  return importVulnDb(store, FIXTURE_OSV_DIR, { id: "service:test" }, audit !== undefined ? { audit } : {});
}

/** Imports the fixture records into a data directory no gateway has open. */
export async function importFixtureVulnDbInto(dataDir: string): Promise<VulnDbImportResult> {
  const store = Store.open(dataDir);
  try {
    return await importFixtureVulnDb(store);
  } finally {
    store.close();
  }
}
