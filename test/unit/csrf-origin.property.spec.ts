import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { csrfTokenFor, csrfTokensMatch } from '../../src/session/csrf/csrf-token.js';
import { checkRequestOrigin, originOfUrl } from '../../src/session/csrf/request-origin.js';
import { isSerializedOrigin } from '../../src/session/csrf/csrf.options.js';
import { sourceOf } from '../../src/session/security/request-source.js';
import { generateToken } from '../../src/session/token/session-token.js';

const RUNS = { numRuns: 500 };

/** Origins as browsers serialize them: http(s), lower-case host, port only when not the default. */
const origin = fc
  .record({
    scheme: fc.constantFrom('http', 'https'),
    host: fc.domain(),
    port: fc.option(fc.integer({ min: 1, max: 65_535 }), { nil: undefined }),
  })
  .map(({ scheme, host, port }) => new URL(`${scheme}://${host}${port ? `:${port}` : ''}`).origin);

/** Header values as an attacker could send them: any Latin-1 text (what Node hands us). */
const headerText = fc.string({
  unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)),
  maxLength: 200,
});

describe('checkRequestOrigin (properties)', () => {
  it('never throws, whatever the three headers hold', () => {
    fc.assert(
      fc.property(
        fc.option(headerText, { nil: undefined }),
        fc.option(headerText, { nil: undefined }),
        fc.option(headerText, { nil: undefined }),
        fc.uniqueArray(origin, { maxLength: 3 }),
        (secFetchSite, originHeader, referer, allowed) => {
          const verdict = checkRequestOrigin({ secFetchSite, origin: originHeader, referer }, new Set(allowed));
          expect(typeof verdict.ok).toBe('boolean');
        },
      ),
      RUNS,
    );
  });

  it('accepts an Origin exactly when it is one of the allowed origins', () => {
    fc.assert(
      fc.property(fc.uniqueArray(origin, { minLength: 1, maxLength: 4 }), headerText, (allowed, other) => {
        const set = new Set(allowed);
        for (const candidate of allowed) expect(checkRequestOrigin({ origin: candidate }, set).ok).toBe(true);
        expect(checkRequestOrigin({ origin: other }, set).ok).toBe(set.has(other));
      }),
      RUNS,
    );
  });

  it('refuses every look-alike built from an allowed origin: suffixes, prefixes, userinfo, case, trailing slash, default port', () => {
    fc.assert(
      fc.property(origin, fc.domain(), (allowed, evil) => {
        const set = new Set([allowed]);
        const url = new URL(allowed);
        const lookAlikes = [
          `${allowed}.${evil}`,
          `${allowed}${evil}`,
          `${url.protocol}//${evil}.${url.host}`,
          `${allowed}/`,
          `${allowed}@${evil}`,
          allowed.toUpperCase(),
          `${url.protocol === 'https:' ? 'http:' : 'https:'}//${url.host}`,
          ` ${allowed}`,
          'null',
          '',
          ...(url.port === '' ? [`${allowed}:${url.protocol === 'https:' ? 443 : 80}`] : []),
        ].filter((candidate) => candidate !== allowed);
        for (const candidate of lookAlikes) {
          expect([candidate, checkRequestOrigin({ origin: candidate }, set).ok]).toEqual([candidate, false]);
        }
      }),
      RUNS,
    );
  });

  it('refuses cross-site Fetch Metadata whatever Origin says, including an allowed one', () => {
    fc.assert(
      fc.property(origin, fc.constantFrom('cross-site', 'CROSS-SITE', ' cross-site'), (allowed, site) => {
        const verdict = checkRequestOrigin({ secFetchSite: site, origin: allowed }, new Set([allowed]));
        expect(verdict).toMatchObject({ ok: false, reason: 'cross_site' });
      }),
      RUNS,
    );
  });

  it('judges a Referer by its origin only when Origin is absent', () => {
    fc.assert(
      fc.property(origin, origin, fc.webPath(), (allowed, other, path) => {
        const set = new Set([allowed]);
        expect(checkRequestOrigin({ referer: `${allowed}${path}` }, set).ok).toBe(true);
        expect(checkRequestOrigin({ referer: `${other}${path}` }, set).ok).toBe(other === allowed);
        expect(checkRequestOrigin({ origin: other, referer: `${allowed}${path}` }, set).ok).toBe(other === allowed);
      }),
      RUNS,
    );
  });

  it('lets a request with neither Origin, Referer nor Fetch Metadata through (the token still decides)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(origin, { maxLength: 3 }), (allowed) => {
        expect(checkRequestOrigin({}, new Set(allowed)).ok).toBe(true);
      }),
    );
  });

  it('originOfUrl agrees with isSerializedOrigin: what it returns is always a serialized origin', () => {
    fc.assert(
      fc.property(fc.oneof(fc.webUrl(), headerText), (value) => {
        const result = originOfUrl(value);
        if (result !== undefined) expect(isSerializedOrigin(result)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('CSRF tokens (properties)', () => {
  it('derives a distinct 43-character token per session token, never equal to the session token', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.constant(null).map(() => generateToken()),
          { minLength: 2, maxLength: 5 },
        ),
        (tokens) => {
          const csrf = tokens.map(csrfTokenFor);
          expect(new Set(csrf).size).toBe(tokens.length);
          for (const [i, value] of csrf.entries()) {
            expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
            expect(value).not.toBe(tokens[i]);
            expect(csrfTokenFor(tokens[i])).toBe(value);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('matches only the exact token; anything else (any type, any string) fails without throwing', () => {
    const expected = csrfTokenFor(generateToken());
    fc.assert(
      fc.property(fc.anything(), (presented) => {
        expect(csrfTokensMatch(expected, presented)).toBe(presented === expected);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.nat({ max: 42 }), fc.string({ minLength: 1, maxLength: 1 }), (at, replacement) => {
        const mutated = expected.slice(0, at) + replacement + expected.slice(at + 1);
        expect(csrfTokensMatch(expected, mutated)).toBe(mutated === expected);
      }),
      RUNS,
    );
  });
});

describe('sourceOf (properties)', () => {
  it('never throws and always names a bounded source', () => {
    fc.assert(
      fc.property(fc.option(fc.oneof(fc.ipV4(), fc.ipV6(), headerText), { nil: undefined }), (ip) => {
        const source = sourceOf(ip);
        expect(typeof source).toBe('string');
        expect(source.length).toBeLessThanOrEqual(64);
      }),
      RUNS,
    );
  });

  it('keeps IPv4 addresses (also IPv4-mapped IPv6) as they are', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        expect(sourceOf(ip)).toBe(ip);
        expect(sourceOf(`::ffff:${ip}`)).toBe(ip);
      }),
      RUNS,
    );
  });

  it('puts every address of one IPv6 /64 into one source, and different /64s into different ones', () => {
    const group = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
    fc.assert(
      fc.property(
        fc.array(group, { minLength: 4, maxLength: 4 }),
        fc.array(group, { minLength: 4, maxLength: 4 }),
        group,
        (prefix, suffix, otherGroup) => {
          const a = sourceOf([...prefix, ...suffix].join(':'));
          expect(sourceOf(`${prefix.join(':')}::${suffix[3]}`)).toBe(a);
          expect(sourceOf([...prefix, ...suffix].map((g) => g.padStart(4, '0').toUpperCase()).join(':'))).toBe(a);
          const otherPrefix = [...prefix.slice(0, 3), otherGroup];
          expect(sourceOf([...otherPrefix, ...suffix].join(':')) === a).toBe(
            parseInt(otherGroup, 16) === parseInt(prefix[3], 16),
          );
        },
      ),
      RUNS,
    );
  });
});
