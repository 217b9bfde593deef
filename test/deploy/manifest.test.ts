import { describe, expect, it } from "vitest";
import { parseManifest, validateManifest, type ManifestIssue } from "../../src/deploy/index.js";
import { refusal } from "../support/refusal.js";
import { DIGEST_A, goodManifest } from "./fixture.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the table edits arbitrary paths
type M = Record<string, any>;

/** The good manifest with one change. */
function variant(change: (m: M) => void): M {
  const m = structuredClone(goodManifest()) as M;
  change(m);
  return m;
}

const many = (n: number, f: (i: number) => [string, string]) => Object.fromEntries(Array.from({ length: n }, (_, i) => f(i)));

// [name, change, field path, reason]
const INVALID: [string, (m: M) => void, string, RegExp][] = [
  ["unknown top-level field", (m) => (m.status = {}), "status", /^unknown field \(allowed: apiVersion, kind, metadata, spec\)$/],
  ["unknown metadata field", (m) => (m.metadata.uid = "x"), "metadata.uid", /^unknown field/],
  ["unknown spec field", (m) => (m.spec.restartPolicy = "Always"), "spec.restartPolicy", /^unknown field \(allowed: image,/],
  ["unknown resources field", (m) => (m.spec.resources.disk = "1Gi"), "spec.resources.disk", /^unknown field/],
  ["unknown network field", (m) => (m.spec.network.dns = ["1.1.1.1"]), "spec.network.dns", /^unknown field/],
  ["unknown port field", (m) => (m.spec.network.ports[0].hostIp = "0.0.0.0"), "spec.network.ports[0].hostIp", /^unknown field/],
  ["unknown healthcheck field", (m) => (m.spec.healthcheck.test = ["x"]), "spec.healthcheck.test", /^unknown field/],
  ["unknown placement field", (m) => (m.spec.placement.affinity = {}), "spec.placement.affinity", /^unknown field/],
  ["unknown update field", (m) => (m.spec.update.strategy = "x"), "spec.update.strategy", /^unknown field/],
  ["privileged", (m) => (m.spec.privileged = true), "spec.privileged", /^unknown field \(privileged containers are never allowed\)$/],
  ["capability add", (m) => (m.spec.capAdd = ["NET_ADMIN"]), "spec.capAdd", /^unknown field \(capabilities are set by the gateway/],
  ["volumes", (m) => (m.spec.volumes = [{ hostPath: "/" }]), "spec.volumes", /^unknown field \(host paths and volumes are never allowed\)$/],
  ["host path", (m) => (m.spec.hostPath = "/var/run/docker.sock"), "spec.hostPath", /host paths and volumes are never allowed/],
  ["host network", (m) => (m.spec.hostNetwork = true), "spec.hostNetwork", /host namespaces are never allowed/],
  ["host network inside network", (m) => (m.spec.network.hostNetwork = true), "spec.network.hostNetwork", /host namespaces are never allowed/],
  ["devices", (m) => (m.spec.devices = ["/dev/kvm"]), "spec.devices", /devices are never allowed/],
  ["security context", (m) => (m.spec.securityContext = {}), "spec.securityContext", /security options are set by the gateway/],
  ["wrong apiVersion", (m) => (m.apiVersion = "v1"), "apiVersion", /^must be "portcullis\/v1"$/],
  ["wrong kind", (m) => (m.kind = "Pod"), "kind", /^must be "Deployment"$/],
  ["missing metadata", (m) => delete m.metadata, "metadata", /^is required$/],
  ["missing name", (m) => delete m.metadata.name, "metadata.name", /^is required$/],
  ["non-DNS name", (m) => (m.metadata.name = "Web_1"), "metadata.name", /^must be a DNS label/],
  ["name too long", (m) => (m.metadata.name = "a".repeat(64)), "metadata.name", /^must be a DNS label/],
  ["name ends with dash", (m) => (m.metadata.name = "web-"), "metadata.name", /^must be a DNS label/],
  ["name not a string", (m) => (m.metadata.name = 7), "metadata.name", /^must be a string$/],
  ["non-DNS namespace", (m) => (m.metadata.namespace = "pay.ments"), "metadata.namespace", /^must be a DNS label/],
  ["reserved label", (m) => (m.metadata.labels = { "io.portcullis.owner": "me" }), 'metadata.labels["io.portcullis.owner"]', /reserved/],
  ["bad label key", (m) => (m.metadata.labels = { "-x": "y" }), 'metadata.labels["-x"]', /^must be a label key/],
  ["long label value", (m) => (m.metadata.labels = { app: "v".repeat(64) }), "metadata.labels.app", /must be at most 63 bytes/],
  ["bad label value", (m) => (m.metadata.labels = { app: "a b" }), "metadata.labels.app", /^must be empty or up to 63/],
  ["too many labels", (m) => (m.metadata.labels = many(33, (i) => [`k${i}`, "v"])), "metadata.labels", /^must have at most 32 entries$/],
  ["labels not a map", (m) => (m.metadata.labels = ["a"]), "metadata.labels", /^must be a map$/],
  ["missing image", (m) => delete m.spec.image, "spec.image", /^is required$/],
  ["image with white space", (m) => (m.spec.image = "web :1"), "spec.image", /^must not contain white space$/],
  ["image upper case", (m) => (m.spec.image = "Web/App:1"), "spec.image", /^must be repo@sha256/],
  ["image short digest", (m) => (m.spec.image = "web@sha256:abc"), "spec.image", /^must be repo@sha256/],
  ["image too long", (m) => (m.spec.image = `${"a".repeat(511)}:1`), "spec.image", /^must be at most 512 characters$/],
  ["image a number", (m) => (m.spec.image = 5), "spec.image", /^must be a string$/],
  ["command not a list", (m) => (m.spec.command = "/bin/sh -c x"), "spec.command", /^must be a list of strings$/],
  ["command item a number", (m) => (m.spec.command = ["/bin/x", 1]), "spec.command[1]", /^must be a string$/],
  ["args item with NUL", (m) => (m.spec.args = ["a\0b"]), "spec.args[0]", /^must not contain NUL$/],
  ["args too many", (m) => (m.spec.args = Array(257).fill("x")), "spec.args", /^must have at most 256 items$/],
  ["relative workingDir", (m) => (m.spec.workingDir = "srv"), "spec.workingDir", /^must be an absolute path$/],
  ["workingDir with ..", (m) => (m.spec.workingDir = "/srv/../etc"), "spec.workingDir", /^must not contain '\.\.'$/],
  ["env bad name", (m) => (m.spec.env = { "1X": "v" }), "spec.env[\"1X\"]", /^must be a variable name/],
  ["env value not a string", (m) => (m.spec.env = { PORT: 8080 }), "spec.env.PORT", /^must be a string$/],
  ["env value too large", (m) => (m.spec.env = { BIG: "x".repeat(32 * 1024 + 1) }), "spec.env.BIG", /^must be at most 32768 bytes$/],
  ["env too many", (m) => (m.spec.env = many(129, (i) => [`V${i}`, "x"])), "spec.env", /^must have at most 128 entries$/],
  ["user root", (m) => (m.spec.user = "0:0"), "spec.user", /^must not be root/],
  ["user gid root", (m) => (m.spec.user = "1000:0"), "spec.user", /^must not be root/],
  ["user by name", (m) => (m.spec.user = "nobody"), "spec.user", /^must be numeric "uid:gid"$/],
  ["user huge", (m) => (m.spec.user = "3000000000:1"), "spec.user", /^uid and gid must be at most 2147483647$/],
  ["negative replicas", (m) => (m.spec.replicas = -1), "spec.replicas", /^must be between 0 and 64$/],
  ["too many replicas", (m) => (m.spec.replicas = 65), "spec.replicas", /^must be between 0 and 64$/],
  ["fractional replicas", (m) => (m.spec.replicas = 1.5), "spec.replicas", /^must be an integer$/],
  ["replicas as a string", (m) => (m.spec.replicas = "2"), "spec.replicas", /^must be an integer$/],
  ["missing resources", (m) => delete m.spec.resources, "spec.resources", /^is required$/],
  ["missing pids", (m) => delete m.spec.resources.pids, "spec.resources.pids", /^is required$/],
  ["negative cpus", (m) => (m.spec.resources.cpus = -1), "spec.resources.cpus", /^must be more than 0 and at most 64$/],
  ["zero cpus", (m) => (m.spec.resources.cpus = 0), "spec.resources.cpus", /^must be more than 0/],
  ["huge cpus", (m) => (m.spec.resources.cpus = 1000), "spec.resources.cpus", /^must be more than 0 and at most 64$/],
  ["cpus with 4 decimals", (m) => (m.spec.resources.cpus = 0.0001), "spec.resources.cpus", /^must have at most 3 decimals$/],
  ["cpus as a string", (m) => (m.spec.resources.cpus = "1"), "spec.resources.cpus", /^must be a number of CPUs/],
  ["negative memory", (m) => (m.spec.resources.memory = "-128Mi"), "spec.resources.memory", /^must be a quantity like 128Mi/],
  ["memory in MB", (m) => (m.spec.resources.memory = "128MB"), "spec.resources.memory", /^must be a quantity like 128Mi/],
  ["memory in Ti", (m) => (m.spec.resources.memory = "1Ti"), "spec.resources.memory", /^must be a quantity like 128Mi/],
  ["memory too small", (m) => (m.spec.resources.memory = "5Mi"), "spec.resources.memory", /^must be between 6Mi and 256Gi$/],
  ["memory too large", (m) => (m.spec.resources.memory = "300Gi"), "spec.resources.memory", /^must be between 6Mi and 256Gi$/],
  ["memory bytes too small", (m) => (m.spec.resources.memory = 1024), "spec.resources.memory", /^must be between 6Mi and 256Gi$/],
  ["zero pids", (m) => (m.spec.resources.pids = 0), "spec.resources.pids", /^must be between 1 and 32768$/],
  ["huge pids", (m) => (m.spec.resources.pids = 1e9), "spec.resources.pids", /^must be between 1 and 32768$/],
  ["unknown runtime", (m) => (m.spec.runtime = "runc"), "spec.runtime", /^must be one of "sandboxed", "standard"$/],
  ["host network mode", (m) => (m.spec.network.mode = "host"), "spec.network.mode", /^must be one of "none", "namespace"$/],
  ["ports with mode none", (m) => (m.spec.network.mode = "none"), "spec.network.ports", /^only allowed with mode namespace$/],
  ["ports with the default mode", (m) => delete m.spec.network.mode, "spec.network.ports", /^only allowed with mode namespace$/],
  [
    "duplicate host port",
    (m) => m.spec.network.ports.push({ container: 9090, host: 18080 }),
    "spec.network.ports[1].host",
    /already used by another port/,
  ],
  ["privileged host port", (m) => (m.spec.network.ports[0].host = 80), "spec.network.ports[0].host", /^must be between 1024 and 65535$/],
  ["container port 0", (m) => (m.spec.network.ports[0].container = 0), "spec.network.ports[0].container", /^must be between 1 and 65535$/],
  ["port protocol", (m) => (m.spec.network.ports[0].protocol = "sctp"), "spec.network.ports[0].protocol", /^must be one of "tcp", "udp"$/],
  ["missing host port", (m) => delete m.spec.network.ports[0].host, "spec.network.ports[0].host", /^is required$/],
  ["empty healthcheck command", (m) => (m.spec.healthcheck.command = []), "spec.healthcheck.command", /^must not be empty$/],
  ["healthcheck interval too short", (m) => (m.spec.healthcheck.interval = "500ms"), "spec.healthcheck.interval", /^must be between 1s and 5m$/],
  ["healthcheck interval too long", (m) => (m.spec.healthcheck.interval = "6m"), "spec.healthcheck.interval", /^must be between 1s and 5m$/],
  ["healthcheck interval no unit", (m) => (m.spec.healthcheck.interval = "5"), "spec.healthcheck.interval", /^must be a duration/],
  ["healthcheck timeout over interval", (m) => (m.spec.healthcheck.timeout = "11s"), "spec.healthcheck.timeout", /^must not be longer than the interval$/],
  ["healthcheck retries", (m) => (m.spec.healthcheck.retries = 0), "spec.healthcheck.retries", /^must be between 1 and 10$/],
  ["healthcheck start period", (m) => (m.spec.healthcheck.startPeriod = "301s"), "spec.healthcheck.startPeriod", /^must be between 0s and 5m$/],
  ["spread not boolean", (m) => (m.spec.placement.spread = "yes"), "spec.placement.spread", /^must be true or false$/],
  ["bad node label", (m) => (m.spec.placement.nodeLabels = { "a b": "x" }), 'spec.placement.nodeLabels["a b"]', /^must be a label key/],
  [
    "maxSurge and maxUnavailable both 0",
    (m) => (m.spec.update = { maxSurge: 0, maxUnavailable: 0 }),
    "spec.update",
    /^maxSurge and maxUnavailable must not both be 0$/,
  ],
  ["maxUnavailable 0 with default maxSurge 0", (m) => (m.spec.update = { maxSurge: 0 }), "spec.update", /must not both be 0/],
  ["maxSurge too large", (m) => (m.spec.update.maxSurge = 11), "spec.update.maxSurge", /^must be between 0 and 10$/],
  ["spec a list", (m) => (m.spec = []), "spec", /^must be a map$/],
];

describe("validateManifest refuses each schema problem with its field path", () => {
  it.each(INVALID)("%s", (_name, change, field, reason) => {
    const e = refusal(() => validateManifest(variant(change)));
    expect(e.code).toBe("PC_DEPLOY_MANIFEST_INVALID");
    const issues = e.internal as ManifestIssue[];
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe(field);
    expect(issues[0]?.reason).toMatch(reason);
    expect(e.detail).toBe(`${field}: ${issues[0]?.reason}`);
  });

  it("refuses a value that is not a map", () => {
    const e = refusal(() => validateManifest("web"));
    expect([e.code, e.detail]).toEqual(["PC_DEPLOY_MANIFEST_INVALID", "manifest: must be a map"]);
  });

  it("reports every problem, in document order", () => {
    const e = refusal(() =>
      validateManifest(
        variant((m) => {
          m.metadata.name = "X";
          m.spec.privileged = true;
          m.spec.resources.memory = "1Ti";
        }),
      ),
    );
    expect((e.internal as ManifestIssue[]).map((i) => i.field)).toEqual(["metadata.name", "spec.resources.memory", "spec.privileged"]);
    expect(e.detail).toMatch(/^metadata\.name: .*; spec\.resources\.memory: .*; spec\.privileged: unknown field/);
  });

  it("refuses a manifest larger than 64 KiB", () => {
    const e = refusal(() => validateManifest(variant((m) => (m.spec.args = Array(3).fill("x".repeat(30_000))))));
    expect([e.code, e.detail]).toEqual(["PC_DEPLOY_MANIFEST_INVALID", "manifest: must be at most 65536 bytes"]);
  });

  it("accepts the forms of image reference, a bare repository included", () => {
    for (const image of [`web@${DIGEST_A}`, DIGEST_A, "web:1.2", "web", "registry.local:5000/a/b:v1", `web:1@${DIGEST_A}`]) {
      expect(validateManifest(variant((m) => (m.spec.image = image))).spec.image).toBe(image);
    }
  });
});

const GOOD_YAML = `# a deployment
apiVersion: portcullis/v1
kind: Deployment
metadata:
  name: web
  namespace: payments
  labels: { app: web, example.com/tier: front }
spec:
  image: registry.local:5000/team/web@${DIGEST_A}
  command: [/bin/web]
  args: ["--port", "8080"]
  workingDir: /srv
  env:
    LOG_LEVEL: info
  user: "1000:1000"
  replicas: 2
  resources:
    cpus: 0.5
    memory: 128Mi
    pids: 256
  runtime: sandboxed
  network:
    mode: namespace
    ports:
      - container: 8080
        host: 18080
  healthcheck:
    command: [/bin/web, --check]
    interval: 10s
    timeout: 2s
    retries: 5
    startPeriod: 1s
  placement:
    nodeLabels: { zone: a }
    spread: false
  update: { maxSurge: 2, maxUnavailable: 1 }
`;

describe("parseManifest", () => {
  it("reads YAML and JSON to the same manifest and spec", () => {
    const fromYaml = parseManifest(GOOD_YAML);
    const fromJson = parseManifest(JSON.stringify(goodManifest(), null, 2));
    expect(fromYaml.manifest).toEqual(goodManifest());
    expect(fromJson.manifest).toEqual(fromYaml.manifest);
    expect(fromYaml.spec).toEqual({
      name: "web",
      namespace: "payments",
      labels: { app: "web", "example.com/tier": "front" },
      image: `registry.local:5000/team/web@${DIGEST_A}`,
      command: ["/bin/web"],
      args: ["--port", "8080"],
      workingDir: "/srv",
      env: { LOG_LEVEL: "info" },
      user: "1000:1000",
      replicas: 2,
      resources: { nanoCpus: 500_000_000, memoryBytes: 128 * 1024 * 1024, pids: 256 },
      runtime: "sandboxed",
      network: { mode: "namespace", ports: [{ container: 8080, host: 18080, protocol: "tcp" }] },
      healthcheck: { command: ["/bin/web", "--check"], intervalMs: 10_000, timeoutMs: 2_000, retries: 5, startPeriodMs: 1_000 },
      placement: { nodeLabels: { zone: "a" }, spread: false },
      update: { maxSurge: 2, maxUnavailable: 1 },
      secrets: [],
    });
  });

  it("applies the defaults", () => {
    const { spec } = parseManifest(`
apiVersion: portcullis/v1
kind: Deployment
metadata: { name: api, namespace: team-a }
spec:
  image: api:1.0
  resources: { cpus: 2, memory: "67108864", pids: 64 }
  healthcheck: { command: [/ok], interval: 2s }
`);
    expect(spec).toEqual({
      name: "api",
      namespace: "team-a",
      labels: {},
      image: "api:1.0",
      env: {},
      replicas: 1,
      resources: { nanoCpus: 2_000_000_000, memoryBytes: 64 * 1024 * 1024, pids: 64 },
      runtime: "sandboxed",
      network: { mode: "none", ports: [] },
      healthcheck: { command: ["/ok"], intervalMs: 2_000, timeoutMs: 2_000, retries: 3, startPeriodMs: 0 },
      placement: { nodeLabels: {}, spread: true },
      update: { maxSurge: 1, maxUnavailable: 0 },
      secrets: [],
    });
  });

  const UNREADABLE: [string, string, RegExp][] = [
    ["duplicate key", "apiVersion: portcullis/v1\nkind: Deployment\nkind: Deployment\n", /^line 3, column 1: duplicate key$/],
    ["duplicate key in JSON", '{"kind": "Deployment", "spec": {"image": "a", "image": "b"}}', /^line 1, column \d+: duplicate key$/],
    ["two documents", "kind: Deployment\n---\nkind: Deployment\n", /more than one document$/],
    ["an anchor", "metadata: &m { name: web }\n", /^line 1, column \d+: anchors are not allowed$/],
    ["an alias", "a: &x 1\nb: *x\n", /(aliases|anchors) are not allowed$/],
    ["a custom tag", "spec: !docker { privileged: true }\n", /tag/i],
    ["a standard tag", "replicas: !!int 3\n", /^line 1, column \d+: tags are not allowed$/],
    ["a merge key", "spec:\n  <<: { image: web }\n", /^line 2, column 3: merge keys are not allowed$/],
    ["a collection as a key", "? [a]\n: 1\n", /^line 1, column 3: keys must be strings$/],
    ["infinity", "spec: { replicas: .inf }\n", /\.inf and \.nan are not allowed$/],
    ["broken YAML", "spec: [1, 2\n", /^line \d+, column \d+: /],
    ["too large", `# ${"x".repeat(64 * 1024)}\n`, /^the manifest is larger than 65536 bytes$/],
  ];
  it.each(UNREADABLE)("refuses %s as unreadable", (_name, text, detail) => {
    const e = refusal(() => parseManifest(text));
    expect(e.code).toBe("PC_DEPLOY_MANIFEST_UNREADABLE");
    expect(e.detail).toMatch(detail);
  });

  it("reports schema problems of YAML with their field path", () => {
    const e = refusal(() => parseManifest(GOOD_YAML.replace("  runtime: sandboxed\n", "  runtime: sandboxed\n  privileged: true\n")));
    expect([e.code, e.detail]).toEqual(["PC_DEPLOY_MANIFEST_INVALID", "spec.privileged: unknown field (privileged containers are never allowed)"]);
  });

  it("reads YAML 1.1 booleans as strings, which the schema then refuses", () => {
    const e = refusal(() => parseManifest(GOOD_YAML.replace("spread: false", "spread: no")));
    expect([e.code, e.detail]).toEqual(["PC_DEPLOY_MANIFEST_INVALID", "spec.placement.spread: must be true or false"]);
  });

  it("refuses an empty document", () => {
    const e = refusal(() => parseManifest(""));
    expect([e.code, e.detail]).toEqual(["PC_DEPLOY_MANIFEST_INVALID", "manifest: must be a map"]);
  });
});
