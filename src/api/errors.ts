import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ERRORS, PortcullisError, type ErrorCode } from "../core/index.js";

/** The one shape of every error answer: `{ code, message, requestId }`. */
export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly requestId: string;
  /** The decision record, when a deploy was refused by its checks. */
  readonly decision?: unknown;
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "PC_API_BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "PC_API_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "PC_API_BODY_TOO_LARGE",
  FST_ERR_CTP_EMPTY_JSON_BODY: "PC_API_MALFORMED_JSON",
  FST_ERR_CTP_INVALID_TYPE: "PC_API_UNSUPPORTED_MEDIA_TYPE",
};

/** Maps anything thrown in a request to a PortcullisError; the original goes to the log. */
export function toApiError(err: FastifyError | PortcullisError | Error): PortcullisError {
  if (err instanceof PortcullisError) return err;
  const fe = err as FastifyError;
  if (fe.validation && fe.validation.length > 0) {
    const v = fe.validation[0];
    const where = `${fe.validationContext ?? "body"}${v?.instancePath ?? ""}`;
    const params = v?.params as Record<string, unknown> | undefined;
    const extra = params?.additionalProperty ? ` (${String(params.additionalProperty)})` : "";
    return new PortcullisError("PC_API_INVALID_BODY", { detail: `${where} ${v?.message ?? "is invalid"}${extra}` });
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new PortcullisError(mapped, { internal: err });
  if (fe.statusCode === 404) return new PortcullisError("PC_API_NOT_FOUND");
  return new PortcullisError("PC_INTERNAL", { internal: err });
}

export function errorBody(e: PortcullisError, requestId: string): ErrorBody {
  return e.decision === undefined ? { code: e.code, message: e.publicMessage, requestId } : { code: e.code, message: e.publicMessage, requestId, decision: e.decision };
}

export function sendError(req: FastifyRequest, reply: FastifyReply, err: Error): FastifyReply {
  const e = toApiError(err);
  if (e.status >= 500) {
    req.log.error({ code: e.code, internal: describeInternal(e.internal ?? e.cause) }, "request failed");
  } else {
    req.log.info({ code: e.code }, "request refused");
  }
  return reply.code(e.status).type("application/json").send(errorBody(e, req.id));
}

function describeInternal(x: unknown): unknown {
  if (x instanceof Error) return { name: x.name, message: x.message, code: (x as { code?: unknown }).code };
  return x === undefined ? undefined : String(x);
}

export { ERRORS };
