import { describe, expect, it } from "vitest";
import { containerSpecFor } from "../../src/runtime/index.js";
import { nodePlacement, replicaContainerName } from "../../src/runtime/replica-ops.js";
import { validateManifest } from "../../src/deploy/index.js";

const spec = validateManifest({
  apiVersion: "portcullis/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "payments" },
  spec: {
    image: `sha256:${"a".repeat(64)}`,
    user: "10001:10001",
    resources: { cpus: 0.25, memory: "64Mi", pids: 64 },
    runtime: "standard",
    network: { mode: "namespace", ports: [{ container: 8080, host: 18080 }] },
  },
}).spec;

function bindingOn(publishHost: string): unknown {
  const c = containerSpecFor(spec, {
    containerName: replicaContainerName("abcdef012345", "payments", "web", 1, 0),
    gatewayId: "abcdef012345",
    revision: 1,
    ordinal: 0,
    jti: "j".repeat(22),
    manifestDigest: `sha256:${"b".repeat(64)}`,
    imageId: `sha256:${"a".repeat(64)}`,
    user: "10001:10001",
    networkName: "pc-ns-payments",
    ...nodePlacement({ publishHost }),
  });
  return c.HostConfig?.PortBindings;
}

describe("where a node's replicas publish their ports", () => {
  it.each([
    ["127.0.0.1", false],
    ["10.0.0.7", false],
    ["::1", false],
    ["0.0.0.0", true],
    ["::", true],
  ])("publish host %s: every interface allowed = %s", (host, all) => {
    expect(nodePlacement({ publishHost: host })).toEqual({ publishHost: host, allowPublicBind: all });
  });

  it("binds the node's configured address, and 0.0.0.0 only where the node says so", () => {
    expect(bindingOn("127.0.0.1")).toEqual({ "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "18080" }] });
    expect(bindingOn("0.0.0.0")).toEqual({ "8080/tcp": [{ HostIp: "0.0.0.0", HostPort: "18080" }] });
  });

  it("gives each replica one name: gateway, namespace, deployment, revision, ordinal", () => {
    expect(replicaContainerName("abcdef012345", "payments", "web", 3, 1)).toBe("pc-abcdef012345-payments-web-r3-1");
  });
});
