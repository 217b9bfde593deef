// The module rules of the design ("Modules (src/)") as data, and a pure checker that
// applies them to a map { "src/...ts" -> source text }. No dependencies, no file system:
// scripts/lint-imports.mjs reads the tree and prints what this returns.

/** The domains, in the order of the design table. */
export const DOMAINS = Object.freeze([
  "core",
  "store",
  "pki",
  "rbac",
  "audit",
  "deploy",
  "admission",
  "secrets",
  "runtime",
  "monitoring",
]);

/**
 * The rule table.
 *
 * - `modules`: every module under src/ (a top-level folder, or a file directly in src/
 *   such as `app.ts`) and the modules it may import. A file outside every listed module
 *   is itself a violation.
 * - `entries`: the one file through which other modules reach a module. Every import that
 *   crosses from one module into another must name that file.
 * - `thirdParty`: packages confined to one part of src/; importing them anywhere else
 *   is a violation.
 */
export const MODULE_RULES = Object.freeze({
  modules: Object.freeze({
    core: Object.freeze([]),
    store: Object.freeze(["core"]),
    pki: Object.freeze(["core", "store"]),
    rbac: Object.freeze(["core", "store"]),
    audit: Object.freeze(["core", "store", "pki", "deploy"]),
    deploy: Object.freeze(["core", "store", "pki"]),
    admission: Object.freeze(["core", "store", "deploy"]),
    secrets: Object.freeze(["core", "store"]),
    runtime: Object.freeze(["core", "store", "secrets", "deploy"]),
    monitoring: Object.freeze(["core", "store", "runtime"]),
    api: Object.freeze([...DOMAINS]),
    cli: Object.freeze([...DOMAINS, "api", "app.ts"]),
    "app.ts": Object.freeze([...DOMAINS, "api", "cli"]),
  }),
  entries: Object.freeze({
    ...Object.fromEntries(DOMAINS.map((d) => [d, `src/${d}/index.ts`])),
    api: "src/api/index.ts",
    cli: "src/cli/index.ts",
    "app.ts": "src/app.ts",
  }),
  thirdParty: Object.freeze({
    "node-forge": "src/pki/",
    casbin: "src/rbac/",
    dockerode: "src/runtime/",
    execa: "src/admission/scanner/",
    "tar-stream": "src/admission/scanner/",
    yauzl: "src/admission/scanner/",
    "better-sqlite3": "src/store/",
    "prom-client": "src/monitoring/",
  }),
});

// ---------------------------------------------------------------------------------------
// Tokenizer: just enough of TypeScript's lexical grammar to find import specifiers while
// ignoring comments, strings, template literals and regular expressions.

const REGEX_AFTER_WORD = new Set([
  "return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw",
  "case", "do", "else", "yield", "await",
]);

function isIdentStart(c) {
  return /[A-Za-z_$\u0080-\uffff]/.test(c);
}
function isIdentPart(c) {
  return /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}

/**
 * @param {string} src
 * @returns {{ type: "ident"|"string"|"template"|"punct"|"num"|"regex", value: string, line: number, complete?: boolean }[]}
 */
export function tokenize(src) {
  const tokens = [];
  const stack = []; // "{" for a brace, "${" for a template substitution
  const n = src.length;
  let i = 0;
  let line = 1;

  const prevSignificant = () => tokens[tokens.length - 1];

  // Reads template text from i (just after "`" or the "}" closing a substitution).
  const readTemplate = (startLine, head) => {
    let value = "";
    while (i < n) {
      const c = src[i];
      if (c === "\\") {
        value += src[i + 1] ?? "";
        if (src[i + 1] === "\n") line++;
        i += 2;
        continue;
      }
      if (c === "`") {
        i++;
        tokens.push({ type: "template", value, line: startLine, complete: head });
        return;
      }
      if (c === "$" && src[i + 1] === "{") {
        i += 2;
        stack.push("${");
        tokens.push({ type: "template", value, line: startLine, complete: false });
        return;
      }
      if (c === "\n") line++;
      value += c;
      i++;
    }
    tokens.push({ type: "template", value, line: startLine, complete: false });
  };

  while (i < n) {
    const c = src[i];
    if (c === "\n") {
      line++;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v" || c === "\ufeff") {
      i++;
      continue;
    }
    if (c === "/" && src[i + 1] === "/") {
      while (i < n && src[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && src[i + 1] === "*") {
      i += 2;
      while (i < n && !(src[i] === "*" && src[i + 1] === "/")) {
        if (src[i] === "\n") line++;
        i++;
      }
      i += 2;
      continue;
    }
    if (c === '"' || c === "'") {
      const startLine = line;
      let value = "";
      i++;
      while (i < n && src[i] !== c) {
        if (src[i] === "\\") {
          if (src[i + 1] === "\n") line++;
          value += src[i + 1] ?? "";
          i += 2;
          continue;
        }
        if (src[i] === "\n") break; // unterminated; stop at the line end
        value += src[i];
        i++;
      }
      i++;
      tokens.push({ type: "string", value, line: startLine });
      continue;
    }
    if (c === "`") {
      i++;
      readTemplate(line, true);
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(src[j])) j++;
      tokens.push({ type: "ident", value: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] ?? ""))) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(src[j])) j++;
      tokens.push({ type: "num", value: src.slice(i, j), line });
      i = j;
      continue;
    }
    if (c === "/") {
      const prev = prevSignificant();
      const regexAllowed =
        !prev ||
        (prev.type === "punct" && !")]}".includes(prev.value)) ||
        (prev.type === "ident" && REGEX_AFTER_WORD.has(prev.value));
      if (regexAllowed) {
        const startLine = line;
        let j = i + 1;
        let inClass = false;
        while (j < n && src[j] !== "\n") {
          if (src[j] === "\\") {
            j += 2;
            continue;
          }
          if (src[j] === "[") inClass = true;
          else if (src[j] === "]") inClass = false;
          else if (src[j] === "/" && !inClass) break;
          j++;
        }
        j++;
        while (j < n && isIdentPart(src[j])) j++;
        tokens.push({ type: "regex", value: src.slice(i, j), line: startLine });
        i = j;
        continue;
      }
    }
    if (c === "{") {
      stack.push("{");
    } else if (c === "}") {
      const top = stack.pop();
      if (top === "${") {
        i++;
        readTemplate(line, false);
        continue;
      }
    }
    tokens.push({ type: "punct", value: c, line });
    i++;
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Import extraction.

