import { describe, expect, it } from "vitest";
import { parseAdmissionPolicies, shippedAdmissionPolicyFiles, shippedAdmissionPolicySet, type AdmissionPolicyIssue } from "../../src/admission/index.js";
import { isPortcullisError } from "../../src/core/index.js";
import { policyYaml } from "./fixture.js";

/** The issues a refused set carries (the test fails if the set is accepted). */
function refusal(files: { name: string; text: string }[]): { detail: string; issues: AdmissionPolicyIssue[] } {
  try {
    parseAdmissionPolicies(files);
  } catch (e) {
    if (!isPortcullisError(e)) throw e;
    expect(e.code).toBe("PC_ADMISSION_POLICY_INVALID");
    return { detail: e.detail ?? "", issues: e.internal as AdmissionPolicyIssue[] };
  }
  throw new Error("the set was accepted");
}
const one = (text: string) => refusal([{ name: "p.yaml", text }]);
const triples = (issues: AdmissionPolicyIssue[]) => issues.map((i) => [i.line, i.field, i.reason]);

describe("parseAdmissionPolicies", () => {
  it("reads a policy: selector, checks in order, modes and validated params", () => {
    const set = parseAdmissionPolicies(
      [{ name: "a.yaml", text: policyYaml("baseline", "hardening: { mode: enforce }\nresources: { mode: warn, params: { maxMemory: 1Gi, maxCpus: 2 } }", '{ namespaces: [payments], labels: { tier: prod } }') }],
      { version: 4 },
    );
    expect(set.version).toBe(4);
    expect(set.files.map((f) => f.name)).toEqual(["a.yaml"]);
    const p = set.policies[0];
    expect(p?.name).toBe("baseline");
    expect(p?.selector).toEqual({ namespaces: ["payments"], labels: { tier: "prod" } });
    expect(p?.checks).toEqual([
      { check: "hardening", mode: "enforce", params: expect.objectContaining({ allowHostPorts: true }) },
      { check: "resources", mode: "warn", params: { maxMemoryBytes: 1024 ** 3, maxNanoCpus: 2e9 } },
    ]);
  });

  it("reads an absent selector as every namespace", () => {
    expect(parseAdmissionPolicies([{ name: "a.yaml", text: policyYaml("all", "signer: { mode: audit }") }]).policies[0]?.selector).toEqual({});
  });

  const table: [string, string, [number, string, string][]][] = [
    ["a YAML syntax error", "apiVersion: portcullis/v1\nkind: [\n", [[3, "", expect.any(String) as unknown as string]]],
    ["a duplicate key", policyYaml("a", "signer: { mode: enforce }") + "kind: AdmissionPolicy\n", [[8, "", "duplicate key"]]],
    ["an alias", "apiVersion: &v portcullis/v1\nkind: *v\n", [[1, "", "anchors are not allowed"], [2, "", "aliases are not allowed"]]],
    ["an unknown top-level field", policyYaml("a", "signer: { mode: enforce }") + "extra: 1\n", [[8, "extra", expect.stringContaining("unknown field") as unknown as string]]],
    ["an unknown check", policyYaml("a", "signer: { mode: enforce }\nprivileged: { mode: enforce }"), [[8, "spec.checks.privileged", expect.stringContaining("unknown check") as unknown as string]]],
    ["an unknown mode", policyYaml("a", "signer: { mode: dryrun }"), [[7, "spec.checks.signer.mode", "unknown mode (allowed: enforce, warn, audit)"]]],
    ["a missing mode", policyYaml("a", "signer: {}"), [[7, "spec.checks.signer.mode", "is required"]]],
    ["a parameter of the wrong type", policyYaml("a", "resources:\n  mode: enforce\n  params:\n    maxMemory: 1Gi\n    maxPids: lots"), [[11, "spec.checks.resources.params.maxPids", "must be an integer"]]],
    ["a parameter out of range", policyYaml("a", "resources: { mode: enforce, params: { maxCpus: 65 } }"), [[7, "spec.checks.resources.params.maxCpus", "must be more than 0 and at most 64"]]],
    ["an unknown parameter", policyYaml("a", "image-reference: { mode: warn, params: { registries: [x] } }"), [[7, "spec.checks.image-reference.params.registries", expect.stringContaining("unknown parameter") as unknown as string]]],
    ["a bad list item", policyYaml("a", "image-reference:\n  mode: warn\n  params:\n    allowedRegistries:\n      - ok.example\n      - '*.example'"), [[12, "spec.checks.image-reference.params.allowedRegistries[1]", expect.stringContaining("without wildcards") as unknown as string]]],
    ["no checks", policyYaml("a", "{}"), [[7, "spec.checks", expect.stringContaining("non-empty map") as unknown as string]]],
    ["a bad namespace in the selector", policyYaml("a", "signer: { mode: enforce }", "{ namespaces: [Payments] }"), [[6, "spec.selector.namespaces[0]", expect.any(String) as unknown as string]]],
    ["an empty namespace list", policyYaml("a", "signer: { mode: enforce }", "{ namespaces: [] }"), [[6, "spec.selector.namespaces", expect.stringContaining("non-empty") as unknown as string]]],
    ["a bad name", policyYaml("Not_A_Label", "signer: { mode: enforce }"), [[4, "metadata.name", expect.any(String) as unknown as string]]],
    ["a wrong kind", policyYaml("a", "signer: { mode: enforce }").replace("kind: AdmissionPolicy", "kind: Deployment"), [[2, "kind", "must be AdmissionPolicy"]]],
  ];
  it.each(table)("refuses %s with file, line and field", (_n, text, expected) => {
    const { issues, detail } = one(text);
    expect(triples(issues)).toEqual(expected);
    expect(issues.every((i) => i.file === "p.yaml")).toBe(true);
    const first = issues[0] as AdmissionPolicyIssue;
    expect(detail).toContain(`p.yaml:${first.line}: `);
  });

  it("lists every problem of every file and refuses the whole set", () => {
    const { issues, detail } = refusal([
      { name: "good.yaml", text: policyYaml("good", "signer: { mode: enforce }") },
      { name: "bad1.yaml", text: policyYaml("bad1", "signer: { mode: nope }\nresources: { mode: enforce, params: { maxPids: 0 } }") },
      { name: "bad2.yaml", text: "kind: [" },
    ]);
    expect(issues.map((i) => `${i.file}:${i.line}: ${i.field}`)).toEqual([
      "bad1.yaml:7: spec.checks.signer.mode",
      "bad1.yaml:8: spec.checks.resources.params.maxPids",
      expect.stringMatching(/^bad2\.yaml:\d+: $/),
    ]);
    expect(detail).toContain("bad1.yaml:7: spec.checks.signer.mode: unknown mode");
    expect(detail).toContain("bad1.yaml:8: spec.checks.resources.params.maxPids: must be between 1 and 32768");
  });

  it("refuses a policy name used twice, naming the first", () => {
    const { issues } = refusal([
      { name: "a.yaml", text: policyYaml("same", "signer: { mode: enforce }") },
      { name: "b.yaml", text: policyYaml("same", "approvals: { mode: enforce }") },
    ]);
    expect(triples(issues)).toEqual([[4, "metadata.name", "repeats the name of the policy in a.yaml:4"]]);
    expect(issues[0]?.file).toBe("b.yaml");
  });

  it("refuses an empty set", () => {
    expect(() => parseAdmissionPolicies([])).toThrow(expect.objectContaining({ code: "PC_ADMISSION_POLICY_INVALID" }));
  });
});

describe("the shipped baseline", () => {
  it("parses and selects every namespace with every check enforced", () => {
    expect(shippedAdmissionPolicyFiles().map((f) => f.name)).toEqual(["baseline.yaml"]);
    const set = shippedAdmissionPolicySet(2);
    expect(set.version).toBe(2);
    const [p] = set.policies;
    expect(p?.selector).toEqual({});
    expect(p?.checks.map((c) => [c.check, c.mode])).toEqual(
      ["hardening", "resources", "runtime-class", "image-reference", "image-identity", "signer", "approvals", "image-scan", "secret-references"].map((c) => [c, "enforce"]),
    );
    expect(p?.checks.find((c) => c.check === "resources")?.params).toEqual({ maxNanoCpus: 4e9, maxMemoryBytes: 4 * 1024 ** 3, maxPids: 4096, maxReplicas: 20 });
    expect(p?.checks.find((c) => c.check === "runtime-class")?.params).toEqual({ required: "any" });
    expect(p?.checks.find((c) => c.check === "image-reference")?.params).toMatchObject({ requireDigest: true });
  });
});
