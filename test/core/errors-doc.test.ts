import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERRORS, isErrorCode } from "../../src/core/index.js";

/**
 * docs/errors.md and the registry in src/core/errors.ts must agree: the same codes, the
 * same statuses and public messages. Every code named in a string literal under src/ must
 * be registered.
 */

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CODE_RE = /^PC_[A-Z]+_[A-Z_]+$/;

interface DocRow {
  readonly code: string;
  readonly status: number;
  readonly message: string;
  readonly when: string;
  readonly section: string;
}

/** The rows of every table in docs/errors.md whose first cell is a backquoted code. */
function docRows(text: string): DocRow[] {
  const rows: DocRow[] = [];
  let section = "";
  for (const line of text.split("\n")) {
    const h = /^##\s+(.+?)\s*$/.exec(line);
    if (h) section = h[1] as string;
    if (!line.startsWith("|")) continue;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    const m = /^`(PC_[A-Z_]+)`$/.exec(cells[0] ?? "");
    if (!m) continue;
    rows.push({ code: m[1] as string, status: Number(cells[1]), message: cells[2] ?? "", when: cells[3] ?? "", section });
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(?:ts|mts|cts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** `"PC_..."`, `'PC_...'` and `` `PC_...` `` literals (not prose in comments). */
function codeLiterals(src: string): string[] {
  return [...src.matchAll(/(["'`])(PC_[A-Za-z0-9_]*)\1/g)].map((m) => m[2] as string);
}

describe("docs/errors.md lists the error registry", () => {
  const rows = docRows(readFileSync(join(ROOT, "docs/errors.md"), "utf8"));
  const registry = Object.keys(ERRORS);

  it("parses a row for every table line of the document", () => {
    expect(rows.length).toBeGreaterThan(10);
    for (const r of rows) {
      expect(Number.isInteger(r.status), `${r.code} status`).toBe(true);
      expect(r.when.length, `${r.code} has a "when"`).toBeGreaterThan(10);
      expect(r.section, `${r.code} is under a heading`).not.toBe("");
    }
  });

  it("documents each code once", () => {
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(r.code, (seen.get(r.code) ?? 0) + 1);
    expect([...seen].filter(([, n]) => n > 1).map(([c]) => c)).toEqual([]);
  });

  it("documents every registered code", () => {
    const documented = new Set(rows.map((r) => r.code));
    expect(registry.filter((c) => !documented.has(c))).toEqual([]);
  });

  it("documents no code that is not registered", () => {
    expect(rows.map((r) => r.code).filter((c) => !isErrorCode(c))).toEqual([]);
  });

  it("gives each code the registry's status and public message", () => {
    for (const r of rows) {
      if (!isErrorCode(r.code)) continue;
      expect({ code: r.code, status: r.status, message: r.message }).toEqual({
        code: r.code,
        status: ERRORS[r.code].status,
        message: ERRORS[r.code].message,
      });
    }
  });

  it("groups codes under the heading of their area", () => {
    const area: Record<string, string> = {
      INTERNAL: "General",
      CONFIG: "Configuration",
      API: "API",
      STORE: "Store",
      PKI: "PKI",
      RBAC: "RBAC",
      DEPLOY: "Deploy",
      ADMISSION: "Admission",
      RUNTIME: "Runtime",
      SECRETS: "Secrets",
      SCAN: "Scan",
      MONITOR: "Monitoring",
      AUDIT: "Audit",
      CLI: "CLI",
    };
    for (const r of rows) {
      const a = r.code.split("_")[1] as string;
      expect(r.section, r.code).toBe(area[a] ?? `an area heading for ${a}`);
    }
  });
});

describe("the registry", () => {
  it.each(Object.entries(ERRORS))("%s is PC_<AREA>_<REASON> or PC_INTERNAL, with a status and a message", (code, spec) => {
    expect(code === "PC_INTERNAL" || CODE_RE.test(code), code).toBe(true);
    expect(spec.status >= 400 && spec.status <= 599).toBe(true);
    expect(spec.message.trim()).not.toBe("");
    expect(spec.message).not.toMatch(/\.$/);
  });
});

describe("every code used in src/ is registered", () => {
  const files = sourceFiles(join(ROOT, "src"));
  const uses = files.flatMap((f) => codeLiterals(readFileSync(f, "utf8")).map((code) => ({ file: relative(ROOT, f), code })));

  it("finds the codes the source uses", () => {
    // The scan must see real uses, or an empty result would prove nothing.
    expect(files.length).toBeGreaterThan(20);
    expect(uses.map((u) => u.code)).toEqual(expect.arrayContaining(["PC_API_DUPLICATE_KEY", "PC_PKI_TOKEN_USED", "PC_STORE_DATA_DIR_TOO_NEW"]));
  });

  it("has no unregistered code literal", () => {
    expect(uses.filter((u) => !isErrorCode(u.code))).toEqual([]);
  });

  it("recognises literals in each quoting style", () => {
    expect(codeLiterals(`pcError("PC_A_B"); x = 'PC_C_D'; y = \`PC_E_F\`; // PC_G_H in prose`)).toEqual(["PC_A_B", "PC_C_D", "PC_E_F"]);
  });
});
