/**
 * Image references resolved on a real engine, and the user a container runs as: an image
 * that would run as root is refused unless the manifest sets a non-root user.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { effectiveUser, parseImageReference, resolveImage, type DockerEngine } from "../../src/runtime/index.js";
import { buildBusyboxImage, cleanupTestRun, describeDocker, dockerCli, newTestRun, testEngine } from "../support/docker.js";
import { refusal, rejection } from "../support/refusal.js";

const SET_USER = "set spec.user to a non-root uid:gid";

describe("effectiveUser", () => {
  // [image user, manifest user, result or refusal detail]
  const cases: [string, string | undefined, { user: string } | { code: string; detail: string }][] = [
    ["10001:10001", undefined, { user: "10001:10001" }],
    ["010001:0020", undefined, { user: "10001:20" }],
    ["", "1000:1000", { user: "1000:1000" }],
    ["root", "1000:1000", { user: "1000:1000" }],
    ["10001:10001", "2000:3000", { user: "2000:3000" }],
    ["", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image runs as root; ${SET_USER}` }],
    ["root", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image runs as root; ${SET_USER}` }],
    ["root:root", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image runs as root; ${SET_USER}` }],
    ["0", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image runs as root; ${SET_USER}` }],
    ["0:1000", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image runs as root; ${SET_USER}` }],
    ["1000:0", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image runs in the root group; ${SET_USER}` }],
    ["app", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image user "app" is not a numeric uid:gid (a name or a bare uid may map to root); ${SET_USER}` }],
    ["app:app", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image user "app:app" is not a numeric uid:gid (a name or a bare uid may map to root); ${SET_USER}` }],
    ["1000", undefined, { code: "PC_RUNTIME_IMAGE_INVALID", detail: `image user "1000" is not a numeric uid:gid (a name or a bare uid may map to root); ${SET_USER}` }],
    ["10001:10001", "0:0", { code: "PC_RUNTIME_SPEC_INVALID", detail: "container spec user: must not be root" }],
    ["10001:10001", "app", { code: "PC_RUNTIME_SPEC_INVALID", detail: "container spec user: must be a numeric uid:gid" }],
  ];
  it.each(cases)("image user %j, manifest user %j", (imageUser, specUser, expected) => {
    if ("user" in expected) {
      expect(effectiveUser(specUser, imageUser)).toBe(expected.user);
    } else {
      const e = refusal(() => effectiveUser(specUser, imageUser));
      expect({ code: e.code, detail: e.detail }).toEqual(expected);
    }
  });
});

describe("parseImageReference", () => {
  const hex = "0123456789abcdef".repeat(4);
  it.each([
    [`sha256:${hex}`, { kind: "id", id: `sha256:${hex}` }],
    [`registry.example:5000/team/app@sha256:${hex}`, { kind: "digest", repository: "registry.example:5000/team/app", digest: `sha256:${hex}` }],
    ["registry.example:5000/team/app:1.2", { kind: "tag", repository: "registry.example:5000/team/app", tag: "1.2" }],
    ["busybox:latest", { kind: "tag", repository: "busybox", tag: "latest" }],
  ])("reads %s", (ref, expected) => {
    expect(parseImageReference(ref)).toEqual(expected);
  });

  it.each([
    "busybox", "", "Busybox:1", "app@sha256:abc", `app@sha512:${hex}`, `sha256:${hex.toUpperCase()}`,
    "--privileged:1", "app:tag@sha256:" + hex, "a b:1", "app:", "registry.example:5000/app", `${hex}`,
  ])("refuses %j", (ref) => {
    const e = refusal(() => parseImageReference(ref));
    expect(e.code).toBe("PC_RUNTIME_IMAGE_INVALID");
    expect(e.detail).toMatch(/is not a digest, an image id or a tag$/);
  });
});

describeDocker("resolveImage on a real engine", () => {
  const run = newTestRun();
  let engine: DockerEngine;
  let rootTag: string;
  let userTag: string;
  let namedTag: string;
  let userId: string;

  beforeAll(async () => {
    engine = testEngine();
    rootTag = await buildBusyboxImage(engine, run);
    userTag = await buildBusyboxImage(engine, run, { variant: "user", user: "10001:10001", cmd: ["/bin/sleep", "5"] });
    namedTag = await buildBusyboxImage(engine, run, { variant: "named", user: "app" });
    const [info] = JSON.parse(await dockerCli(["image", "inspect", userTag])) as [{ Id: string }];
    userId = info.Id;
  });

  afterAll(async () => {
    if (engine !== undefined) await cleanupTestRun(engine, run, rootTag, userTag, namedTag);
  });

  it("resolves a tag to the image id and the image's user", async () => {
    const image = await resolveImage(engine, userTag);
    expect(image).toEqual({ id: userId, user: "10001:10001", repoTags: [userTag], repoDigests: [] });
    expect(userId).toMatch(/^sha256:[a-f0-9]{64}$/);
  });

  it("resolves an image id", async () => {
    expect((await resolveImage(engine, userId))?.id).toBe(userId);
  });

  it("resolves repo@digest of an imported image (no repository digest) by its id", async () => {
    const repo = userTag.slice(0, userTag.lastIndexOf(":"));
    expect((await resolveImage(engine, `${repo}@${userId}`))?.id).toBe(userId);
  });

  it("does not resolve another repository's name with an imported image's id", async () => {
    // Otherwise any local image could pass as registry.corp.example/app@<its id>.
    expect(await resolveImage(engine, `registry.corp.example/app@${userId}`)).toBeUndefined();
  });

  it("returns undefined for an image the engine does not have", async () => {
    expect(await resolveImage(engine, `sha256:${"0".repeat(64)}`)).toBeUndefined();
    expect(await resolveImage(engine, `portcullis-test/busybox@sha256:${"0".repeat(64)}`)).toBeUndefined();
    expect(await resolveImage(engine, `portcullis-test/absent:${run.id}`)).toBeUndefined();
  });

  it("refuses a malformed reference before asking the engine", async () => {
    const e = await rejection(resolveImage(engine, "portcullis-test/busybox"));
    expect(e.code).toBe("PC_RUNTIME_IMAGE_INVALID");
  });

  it("refuses the user of an image without USER (root) and of a named user, unless the manifest sets one", async () => {
    const root = await resolveImage(engine, rootTag);
    expect(root?.user).toBe("");
    expect(refusal(() => effectiveUser(undefined, root!.user)).detail).toBe(`image runs as root; ${SET_USER}`);
    expect(effectiveUser("10002:10002", root!.user)).toBe("10002:10002");
    const named = await resolveImage(engine, namedTag);
    expect(named?.user).toBe("app");
    expect(refusal(() => effectiveUser(undefined, named!.user)).code).toBe("PC_RUNTIME_IMAGE_INVALID");
  });

  it("records the CMD and USER given at import", async () => {
    const [info] = JSON.parse(await dockerCli(["image", "inspect", userTag])) as [{ Config: { User: string; Cmd: string[]; Labels: unknown } }];
    expect(info.Config.User).toBe("10001:10001");
    expect(info.Config.Cmd).toEqual(["/bin/sleep", "5"]);
    expect(info.Config.Labels).toEqual(run.labels);
  });
});
