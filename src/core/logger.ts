import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

/** Paths that could carry secret material are removed from every log line. */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "token",
  "*.token",
  "key",
  "*.key",
  "privateKey",
  "*.privateKey",
  "csr",
  "*.csr",
  // Secret values (request and response bodies are not logged; this is the second line).
  "value",
  "*.value",
  "req.body",
  "res.body",
];

export function loggerOptions(level = process.env.PORTCULLIS_LOG_LEVEL ?? "info"): LoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, remove: true } };
}

export function createLogger(level?: string): Logger {
  return pino(loggerOptions(level));
}

export const silentLogger: Logger = pino({ level: "silent" });
