import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from "node:crypto";
import { parseIdentity } from "../../src/core/index.js";
import { manifestDigest, type DeployRequestClaims, type Manifest } from "../../src/deploy/index.js";
import { certificatesFromPem, generateKeyPair, privateKeyPem, spkiDer } from "../../src/pki/index.js";
import { pkiFixture, TD, type PkiFixture } from "../pki/fixture.js";

export { TD };

/** A caller: a key and a client certificate from the fixture's real CA. */
export interface Caller {
  readonly identity: string;
  readonly key: KeyObject;
  readonly keyPem: string;
  /** Leaf then intermediate, as a client holds it. */
  readonly certPem: string;
  readonly certDer: Buffer;
}

export interface DeployFixture {
  readonly pki: PkiFixture;
  readonly now: () => Date;
  issue(identity: string, kind?: "ec-p256" | "ed25519" | "rsa-2048"): Caller;
  close(): void;
}

export function deployFixture(): DeployFixture {
  const pki = pkiFixture();
  return {
    pki,
    now: () => pki.clock.now(),
    issue(identity, kind = "ec-p256") {
      const kp =
        kind === "ed25519" ? generateKeyPairSync("ed25519") : generateKeyPair(kind === "rsa-2048" ? "rsa-2048" : "ec-p256");
      const id = parseIdentity(identity);
      // Ed25519 keys are not taken through enrollment; the CA itself can still certify one.
      const certPem =
        kind === "ed25519"
          ? pki.ca.issueLeaf({ spki: spkiDer(kp.publicKey), profile: "client", identity: id, lifetimeMs: 3_600_000 }).pem + pki.ca.intermediatePem
          : ((b) => b.certificate + b.chain)(pki.pki.issueClient(id, spkiDer(kp.publicKey), { identity: "service:test" }));
      const certDer = certificatesFromPem(certPem)[0] as Buffer;
      return { identity, key: kp.privateKey, keyPem: privateKeyPem(kp.privateKey), certPem, certDer };
    },
    close: () => pki.close(),
  };
}

export const DIGEST_A = `sha256:${"a".repeat(64)}`;

export function goodManifest(): Manifest {
  return {
    apiVersion: "portcullis/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "payments", labels: { app: "web", "example.com/tier": "front" } },
    spec: {
      image: `registry.local:5000/team/web@${DIGEST_A}`,
      command: ["/bin/web"],
      args: ["--port", "8080"],
      workingDir: "/srv",
      env: { LOG_LEVEL: "info" },
      user: "1000:1000",
      replicas: 2,
      resources: { cpus: 0.5, memory: "128Mi", pids: 256 },
      runtime: "sandboxed",
      network: { mode: "namespace", ports: [{ container: 8080, host: 18080 }] },
      healthcheck: { command: ["/bin/web", "--check"], interval: "10s", timeout: "2s", retries: 5, startPeriod: "1s" },
      placement: { nodeLabels: { zone: "a" }, spread: false },
      update: { maxSurge: 2, maxUnavailable: 1 },
    },
  };
}

const b64 = (v: unknown): string => Buffer.from(typeof v === "string" ? v : JSON.stringify(v), "utf8").toString("base64url");

/**
 * Builds a compact JWS by hand, with any header and payload, so that tokens the signing
 * libraries refuse to produce can be sent. `key` signs per `header.alg`: ES256 (P-256),
 * EdDSA, RS256, HS256 (a Buffer secret); no key: an empty signature.
 */
export function handSigned(header: Record<string, unknown> | string, payload: unknown, key?: KeyObject | Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const alg = typeof header === "string" ? "ES256" : header.alg;
  let sig = Buffer.alloc(0);
  if (Buffer.isBuffer(key)) sig = createHmac("sha256", key).update(input).digest();
  else if (key && alg === "EdDSA") sig = cryptoSign(null, Buffer.from(input), key);
  else if (key && alg === "RS256") sig = cryptoSign("sha256", Buffer.from(input), key);
  else if (key) sig = cryptoSign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return `${input}.${sig.toString("base64url")}`;
}

/** Claims for `manifest`, valid at `now`, with overrides. */
export function claimsFor(manifest: Manifest, now: Date, over: Partial<Record<keyof DeployRequestClaims, unknown>> = {}): Record<string, unknown> {
  const iat = Math.floor(now.getTime() / 1000);
  return {
    op: "create",
    namespace: manifest.metadata.namespace,
    name: manifest.metadata.name,
    manifest,
    manifestDigest: manifestDigest(manifest),
    aud: TD,
    iat,
    exp: iat + 120,
    jti: "jti-0123456789abcdef",
    ...over,
  };
}
