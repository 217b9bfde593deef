/** The product version, reported by the API and the CLI. */
export const VERSION = "0.1.0";
