import type { AuditSink, Clock } from "../core/index.js";
import { isPortcullisError, pcError } from "../core/index.js";
import { historyEntryOf, sha256Hex, VersionedSnapshot, type VersionHistoryEntry, type AdmissionPolicyVersionRecord, type Store } from "../store/index.js";
import { parseAdmissionPolicies } from "./policy.js";
import type { AdmissionPolicySet, PolicyFile } from "./types.js";

/** One admission policy file: its name (`baseline.yaml`) and its YAML text. */
export type AdmissionPolicyFile = PolicyFile;

export interface AdmissionPolicySnapshot {
  readonly version: number;
  readonly set: AdmissionPolicySet;
  /** Sorted by name. */
  readonly files: readonly AdmissionPolicyFile[];
}

export interface AdmissionPolicyChange {
  readonly version: number;
  /** The names of the files added, removed or edited by this version, sorted. */
  readonly changed: readonly string[];
}

/** A version as `history` lists it. */
export type AdmissionPolicyHistoryEntry = VersionHistoryEntry;

export interface AdmissionPolicyVersion extends AdmissionPolicyHistoryEntry {
  readonly files: readonly AdmissionPolicyFile[];
}

/** Who changes the admission policy, as the audit log records it. */
export interface AdmissionPolicyActor {
  readonly identity: string;
  readonly serial?: string | undefined;
  readonly sourceAddress?: string | undefined;
  readonly requestId?: string | undefined;
}

/** A file name: a plain YAML file name, never a path. */
const FILE_NAME = /^[a-z0-9][a-z0-9._-]{0,99}\.ya?ml$/;
const MAX_FILES = 64;
const MAX_TOTAL_BYTES = 192 * 1024;
const MAX_MESSAGE = 500;

const sha256 = sha256Hex;

/**
 * Checks the shape of a set of files (names, count, size, no name twice) and returns
 * them sorted by name. The meaning of each file is the parser's to judge.
 */
