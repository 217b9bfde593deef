export * from "./data-dir.js";
export * from "./db.js";
export * from "./migrations.js";
export * from "./store.js";
export type { CertificateRecord, RevokedEntry } from "./repos/certificates.js";
export type { EnrollTokenRecord } from "./repos/enroll-tokens.js";
export type { StoredAccessEvent } from "./repos/access-events.js";
export type { NamespaceRecord } from "./repos/namespaces.js";
export type { PolicyVersionRecord } from "./repos/policy-versions.js";
