import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  type AuditEvent,
  type AuditSink,
  defaultConfig,
  type GatewayConfig,
  type Lifetimes,
  ManualClock,
  MemoryAuditSink,
  pcError,
} from "../../src/core/index.js";
import { buildCsr, CertificateAuthority, generateKeyPair, PkiService, type SanEntry } from "../../src/pki/index.js";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../support/gateway.js";
import { randomBytes, type KeyObject } from "node:crypto";
import { AuditLog } from "../../src/audit/index.js";

export const TD = "portcullis.local";
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** Whole seconds, so that times survive X.509's one-second resolution. */
export function wholeSecondNow(): number {
  return Math.floor(Date.now() / 1000) * 1000;
}

/** An audit sink that records events and, when told to, fails like a full disk. */
export class SwitchableAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  failing = false;
  record(event: AuditEvent): void {
    if (this.failing) throw pcError("PC_AUDIT_WRITE_FAILED", undefined, new Error("disk full"));
    this.events.push(event);
  }
  recordAfter(event: AuditEvent): void {
    this.record(event);
  }
  async append(event: AuditEvent): Promise<unknown> {
    this.record(event);
    return undefined;
  }
  flush(): void {}
}

/** The real audit log over a fixture's store. */
export function realAuditLog(store: Store, clock: ManualClock, trustDomain = TD): AuditLog {
  return new AuditLog(store, clock, { trustDomain, hmacKey: randomBytes(32) });
}

export interface PkiFixture {
  readonly dir: string;
  readonly clock: ManualClock;
  readonly config: GatewayConfig;
  readonly ca: CertificateAuthority;
  readonly store: Store;
  readonly pki: PkiService;
  readonly audit: AuditSink;
  /** Writes a file under the fixture's directory and returns its path. */
  file(name: string, text: string | Buffer): string;
  close(): void;
}

/** A PKI service on a real SQLite store in a temporary directory, with a manual clock. */
export function pkiFixture(
  opts: { audit?: AuditSink | ((store: Store, clock: ManualClock) => AuditSink); lifetimes?: Partial<Lifetimes>; trustDomain?: string } = {},
): PkiFixture {
  const t = tempDir("portcullis-pki-");
  const clock = new ManualClock(wholeSecondNow());
  const config = defaultConfig({ trustDomain: opts.trustDomain ?? TD, lifetimes: { ...defaultConfig().lifetimes, ...(opts.lifetimes ?? {}) } });
  const ca = CertificateAuthority.create(config.trustDomain, clock, config.lifetimes);
  const store = Store.open(t.dir);
  const audit = typeof opts.audit === "function" ? opts.audit(store, clock) : (opts.audit ?? new MemoryAuditSink());
  const pki = new PkiService(ca, store, audit, clock, config);
  return {
    dir: t.dir,
    clock,
    config,
    ca,
    store,
    pki,
    audit,
    file(name, text) {
      const p = join(t.dir, name);
      writeFileSync(p, text);
      return p;
    },
    close() {
      store.close();
      t.cleanup();
    },
  };
}

/** A P-256 key and a CSR for `identity` (e.g. `user:alice`) in trust domain `td`. */
export function csrFor(
  identity: string,
  opts: { td?: string; key?: { privateKey: KeyObject; publicKey: KeyObject }; commonName?: string; san?: SanEntry[] } = {},
): { pem: string; der: Buffer; key: { privateKey: KeyObject; publicKey: KeyObject } } {
  const key = opts.key ?? generateKeyPair("ec-p256");
  const [kind, name] = identity.split(":") as [string, string];
  const san = opts.san ?? [{ uri: `spiffe://${opts.td ?? TD}/${kind}/${name}` }];
  const csr = buildCsr({ key: key.privateKey, publicKey: key.publicKey, commonName: opts.commonName ?? identity, san });
  return { ...csr, key };
}

export { expectRefusal, refusal } from "../support/refusal.js";

const execFileP = promisify(execFile);

/** Runs the real openssl; never throws on a non-zero exit. */
export async function openssl(args: readonly string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileP("openssl", [...args], { cwd, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof x.code === "number" ? x.code : -1, stdout: x.stdout ?? "", stderr: x.stderr ?? "" };
  }
}
