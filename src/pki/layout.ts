import { join } from "node:path";

/** Where PKI material lives inside a data directory. */
export function pkiPaths(dataDir: string) {
  return {
    rootCert: join(dataDir, "ca", "root.crt"),
    rootKey: join(dataDir, "ca", "root.key"),
    intermediateCert: join(dataDir, "ca", "intermediate.crt"),
    intermediateKey: join(dataDir, "ca", "intermediate.key"),
    /** The engine-client CA: issues only the gateway's client certificate for engines. */
    engineClientCaCert: join(dataDir, "ca", "engine-client-ca.crt"),
    engineClientCaKey: join(dataDir, "ca", "engine-client-ca.key"),
    serverCert: join(dataDir, "server", "server.crt"),
    serverKey: join(dataDir, "server", "server.key"),
    /** The gateway's client certificate (service:gateway) for TCP engines, and its key. */
    gatewayClientCert: join(dataDir, "server", "gateway-client.crt"),
    gatewayClientKey: join(dataDir, "server", "gateway-client.key"),
    adminProfile: join(dataDir, "admin.profile.json"),
    config: join(dataDir, "config.json"),
  };
}
