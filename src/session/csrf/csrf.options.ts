import * as is from '../option-schema.js';

/** `scheme://host[:port]` exactly as browsers send it in Origin: lower case, no path, no trailing slash. */
export function isSerializedOrigin(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

/** The CSRF cookie follows the session cookie's prefix, so it gets the same browser-enforced guarantees. */
export const defaultCsrfCookieName = (sessionCookieName: string) =>
  `${/^__(Host|Secure)-/.exec(sessionCookieName)?.[0] ?? ''}csrf`;

/** CSRF protection of cookie-borne sessions (bearer sessions need none). */
export class SessionCsrfOptions {
  /** Turning it off leaves cookie sessions open to cross-site request forgery. */
  @is.Bool() enabled?: boolean;
  /** Request header that must carry `session.csrfToken` on unsafe methods. */
  @is.HeaderName() headerName?: string;
  /**
   * Non-HttpOnly cookie holding the CSRF token for single-page apps, written and cleared with the
   * session cookie. Default: 'csrf' with the session cookie's prefix ('__Host-csrf' by default);
   * `false` sends no such cookie (take `session.csrfToken` from a response body).
   */
  @is.Check((v) => v === false || (typeof v === 'string' && is.COOKIE_NAME.test(v)), 'must be a cookie token, or false')
  cookieName?: string | false;
  /**
   * Origins (`scheme://host[:port]`) allowed to send unsafe requests, compared exactly.
   * Default: only the request's own origin, as Host and the framework's protocol state it.
   */
  @is.Check(
    (v) => Array.isArray(v) && v.length > 0 && v.length <= 100 && v.every(isSerializedOrigin),
    "must be a list of 1 to 100 origins like 'https://app.example.com' (no path or trailing slash)",
  )
  allowedOrigins?: string[];
}