const STATEMENT_STOP = new Set([
  "import", "export", "const", "let", "var", "function", "class", "interface", "enum",
  "declare", "return", "if", "for", "while", "switch", "try",
]);

function isLiteral(tok) {
  return !!tok && (tok.type === "string" || (tok.type === "template" && tok.complete === true));
}

function skipBraces(tokens, j) {
  // tokens[j] is "{"; returns the index just past the matching "}".
  let depth = 0;
  for (; j < tokens.length; j++) {
    const t = tokens[j];
    if (t.type !== "punct") continue;
    if (t.value === "{") depth++;
    else if (t.value === "}") {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  return j;
}

/**
 * Every module reference in a TypeScript source: static imports (value and type),
 * side-effect imports, `export ... from`, `import("x")` (also in type positions),
 * `import x = require("x")` and `require("x")`. A reference whose specifier is not a
 * literal has `specifier: null`.
 *
 * @param {string} source
 * @returns {{ specifier: string | null, line: number, kind: "import"|"export"|"dynamic"|"require" }[]}
 */
export function extractImports(source) {
  const tokens = tokenize(source);
  const found = [];
  const consumed = new Set(); // `require` tokens already read as part of `import x = require()`
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (t.type !== "ident" || consumed.has(k)) continue;
    const prev = tokens[k - 1];
    if (prev && prev.type === "punct" && prev.value === ".") continue; // obj.import, obj.require
    const next = tokens[k + 1];

    if (t.value === "import") {
      if (!next) continue;
      if (next.type === "punct" && next.value === "(") {
        const arg = tokens[k + 2];
        found.push({ specifier: isLiteral(arg) ? arg.value : null, line: t.line, kind: "dynamic" });
        continue;
      }
      if (next.type === "string") {
        found.push({ specifier: next.value, line: t.line, kind: "import" });
        continue;
      }
      const startsClause =
        next.type === "ident" || (next.type === "punct" && (next.value === "{" || next.value === "*"));
      if (!startsClause) continue; // import.meta, { import: x }, ...
      for (let j = k + 1; j < tokens.length; ) {
        const u = tokens[j];
        if (u.type === "punct" && u.value === ";") break;
        if (u.type === "punct" && u.value === "{") {
          j = skipBraces(tokens, j);
          continue;
        }
        if (u.type === "ident" && u.value === "from" && tokens[j + 1]?.type === "string") {
          found.push({ specifier: tokens[j + 1].value, line: t.line, kind: "import" });
          break;
        }
        if (
          u.type === "ident" &&
          u.value === "require" &&
          tokens[j + 1]?.value === "(" &&
          tokens[j + 1]?.type === "punct"
        ) {
          const arg = tokens[j + 2];
          found.push({ specifier: isLiteral(arg) ? arg.value : null, line: t.line, kind: "require" });
          consumed.add(j);
          break;
        }
        if (j > k + 1 && u.type === "ident" && STATEMENT_STOP.has(u.value)) break;
        j++;
      }
      continue;
    }

    if (t.value === "export") {
      let j = k + 1;
      if (tokens[j]?.type === "ident" && tokens[j].value === "type") {
        const after = tokens[j + 1];
        if (after?.type === "punct" && (after.value === "{" || after.value === "*")) j++;
      }
      const u = tokens[j];
      if (!u || u.type !== "punct") continue;
      if (u.value === "*") {
        j++;
        if (tokens[j]?.type === "ident" && tokens[j].value === "as") j += 2;
      } else if (u.value === "{") {
        j = skipBraces(tokens, j);
      } else {
        continue;
      }
      if (tokens[j]?.type === "ident" && tokens[j].value === "from" && tokens[j + 1]?.type === "string") {
        found.push({ specifier: tokens[j + 1].value, line: t.line, kind: "export" });
      }
      continue;
    }

    if (t.value === "require" && next?.type === "punct" && next.value === "(") {
      const arg = tokens[k + 2];
      found.push({ specifier: isLiteral(arg) ? arg.value : null, line: t.line, kind: "require" });
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------
// Checking.

function normalize(p) {
  const out = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0 || out[out.length - 1] === "..") out.push("..");
      else out.pop();
    } else out.push(part);
  }
  return out.join("/");
}

function dirname(p) {
  const i = p.lastIndexOf("/");
  return i < 0 ? "" : p.slice(0, i);
}

/** The module a path under src/ belongs to, or null when it belongs to none. */
export function moduleOf(path, rules = MODULE_RULES) {
  if (!path.startsWith("src/")) return null;
  const rest = path.slice(4);
  const slash = rest.indexOf("/");
  const name = slash < 0 ? rest : rest.slice(0, slash);
  if (!Object.prototype.hasOwnProperty.call(rules.modules, name)) return null;
  if (slash < 0 && !name.endsWith(".ts")) return null; // a bare folder name is not a file
  return name;
}

/** `./x.js` names `x.ts` under NodeNext resolution. */
function sourcePathOf(target) {
  if (target.endsWith(".js")) return target.slice(0, -3) + ".ts";
  if (target.endsWith(".mjs")) return target.slice(0, -4) + ".mts";
  if (target.endsWith(".cjs")) return target.slice(0, -4) + ".cts";
  return target;
}

function packageName(spec) {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * Checks every source file under src/ against the rules.
 *
 * @param {Record<string, string> | Map<string, string>} files paths relative to the
 *   repository root, with forward slashes ("src/pki/ca.ts"), mapped to their text
 * @param {typeof MODULE_RULES} [rules]
 * @returns {{ file: string, line: number, rule: string, message: string }[]} sorted by file and line
 */
export function checkImports(files, rules = MODULE_RULES) {
  const entries = files instanceof Map ? [...files.entries()] : Object.entries(files);
  const violations = [];
  const report = (file, line, rule, message) => violations.push({ file, line, rule, message });

  for (const [file, source] of entries) {
    if (!file.startsWith("src/")) continue;
    const from = moduleOf(file, rules);
    if (from === null) {
      const known = Object.keys(rules.modules).join(", ");
      report(file, 1, "unknown-module", `${file} is not inside a known module (${known})`);
      continue;
    }
    const allowed = rules.modules[from];

    for (const ref of extractImports(source)) {
      const { specifier, line } = ref;
      if (specifier === null) {
        report(file, line, "non-literal-import", `${ref.kind === "require" ? "require()" : "import()"} must name its module with a string literal`);
        continue;
      }
      if (specifier.startsWith("node:")) continue;

      if (specifier.startsWith("./") || specifier.startsWith("../") || specifier === "." || specifier === "..") {
        const target = normalize(`${dirname(file)}/${specifier}`);
        if (!target.startsWith("src/")) {
          report(file, line, "outside-src", `"${specifier}" resolves outside src/`);
          continue;
        }
        const to = moduleOf(sourcePathOf(target), rules) ?? moduleOf(target + "/", rules);
        if (to === null) {
          report(file, line, "unknown-module", `"${specifier}" resolves to ${target}, which is not inside a known module`);
          continue;
        }
        if (to === from) continue;
        if (!allowed.includes(to)) {
          const may = allowed.length ? allowed.join(", ") : "nothing of ours";
          report(file, line, "module-boundary", `${from} may not import ${to} ("${specifier}"); ${from} may import ${may}`);
          continue;
        }
        const entry = rules.entries[to];
        if (sourcePathOf(target) !== entry) {
          report(file, line, "entry-only", `${from} must import ${to} through ${entry}, not "${specifier}"`);
        }
        continue;
      }

      if (specifier.startsWith("/") || specifier.startsWith("#") || /^[a-z][a-z0-9+.-]*:/i.test(specifier)) {
        report(file, line, "outside-src", `"${specifier}" is not a relative import, a node: builtin or a package`);
        continue;
      }

      const pkg = packageName(specifier);
      const home = Object.prototype.hasOwnProperty.call(rules.thirdParty, pkg) ? rules.thirdParty[pkg] : undefined;
      if (home !== undefined && !file.startsWith(home)) {
        report(file, line, "third-party", `"${pkg}" is confined to ${home}`);
      }
    }
  }

  violations.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
  return violations;
}

/** `file:line: rule: message` */
export function formatViolation(v) {
  return `${v.file}:${v.line}: ${v.rule}: ${v.message}`;
}
