/**
 * Where an unsafe request came from, judged from what browsers send and pages cannot forge:
 * `Sec-Fetch-Site`, `Origin` and, without Origin, the origin of `Referer`. A header that is
 * absent proves nothing either way (curl, mobile apps, old browsers): the CSRF token still has
 * to match, so absence passes here.
 */
export type OriginFailure = 'cross_site' | 'origin_not_allowed';

export interface OriginHeaders {
  secFetchSite?: string;
  origin?: string;
  referer?: string;
}

export type OriginVerdict =
  { readonly ok: true } | { readonly ok: false; readonly reason: OriginFailure; readonly origin?: string };

const OK: OriginVerdict = Object.freeze({ ok: true });
/** The Fetch Metadata values that mean "not from another site"; anything else fails closed. */
const NOT_CROSS_SITE = new Set(['same-origin', 'same-site', 'none']);

export function checkRequestOrigin(headers: OriginHeaders, allowedOrigins: ReadonlySet<string>): OriginVerdict {
  if (headers.secFetchSite !== undefined && !NOT_CROSS_SITE.has(headers.secFetchSite.trim().toLowerCase())) {
    return { ok: false, reason: 'cross_site', origin: headers.origin };
  }
  if (headers.origin !== undefined) {
    // Exact match only: 'null' (sandboxed frames, file: pages, some redirects) and look-alikes
    // such as 'https://app.example.com.evil.com' are never prefixes or suffixes of a match.
    return allowedOrigins.has(headers.origin)
      ? OK
      : { ok: false, reason: 'origin_not_allowed', origin: headers.origin };
  }
  if (headers.referer !== undefined) {
    const origin = originOfUrl(headers.referer);
    return origin !== undefined && allowedOrigins.has(origin)
      ? OK
      : { ok: false, reason: 'origin_not_allowed', origin: origin ?? headers.referer };
  }
  return OK;
}

/** The serialized origin of an absolute http(s) URL, or undefined for anything else. */
export function originOfUrl(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}
