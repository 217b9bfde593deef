import { afterAll, beforeAll, expect, it } from "vitest";
import { describeDocker, dockerCli } from "../support/docker.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { execFileP } from "../support/tls-client.js";

describeDocker("healthz reports the local Docker engine", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t.close();
  });

  it("names the engine version and its runtimes, as the docker CLI sees them", async () => {
    const { stdout } = await execFileP("curl", ["-sS", "--max-time", "5", "--cacert", t.caFile, `https://${t.bootstrap}/healthz`]);
    const h = JSON.parse(stdout) as { status: string; engine: { status: string; version: string; runtimes: string[] } };
    expect(h.status).toBe("ok");
    expect(h.engine.status).toBe("ok");
    expect(h.engine.version).toBe((await dockerCli(["version", "--format", "{{.Server.Version}}"])).trim());
    expect(h.engine.runtimes).toContain("runsc");
  });
});
