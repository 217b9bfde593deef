import type { AuditSink, Clock } from "../core/index.js";
import { isPortcullisError, pcError } from "../core/index.js";
import { historyEntryOf, sha256Hex, VersionedSnapshot, type VersionHistoryEntry, type MonitoringRulesVersionRecord, type Store } from "../store/index.js";
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

/** A version as `history` lists it. */
export type MonitoringRulesHistoryEntry = VersionHistoryEntry;

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
const sha256 = sha256Hex;

const entryOf = (r: MonitoringRulesVersionRecord): MonitoringRulesHistoryEntry => historyEntryOf(r);

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
  private readonly inForce: VersionedSnapshot<MonitoringRulesVersionRecord, MonitoringRulesSnapshot>;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditSink,
    private readonly clock: Clock,
  ) {
    this.inForce = new VersionedSnapshot(store, {
      latest: () => store.monitoringRulesVersions.latest(),
      content: (r) => r.text,
      build: (r) => ({ version: r.version, set: parseMonitoringRules(r.text), text: r.text }),
      unavailable: (detail, cause) => pcError("PC_MONITOR_RULES_MISSING", detail, cause),
      what: "monitoring rules",
    });
  }

  /** Writes version 1 (at init). Refused if any version exists. */
  seed(text: string, author: string): MonitoringRulesChange {
    const set = parseMonitoringRules(text);
    const out = this.store.transaction(() => {
      if (this.store.monitoringRulesVersions.latest()) throw pcError("PC_MONITOR_RULES_INVALID", "monitoring rules are already in force");
      return this.write(text, set, 0, "initial monitoring rules", { identity: author }, null);
    });
    this.inForce.invalidate();
    return out;
  }

  /** The rules in force. PC_MONITOR_RULES_MISSING when there are none that can be trusted. */
  current(): MonitoringRulesSnapshot {
    return this.inForce.current();
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
    if (!out.unchanged) this.inForce.invalidate();
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
