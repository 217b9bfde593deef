import type { RouteDef } from "./route.js";
import { ERROR_RESPONSES } from "./route.js";

/** The OpenAPI 3.1 document, generated from the same declarations the server registers. */
export function openApiDocument(title: string, version: string, routes: readonly RouteDef[]): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routes) {
    const url = r.url.replace(/:([A-Za-z]+)/g, "{$1}");
    const responses: Record<string, object> = {};
    for (const [code, schema] of Object.entries({ ...ERROR_RESPONSES, ...r.schema.response })) {
      const ct = Number(code) < 400 && r.schema.produces ? r.schema.produces : "application/json";
      responses[code] = { description: Number(code) < 400 ? "success" : "error", content: { [ct]: { schema } } };
    }
    const op: Record<string, unknown> = {
      summary: r.schema.summary,
      "x-portcullis-authz": r.authz,
      responses,
    };
    if (r.schema.body) op.requestBody = { required: true, content: { "application/json": { schema: r.schema.body } } };
    if (r.schema.querystring) {
      const q = r.schema.querystring as { properties?: Record<string, object>; required?: string[] };
      op.parameters = Object.entries(q.properties ?? {}).map(([name, schema]) => ({
        name,
        in: "query",
        required: (q.required ?? []).includes(name),
        schema,
      }));
    }
    (paths[url] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info: { title, version },
    components: { securitySchemes: { mtls: { type: "mutualTLS" } } },
    security: [{ mtls: [] }],
    paths,
  };
}
