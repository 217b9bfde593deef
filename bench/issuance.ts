/**
 * Benchmark 1: certificate issuance, CSR to signed certificate, on one core.
 *
 * portcullis: parseCsr (PEM decode, structure, key policy, signature check) followed by
 * CertificateAuthority.issueLeaf (build, sign, encode). Baseline in the same run:
 * node-forge's own path for the same job (parse and verify the CSR, build the
 * certificate, cert.sign with an RSA-2048 key and SHA-256) — pure JavaScript RSA.
 * Also measured: the same with an RSA-2048 CA (like for like with the baseline), and the
 * PkiService level (renew: CSR + SQLite insert + audit row in one transaction; enroll:
 * token checks + CSR + token consumed + certificate stored + two audit rows).
 *
 * Target: >= 1,000 certificates/s (EC P-256 CA) on one core.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, createHash } from "node:crypto";
import forge from "node-forge";
import { DEFAULT_LIFETIMES, defaultConfig, formatIdentity, identityToSpiffe, parseIdentity, systemClock, type Identity } from "../src/core/index.js";
import { AuditLog } from "../src/audit/index.js";
import { Store } from "../src/store/index.js";
import {
  buildCsr,
  CertificateAuthority,
  generateKeyPair,
  parseCsr,
  PkiService,
  privateKeyPem,
  type CaKeyAlgorithm,
} from "../src/pki/index.js";
import { canPin, runBenchmark } from "./lib/proc.js";
import { cpuRate, judge, fmtRate, fmtRatio, median, rate, table, timedLoop, verdict, type BenchResult, type Sample } from "./lib/stats.js";

const TRUST_DOMAIN = "portcullis.local";
const REPS = 3;
const REP_MS = Number(process.env.BENCH_ISSUANCE_MS ?? 1500);
const WARM_MS = 400;
const MAX_OPS = 200_000;
const TARGET = 1000;

const identity: Identity = parseIdentity("service:bench-client");
const spiffe = identityToSpiffe(identity, TRUST_DOMAIN);
const actor = { identity: "service:bench" };

function csrPool(alg: CaKeyAlgorithm, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const kp = generateKeyPair(alg);
    out.push(buildCsr({ key: kp.privateKey, publicKey: kp.publicKey, commonName: formatIdentity(identity), san: [{ uri: spiffe }] }).pem);
  }
  return out;
}

/** portcullis, library level: parseCsr + issueLeaf. */
function oursCase(alg: CaKeyAlgorithm, csrs: readonly string[]): (durationMs: number) => Sample {
  const ca = CertificateAuthority.create(TRUST_DOMAIN, systemClock, DEFAULT_LIFETIMES, alg);
  const lifetimeMs = DEFAULT_LIFETIMES.service;
  return (durationMs) =>
    timedLoop(durationMs, MAX_OPS, (i) => {
      const parsed = parseCsr(csrs[i % csrs.length] as string);
      const leaf = ca.issueLeaf({ spki: parsed.spki, profile: "client", identity, lifetimeMs });
      if (leaf.der.length === 0) throw new Error("empty certificate");
    });
}

/** portcullis, service level, on a real SQLite file in a temporary data directory. */
function serviceCases(csrs: readonly string[]) {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-"));
  const store = Store.open(dir);
  const config = defaultConfig({ trustDomain: TRUST_DOMAIN });
  const ca = CertificateAuthority.create(TRUST_DOMAIN, systemClock, config.lifetimes, "ec-p256");
  const pki = new PkiService(ca, store, new AuditLog(store, systemClock, { trustDomain: TRUST_DOMAIN, hmacKey: randomBytes(32) }), systemClock, config);
  const renew = (durationMs: number): Sample =>
    timedLoop(durationMs, MAX_OPS, (i) => {
      pki.renew(identity, csrs[i % csrs.length] as string, actor);
    });
  const enroll = (durationMs: number): Sample => {
    // Tokens are made before the clock starts: enough for twice the target rate.
    const n = Math.ceil((durationMs / 1000) * TARGET * 2.5) + 50;
    const tokens: string[] = [];
    for (let i = 0; i < n; i++) tokens.push(pki.createEnrollToken(formatIdentity(identity), undefined, actor).token);
    return timedLoop(durationMs, tokens.length, (i) => {
      pki.enroll(tokens[i] as string, csrs[i % csrs.length] as string, { sourceAddress: "127.0.0.1" });
    });
  };
  const close = () => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { renew, enroll, close };
}

/**
 * node-forge's own CSR-to-certificate path, everything in forge: parse the PEM CSR,
 * verify its signature, read the requested URI SAN, build the certificate with the same
 * extensions, sign it (RSA-2048, SHA-256) and encode it.
 */
