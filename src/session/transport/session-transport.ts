import type { HttpRequestLike, HttpResponseLike } from './http.js';

/** What a request carried: nothing, something that cannot be a token, or a well-formed token. */
export type TokenReading =
  { readonly kind: 'none' } | { readonly kind: 'malformed' } | { readonly kind: 'token'; readonly token: string };

export const NO_TOKEN: TokenReading = Object.freeze({ kind: 'none' });
export const MALFORMED_TOKEN: TokenReading = Object.freeze({ kind: 'malformed' });

/** Where the token travels. The session layer never touches headers or cookies directly. */
export interface SessionTransport {
  /** 'cookie' sessions need CSRF protection; 'bearer' ones do not. */
  readonly kind: 'cookie' | 'bearer';
  read(request: HttpRequestLike): TokenReading;
  /** Hands a new token to the client; `maxAgeMs` never exceeds the session's absolute expiry. */
  write(response: HttpResponseLike, token: string, maxAgeMs: number): void;
  /** Tells the client to forget its token (logout, revoked or expired session). */
  clear(response: HttpResponseLike): void;
}
