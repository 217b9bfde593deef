/**
 * The deploy vocabulary: the manifest as signed (`Manifest`), the manifest as the
 * gateway uses it (`DeploymentSpec`, units parsed and defaults applied), and the signed
 * request that carries it.
 *
 * The digest is always taken over the manifest as signed (its JSON data model, RFC 8785),
 * never over the normalized spec, so that what the requester signed is what an auditor
 * re-verifies.
 */

export const MANIFEST_API_VERSION = "portcullis/v1";
export const MANIFEST_KIND = "Deployment";

/** The JWS `typ` of a signed deploy request. */
export const DEPLOY_JWS_TYPE = "portcullis-deploy+jws";
/** The longest a signed request may live (exp - iat). */
export const MAX_REQUEST_LIFETIME_S = 300;

export const DEPLOY_OPERATIONS = ["create", "update", "scale", "delete"] as const;
export type DeployOperation = (typeof DEPLOY_OPERATIONS)[number];

/** `runtime: sandboxed` is gVisor (runsc); `standard` is runc. */
export type RuntimeClass = "sandboxed" | "standard";
export type NetworkMode = "none" | "namespace";

/** A manifest exactly as the requester wrote it (JSON data model); what is signed. */
export interface Manifest {
  readonly apiVersion: typeof MANIFEST_API_VERSION;
  readonly kind: typeof MANIFEST_KIND;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly spec: Readonly<Record<string, unknown>>;
}

export interface PortMapping {
  readonly container: number;
  readonly host: number;
  readonly protocol: "tcp" | "udp";
}

export interface HealthcheckSpec {
  readonly command: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
}

/**
 * A secret the deployment mounts as a file (spec.secrets[i]). The manifest schema checks
 * the types; where the path may point, that the secret exists and that the requester may
 * use it are admission's to judge (the secret-references check), and the runtime refuses
 * any path outside /run/secrets again on its own.
 */
export interface SecretMount {
  readonly name: string;
  readonly path: string;
  /** Absent: the latest version when the request is accepted (then pinned). */
  readonly version?: number;
  /** Only ever the deployment's own; any other is denied by admission. */
  readonly namespace?: string;
}

/** The manifest parsed: units resolved, defaults applied. What the runtime builds from. */
export interface DeploymentSpec {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** As written: `repo@sha256:<hex>`, `sha256:<hex>` (an image id), or `repo:tag`. */
  readonly image: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly workingDir?: string;
  readonly env: Readonly<Record<string, string>>;
  /** Numeric `uid:gid`, non-root; absent means the image's own user (which must not be root). */
  readonly user?: string;
  readonly replicas: number;
  readonly resources: { readonly nanoCpus: number; readonly memoryBytes: number; readonly pids: number };
  readonly runtime: RuntimeClass;
  readonly network: { readonly mode: NetworkMode; readonly ports: readonly PortMapping[] };
  readonly healthcheck?: HealthcheckSpec;
  readonly placement: { readonly nodeLabels: Readonly<Record<string, string>>; readonly spread: boolean };
  readonly update: { readonly maxSurge: number; readonly maxUnavailable: number };
  /** Secret files; empty when the manifest mounts none. */
  readonly secrets: readonly SecretMount[];
}

/** The payload of a signed deploy request. */
export interface DeployRequestClaims {
  readonly op: DeployOperation;
  readonly namespace: string;
  readonly name: string;
  readonly manifest: Manifest;
  /** `sha256:<hex>` of the RFC 8785 canonical form of `manifest`. */
  readonly manifestDigest: string;
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
}

/**
 * A signed request that passed every check: its form, header, signer, signature and
 * claims (verifyDeployRequest), then its digest and manifest (checkManifest). The replay
 * guard runs between the two.
 */
export interface VerifiedDeployRequest {
  readonly jws: string;
  readonly claims: DeployRequestClaims;
  readonly spec: DeploymentSpec;
  /** `user:alice`, from the signing certificate (which is the caller's). */
  readonly requester: string;
  /** The signing certificate, PEM (stored as evidence). */
  readonly signerCertificatePem: string;
  /** Hex SHA-256 of the JWS text. */
  readonly jwsSha256: string;
}

/**
 * A signed request after its form, header, signer, signature and claims were checked
 * (verifyDeployRequest), before the replay guard and before its manifest is checked.
 */
export type AuthenticatedDeployRequest = Omit<VerifiedDeployRequest, "spec">;
