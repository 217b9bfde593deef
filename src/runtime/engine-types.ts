/** The shapes the engine hands out and takes (see engine.ts). */
export interface DockerEngineOptions {
  /** Unix socket of a local engine; the default when no host is given. */
  readonly socketPath?: string;
  /** A remote engine, reached over TLS with a client certificate. */
  readonly host?: string;
  readonly port?: number;
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /**
   * A remote engine's certificate must also carry this URI SAN (its node identity,
   * `spiffe://<trust domain>/node/<name>`), besides the host name or address.
   */
  readonly serverUri?: string;
  /** Timeout of each API request (not of a container's run); default 30 s. */
  readonly requestTimeoutMs?: number;
}

export interface EngineVersion {
  readonly version: string;
  readonly apiVersion: string;
  readonly os: string;
  readonly arch: string;
  readonly kernelVersion: string;
}

export interface EngineInfo {
  readonly runtimes: readonly string[];
  readonly cpus: number;
  readonly memoryBytes: number;
  readonly serverVersion: string;
}

/** What the runtime needs to know about one container. */
export interface ContainerState {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** created, running, paused, restarting, removing, exited, dead */
  readonly status: string;
  readonly running: boolean;
  readonly restarting: boolean;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  /** starting, healthy or unhealthy, when the container has a healthcheck. */
  readonly health: string | undefined;
  readonly restartCount: number;
  /** The OCI runtime the engine used (runc, runsc). */
  readonly runtime: string;
  readonly imageId: string;
}

export interface ContainerSummary {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: string;
  /** The engine's status text ("Up 5 minutes (healthy)", "Exited (0) 2 seconds ago"). */
  readonly status: string;
}

/** Configuration an imported image is given besides its labels. */
export interface ImportedImageConfig {
  /** The image's USER: a name or uid, with an optional group. */
  readonly user?: string;
  /** The image's CMD (exec form). */
  readonly cmd?: readonly string[];
}

export interface RunOnceOptions {
  /** The container is killed and removed if it has not exited by then. */
  readonly timeoutMs: number;
  /** Output kept per stream; the rest is dropped and `truncated` is set. Default 1 MiB. */
  readonly maxOutputBytes?: number;
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
}
