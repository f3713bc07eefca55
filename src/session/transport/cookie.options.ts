import * as is from '../option-schema.js';

export type SameSite = 'lax' | 'strict' | 'none';

export class SessionCookieOptions {
  /** A `__Host-` name makes browsers refuse the cookie without Secure, with a Domain or a Path other than '/'. */
  @is.CookieName() name?: string;
  /** Only a name without a `__Host-`/`__Secure-` prefix may turn it off (plain-http development). */
  @is.Bool() secure?: boolean;
  @is.OneOf(['lax', 'strict', 'none']) sameSite?: SameSite;
  /** Not allowed with a `__Host-` name. */
  @is.Text(/^\.?[a-z0-9.-]{1,253}$/i, 'must be a host name') domain?: string;
  /** Must be '/' with a `__Host-` name. */
  @is.Text(/^\/[\x21-\x3a\x3c-\x7e]*$/, "must start with '/' and hold no ';', spaces or control characters")
  path?: string;
}
