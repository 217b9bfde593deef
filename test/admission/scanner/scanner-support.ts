/**
 * Scan results built by hand for the image-scan check and the cache: findings with the
 * fields a scanner fills, an inventory summary, a database.
 */
import type { ScanFinding, ScanResult } from "../../../src/admission/scanner/index.js";

export const IMAGE_A = `sha256:${"a".repeat(64)}`;
export const IMAGE_B = `sha256:${"b".repeat(64)}`;

export function finding(o: Partial<ScanFinding> & Pick<ScanFinding, "id">): ScanFinding {
  return {
    aliases: [],
    package: "openssl",
    ecosystem: "Debian:12",
    installed: "3.0.11-1~deb12u1",
    fixed: "3.0.11-1~deb12u2",
    severity: { level: "high", score: 7.5 },
    sourceFile: "/var/lib/dpkg/status",
    ...o,
  };
}

export function scanResult(findings: readonly ScanFinding[], o: Partial<ScanResult> = {}): ScanResult {
  return {
    imageId: IMAGE_A,
    scanner: "builtin",
    sbom: {
      bomFormat: "CycloneDX",
      specVersion: "1.5",
      serialNumber: "urn:uuid:00000000-0000-4000-8000-000000000000",
      version: 1,
      metadata: { timestamp: "2026-06-01T00:00:00.000Z", tools: { components: [] }, component: { type: "container", name: IMAGE_A } },
      components: [],
    },
    inventory: { packages: { Debian: 7, npm: 3 }, total: 10, os: "debian 12" },
    findings,
    database: { source: "osv.zip", version: "3", builtAt: "2026-05-30T00:00:00.000Z" },
    scannedAt: "2026-06-01T00:00:00.000Z",
    ...o,
  };
}
