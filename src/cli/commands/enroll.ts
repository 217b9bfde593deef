import { createHash, X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { formatIdentity, identityFromSpiffe, pcError } from "../../core/index.js";
import { buildCsr, certificatesFromPem, generateKeyPair, parseFingerprint, privateKeyPem, spiffeIdOfToken, writeProfile, type IssuedBundle } from "../../pki/index.js";
import { callJson, httpsCall } from "../client.js";

export interface EnrollOptions {
  readonly token: string;
  readonly server: string;
  readonly caFingerprint: string;
  readonly profileOut?: string;
}

/**
 * Enrollment, keeping the private key here: fetch the CA bundle, accept it only if its
 * root matches the pinned fingerprint, then talk to the server with full verification
 * against that root, send a CSR for the token's identity, and write the profile (0600).
 */
export async function enroll(opts: EnrollOptions): Promise<{ profile: string; identity: string; serial: string; notAfter: string; server: string }> {
  const pin = parseFingerprint(opts.caFingerprint);
  const spiffe = spiffeIdOfToken(opts.token.trim());
  const m = /^spiffe:\/\/([^/]+)\//.exec(spiffe);
  if (!m) throw pcError("PC_PKI_TOKEN_INVALID");
  const trustDomain = m[1] as string;
  const identity = formatIdentity(identityFromSpiffe(spiffe, trustDomain));
  const out = opts.profileOut ?? `${identity.replace(":", "-")}.profile.json`;
  if (existsSync(out)) throw pcError("PC_CLI_USAGE", `${out} exists; choose another --profile-out`);

  // The bundle is fetched without verification, then trusted only if the pin matches.
  const r = await httpsCall(opts.server, "GET", "/v1/ca.pem", { insecureSkipVerify: true });
  if (r.status !== 200) throw pcError("PC_CLI_BAD_RESPONSE", `CA bundle: HTTP ${r.status}`);
  const certs = certificatesFromPem(r.body.toString("utf8"));
  const root = certs.find((c) => {
    const x = new X509Certificate(c);
    return x.ca && x.checkIssued(x) && createHash("sha256").update(c).digest("hex") === pin;
  });
  if (!root) throw pcError("PC_PKI_CA_FINGERPRINT_MISMATCH");
  // Trust only the pinned root, and keep only intermediates it really signed.
  const rootX = new X509Certificate(root);
  const trusted = [rootX, ...certs.map((c) => new X509Certificate(c)).filter((x) => x.ca && !x.checkIssued(x) && x.verify(rootX.publicKey))];
  const caBundle = trusted.map((x) => x.toString()).join("");

  const kp = generateKeyPair("ec-p256");
  const { pem } = buildCsr({ key: kp.privateKey, publicKey: kp.publicKey, commonName: identity, san: [{ uri: spiffe }] });
  const issued = await callJson<IssuedBundle & { apiAddress: string }>(opts.server, "POST", "/v1/enroll", { ca: rootX.toString() }, { token: opts.token.trim(), csr: pem });

  const cert = new X509Certificate(issued.certificate);
  if (!cert.checkPrivateKey(kp.privateKey)) throw pcError("PC_CLI_BAD_RESPONSE", "issued certificate is not for our key");
  if (issued.identity !== identity) throw pcError("PC_CLI_BAD_RESPONSE", "issued certificate names another identity");
  writeProfile(out, {
    version: 1,
    identity,
    server: issued.apiAddress,
    trustDomain,
    caBundle,
    certificate: issued.certificate + issued.chain,
    privateKey: privateKeyPem(kp.privateKey),
  });
  return { profile: out, identity, serial: issued.serial, notAfter: issued.notAfter, server: issued.apiAddress };
}
