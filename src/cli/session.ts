import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { identityToSpiffe, parseIdentity, pcError, resolveDataDir } from "../core/index.js";
import { buildCsr, generateKeyPair, renewalDue, privateKeyPem, readProfile, writeProfile, type ClientProfile, type IssuedBundle } from "../pki/index.js";
import { callJson, type TlsMaterial } from "./client.js";

/** Where the profile comes from: --profile, PORTCULLIS_PROFILE, or the default data dir's admin profile. */
export function resolveProfilePath(flag?: string): string {
  return flag ?? process.env.PORTCULLIS_PROFILE ?? join(resolveDataDir(), "admin.profile.json");
}

export function tlsOf(p: ClientProfile): TlsMaterial {
  return { ca: p.caBundle, cert: p.certificate, key: p.privateKey };
}

/** An authenticated session: the profile, renewed first if two thirds of its life are gone. */
export class Session {
  private constructor(
    readonly path: string,
    public profile: ClientProfile,
  ) {}

  static async open(path: string, now = new Date()): Promise<Session> {
    const s = new Session(path, readProfile(path));
    if (s.renewalDue(now)) await s.renew();
    return s;
  }

  renewalDue(now: Date): boolean {
    const x = new X509Certificate(this.profile.certificate);
    const to = new Date(x.validTo);
    // An expired certificate cannot authenticate its own renewal.
    return renewalDue(new Date(x.validFrom), to, now) && now < to;
  }

  call<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    return callJson<T>(this.profile.server, method, path, tlsOf(this.profile), body, timeoutMs);
  }

  /** Renews for a new key and rewrites the profile atomically. */
  async renew(): Promise<IssuedBundle> {
    const kp = generateKeyPair("ec-p256");
    const { pem } = buildCsr({
      key: kp.privateKey,
      publicKey: kp.publicKey,
      commonName: this.profile.identity,
      san: [{ uri: identityToSpiffe(parseIdentity(this.profile.identity), this.profile.trustDomain) }],
    });
    const issued = await this.call<IssuedBundle>("POST", "/v1/certificates/renew", { csr: pem });
    if (issued.identity !== this.profile.identity) throw pcError("PC_CLI_BAD_RESPONSE", "renewed certificate names another identity");
    this.profile = { ...this.profile, certificate: issued.certificate + issued.chain, privateKey: privateKeyPem(kp.privateKey) };
    writeProfile(this.path, this.profile);
    return issued;
  }
}