export function normalizeAdmissionPolicyFiles(files: readonly AdmissionPolicyFile[]): AdmissionPolicyFile[] {
  const issues: string[] = [];
  if (files.length === 0) issues.push("no policy files");
  if (files.length > MAX_FILES) issues.push(`${files.length} files; at most ${MAX_FILES}`);
  const seen = new Set<string>();
  let total = 0;
  for (const f of files) {
    if (typeof f?.name !== "string" || typeof f.text !== "string") {
      issues.push("each file has a name and a text");
      continue;
    }
    if (!FILE_NAME.test(f.name)) issues.push(`${JSON.stringify(f.name.slice(0, 120))}: name: a file name of lower-case letters, digits, '.', '_' and '-' ending in .yaml or .yml`);
    else if (seen.has(f.name)) issues.push(`${f.name}: name: given twice`);
    seen.add(f.name);
    total += Buffer.byteLength(f.text, "utf8");
  }
  if (total > MAX_TOTAL_BYTES) issues.push(`the files hold ${total} bytes; at most ${MAX_TOTAL_BYTES}`);
  if (issues.length > 0) throw pcError("PC_ADMISSION_POLICY_INVALID", issues.slice(0, 20).join("; "));
  return files.map((f) => ({ name: f.name, text: f.text })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The names whose text differs between two sets (added, removed or edited), sorted. */
function changedNames(prev: readonly AdmissionPolicyFile[], next: readonly AdmissionPolicyFile[]): string[] {
  const before = new Map(prev.map((f) => [f.name, f.text]));
  const after = new Map(next.map((f) => [f.name, f.text]));
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((n) => before.get(n) !== after.get(n)).sort();
}

function filesOf(rec: AdmissionPolicyVersionRecord): AdmissionPolicyFile[] {
  const v: unknown = JSON.parse(rec.files);
  if (!Array.isArray(v) || !v.every((f) => typeof f === "object" && f !== null && typeof f.name === "string" && typeof f.text === "string")) {
    throw new TypeError("stored files are not [{ name, text }]");
  }
  return (v as { name: string; text: string }[]).map((f) => ({ name: f.name, text: f.text }));
}

const entryOf = (r: AdmissionPolicyVersionRecord): AdmissionPolicyHistoryEntry => historyEntryOf(r);

/**
 * The admission policies in force and their history. Every version is an immutable set
 * of files; the highest version is in force. A change is parsed as a whole (one bad file
 * refuses the whole set, nothing is stored), written with its audit event in one
 * transaction, and swapped in as one object. No version, a version whose checksum does
 * not match, one that no longer parses, or an unreadable store makes `current()` throw
 * PC_ADMISSION_POLICY_UNAVAILABLE, so that admission denies: never an allow.
 */
export class AdmissionPolicyService {
  private readonly inForce: VersionedSnapshot<AdmissionPolicyVersionRecord, AdmissionPolicySnapshot>;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
    private readonly parse: (files: readonly AdmissionPolicyFile[]) => AdmissionPolicySet = parseAdmissionPolicies,
  ) {
    this.inForce = new VersionedSnapshot(store, {
      latest: () => store.admissionPolicyVersions.latest(),
      content: (r) => r.files,
      build: (r) => {
        const files = filesOf(r);
        // The set carries the version it is in force as: decisions name it.
        return { version: r.version, set: { ...this.parse(files), version: r.version }, files };
      },
      unavailable: (detail, cause) => pcError("PC_ADMISSION_POLICY_UNAVAILABLE", detail, cause),
      what: "admission policy",
    });
  }

  /** Writes version 1 (at init). Refused if any version exists. */
  seed(files: readonly AdmissionPolicyFile[], author: string): AdmissionPolicyChange {
    const set = normalizeAdmissionPolicyFiles(files);
    this.parse(set);
    return this.store.transaction(() => {
      if (this.store.admissionPolicyVersions.latest()) throw pcError("PC_ADMISSION_POLICY_INVALID", "an admission policy is already in force");
      return this.write(set, [], 0, "initial admission policy", { identity: author }, null);
    });
  }

  /** The policies in force. Throws PC_ADMISSION_POLICY_UNAVAILABLE when they cannot be trusted. */
  current(): AdmissionPolicySnapshot {
    return this.inForce.current();
  }

  /**
   * Applies a whole set of files: the new version holds exactly these files. The set is
   * parsed first; any problem refuses it whole (PC_ADMISSION_POLICY_INVALID, every
   * problem as `file:line: field: reason`) and nothing is stored.
   */
  apply(files: readonly AdmissionPolicyFile[], actor: AdmissionPolicyActor, message: string): AdmissionPolicyChange {
    const set = normalizeAdmissionPolicyFiles(files);
    this.parse(set);
    return this.change(set, actor, message, null);
  }

  /** Every version, oldest first. */
  history(): AdmissionPolicyHistoryEntry[] {
    return this.readOrUnavailable(() => this.store.admissionPolicyVersions.list()).map(entryOf);
  }

  /** One version with its files. PC_ADMISSION_VERSION_NOT_FOUND when there is none. */
  get(version: number): AdmissionPolicyVersion {
    const rec = this.readOrUnavailable(() => this.store.admissionPolicyVersions.get(version));
    if (!rec) throw pcError("PC_ADMISSION_VERSION_NOT_FOUND", String(version));
    if (sha256(rec.files) !== rec.sha256) throw pcError("PC_ADMISSION_POLICY_UNAVAILABLE", `admission policy version ${version} fails its checksum`);
    let files: AdmissionPolicyFile[];
    try {
      files = filesOf(rec);
    } catch (e) {
      throw pcError("PC_ADMISSION_POLICY_UNAVAILABLE", `admission policy version ${version} is unreadable`, e);
    }
    return { ...entryOf(rec), files };
  }

  /** Returns to the files of an earlier version, recorded as a new version. */
  rollback(version: number, actor: AdmissionPolicyActor, message?: string): AdmissionPolicyChange {
    const old = this.get(version);
    const set = normalizeAdmissionPolicyFiles(old.files);
    // The old files must still parse under today's rules: a rollback cannot bring in a
    // policy that could not be applied now.
    this.parse(set);
    return this.change(set, actor, message ?? `rollback to version ${version}`, version);
  }

  private readOrUnavailable<T>(fn: () => T, what = "the admission policy store is unreadable"): T {
    try {
      return fn();
    } catch (e) {
      if (isPortcullisError(e)) throw e;
      throw pcError("PC_ADMISSION_POLICY_UNAVAILABLE", what, e);
    }
  }

  private change(set: AdmissionPolicyFile[], actor: AdmissionPolicyActor, message: string, rollbackOf: number | null): AdmissionPolicyChange {
    const out = this.readOrUnavailable(() =>
      this.store.transaction(() => {
        const latest = this.store.admissionPolicyVersions.latest();
        let prev: AdmissionPolicyFile[] = [];
        if (latest) {
          try {
            prev = filesOf(latest);
          } catch {
            // A damaged version is replaced as a whole: every file counts as changed.
            prev = [];
          }
        }
        return this.write(set, prev, latest?.version ?? 0, message, actor, rollbackOf);
      }),
      "the admission policy store could not be written",
    );
    this.inForce.invalidate();
    return out;
  }

  private write(
    set: readonly AdmissionPolicyFile[],
    prev: readonly AdmissionPolicyFile[],
    prevVersion: number,
    message: string,
    actor: AdmissionPolicyActor,
    rollbackOf: number | null,
  ): AdmissionPolicyChange {
    const files = JSON.stringify(set.map((f) => ({ name: f.name, text: f.text })));
    const version = prevVersion + 1;
    const changed = changedNames(prev, set);
    this.store.admissionPolicyVersions.insert({
      version,
      files,
      sha256: sha256(files),
      author: actor.identity,
      createdAt: this.clock.now().getTime(),
      message: message.slice(0, MAX_MESSAGE),
      rollbackOf,
    });
    this.audit.record({
      type: "admission.policy_applied",
      outcome: "allowed",
      actor: actor.identity,
      actorSerial: actor.serial,
      requestId: actor.requestId,
      sourceAddress: actor.sourceAddress,
      resource: "policies",
      target: `admission-policy:v${version}`,
      reason: `files:${set.length} changed:${changed.length}${rollbackOf !== null ? ` rollback-of:v${rollbackOf}` : ""}`,
    });
    return { version, changed };
  }
}
