/**
 * FastEnforcer: Casbin's answers for policies/rbac/model.conf without scanning the
 * policy on every request.
 *
 * The model decides a request (sub, dom, obj, act) with
 *
 *   m = (g(r.sub, p.sub, r.dom) || g(r.sub, p.sub, "*")) && (p.dom == r.dom || p.dom == "*")
 *       && (p.obj == r.obj || p.obj == "*") && (p.act == r.act || p.act == "*")
 *   e = some(where (p.eft == allow)) && !some(where (p.eft == deny))
 *
 * and this class keeps exactly those semantics:
 * - `g(a, b, d)` is Casbin's DefaultRoleManager(10): true when a == b (in any domain,
 *   bound or not), else when b is reachable from a over at most 10 `g` links of domain
 *   d alone. Links of other domains never count; cycles are harmless.
 * - `*` is a literal value compared with `==`, not a pattern (no keyMatch): a rule for
 *   `*` applies to every value, and a request for `*` matches only rules written for `*`.
 * - Casbin walks the rules in policy order and stops at the first matching deny, which
 *   it reports; without a deny, the last matching allow is the one `enforceEx` reports.
 *   Rules with an effect other than allow or deny never decide anything.
 *
 * How it is fast: the rules are grouped by subject into tables; a table is a sorted run
 * of cells, a cell being (namespace, resource, action) as one integer with the position
 * of its first deny and of its last allow. The role links are resolved once, when the
 * instance is built: for every (member, domain) of the policy, the tables of the roles
 * the member reaches there. Everything a request reads sits in a few typed arrays: it
 * looks up the subject's own table and its resolved roles in the namespace and in `*`,
 * then at most 8 cells in each by binary search. No scan of the policy, no allocation,
 * no decision cache, and no state that grows with the requests. An instance is
 * immutable and belongs to one policy version: a policy change builds a new one.
 *
 * One deliberate difference: with no `p` rule at all, stock Casbin evaluates the matcher
 * once with empty policy values, so the request ("", "", "", "") is allowed. Here an
 * empty policy denies everything.
 */
import { CLUSTER, ruleToCsv, type Decision, type Policy, type PolicyEnforcer } from "./types.js";

/** Casbin's default role manager follows at most this many `g` links. */
export const MAX_HIERARCHY_LEVEL = 10;

const DEFAULT_DENY: Decision = Object.freeze({ allowed: false, rule: "default-deny" });
const NONE = -1;

/** Role links of one domain: member -> roles it holds directly, without repeats. */
type DomainLinks = Map<string, string[]>;

/** Gives each distinct value a small integer, in order of first appearance. */
function intern(m: Map<string, number>, v: string): number {
  let id = m.get(v);
  if (id === undefined) m.set(v, (id = m.size));
  return id;
}

/**
 * Tables of one (name, namespace) in one number: a table number (>= 0), or -2 - i for
 * entry i of a list of several, so that the common single-role case costs no extra read.
 */
type Packed = number;

/** Fields of a name's record in FastEnforcer.records. */
const OWN = 0;
const CLUSTER_TABLES = 1;
const FROM = 2;
const TO = 3;
const NAME_FIELDS = 4;

export class FastEnforcer implements PolicyEnforcer {
  /** Every namespace of the policy (rules and bindings), `*` included. */
  private readonly nsIds = new Map<string, number>();
  private readonly objIds = new Map<string, number>();
  private readonly actIds = new Map<string, number>();
  /** Every rule subject and binding member. */
  private readonly nameIds = new Map<string, number>();
  private readonly nObj: number;
  private readonly nAct: number;
  private readonly starNs: number;
  private readonly starObj: number;
  private readonly starAct: number;

  /** Table t is cells [tableStart[t], tableStart[t + 1]): keys ascending, with their first deny and last allow. */
  private readonly tableStart: Int32Array;
  private readonly cellKey: Int32Array;
  private readonly cellDeny: Int32Array;
  private readonly cellAllow: Int32Array;
  /**
   * By name id, NAME_FIELDS numbers: its own table (or NONE); the tables of the roles it
   * reaches in `*` (Packed, NONE if none); and the range of its entries in roleNs/roleTables.
   */
  private readonly records: Int32Array;
  /** Per name, ascending namespace ids (not `*`) where it reaches roles that have rules... */
  private readonly roleNs: Int32Array;
  /** ...and the tables of those roles, Packed. */
  private readonly roleTables: Int32Array;
  /** The lists that Packed values point into. */
  private readonly lists: (readonly number[])[] = [];
  /** Role links by domain, as written (for namesFor). */
  private readonly links = new Map<string, DomainLinks>();
  /** The decision each rule gives when it decides, by rule position. */
  private readonly decisions: readonly Decision[];

  /** Scratch space of one decision (decide is synchronous and not re-entrant). */
  private readonly keys = new Int32Array(8);
  private nKeys = 0;
  private deny = NONE;
  private allow = NONE;

