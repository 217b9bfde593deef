// Types for scripts/lint-imports.mjs.
export function readSourceTree(root: string): Record<string, string>;
export function main(root: string): number;