function forgeCase(csrs: readonly string[]): (durationMs: number) => Sample {
  const ca = CertificateAuthority.create(TRUST_DOMAIN, systemClock, DEFAULT_LIFETIMES, "rsa-2048");
  const caKey = forge.pki.privateKeyFromPem(privateKeyPem(ca.material.intermediateKey));
  const caCert = forge.pki.certificateFromPem(ca.intermediatePem);
  const aki = caCert.generateSubjectKeyIdentifier().getBytes();
  const lifetimeMs = DEFAULT_LIFETIMES.service;
  return (durationMs) =>
    timedLoop(durationMs, MAX_OPS, (i) => {
      const csr = forge.pki.certificationRequestFromPem(csrs[i % csrs.length] as string);
      if (!csr.verify()) throw new Error("forge: CSR signature");
      const pub = csr.publicKey as forge.pki.rsa.PublicKey | null;
      if (!pub || pub.n.bitLength() < 2048 || pub.e.intValue() !== 65537) throw new Error("forge: key policy");
      const ext = csr.getAttribute({ name: "extensionRequest" }) as { extensions?: { name: string; altNames?: { type: number; value: string }[] }[] } | null;
      const uri = ext?.extensions?.find((e) => e.name === "subjectAltName")?.altNames?.find((n) => n.type === 6)?.value;
      if (uri !== spiffe) throw new Error("forge: requested identity");
      const cert = forge.pki.createCertificate();
      cert.publicKey = pub;
      const serial = randomBytes(16);
      serial[0] = (serial[0] as number) & 0x7f;
      cert.serialNumber = serial.toString("hex");
      const now = Date.now();
      cert.validity.notBefore = new Date(now - 30_000);
      cert.validity.notAfter = new Date(now + lifetimeMs);
      cert.setSubject([{ shortName: "CN", value: formatIdentity(identity) }]);
      cert.setIssuer(caCert.subject.attributes);
      cert.setExtensions([
        { name: "basicConstraints", critical: true, cA: false },
        { name: "keyUsage", critical: true, digitalSignature: true },
        { name: "extKeyUsage", clientAuth: true },
        { name: "subjectAltName", altNames: [{ type: 6, value: uri }] },
        { name: "subjectKeyIdentifier" },
        { name: "authorityKeyIdentifier", keyIdentifier: aki },
      ]);
      cert.sign(caKey, forge.md.sha256.create());
      const der = forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes();
      const pem = forge.pki.certificateToPem(cert);
      const fp = createHash("sha256").update(Buffer.from(der, "binary")).digest("hex");
      if (pem.length === 0 || fp.length !== 64) throw new Error("forge: encoding");
    });
}

async function main(): Promise<BenchResult> {
  const ecCsrs = csrPool("ec-p256", 64);
  const rsaCsrs = csrPool("rsa-2048", 8);
  const svc = serviceCases(ecCsrs);
  const cases: { key: string; name: string; run: (ms: number) => Sample }[] = [
    { key: "ec", name: "portcullis parseCsr + issueLeaf, EC P-256 CA, P-256 CSRs", run: oursCase("ec-p256", ecCsrs) },
    { key: "rsa", name: "portcullis parseCsr + issueLeaf, RSA-2048 CA, RSA-2048 CSRs", run: oursCase("rsa-2048", rsaCsrs) },
    { key: "renew", name: "portcullis PkiService.renew (+ SQLite insert + audit), EC", run: svc.renew },
    { key: "enroll", name: "portcullis PkiService.enroll (+ token, insert, 2 audit), EC", run: svc.enroll },
    { key: "forge", name: "baseline: node-forge CSR -> cert, RSA-2048 sign (pure JS)", run: forgeCase(rsaCsrs) },
  ];
  try {
    for (const c of cases) c.run(WARM_MS);
    const runs = new Map<string, number[]>(cases.map((c) => [c.key, []]));
    const perCpu = new Map<string, number[]>(cases.map((c) => [c.key, []]));
    const shares: number[] = [];
    for (let r = 0; r < REPS; r++) {
      for (const c of cases) {
        const sample = c.run(REP_MS);
        runs.get(c.key)?.push(rate(sample));
        perCpu.get(c.key)?.push(cpuRate(sample));
        shares.push(sample.cpuMs / sample.ms);
      }
    }
    const m = (k: string) => median(runs.get(k) ?? []);
    const mc = (k: string) => median(perCpu.get(k) ?? []);
    const ours = m("ec");
    const title = `Benchmark 1: certificate issuance, CSR -> signed certificate, one core (${canPin() ? "taskset -c 0" : "not pinned"}; ${REPS} x ${REP_MS} ms, median)`;
    const j = judge(ours, mc("ec"), shares);
    const tbl = table(
      title,
      cases.map((c) => ({ name: c.name, runs: runs.get(c.key) ?? [], perCpu: perCpu.get(c.key) ?? [] })),
      [
        `ratio portcullis EC / node-forge:       ${fmtRatio(ours / m("forge"))}   (per CPU-s: ${fmtRatio(mc("ec") / mc("forge"))})`,
        `ratio portcullis RSA / node-forge:      ${fmtRatio(m("rsa") / m("forge"))}   (same algorithm as the baseline)`,
        `ratio PkiService.renew / library (EC):  ${fmtRatio(m("renew") / ours)}`,
        `target >= ${fmtRate(TARGET)}/s (portcullis, EC CA): ${fmtRate(j.value)}/s (${j.basis})  ${verdict(j.value, TARGET)}`,
        ...j.notes,
      ],
    );
    return {
      id: "issuance",
      title,
      table: tbl,
      summary: `issuance: ${fmtRate(ours)}/s vs node-forge ${fmtRate(m("forge"))}/s = ${fmtRatio(ours / m("forge"))}; target >= ${TARGET}/s ${verdict(j.value, TARGET)} (${j.basis})`,
      pass: j.value >= TARGET,
    };
  } finally {
    svc.close();
  }
}

runBenchmark(main);