  constructor(policy: Policy) {
    const { rules, bindings } = policy;
    for (const r of rules) {
      intern(this.nsIds, r.namespace);
      intern(this.objIds, r.resource);
      intern(this.actIds, r.action);
      intern(this.nameIds, r.subject);
    }
    for (const b of bindings) {
      intern(this.nsIds, b.namespace);
      intern(this.nameIds, b.member);
    }
    this.nObj = Math.max(1, this.objIds.size);
    this.nAct = Math.max(1, this.actIds.size);
    if (Math.max(1, this.nsIds.size) * this.nObj * this.nAct > 0x7fffffff) throw new RangeError("policy too large to index");
    this.starNs = this.nsIds.get(CLUSTER) ?? NONE;
    this.starObj = this.objIds.get("*") ?? NONE;
    this.starAct = this.actIds.get("*") ?? NONE;
    this.decisions = rules.map((r) => Object.freeze({ allowed: r.effect === "allow", rule: ruleToCsv(r) }));

    // Rule tables. Casbin stops at the first matching deny and otherwise reports the last
    // matching allow, so each cell keeps the lowest deny position and the highest allow.
    const bySubject = new Map<number, Map<number, [deny: number, allow: number]>>();
    rules.forEach((r, i) => {
      if (r.effect !== "allow" && r.effect !== "deny") return;
      const name = this.nameIds.get(r.subject) as number;
      let cells = bySubject.get(name);
      if (!cells) bySubject.set(name, (cells = new Map()));
      const key = this.cell(this.nsIds.get(r.namespace) as number, this.objIds.get(r.resource) as number, this.actIds.get(r.action) as number);
      let c = cells.get(key);
      if (!c) cells.set(key, (c = [NONE, NONE]));
      if (r.effect === "deny") {
        if (c[0] === NONE) c[0] = i;
      } else {
        c[1] = i;
      }
    });
    let nCells = 0;
    for (const cells of bySubject.values()) nCells += cells.size;
    this.tableStart = new Int32Array(bySubject.size + 1);
    this.cellKey = new Int32Array(nCells);
    this.cellDeny = new Int32Array(nCells);
    this.cellAllow = new Int32Array(nCells);
    const nNames = this.nameIds.size;
    this.records = new Int32Array(NAME_FIELDS * nNames);
    for (let n = 0; n < nNames; n++) {
      this.records[NAME_FIELDS * n + OWN] = NONE;
      this.records[NAME_FIELDS * n + CLUSTER_TABLES] = NONE;
    }
    let t = 0;
    let at = 0;
    for (const [name, cells] of bySubject) {
      this.records[NAME_FIELDS * name + OWN] = t;
      this.tableStart[t] = at;
      for (const key of [...cells.keys()].sort((a, b) => a - b)) {
        const [deny, allow] = cells.get(key) as [number, number];
        this.cellKey[at] = key;
        this.cellDeny[at] = deny;
        this.cellAllow[at] = allow;
        at++;
      }
      t++;
    }
    this.tableStart[t] = at;

    // Role links, resolved once per (member, domain).
    for (const b of bindings) {
      let dom = this.links.get(b.namespace);
      if (!dom) this.links.set(b.namespace, (dom = new Map()));
      const held = dom.get(b.member);
      if (!held) dom.set(b.member, [b.role]);
      else if (!held.includes(b.role)) held.push(b.role);
    }
    const perName = new Map<number, [ns: number, packed: Packed][]>();
    let nEntries = 0;
    for (const [domain, links] of this.links) {
      const ns = this.nsIds.get(domain) as number;
      for (const member of links.keys()) {
        const found = new Set<string>();
        reach(member, links, found);
        const tables: number[] = [];
        for (const role of found) {
          const id = this.nameIds.get(role); // a role that no rule names has no table
          const own = id === undefined ? NONE : (this.records[NAME_FIELDS * id + OWN] as number);
          if (own !== NONE) tables.push(own);
        }
        if (tables.length === 0) continue;
        const name = this.nameIds.get(member) as number;
        if (domain === CLUSTER) {
          this.records[NAME_FIELDS * name + CLUSTER_TABLES] = this.pack(tables);
        } else {
          let entries = perName.get(name);
          if (!entries) perName.set(name, (entries = []));
          entries.push([ns, this.pack(tables)]);
          nEntries++;
        }
      }
    }
    this.roleNs = new Int32Array(nEntries);
    this.roleTables = new Int32Array(nEntries);
    let e = 0;
    for (let n = 0; n < nNames; n++) {
      this.records[NAME_FIELDS * n + FROM] = e;
      for (const [ns, packed] of (perName.get(n) ?? []).sort((a, b) => a[0] - b[0])) {
        this.roleNs[e] = ns;
        this.roleTables[e] = packed;
        e++;
      }
      this.records[NAME_FIELDS * n + TO] = e;
    }
  }

