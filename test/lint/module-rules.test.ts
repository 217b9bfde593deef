import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { readSourceTree } from "../../scripts/lint-imports.mjs";
import {
  MODULE_RULES,
  checkImports,
  extractImports,
  formatViolation,
} from "../../scripts/module-rules.mjs";

const execFileAsync = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const LINT = join(ROOT, "scripts/lint-imports.mjs");

const lines = (files: Record<string, string>): string[] => checkImports(files).map(formatViolation);

describe("the real source tree", () => {
  it("follows the module rules", () => {
    const files = readSourceTree(ROOT);
    expect(Object.keys(files).length).toBeGreaterThan(0);
    expect(lines(files)).toEqual([]);
  });

  it("passes the CLI (exit 0)", async () => {
    const { stdout } = await execFileAsync(process.execPath, [LINT]);
    expect(stdout).toMatch(/^lint-imports: \d+ file\(s\) follow the module rules\n$/);
  });
});

describe("the CLI on a tree with violations", () => {
  const root = mkdtempSync(join(tmpdir(), "portcullis-lint-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("exits 1 and prints file:line: rule: message", async () => {
    mkdirSync(join(root, "src/pki"), { recursive: true });
    writeFileSync(join(root, "src/pki/ca.ts"), 'import { x } from "../core/index.js";\nimport Docker from "dockerode";\n');
    mkdirSync(join(root, "src/core"), { recursive: true });
    writeFileSync(join(root, "src/core/index.ts"), "export const x = 1;\n");
    const failure = await execFileAsync(process.execPath, [LINT, root]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toBe(
      'src/pki/ca.ts:2: third-party: "dockerode" is confined to src/runtime/\n' +
        "lint-imports: 1 violation(s) in 2 file(s)\n",
    );
  });
});

describe("the rule table", () => {
  it("names every module of the design and what it may import", () => {
    expect(MODULE_RULES.modules).toEqual({
      core: [],
      store: ["core"],
      pki: ["core", "store"],
      rbac: ["core", "store"],
      audit: ["core", "store", "pki", "deploy"],
      deploy: ["core", "store", "pki"],
      admission: ["core", "store", "deploy"],
      secrets: ["core", "store"],
      runtime: ["core", "store", "secrets", "deploy"],
      monitoring: ["core", "store", "runtime"],
      api: [
        "core", "store", "pki", "rbac", "audit", "deploy", "admission", "secrets", "runtime", "monitoring",
      ],
      cli: [
        "core", "store", "pki", "rbac", "audit", "deploy", "admission", "secrets", "runtime", "monitoring",
        "api", "app.ts",
      ],
      "app.ts": [
        "core", "store", "pki", "rbac", "audit", "deploy", "admission", "secrets", "runtime", "monitoring",
        "api", "cli",
      ],
    });
    expect(MODULE_RULES.thirdParty).toEqual({
      "node-forge": "src/pki/",
      casbin: "src/rbac/",
      dockerode: "src/runtime/",
      execa: "src/admission/scanner/",
      "tar-stream": "src/admission/scanner/",
      yauzl: "src/admission/scanner/",
      "better-sqlite3": "src/store/",
      "prom-client": "src/monitoring/",
    });
  });
});

describe("extractImports", () => {
  it("finds every form of module reference, with its line", () => {
    const source = [
      'import a from "./a.js";', // 1
      'import type { B } from "./b.js";', // 2
      "import {", // 3
      "  c,", // 4
      "  type D,", // 5
      '} from "./c.js";', // 6
      'import * as e from "./e.js";', // 7
      'import "./side-effect.js";', // 8
      'export * from "./f.js";', // 9
      'export * as g from "./g.js";', // 10
      'export { h } from "./h.js";', // 11
      'export type { I } from "./i.js";', // 12
      'const j = await import("./j.js");', // 13
      'type K = typeof import("./k.js");', // 14
      'import l = require("./l.js");', // 15
      'const m = require("./m.js");', // 16
      "const n = await import(`./n.js`);", // 17
      "const o = await import(name);", // 18
      "export { p };", // 19
      "export const q = 1;", // 20
    ].join("\n");
    expect(extractImports(source)).toEqual([
      { specifier: "./a.js", line: 1, kind: "import" },
      { specifier: "./b.js", line: 2, kind: "import" },
      { specifier: "./c.js", line: 3, kind: "import" },
      { specifier: "./e.js", line: 7, kind: "import" },
      { specifier: "./side-effect.js", line: 8, kind: "import" },
      { specifier: "./f.js", line: 9, kind: "export" },
      { specifier: "./g.js", line: 10, kind: "export" },
      { specifier: "./h.js", line: 11, kind: "export" },
      { specifier: "./i.js", line: 12, kind: "export" },
      { specifier: "./j.js", line: 13, kind: "dynamic" },
      { specifier: "./k.js", line: 14, kind: "dynamic" },
      { specifier: "./l.js", line: 15, kind: "require" },
      { specifier: "./m.js", line: 16, kind: "require" },
      { specifier: "./n.js", line: 17, kind: "dynamic" },
      { specifier: null, line: 18, kind: "dynamic" },
    ]);
  });

  it("ignores comments, strings, templates, regular expressions and look-alikes", () => {
    const source = [
      '// import x from "../runtime/engine.js";',
      '/* export * from "dockerode"; */',
      "/**",
      ' * import { y } from "node-forge";',
      " */",
      "const s = 'import z from \"casbin\"';",
      'const t = `export * from "execa"; ${1 + 1} import w from "x"`;',
      'const r = /import ["\']dockerode["\']/;',
      "const meta = import.meta.url;",
      "const obj = { import: 1, require: 2 };",
      "obj.require(\"dockerode\");",
      "const d = a / b / c; const e = `${'}'}`;",
      'import real from "./real.js";',
    ].join("\n");
    expect(extractImports(source)).toEqual([{ specifier: "./real.js", line: 13, kind: "import" }]);
  });
});

describe("checkImports", () => {
  // [case, files, expected violation lines]
  const cases: [string, Record<string, string>, string[]][] = [
    [
      "a domain importing a domain it may not",
      { "src/pki/ca.ts": 'import { engine } from "../runtime/index.js";\n' },
      ['src/pki/ca.ts:1: module-boundary: pki may not import runtime ("../runtime/index.js"); pki may import core, store'],
    ],
    [
      "core importing anything of ours",
      { "src/core/clock.ts": '\n\nimport type { Db } from "../store/index.js";\n' },
      ['src/core/clock.ts:3: module-boundary: core may not import store ("../store/index.js"); core may import nothing of ours'],
    ],
    [
      "a deep import into an allowed domain",
      { "src/audit/log.ts": 'import { signer } from "../pki/authority.js";\n' },
      ['src/audit/log.ts:1: entry-only: audit must import pki through src/pki/index.ts, not "../pki/authority.js"'],
    ],
    [
      "a type-only deep import",
      { "src/runtime/x.ts": 'import type { Secret } from "../secrets/keyring.js";\n' },
      ['src/runtime/x.ts:1: entry-only: runtime must import secrets through src/secrets/index.ts, not "../secrets/keyring.js"'],
    ],
    [
      "a re-export of another domain's internals",
      { "src/monitoring/index.ts": 'export { DockerEngine } from "../runtime/engine.js";\n' },
      ['src/monitoring/index.ts:1: entry-only: monitoring must import runtime through src/runtime/index.ts, not "../runtime/engine.js"'],
    ],
    [
      "a directory import of a domain",
      { "src/deploy/x.ts": 'import * as pki from "../pki";\n' },
      ['src/deploy/x.ts:1: entry-only: deploy must import pki through src/pki/index.ts, not "../pki"'],
    ],
    [
      "a domain importing api",
      { "src/rbac/x.ts": 'import { server } from "../api/index.js";\n' },
      ['src/rbac/x.ts:1: module-boundary: rbac may not import api ("../api/index.js"); rbac may import core, store'],
    ],
    [
      "a domain importing cli",
      { "src/store/x.ts": 'export * from "../cli/index.js";\n' },
      ['src/store/x.ts:1: module-boundary: store may not import cli ("../cli/index.js"); store may import core'],
    ],
    [
      "a domain importing the composition root",
      { "src/secrets/x.ts": 'const app = await import("../app.js");\n' },
      ['src/secrets/x.ts:1: module-boundary: secrets may not import app.ts ("../app.js"); secrets may import core, store'],
    ],
    [
      "api importing cli",
      { "src/api/routes/x.ts": 'import { run } from "../../cli/index.js";\n' },
      [
        'src/api/routes/x.ts:1: module-boundary: api may not import cli ("../../cli/index.js"); ' +
          "api may import core, store, pki, rbac, audit, deploy, admission, secrets, runtime, monitoring",
      ],
    ],
    [
      "api importing a domain's internals",
      { "src/api/server.ts": 'import { Enforcer } from "../rbac/enforcer.js";\n' },
      ['src/api/server.ts:1: entry-only: api must import rbac through src/rbac/index.ts, not "../rbac/enforcer.js"'],
    ],
    [
      "cli importing api internals",
      { "src/cli/main.ts": 'import { routes } from "../api/routes/deploy.js";\n' },
      ['src/cli/main.ts:1: entry-only: cli must import api through src/api/index.ts, not "../api/routes/deploy.js"'],
    ],
    [
      "node-forge outside pki",
      { "src/deploy/jws.ts": 'import forge from "node-forge";\n' },
      ['src/deploy/jws.ts:1: third-party: "node-forge" is confined to src/pki/'],
    ],
    [
      "casbin outside rbac (subpath, type-only)",
      { "src/api/x.ts": 'import type { Model } from "casbin/lib/model.js";\n' },
      ['src/api/x.ts:1: third-party: "casbin" is confined to src/rbac/'],
    ],
    [
      "dockerode outside runtime (type re-export)",
      { "src/monitoring/x.ts": 'export type { ContainerInfo } from "dockerode";\n' },
      ['src/monitoring/x.ts:1: third-party: "dockerode" is confined to src/runtime/'],
    ],
    [
      "execa in admission but outside its scanner",
      { "src/admission/checks/x.ts": 'import { execa } from "execa";\n' },
      ['src/admission/checks/x.ts:1: third-party: "execa" is confined to src/admission/scanner/'],
    ],
    [
      "better-sqlite3 outside store",
      { "src/audit/x.ts": 'const Database = require("better-sqlite3");\n' },
      ['src/audit/x.ts:1: third-party: "better-sqlite3" is confined to src/store/'],
    ],
    [
      "a relative import that leaves src/",
      { "src/cli/version.ts": 'import pkg from "../../package.json" with { type: "json" };\n' },
      ['src/cli/version.ts:1: outside-src: "../../package.json" resolves outside src/'],
    ],
    [
      "an absolute import",
      { "src/cli/x.ts": 'import x from "/etc/x.js";\n' },
      ['src/cli/x.ts:1: outside-src: "/etc/x.js" is not a relative import, a node: builtin or a package'],
    ],
    [
      "a non-literal dynamic import",
      { "src/runtime/plugin.ts": "const mod = await import(process.env.PLUGIN!);\n" },
      ["src/runtime/plugin.ts:1: non-literal-import: import() must name its module with a string literal"],
    ],
    [
      "a file outside every module",
      { "src/helpers.ts": "export const x = 1;\n" },
      ["src/helpers.ts:1: unknown-module: src/helpers.ts is not inside a known module (" + Object.keys(MODULE_RULES.modules).join(", ") + ")"],
    ],
    [
      "an import into a folder that is not a module",
      { "src/core/x.ts": 'import { y } from "../utils/y.js";\n' },
      ['src/core/x.ts:1: unknown-module: "../utils/y.js" resolves to src/utils/y.js, which is not inside a known module'],
    ],
  ];

  it.each(cases)("catches %s", (_case, files, expected) => {
    expect(lines(files)).toEqual(expected);
  });

  it("allows what the design allows", () => {
    const files = {
      "src/core/index.ts": 'import { createHash } from "node:crypto";\nexport * from "./errors.js";\n',
      "src/store/db.ts": 'import Database from "better-sqlite3";\nimport { pcError } from "../core/index.js";\n',
      "src/pki/ca.ts": 'import forge from "node-forge";\nimport type { Store } from "../store/index.js";\n',
      "src/rbac/enforcer.ts": 'import { newEnforcer } from "casbin";\n',
      "src/admission/scanner/trivy.ts": 'import { execa } from "execa";\nimport { x } from "../checks/x.js";\n',
      "src/admission/checks/x.ts": 'export { verify } from "../../deploy/index.js";\n',
      "src/runtime/engine.ts": 'import Docker from "dockerode";\nimport type { Keyring } from "../secrets/index.js";\n',
      "src/monitoring/stats.ts": 'import { DockerEngine } from "../runtime/index.js";\n',
      "src/api/server.ts": 'import fastify from "fastify";\nimport { x } from "../admission/index.js";\nimport { y } from "./routes/y.js";\n',
      "src/cli/main.ts": 'import { Command } from "commander";\nimport { client } from "../api/index.js";\nimport { build } from "../app.js";\n',
      "src/app.ts": 'import { api } from "./api/index.js";\nimport { cli } from "./cli/index.js";\nimport { pki } from "./pki/index.js";\n',
      "test/whatever.ts": 'import Docker from "dockerode";\n',
      "scripts/x.ts": 'import forge from "node-forge";\n',
    };
    expect(lines(files)).toEqual([]);
  });

  it("reports every violation, sorted by file and line", () => {
    const files = {
      "src/pki/b.ts": 'import a from "casbin";\nimport b from "../runtime/index.js";\n',
      "src/pki/a.ts": '\n\nimport c from "execa";\n',
    };
    expect(checkImports(files).map((v) => `${v.file}:${v.line}:${v.rule}`)).toEqual([
      "src/pki/a.ts:3:third-party",
      "src/pki/b.ts:1:third-party",
      "src/pki/b.ts:2:module-boundary",
    ]);
  });

  it("accepts a Map as well as a record", () => {
    const files = new Map([["src/core/x.ts", 'import "../store/index.js";\n']]);
    expect(checkImports(files).map((v) => v.rule)).toEqual(["module-boundary"]);
  });
});
