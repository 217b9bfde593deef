/**
 * `portcullis secret ...` and `portcullis secrets ...` through the real CLI against a real
 * gateway: values only from a file or standard input (no --value), byte for byte, checked
 * for size and emptiness before anything is sent; `secret read` writes the raw value and
 * nothing else, for a secret-reader only; metadata, delete and the keyring commands.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliResult } from "../support/cli.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { writeProfile } from "../runtime/deploy-support.js";

const NS = "payments";
const SHIPPED = readFileSync(new URL("../../policies/rbac/policy.csv", import.meta.url), "utf8");
let t: TestGateway;
let admin: string;
let dev: string;
let reader: string;

/** The CLI as `profile`, in table form unless `-o json` is given. */
function as(profile: string, args: readonly string[], input?: string | Buffer): Promise<CliResult> {
  return runCliBytes(args, profile, input);
}

/** runCli with stdin as bytes, and stdout kept as bytes too (for `secret read`). */
function runCliBytes(args: readonly string[], profile: string, input?: string | Buffer): Promise<CliResult & { raw: Buffer }> {
  const root = resolve(import.meta.dirname, "../..");
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["--import", "tsx", resolve(root, "src/cli/main.ts"), ...args], {
      cwd: root,
      env: { ...process.env, PORTCULLIS_LOG_LEVEL: "warn", PORTCULLIS_PROFILE: profile },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      const raw = Buffer.concat(out);
      done({ code, stdout: raw.toString("utf8"), stderr, raw });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
  });
}

function file(name: string, content: string | Buffer): string {
  const p = join(t.root, name);
  writeFileSync(p, content, { mode: 0o600 });
  return p;
}

beforeAll(async () => {
  t = await startTestGateway({ init: { policyCsv: `${SHIPPED}\ng, user:reader, secret-reader, ${NS}\n` } });
  t.gw.namespaces.create(NS, {}, { identity: "user:admin" });
  t.gw.policy.bind("user:dev1", "developer", NS, { identity: "user:admin" });
  admin = writeProfile(t, "admin", t.admin, "user:admin");
  dev = writeProfile(t, "dev1", t.issueClient("user:dev1"), "user:dev1");
  reader = writeProfile(t, "reader", t.issueClient("user:reader"), "user:reader");
}, 60_000);

afterAll(async () => {
  await t?.close();
});

