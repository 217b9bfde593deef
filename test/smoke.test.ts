import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./support/gateway.js";
import { mtlsGet } from "./support/tls-client.js";

describe("gateway harness", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t.close();
  });
  it("answers whoami over mTLS for the admin", async () => {
    const r = await mtlsGet(t.api, "/v1/whoami", { ca: t.caPem, cert: t.admin.certPem, key: t.admin.keyPem });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body ?? "{}").identity).toBe("user:admin");
  });
});
