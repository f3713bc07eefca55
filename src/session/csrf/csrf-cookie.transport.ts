import { stringifySetCookie } from 'cookie';
import type { ResolvedCookieOptions } from '../session.options.js';
import { assertCookieFits } from '../transport/cookie.transport.js';
import { appendHeader, type HttpRequestLike, type HttpResponseLike } from '../transport/http.js';
import type { SessionTransport, TokenReading } from '../transport/session-transport.js';
import { csrfTokenFor } from './csrf-token.js';

/**
 * The cookie transport plus a companion cookie holding the CSRF token for single-page apps:
 * same attributes as the session cookie but readable by scripts (not HttpOnly), written and
 * cleared together with it, so a page that reads it just before a request always gets the
 * token of the session cookie the browser will send. The server never reads this cookie: it
 * only compares the `x-csrf-token` header with the value derived from the session token.
 */
export class CsrfCookieTransport implements SessionTransport {
  readonly kind = 'cookie' as const;

  constructor(
    private readonly inner: SessionTransport,
    private readonly cookie: ResolvedCookieOptions,
    private readonly csrfCookieName: string,
  ) {}

  read(request: HttpRequestLike): TokenReading {
    return this.inner.read(request);
  }

  write(response: HttpResponseLike, token: string, maxAgeMs: number): void {
    this.inner.write(response, token, maxAgeMs);
    this.setCookie(response, csrfTokenFor(token), Math.max(0, Math.floor(maxAgeMs / 1000)));
  }

  clear(response: HttpResponseLike): void {
    this.inner.clear(response);
    this.setCookie(response, '', 0);
  }

  private setCookie(response: HttpResponseLike, value: string, maxAgeSeconds: number): void {
    assertCookieFits(this.csrfCookieName, value);
    appendHeader(
      response,
      'Set-Cookie',
      stringifySetCookie({
        name: this.csrfCookieName,
        value,
        maxAge: maxAgeSeconds,
        httpOnly: false, // read by the page's scripts, by design: it is not a credential on its own
        secure: this.cookie.secure,
        sameSite: this.cookie.sameSite,
        path: this.cookie.path,
        domain: this.cookie.domain,
      }),
    );
  }
}
