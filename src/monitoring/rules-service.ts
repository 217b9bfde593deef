import { createHash } from "node:crypto";
import type { AuditSink, Clock } from "../core/index.js";
import { isPortcullisError, pcError } from "../core/index.js";
import type { MonitoringRulesVersionRecord, Store } from "../store/index.js";
import { parseMonitoringRules } from "./rules.js";
import type { MonitoringRuleSet } from "./types.js";

export interface MonitoringRulesSnapshot {
  readonly version: number;
  readonly set: MonitoringRuleSet;
  /** The rules file as applied. */
  readonly text: string;
}

export interface MonitoringRulesChange {
  /** The version in force after the call. */
  readonly version: number;
  /** The text was the one in force already: no version was written. */
  readonly unchanged: boolean;
}

export interface MonitoringRulesHistoryEntry {
  readonly version: number;
  readonly author: string;
  /** ISO 8601. */
  readonly createdAt: string;
  readonly message: string;
  /** Hex SHA-256 of the text as stored. */
  readonly sha256: string;
  readonly rollbackOf: number | null;
}

export interface MonitoringRulesVersion extends MonitoringRulesHistoryEntry {
  readonly text: string;
}

/** Who changes the monitoring rules, as the audit log records it. */
export interface MonitoringRulesActor {
  readonly identity: string;
  readonly serial?: string | undefined;
  readonly sourceAddress?: string | undefined;
  readonly requestId?: string | undefined;
}

const MAX_MESSAGE = 500;
const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

const entryOf = (r: MonitoringRulesVersionRecord): MonitoringRulesHistoryEntry => ({
  version: r.version,
  author: r.author,
  createdAt: new Date(r.createdAt).toISOString(),
  message: r.message,
  sha256: r.sha256,
  rollbackOf: r.rollbackOf,
});

/**
 * The monitoring rules in force and their history. Every version is an immutable text;
 * the highest version is in force. A change is validated first (a bad file raises
 * PC_MONITOR_RULES_INVALID and stores nothing), then written with its audit event in
 * one transaction. Applying the text already in force writes nothing and says so.
 * `current()` serves a parsed snapshot, read again only when the version changes; no
 * version, or one that fails its checksum or no longer parses, is
 * PC_MONITOR_RULES_MISSING: no rules are served that were not applied as they are.
 */
