/** The RBAC domain: the Casbin model and policy, the enforcer, authoring and history. */
export * from "./types.js";
export * from "./namespaces.js";
export * from "./policy-service.js";
export { FastEnforcer } from "./fast-enforcer.js";
export { StockCasbinEnforcer } from "./casbin-enforcer.js";
export { formatPolicyCsv, parsePolicyCsv, policyDiff } from "./policy-csv.js";
export { assertValidPolicy, validatePolicy } from "./validate.js";
export { checkNoEscalation } from "./escalation.js";
export { formatPolicyTestReport, parsePolicyTestFile, runPolicyTestFile, runPolicyTests } from "./policy-test.js";
export type { PolicyTestReport } from "./policy-test.js";
