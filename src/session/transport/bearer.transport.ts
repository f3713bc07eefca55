import { isWellFormedToken } from '../token/session-token.js';
import { headerValue, setHeader, type HttpRequestLike, type HttpResponseLike } from './http.js';
import { MALFORMED_TOKEN, NO_TOKEN, type SessionTransport, type TokenReading } from './session-transport.js';

const BEARER = /^Bearer ([^\s,]+)$/i;

/**
 * `Authorization: Bearer <token>` (RFC 6750 §2.1). Only the header: tokens in query strings
 * or bodies end up in logs and Referer headers, so they are never read. A rotated token is
 * returned in a response header the client must adopt.
 */
export class BearerTransport implements SessionTransport {
  readonly kind = 'bearer' as const;

  constructor(private readonly rotationHeader: string) {}

  read(request: HttpRequestLike): TokenReading {
    const header = headerValue(request, 'authorization');
    if (header === undefined) return NO_TOKEN;
    const match = BEARER.exec(header.trim());
    if (!match) return header.trim() === '' ? NO_TOKEN : MALFORMED_TOKEN;
    return isWellFormedToken(match[1]) ? { kind: 'token', token: match[1] } : MALFORMED_TOKEN;
  }

  write(response: HttpResponseLike, token: string, _maxAgeMs?: number): void {
    setHeader(response, this.rotationHeader, token);
    setHeader(response, 'Cache-Control', 'no-store');
  }

  clear(): void {
    // Nothing stored on the client by us; the client drops its token on 401.
  }
}