  decide(subject: string, namespace: string, resource: string, action: string): Decision {
    const name = this.nameIds.get(subject);
    if (name === undefined) return DEFAULT_DENY; // no rule names it and it holds no role
    const ns = this.nsIds.get(namespace) ?? NONE;
    if (!this.candidateCells(ns, resource, action)) return DEFAULT_DENY;
    // g(sub, p.sub, dom) || g(sub, p.sub, "*"): the subject itself, and the roles it
    // reaches in the namespace or in `*`. A table met twice changes nothing.
    this.deny = NONE;
    this.allow = NONE;
    const at = NAME_FIELDS * name;
    const own = this.records[at + OWN] as number;
    if (own !== NONE) this.scan(own);
    if (ns !== NONE && ns !== this.starNs) this.scanPacked(this.rolesIn(ns, this.records[at + FROM] as number, this.records[at + TO] as number));
    this.scanPacked(this.records[at + CLUSTER_TABLES] as number);
    if (this.deny !== NONE) return this.decisions[this.deny] as Decision;
    if (this.allow !== NONE) return this.decisions[this.allow] as Decision;
    return DEFAULT_DENY;
  }

  /**
   * The names whose rules apply to `subject` in `namespace`: itself, and every role it
   * reaches in that namespace or in `*`. Sorted; for explanations and tests.
   */
  namesFor(subject: string, namespace: string): string[] {
    const out = new Set<string>([subject]);
    reach(subject, this.links.get(namespace), out);
    if (namespace !== CLUSTER) reach(subject, this.links.get(CLUSTER), out);
    return [...out].sort();
  }

  private cell(ns: number, obj: number, act: number): number {
    return (ns * this.nObj + obj) * this.nAct + act;
  }

  /** Fills `keys` with the cells the request can match, without repeats; false when there are none. */
  private candidateCells(ns: number, resource: string, action: string): boolean {
    const o1 = this.objIds.get(resource) ?? NONE;
    const a1 = this.actIds.get(action) ?? NONE;
    // The `*` value of each field, unless it is the requested value itself.
    const d2 = ns === this.starNs ? NONE : this.starNs;
    const o2 = o1 === this.starObj ? NONE : this.starObj;
    const a2 = a1 === this.starAct ? NONE : this.starAct;
    this.nKeys = 0;
    this.addCells(ns, o1, o2, a1, a2);
    this.addCells(d2, o1, o2, a1, a2);
    return this.nKeys > 0;
  }

  private addCells(d: number, o1: number, o2: number, a1: number, a2: number): void {
    if (d === NONE) return;
    if (o1 !== NONE) {
      if (a1 !== NONE) this.keys[this.nKeys++] = this.cell(d, o1, a1);
      if (a2 !== NONE) this.keys[this.nKeys++] = this.cell(d, o1, a2);
    }
    if (o2 !== NONE) {
      if (a1 !== NONE) this.keys[this.nKeys++] = this.cell(d, o2, a1);
      if (a2 !== NONE) this.keys[this.nKeys++] = this.cell(d, o2, a2);
    }
  }

  /** The Packed tables of entries [from, to) for namespace `ns`, or NONE. */
  private rolesIn(ns: number, from: number, to: number): Packed {
    let lo = from;
    let hi = to;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.roleNs[mid] as number) < ns) lo = mid + 1;
      else hi = mid;
    }
    return lo < to && this.roleNs[lo] === ns ? (this.roleTables[lo] as number) : NONE;
  }

  private pack(tables: readonly number[]): Packed {
    if (tables.length === 1) return tables[0] as number;
    this.lists.push(tables);
    return -1 - this.lists.length;
  }

  private scanPacked(p: Packed): void {
    if (p >= 0) this.scan(p);
    else if (p !== NONE) for (const t of this.lists[-2 - p] as readonly number[]) this.scan(t);
  }

  /** Folds the candidate cells of table `t` into the first deny and last allow so far. */
  private scan(t: number): void {
    const from = this.tableStart[t] as number;
    const to = this.tableStart[t + 1] as number;
    const cellKey = this.cellKey;
    for (let k = 0; k < this.nKeys; k++) {
      const key = this.keys[k] as number;
      let lo = from;
      let hi = to;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((cellKey[mid] as number) < key) lo = mid + 1;
        else hi = mid;
      }
      if (lo === to || cellKey[lo] !== key) continue;
      const deny = this.cellDeny[lo] as number;
      const allow = this.cellAllow[lo] as number;
      if (deny !== NONE && (this.deny === NONE || deny < this.deny)) this.deny = deny;
      if (allow > this.allow) this.allow = allow;
    }
  }
}

/**
 * Adds to `out` every role reachable from `start` over 1 to MAX_HIERARCHY_LEVEL links of
 * one domain: what Casbin's Role.hasRole finds with its depth-limited search.
 */
function reach(start: string, links: DomainLinks | undefined, out: Set<string>): void {
  if (!links) return;
  const seen = new Set<string>([start]);
  let frontier = [start];
  for (let depth = 0; depth < MAX_HIERARCHY_LEVEL && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const name of frontier) {
      const held = links.get(name);
      if (!held) continue;
      for (const role of held) {
        if (seen.has(role)) continue;
        seen.add(role);
        out.add(role);
        next.push(role);
      }
    }
    frontier = next;
  }
}
