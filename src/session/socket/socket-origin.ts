import { originOfUrl } from '../csrf/request-origin.js';
import { headerValue, type HttpRequestLike } from '../transport/http.js';

/**
 * Cross-site WebSocket hijacking: a browser sends the session cookie with a WebSocket handshake
 * that any page opens (SameSite=None, or a sibling subdomain under Lax), and the same-origin
 * policy does not apply to sockets. Browsers always send `Origin` with the handshake: it must
 * be one of `csrf.allowedOrigins`, or by default name the host the socket connects to. No
 * Origin (not a browser) passes: such a client chose its cookie itself.
 */
export function handshakeOriginAllowed(request: HttpRequestLike, allowedOrigins?: readonly string[]): boolean {
  const origin = headerValue(request, 'origin');
  if (origin === undefined) return true;
  if (allowedOrigins) return allowedOrigins.includes(origin);
  const parsed = originOfUrl(origin);
  const host = headerValue(request, 'host')?.toLowerCase();
  return parsed !== undefined && host !== undefined && new URL(parsed).host === host;
}