export class MonitoringRulesService {
  private snapshot: MonitoringRulesSnapshot | undefined;
  private snapshotSha256 = "";
  private snapshotDataVersion = -1;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
  ) {}

  /** Writes version 1 (at init). Refused if any version exists. */
  seed(text: string, author: string): MonitoringRulesChange {
    const set = parseMonitoringRules(text);
    const out = this.store.transaction(() => {
      if (this.store.monitoringRulesVersions.latest()) throw pcError("PC_MONITOR_RULES_INVALID", "monitoring rules are already in force");
      return this.write(text, set, 0, "initial monitoring rules", { identity: author }, null);
    });
    this.snapshot = undefined;
    return out;
  }

  /** The rules in force. PC_MONITOR_RULES_MISSING when there are none that can be trusted. */
  current(): MonitoringRulesSnapshot {
    let dataVersion: number;
    let latest: MonitoringRulesVersionRecord | undefined;
    try {
      // Versions change through this service (which drops the snapshot) or through
      // another connection (which moves data_version): only then is the row read again.
      dataVersion = this.store.dataVersion();
      if (this.snapshot && this.snapshotDataVersion === dataVersion) return this.snapshot;
      latest = this.store.monitoringRulesVersions.latest();
    } catch (e) {
      throw pcError("PC_MONITOR_RULES_MISSING", "the monitoring rules store is unreadable", e);
    }
    if (!latest) throw pcError("PC_MONITOR_RULES_MISSING", "no monitoring rules version is stored");
    const sum = sha256(latest.text);
    if (sum !== latest.sha256) throw pcError("PC_MONITOR_RULES_MISSING", `monitoring rules version ${latest.version} fails its checksum`);
    if (this.snapshot && this.snapshot.version === latest.version && this.snapshotSha256 === sum) {
      this.snapshotDataVersion = dataVersion;
      return this.snapshot;
    }
    let set: MonitoringRuleSet;
    try {
      set = parseMonitoringRules(latest.text);
    } catch (e) {
      throw pcError("PC_MONITOR_RULES_MISSING", `monitoring rules version ${latest.version} does not parse`, e);
    }
    this.snapshot = { version: latest.version, set, text: latest.text };
    this.snapshotSha256 = sum;
    this.snapshotDataVersion = dataVersion;
    return this.snapshot;
  }

  /**
   * Applies a rules file as the new version. It is validated first: any problem refuses
   * it whole (PC_MONITOR_RULES_INVALID, every problem with its line and field path) and
   * nothing is stored. The text in force already: `{ version, unchanged: true }`.
   */
  apply(text: string, actor: MonitoringRulesActor, message?: string): MonitoringRulesChange {
    return this.change(text, parseMonitoringRules(text), actor, message ?? "", null);
  }

  /** Every version, oldest first. */
  history(): MonitoringRulesHistoryEntry[] {
    return this.read(() => this.store.monitoringRulesVersions.list()).map(entryOf);
  }

  /** One version with its text. PC_MONITOR_RULES_VERSION_NOT_FOUND when there is none. */
  get(version: number): MonitoringRulesVersion {
    const rec = this.read(() => this.store.monitoringRulesVersions.get(version));
    if (!rec) throw pcError("PC_MONITOR_RULES_VERSION_NOT_FOUND", String(version));
    if (sha256(rec.text) !== rec.sha256) throw pcError("PC_MONITOR_RULES_MISSING", `monitoring rules version ${version} fails its checksum`);
    return { ...entryOf(rec), text: rec.text };
  }

  /**
   * Returns to the text of an earlier version, recorded as a new version. The old text
   * must still validate: a rollback cannot bring in rules that could not be applied now.
   */
  rollback(version: number, actor: MonitoringRulesActor, message?: string): MonitoringRulesChange {
    const old = this.get(version);
    return this.change(old.text, parseMonitoringRules(old.text), actor, message ?? `rollback to version ${version}`, version);
  }

  private read<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (isPortcullisError(e)) throw e;
      throw pcError("PC_MONITOR_RULES_MISSING", "the monitoring rules store is unreadable", e);
    }
  }

  private change(text: string, set: MonitoringRuleSet, actor: MonitoringRulesActor, message: string, rollbackOf: number | null): MonitoringRulesChange {
    const out = this.store.transaction(() => {
      const latest = this.store.monitoringRulesVersions.latest();
      // The same text as the version in force (and that version intact): nothing to write.
      if (latest && latest.text === text && latest.sha256 === sha256(latest.text)) return { version: latest.version, unchanged: true };
      return this.write(text, set, latest?.version ?? 0, message, actor, rollbackOf);
    });
    if (!out.unchanged) this.snapshot = undefined;
    return out;
  }

  private write(text: string, set: MonitoringRuleSet, prevVersion: number, message: string, actor: MonitoringRulesActor, rollbackOf: number | null): MonitoringRulesChange {
    const version = prevVersion + 1;
    this.store.monitoringRulesVersions.insert({
      version,
      text,
      sha256: sha256(text),
      author: actor.identity,
      createdAt: this.clock.now().getTime(),
      message: message.slice(0, MAX_MESSAGE),
      rollbackOf,
    });
    this.audit.record({
      type: "monitoring.rules_applied",
      outcome: "allowed",
      actor: actor.identity,
      actorSerial: actor.serial,
      requestId: actor.requestId,
      sourceAddress: actor.sourceAddress,
      resource: "policies",
      target: `monitoring-rules:v${version}`,
      reason: `rules:${set.rules.length}${rollbackOf !== null ? ` rollback-of:v${rollbackOf}` : ""}`,
    });
    return { version, unchanged: false };
  }
}
