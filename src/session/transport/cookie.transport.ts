import { Logger } from '@nestjs/common';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { ResolvedCookieOptions } from '../session.options.js';
import { isWellFormedToken, TOKEN_LENGTH } from '../token/session-token.js';
import { appendHeader, setHeader, type HttpRequestLike, type HttpResponseLike } from './http.js';
import { MALFORMED_TOKEN, NO_TOKEN, type SessionTransport, type TokenReading } from './session-transport.js';
import { printable } from '../printable.js';

/** RFC 6265bis / ASVS 3.3.5: browsers drop cookies whose name + value exceed 4096 bytes; we neither read nor write larger ones. */
export const MAX_COOKIE_BYTES = 4096;

export function cookieBytes(name: string, value: string): number {
  return Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
}

/** A cookie the browser would silently drop is a bug to report, not a header to send. */
export function assertCookieFits(name: string, value: string): void {
  const bytes = cookieBytes(name, value);
  if (bytes > MAX_COOKIE_BYTES)
    throw new RangeError(
      `cookie '${name}' would be ${bytes} bytes (name + value); browsers keep at most ${MAX_COOKIE_BYTES}`,
    );
}

/**
 * Hosts a browser treats as a secure context over plain http (it keeps Secure cookies they set):
 * localhost, *.localhost, 127.0.0.0/8 and ::1. `hostname` as Express and Fastify give it
 * (no port; an IPv6 literal in brackets).
 */
export function isLocalhost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127(\.\d{1,3}){3}$/.test(host) ||
    host === '[::1]' ||
    host === '::1'
  );
}

/**
 * A login over plain http to any host but localhost whose session cookie is Secure: the
 * browser drops the cookie, login says 200 and every later request 401 `missing`, and nothing
 * said why. This says why, once (one per SessionService, so once per process in an app).
 * Protocol and host are the framework's own (`req.protocol`, `req.hostname`), so
 * X-Forwarded-Proto and -Host count only when the app trusts its proxy.
 */
export class DroppedCookieWarning {
  private warned = false;

  constructor(private readonly logger: Pick<Logger, 'warn'> = new Logger('SessionService')) {}

  /** Returns whether it warned (at most once). */
  check(
    request: HttpRequestLike & { protocol?: string; hostname?: string },
    cookie: Pick<ResolvedCookieOptions, 'name' | 'secure'>,
  ): boolean {
    if (this.warned || !cookie.secure || request.protocol !== 'http') return false;
    const host = request.hostname;
    if (typeof host !== 'string' || host === '' || isLocalhost(host)) return false;
    this.warned = true;
    this.logger.warn(
      `A login over plain http to ${printable(host)} set the Secure cookie '${cookie.name}': ` +
        'browsers drop Secure cookies sent over http (except to localhost), so every later request answers 401 missing. ' +
        "In development, set SessionModule.forRoot({ cookie: { secure: false, name: 'sid' } }) (a '__Host-' name requires Secure); " +
        "otherwise serve the app over https (behind a TLS-terminating proxy, enable the framework's trust proxy so it sees https). " +
        'Logged once.',
    );
    return true;
  }
}

const identity = (value: string) => value; // no percent-decoding: one token, one spelling

export class CookieTransport implements SessionTransport {
  readonly kind = 'cookie' as const;

  /** Name + value bytes of a cookie carrying a token (a well-formed token is 43 ASCII characters). */
  private readonly tokenCookieBytes: number;

  constructor(private readonly cookie: ResolvedCookieOptions) {
    this.tokenCookieBytes = cookieBytes(cookie.name, 'x'.repeat(TOKEN_LENGTH));
  }

  read(request: HttpRequestLike): TokenReading {
    const raw = request.headers.cookie;
    // HTTP/2 may deliver several cookie headers; they are one list joined by '; ' (RFC 9113 §8.2.3).
    const header = Array.isArray(raw) ? raw.join('; ') : raw;
    if (!header) return NO_TOKEN;
    const value = parseCookie(header, { decode: identity })[this.cookie.name];
    if (value === undefined) return NO_TOKEN;
    // Two cookies of our name mean a sibling domain or path planted one (cookie tossing):
    // we cannot tell which is ours, so neither is accepted.
    // (The name occurring once as a substring is the common case, and settles it without splitting.)
    if (header.indexOf(this.cookie.name) !== header.lastIndexOf(this.cookie.name) && this.countOccurrences(header) > 1)
      return MALFORMED_TOKEN;
    // Browsers drop a cookie over 4096 bytes; a token is 43 ASCII bytes, so only a long name gets there.
    return isWellFormedToken(value) && this.tokenCookieBytes <= MAX_COOKIE_BYTES
      ? { kind: 'token', token: value }
      : MALFORMED_TOKEN;
  }

  write(response: HttpResponseLike, token: string, maxAgeMs: number): void {
    this.setCookie(response, token, Math.max(0, Math.floor(maxAgeMs / 1000)));
  }

  clear(response: HttpResponseLike): void {
    this.setCookie(response, '', 0);
  }

  private setCookie(response: HttpResponseLike, value: string, maxAgeSeconds: number): void {
    assertCookieFits(this.cookie.name, value);
    appendHeader(
      response,
      'Set-Cookie',
      stringifySetCookie({
        name: this.cookie.name,
        value,
        maxAge: maxAgeSeconds,
        httpOnly: true,
        secure: this.cookie.secure,
        sameSite: this.cookie.sameSite,
        path: this.cookie.path,
        domain: this.cookie.domain,
      }),
    );
    // A response that changes the session cookie must never be stored by a shared cache.
    setHeader(response, 'Cache-Control', 'no-store');
  }

  /** `parseCookie` keeps the first of duplicate names, so count the pairs by name ourselves. */
  private countOccurrences(header: string): number {
    let count = 0;
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === this.cookie.name) count++;
    }
    return count;
  }
}
