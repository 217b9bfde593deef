import { join } from "node:path";

/** Where PKI material lives inside a data directory. */
export function pkiPaths(dataDir: string) {
  return {
    rootCert: join(dataDir, "ca", "root.crt"),
    rootKey: join(dataDir, "ca", "root.key"),
    intermediateCert: join(dataDir, "ca", "intermediate.crt"),
    intermediateKey: join(dataDir, "ca", "intermediate.key"),
    serverCert: join(dataDir, "server", "server.crt"),
    serverKey: join(dataDir, "server", "server.key"),
    /** The gateway's client certificate (service:gateway) for TCP engines, and its key. */
    gatewayClientCert: join(dataDir, "server", "gateway-client.crt"),
    gatewayClientKey: join(dataDir, "server", "gateway-client.key"),
    adminProfile: join(dataDir, "admin.profile.json"),
    config: join(dataDir, "config.json"),
  };
}
