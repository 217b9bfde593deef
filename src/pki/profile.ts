import { readFileSync, statSync } from "node:fs";
import { pcError, parseIdentity } from "../core/index.js";
import { writeFileAtomic } from "../store/index.js";

/**
 * A client profile: everything the CLI needs to talk to the gateway as one identity.
 * It holds a private key, so it is written 0600 and refused when readable by others.
 */
export interface ClientProfile {
  readonly version: 1;
  readonly identity: string;
  readonly server: string;
  readonly trustDomain: string;
  readonly caBundle: string;
  readonly certificate: string;
  readonly privateKey: string;
}

export function writeProfile(path: string, p: ClientProfile): void {
  writeFileAtomic(path, `${JSON.stringify(p, null, 2)}\n`, 0o600);
}

export function readProfile(path: string): ClientProfile {
  let text: string;
  try {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0) throw pcError("PC_CLI_PROFILE_INVALID", `${path} must be 0600: it holds a private key`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw pcError("PC_CLI_PROFILE_MISSING", path);
    throw e;
  }
  let p: Partial<ClientProfile>;
  try {
    p = JSON.parse(text) as Partial<ClientProfile>;
  } catch (e) {
    throw pcError("PC_CLI_PROFILE_INVALID", `${path} is not JSON`, e);
  }
  for (const k of ["identity", "server", "trustDomain", "caBundle", "certificate", "privateKey"] as const) {
    if (typeof p[k] !== "string" || p[k] === "") throw pcError("PC_CLI_PROFILE_INVALID", `${path}: missing ${k}`);
  }
  if (p.version !== 1) throw pcError("PC_CLI_PROFILE_INVALID", `${path}: unsupported version`);
  parseIdentity(p.identity as string);
  return p as ClientProfile;
}

