import { generateKeyPairSync } from "node:crypto";
import { DEPLOY_ACCEPTED_TYPE, type EntryBody, type SignedRequestRecord } from "../../src/audit/format.js";
import { MemoryAuditSource } from "../../src/audit/memory-source.js";
import { entryParts } from "../../src/audit/redact.js";
import { manifestDigest, signDeployRequest, type Manifest } from "../../src/deploy/index.js";
import { derToPem, spkiDer } from "../../src/pki/index.js";
import { auditSigner, makePki, signCheckpoint, START, TD, type Pki, type Signer } from "./support.js";

/**
 * Signed deploy requests as the gateway keeps them, for the export and verify tests:
 * client certificates from a real CA, requests signed with the deploy domain's own
 * `signDeployRequest`, and a log that records their acceptance.
 */

export const HMAC_KEY = Buffer.alloc(32, 9);
export const DAY = 86_400_000;

export interface Client {
  readonly identity: string;
  readonly keyPem: string;
  readonly certPem: string;
}

/** A P-256 key and a client certificate for `user:<name>` issued by `pki.ca`. */
export function client(pki: Pki, name: string): Client {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = pki.ca.issueLeaf({ spki: spkiDer(publicKey), profile: "client", identity: { kind: "user", name }, lifetimeMs: 30 * DAY });
  return { identity: `user:${name}`, keyPem: privateKey.export({ format: "pem", type: "pkcs8" }) as string, certPem: derToPem(leaf.der, "CERTIFICATE") };
}

export function manifest(namespace: string, name: string, image = "registry.local/web@sha256:" + "1".repeat(64)): Manifest {
  return { apiVersion: "portcullis/v1", kind: "Deployment", metadata: { name, namespace }, spec: { image, replicas: 2, runtime: "sandboxed" } };
}

export interface SignedRequest extends SignedRequestRecord {
  readonly manifest: Manifest;
}

/** Signs a create request as `who` and returns it as the store would hold it. */
export async function signedRequest(who: Client, ns: string, name: string, jti: string, receivedAt: number, td = TD): Promise<SignedRequest> {
  const m = manifest(ns, name);
  const jws = await signDeployRequest({ op: "create", manifest: m, trustDomain: td, privateKeyPem: who.keyPem, certificatePem: who.certPem, now: new Date(receivedAt), jti });
  return { jti, requester: who.identity, operation: "create", namespace: ns, name, digest: manifestDigest(m), jws, signerCertificatePem: who.certPem, receivedAt, manifest: m };
}

/** The body the deploy domain writes when it accepts a request, through the real redaction. */
export function acceptanceBody(r: Pick<SignedRequestRecord, "jti" | "digest" | "requester" | "namespace">, digest = r.digest): EntryBody {
  return entryParts(
    { type: DEPLOY_ACCEPTED_TYPE, outcome: "allowed", actor: r.requester, resource: "deployments", namespace: r.namespace, target: r.jti, deploy: { jti: r.jti, digest } },
    HMAC_KEY,
  ).body;
}

export interface DeployLog {
  readonly pki: Pki;
  readonly signer: Signer;
  readonly source: MemoryAuditSource;
  readonly alice: Client;
  readonly bob: Client;
  /** Accepted in the log: alice's in team-a, bob's in team-b. */
  readonly requests: readonly SignedRequest[];
  readonly timeOf: (i: number) => string;
}

export const JTI_ALICE = "alice-request-000001";
export const JTI_BOB = "bob-request-00000002";

/**
 * genesis; an API request; alice's request accepted (team-a); an API request; bob's
 * request accepted (team-b); a last API request; one checkpoint over the end.
 * `acceptedDigest` replaces the digest alice's acceptance entry records.
 */
export async function buildDeployLog(o: { acceptedDigest?: string; acceptAlice?: boolean } = {}): Promise<DeployLog> {
  const pki = makePki();
  const signer = auditSigner(pki);
  const source = new MemoryAuditSource(TD, pki.ca.rootFingerprint, [derToPem(pki.ca.material.rootDer, "CERTIFICATE"), pki.ca.intermediatePem, signer.leafPem]);
  const timeOf = (i: number) => new Date(START + i * 1000).toISOString();
  const alice = client(pki, "alice");
  const bob = client(pki, "bob");
  const ra = await signedRequest(alice, "team-a", "web", JTI_ALICE, START + 2000);
  const rb = await signedRequest(bob, "team-b", "api", JTI_BOB, START + 4000);
  const api = (i: number, actor: string) =>
    source.append({ time: timeOf(i), type: "api.request", outcome: "allowed", actor, action: "POST /v1/deployments", resource: "deployments" }, { status: 200, requestId: `r${i}` });
  source.append({ time: timeOf(0), type: "audit.genesis", outcome: "allowed", actor: "service:gateway" }, { genesis: { trustDomain: TD, caFingerprint: pki.ca.rootFingerprint } });
  api(1, "user:carol");
  if (o.acceptAlice !== false) {
    source.append({ time: timeOf(2), type: DEPLOY_ACCEPTED_TYPE, outcome: "allowed", actor: alice.identity, resource: "deployments", namespace: "team-a" }, acceptanceBody(ra, o.acceptedDigest));
  }
  api(3, "user:carol");
  source.append({ time: timeOf(4), type: DEPLOY_ACCEPTED_TYPE, outcome: "allowed", actor: bob.identity, resource: "deployments", namespace: "team-b" }, acceptanceBody(rb));
  const last = api(5, "user:carol");
  source.addCheckpoint(last.head.seq, await signCheckpoint(signer, { seq: last.head.seq, hash: last.hash, time: timeOf(6), trustDomain: TD }));
  source.addSignedRequest(ra);
  source.addSignedRequest(rb);
  return { pki, signer, source, alice, bob, requests: [ra, rb], timeOf };
}
