import { defineRoute, S, type RouteDef } from "../route.js";
import { formatHostPort, parseHostPort } from "../../core/index.js";
import type { RouteContext } from "./context.js";

/** A wildcard listen address is replaced by the host name the client used to reach us. */
function advertisedApiAddress(listen: string, requestHost: string): string {
  const hp = parseHostPort(listen);
  if (hp.host !== "0.0.0.0" && hp.host !== "::") return listen;
  const host = requestHost.replace(/^\[(.*)\](?::\d+)?$/, "$1").replace(/:\d+$/, "");
  return formatHostPort({ host, port: hp.port });
}

/** The routes of the bootstrap port (server-auth TLS only): enrollment and trust material. */
export function bootstrapRoutes(ctx: RouteContext): RouteDef[] {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/enroll",
      authz: { kind: "public" },
      schema: {
        summary: "Exchange a one-time token and a CSR for a client certificate",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["token", "csr"],
          properties: { token: { type: "string", minLength: 1, maxLength: 128 }, csr: S.pem },
        },
        response: { 201: S.issued },
      },
      handler: async (req, reply) => {
        const b = req.body as { token: string; csr: string };
        const issued = ctx.pki.enroll(b.token, b.csr, { sourceAddress: req.ip, requestId: req.id });
        reply.code(201);
        return { ...issued, apiAddress: advertisedApiAddress(ctx.apiAddress(), req.hostname) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/ca.pem",
      authz: { kind: "public" },
      schema: { summary: "The CA bundle: root, then issuing intermediate (PEM)", produces: "application/x-pem-file", response: { 200: { type: "string" } } },
      handler: async (_req, reply) => {
        reply.type("application/x-pem-file");
        return ctx.pki.ca.bundlePem;
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/crl",
      authz: { kind: "public" },
      schema: { summary: "The issuing CA's CRL (DER)", produces: "application/pkix-crl", response: { 200: { type: "string" } } },
      handler: async (_req, reply) => {
        reply.type("application/pkix-crl");
        return ctx.pki.crls().leafDer;
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/crl.pem",
      authz: { kind: "public" },
      schema: { summary: "The issuing CA's CRL (PEM)", produces: "application/x-pem-file", response: { 200: { type: "string" } } },
      handler: async (_req, reply) => {
        reply.type("application/x-pem-file");
        return ctx.pki.crls().leafPem;
      },
    }),
    defineRoute({
      method: "GET",
      url: "/healthz",
      authz: { kind: "public" },
      schema: { summary: "Liveness and dependency status", response: { 200: { type: "object", additionalProperties: true } } },
      handler: async () => ctx.health(),
    }),
  ];
}
