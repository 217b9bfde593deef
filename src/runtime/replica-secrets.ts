/**
 * Secrets at placement: a deployment's references are pinned to versions when its
 * request is accepted (kept in revision_secrets with the revision), and each replica of
 * the revision gets exactly those versions, decrypted and written as files on the
 * gateway's host (SecretFiles) just before its container is created or started. Scale,
 * rollback and the reconciler use the revision's own pins, never "the latest": a
 * deployment keeps the versions it was admitted with until it is redeployed.
 *
 * Only a node whose engine runs on the gateway's own host (reached through a unix socket)
 * can mount those files; placement leaves every other node out.
 */
import { pcError } from "../core/index.js";
import { secretPathReason, type DeploymentSpec } from "../deploy/index.js";
import type { PinnedSecret, SecretFile, SecretResolver } from "../secrets/index.js";
import type { RevisionRecord, Store } from "../store/index.js";
import type { SecretFiles } from "./secret-files.js";

/** What the runtime needs to put secrets into containers. */
export interface ReplicaSecrets {
  readonly resolver: SecretResolver;
  readonly files: SecretFiles;
}

function noSecretStore(): Error {
  return pcError("PC_SECRETS_INJECTION_FAILED", "this gateway has no secret store");
}

/**
 * Pins a spec's secret references (each to its own version, or the latest now) and makes
 * sure the in-memory filesystem is there. Throws the resolver's PC_SECRETS_* code for a
 * missing secret or version, PC_SECRETS_TMPFS_UNAVAILABLE when no tmpfs can be had.
 */
export async function pinSecrets(secrets: ReplicaSecrets | undefined, spec: DeploymentSpec): Promise<PinnedSecret[]> {
  if (spec.secrets.length === 0) return [];
  if (secrets === undefined) throw noSecretStore();
  for (const m of spec.secrets) {
    const why = secretPathReason(m.path);
    if (why !== undefined) throw pcError("PC_SECRETS_INJECTION_FAILED", `secret ${m.name}: the path ${why}`);
    if (m.namespace !== undefined && m.namespace !== spec.namespace) throw pcError("PC_SECRETS_NOT_FOUND", `secret ${m.name} of another namespace`);
  }
  const pins = secrets.resolver.pin(spec.namespace, spec.secrets.map((m) => ({ name: m.name, path: m.path, ...(m.version !== undefined ? { version: m.version } : {}) })));
  await secrets.files.ensureReady();
  return pins;
}

/** Records a revision's pins (inside its acceptance transaction). */
export function recordPins(store: Store, rev: { namespace: string; name: string; revision: number }, pins: readonly PinnedSecret[]): void {
  store.secrets.insertRevisionSecrets(
    pins.map((p) => ({ namespace: rev.namespace, deployment: rev.name, revision: rev.revision, secret: p.name, version: p.version, path: p.path })),
  );
}

/**
 * The pins of a revision, checked against its spec (the store is not trusted to be
 * well-formed): one pin per referenced path, of the referenced secret.
 */
export function pinsOf(store: Store, rev: RevisionRecord, spec: DeploymentSpec): PinnedSecret[] {
  if (spec.secrets.length === 0) return [];
  const rows = store.secrets.revisionSecrets(rev.namespace, rev.name, rev.revision);
  const pins = spec.secrets.map((m) => {
    const row = rows.find((r) => r.path === m.path);
    if (row === undefined || row.secret !== m.name || (m.version !== undefined && row.version !== m.version)) {
      throw pcError("PC_STORE_CORRUPT", `revision ${rev.revision} of ${rev.namespace}/${rev.name}: no pinned version for ${m.path}`);
    }
    return { name: row.secret, path: row.path, version: row.version };
  });
  if (rows.length !== pins.length) throw pcError("PC_STORE_CORRUPT", `revision ${rev.revision} of ${rev.namespace}/${rev.name}: pins that its manifest does not reference`);
  return pins;
}

/**
 * Decrypts a replica's pinned versions and writes them to its directory; returns the
 * directory. A directory left from an earlier container of that name is replaced. When
 * opening fails (a secret deleted since admission, a value that does not decrypt) nothing
 * is left behind and the resolver's code is thrown.
 */
export async function writeReplicaSecrets(
  secrets: ReplicaSecrets | undefined,
  namespace: string,
  containerName: string,
  user: string,
  pins: readonly PinnedSecret[],
): Promise<string> {
  if (secrets === undefined) throw noSecretStore();
  const m = /^([0-9]+):([0-9]+)$/.exec(user);
  if (m === null) throw pcError("PC_SECRETS_INJECTION_FAILED", "the container's user is not a numeric uid:gid");
  await secrets.files.remove(containerName);
  const files = await openEach(secrets.resolver, namespace, pins);
  return secrets.files.write(containerName, Number(m[1]), Number(m[2]), files);
}

/**
 * Opens the pins one call each, all at once (their decryptions overlap); when one fails,
 * the values already opened are zeroed and the first failure is thrown.
 */
async function openEach(resolver: SecretResolver, namespace: string, pins: readonly PinnedSecret[]): Promise<SecretFile[]> {
  const settled = await Promise.allSettled(pins.map((p) => resolver.open(namespace, [p])));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  const files = settled.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
  if (failed !== undefined) {
    for (const f of files) f.value.fill(0);
    throw failed.reason;
  }
  return files;
}
