import { ownStateOf, stateOf } from '../request-state.js';

/**
 * The few request/response operations the session layer needs, for both Express and
 * Fastify. Both expose Node-style `headers` on the request; only writing differs.
 */
export interface HttpRequestLike {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
  socket?: { remoteAddress?: string };
}

export type HttpResponseLike = object;

interface ExpressResponse {
  append(name: string, value: string): unknown;
  setHeader(name: string, value: string): unknown;
}
interface FastifyReply {
  header(name: string, value: string): unknown;
}

function isExpress(response: HttpResponseLike): response is ExpressResponse {
  return typeof (response as Partial<ExpressResponse>).append === 'function';
}

export function headerValue(request: HttpRequestLike, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Adds a header value without dropping earlier ones (several Set-Cookie lines may be sent). */
export function appendHeader(response: HttpResponseLike, name: string, value: string): void {
  if (isExpress(response)) response.append(name, value);
  else (response as FastifyReply).header(name, value); // Fastify accumulates set-cookie itself
}

export function setHeader(response: HttpResponseLike, name: string, value: string): void {
  if (isExpress(response)) response.setHeader(name, value);
  else (response as FastifyReply).header(name, value);
}

/** The client address as the framework resolved it (Express `trust proxy`, Fastify `trustProxy`). */
export function frameworkClientIp(request: HttpRequestLike): string | undefined {
  return request.ip ?? request.socket?.remoteAddress;
}

/** Records SessionGuard.getClientIp()'s answer, so audit rows, flood counting and CSRF audits all use the same address. */
export function rememberClientIp(request: HttpRequestLike, ip: string | undefined): void {
  ownStateOf(request).clientIp = ip;
}

/** The client address: SessionGuard.getClientIp()'s answer for this request, else the framework's. */
export function clientIp(request: HttpRequestLike): string | undefined {
  const state = stateOf(request);
  return state && 'clientIp' in state ? state.clientIp : frameworkClientIp(request);
}
