/**
 * Images and networks of one engine, read and written through dockerode. The engine
 * (engine.ts) calls these and turns what they throw into the runtime's errors; an absent
 * object is a value (undefined, false), not an error.
 */
import type Docker from "dockerode";
import { statusCode } from "./engine-support.js";

/** What the runtime needs to know about one image. */
export interface ImageDetails {
  /** `sha256:<hex>`, the image id (the digest of its configuration). */
  readonly id: string;
  /** The image's configured user, as written in the image ("" when it sets none). */
  readonly user: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

/** What the runtime needs to know about one network. */
export interface NetworkDetails {
  readonly id: string;
  readonly name: string;
  readonly driver: string;
  /** ISO time the engine created the network. */
  readonly created: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly options: Readonly<Record<string, string>>;
  readonly internal: boolean;
}

export interface NetworkCreateSpec {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Driver options, for example com.docker.network.bridge.enable_icc. */
  readonly options: Readonly<Record<string, string>>;
}

export async function inspectImage(docker: Docker, ref: string): Promise<ImageDetails | undefined> {
  try {
    const info = await docker.getImage(ref).inspect();
    const config = (info.Config ?? {}) as { User?: unknown; Labels?: unknown };
    return {
      id: info.Id,
      user: typeof config.User === "string" ? config.User : "",
      repoTags: info.RepoTags ?? [],
      repoDigests: info.RepoDigests ?? [],
      labels: (config.Labels ?? {}) as Record<string, string>,
    };
  } catch (e) {
    if (statusCode(e) === 404) return undefined;
    throw e;
  }
}

function toNetwork(n: Docker.NetworkInspectInfo): NetworkDetails {
  return {
    id: n.Id,
    name: n.Name,
    driver: n.Driver,
    created: n.Created,
    labels: n.Labels ?? {},
    options: n.Options ?? {},
    internal: n.Internal === true,
  };
}

/** Networks that carry every one of the labels (each "key" or "key=value"). */
export async function listNetworks(docker: Docker, labels: readonly string[]): Promise<NetworkDetails[]> {
  const list = await docker.listNetworks({ filters: { label: [...labels] } });
  return list.map(toNetwork);
}

export async function inspectNetwork(docker: Docker, idOrName: string): Promise<NetworkDetails | undefined> {
  try {
    return toNetwork((await docker.getNetwork(idOrName).inspect()) as Docker.NetworkInspectInfo);
  } catch (e) {
    if (statusCode(e) === 404) return undefined;
    throw e;
  }
}

/** Creates a bridge network; undefined when a network of that name already exists. */
export async function createBridgeNetwork(docker: Docker, spec: NetworkCreateSpec): Promise<string | undefined> {
  try {
    const network = await docker.createNetwork({
      Name: spec.name,
      CheckDuplicate: true,
      Driver: "bridge",
      Internal: false,
      Attachable: false,
      EnableIPv6: false,
      Labels: { ...spec.labels },
      Options: { ...spec.options },
    });
    return network.id;
  } catch (e) {
    if (statusCode(e) === 409) return undefined;
    throw e;
  }
}

export type NetworkRemoval = "removed" | "absent" | "in-use";

/** Removes a network; "in-use" while a running container is attached to it. */
export async function removeNetwork(docker: Docker, id: string): Promise<NetworkRemoval> {
  try {
    await docker.getNetwork(id).remove();
    return "removed";
  } catch (e) {
    const status = statusCode(e);
    if (status === 404) return "absent";
    if (status === 403 || status === 409) return "in-use";
    throw e;
  }
}

/** Ids of the containers (running or not) attached to a network. */
export async function containersOnNetwork(docker: Docker, networkId: string): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { network: [networkId] } });
  return list.map((c) => c.Id);
}