describe("secret commands", () => {
  const fromFile = randomBytes(200); // binary, byte for byte
  const fromStdin = `line one\nline two\n${randomBytes(8).toString("hex")}\n`;

  it("creates from a file and from stdin, byte for byte, printing metadata only", async () => {
    const a = await as(admin, ["-o", "json", "secret", "create", "tls-key", "-n", NS, "--from-file", file("key.bin", fromFile)]);
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ name: "tls-key", latest: 1, versions: [{ version: 1, size: 200 }] });
    const b = await as(admin, ["secret", "create", "config", "-n", NS, "--from-stdin"], fromStdin);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/^name\s+config$/m);
    expect(b.stdout).toMatch(/^latest\s+1$/m);
    expect(b.stdout).not.toContain("line one");

    const r1 = await runCliBytes(["secret", "read", "tls-key", "-n", NS], reader);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.raw.equals(fromFile)).toBe(true);
    const r2 = await runCliBytes(["secret", "read", "config", "-n", NS], reader);
    expect(r2.stdout).toBe(fromStdin);
  });

  it("updates to a new version; read --version reads an older one", async () => {
    const u = await as(admin, ["-o", "json", "secret", "update", "config", "-n", NS, "--from-stdin"], "v2");
    expect(u.code, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout).latest).toBe(2);
    expect((await runCliBytes(["secret", "read", "config", "-n", NS], reader)).stdout).toBe("v2");
    expect((await runCliBytes(["secret", "read", "config", "-n", NS, "--version", "1"], reader)).stdout).toBe(fromStdin);
    const gone = await runCliBytes(["secret", "read", "config", "-n", NS, "--version", "7"], reader);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toBe("");
    expect(gone.stderr).toContain("PC_SECRETS_VERSION_NOT_FOUND");
  });

  it("lists and gets metadata, for a developer too; never a value", async () => {
    const l = await as(dev, ["secret", "list", "-n", NS]);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout.split("\n")[0]).toMatch(/^NAME\s+LATEST\s+SIZE\s+CREATEDBY\s+CREATEDAT\s+USEDBY$/);
    expect(l.stdout).toMatch(/^config\s+2\s+2\s+user:admin\s/m);
    expect(l.stdout).toMatch(/^tls-key\s+1\s+200\s+user:admin\s/m);
    const g = await as(dev, ["-o", "json", "secret", "get", "config", "-n", NS]);
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout).versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    for (const out of [l.stdout, g.stdout]) expect(out).not.toContain("line one");
  });

  it("refuses a read to the administrator and to a developer, printing nothing on stdout", async () => {
    for (const p of [admin, dev]) {
      const r = await runCliBytes(["secret", "read", "config", "-n", NS], p);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("PC_API_FORBIDDEN");
    }
  });

  const usage: [string, string[]][] = [
    ["--value", ["secret", "create", "x", "-n", NS, "--value", "hunter2"]],
    ["--value on update", ["secret", "update", "x", "-n", NS, "--value=hunter2"]],
    ["no source", ["secret", "create", "x", "-n", NS]],
    ["both sources", ["secret", "create", "x", "-n", NS, "--from-stdin", "--from-file", "/etc/hostname"]],
    ["no namespace", ["secret", "create", "x", "--from-stdin"]],
    ["a bad name", ["secret", "create", "Bad_Name", "-n", NS, "--from-stdin"]],
    ["a bad version", ["secret", "read", "config", "-n", NS, "--version", "0"]],
    ["a missing file", ["secret", "create", "x", "-n", NS, "--from-file", "/nonexistent/file"]],
  ];
  it.each(usage)("%s is a usage error (exit 2), and nothing is created", async (_n, args) => {
    const r = await as(admin, args, "hunter2");
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).not.toContain("hunter2");
    if (args.some((a) => a.startsWith("--value"))) expect(r.stderr).toContain("there is no --value");
  });

  it("refuses an empty value and one over 64 KiB before sending anything", async () => {
    const cases: [string[], string | Buffer | undefined, string][] = [
      [["--from-file", file("empty", "")], undefined, "PC_SECRETS_VALUE_INVALID"],
      [["--from-stdin"], "", "PC_SECRETS_VALUE_INVALID"],
      [["--from-file", file("big", Buffer.alloc(64 * 1024 + 1, 1))], undefined, "PC_SECRETS_TOO_LARGE"],
      [["--from-stdin"], Buffer.alloc(200 * 1024, 1), "PC_SECRETS_TOO_LARGE"],
    ];
    for (const [src, input, code] of cases) {
      const r = await as(admin, ["secret", "create", "refused", "-n", NS, ...src], input);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(code);
      expect(r.stderr).toContain("nothing was sent");
    }
    const l = await as(admin, ["-o", "json", "secret", "list", "-n", NS]);
    expect(JSON.parse(l.stdout).map((m: { name: string }) => m.name)).toEqual(["config", "tls-key"]);
    // Exactly 64 KiB is fine.
    const ok = await as(admin, ["secret", "create", "max", "-n", NS, "--from-file", file("max", Buffer.alloc(64 * 1024, 2))]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("`--version` belongs to `secret read`; alone it still prints the CLI's version", async () => {
    const v = await as(admin, ["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it("deletes", async () => {
    const d = await as(admin, ["secret", "delete", "max", "-n", NS]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`secret ${NS}/max deleted\n`);
    const again = await as(admin, ["secret", "delete", "max", "-n", NS]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("PC_SECRETS_NOT_FOUND");
  });

  it("shows, rotates and retires key-encryption keys", async () => {
    const s = await as(admin, ["-o", "json", "secrets", "kek-status"]);
    expect(s.code, s.stderr).toBe(0);
    const old = JSON.parse(s.stdout).active as string;
    const table = await as(admin, ["secrets", "kek-status"]);
    expect(table.stdout).toMatch(new RegExp(`^${old}\\s+yes\\s+\\d+\\s`, "m"));
    const r = await as(admin, ["-o", "json", "secrets", "rotate-kek"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).active).not.toBe(old);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const st = JSON.parse((await as(admin, ["-o", "json", "secrets", "kek-status"])).stdout) as { rewrapping: boolean };
      if (!st.rewrapping || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const ret = await as(admin, ["-o", "json", "secrets", "retire-kek", old]);
    expect(ret.code, ret.stderr).toBe(0);
    expect(JSON.parse(ret.stdout).keks.map((k: { id: string }) => k.id)).not.toContain(old);
    const dv = await as(dev, ["secrets", "kek-status"]);
    expect(dv.code).toBe(1);
    expect(dv.stderr).toContain("PC_API_FORBIDDEN");
    // The values still read after the rotation.
    expect((await runCliBytes(["secret", "read", "config", "-n", NS], reader)).stdout).toBe("v2");
  });
});
