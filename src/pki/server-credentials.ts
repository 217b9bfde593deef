import { isIP } from "node:net";
import type { GatewayConfig } from "../core/index.js";
import { parseHostPort } from "../core/index.js";
import { writeFileAtomic, writeKeyFile } from "../store/index.js";
import { generateKeyPair, privateKeyPem, spkiDer } from "./keys.js";
import type { SanEntry } from "./certificate.js";
import { pkiPaths } from "./layout.js";

/** DNS and IP SANs for the gateway's server certificate. */
export function serverSans(config: Pick<GatewayConfig, "listen" | "bootstrapListen" | "sans">): SanEntry[] {
  const names = new Set<string>();
  for (const l of [config.listen, config.bootstrapListen]) {
    const { host } = parseHostPort(l);
    if (host === "0.0.0.0" || host === "::") continue;
    names.add(host);
    if (host === "127.0.0.1" || host === "::1" || host === "localhost") names.add("localhost");
  }
  for (const s of config.sans) names.add(s);
  return [...names].map((n) => (isIP(n) ? { ip: n } : { dns: n }));
}

/** Writes a freshly issued server key and certificate (with the chain) into the data dir. */
export function writeServerCredentials(dataDir: string, keyPem: string, certPem: string, chainPem: string): void {
  const p = pkiPaths(dataDir);
  writeKeyFile(p.serverKey, keyPem);
  writeFileAtomic(p.serverCert, certPem + chainPem, 0o644);
}

export function newServerKey() {
  const kp = generateKeyPair("ec-p256");
  return { keyPem: privateKeyPem(kp.privateKey), spki: spkiDer(kp.publicKey) };
}
