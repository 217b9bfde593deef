// Types for scripts/module-rules.mjs, so that TypeScript tests can import the checker.

export type ModuleName = string;

export interface ModuleRules {
  readonly modules: Readonly<Record<ModuleName, readonly ModuleName[]>>;
  readonly entries: Readonly<Record<ModuleName, string>>;
  readonly thirdParty: Readonly<Record<string, string>>;
}

export interface ImportRef {
  readonly specifier: string | null;
  readonly line: number;
  readonly kind: "import" | "export" | "dynamic" | "require";
}

export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly rule:
    | "unknown-module"
    | "module-boundary"
    | "entry-only"
    | "third-party"
    | "outside-src"
    | "non-literal-import";
  readonly message: string;
}

export const DOMAINS: readonly string[];
export const MODULE_RULES: ModuleRules;
export function extractImports(source: string): ImportRef[];
export function moduleOf(path: string, rules?: ModuleRules): ModuleName | null;
export function checkImports(
  files: Readonly<Record<string, string>> | ReadonlyMap<string, string>,
  rules?: ModuleRules,
): Violation[];
export function formatViolation(v: Violation): string;
