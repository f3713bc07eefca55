import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isWellFormedToken, TOKEN_BYTES, TOKEN_LENGTH } from '../../src/session/token/session-token.js';
import { BearerTransport } from '../../src/session/transport/bearer.transport.js';
import { CookieTransport } from '../../src/session/transport/cookie.transport.js';
import type { TokenReading } from '../../src/session/transport/session-transport.js';

const NUM_RUNS = 2_000;
/** Properties that parse a whole token per run (and hash it) run fewer times to keep the file under 5 s. */
const TOKEN_RUNS = 1_000;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const CANONICAL_LAST = 'AEIMQUYcgkosw048';

const cookies = new CookieTransport({ name: '__Host-sid', secure: true, sameSite: 'lax', path: '/' });
const bearer = new BearerTransport('session-token');

/** Tokens exactly as generateToken() makes them: 32 bytes, base64url, no padding. */
const tokenArb = fc
  .uint8Array({ minLength: TOKEN_BYTES, maxLength: TOKEN_BYTES })
  .map((bytes) => Buffer.from(bytes).toString('base64url'));

/** Header text as Node hands it over: any bytes, decoded as latin1. */
const latin1Arb = fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('latin1'));

/** Any JS string, lone surrogates included. */
const anyStringArb = fc.string({ unit: 'binary', maxLength: 200 });

/** Strings built from pieces that matter to a cookie parser, so duplicates and near-misses are frequent. */
const cookieishArb = (token: fc.Arbitrary<string>) =>
  fc
    .array(
      fc.oneof(
        token,
        fc.constantFrom(
          '__Host-sid',
          '__HOST-sid',
          'sid',
          '__Host-sid ',
          ' __Host-sid',
          '=',
          ';',
          '; ',
          ',',
          ' ',
          '\t',
          '"',
          '%',
          '%41',
          '\u0000',
          '\u00a0',
          'Bearer ',
          'bearer',
          '+',
          '/',
        ),
        fc.string({ maxLength: 10 }),
      ),
      { maxLength: 12 },
    )
    .map((parts) => parts.join(''));

/** A token-length string over the base64url alphabet plus its common confusables. */
const nearTokenArb = fc.string({
  unit: fc.constantFrom(...ALPHABET, '+', '/', '=', '%', '.', '~', ' ', '\u00e9', '\u0410'),
  minLength: TOKEN_LENGTH - 1,
  maxLength: TOKEN_LENGTH + 1,
});

/** A valid token with one small edit that makes it something else: a confusable, an escape, a gap, padding. */
const editedTokenArb = fc
  .tuple(
    tokenArb,
    fc.nat({ max: TOKEN_LENGTH - 1 }),
    fc.constantFrom('confusable', 'escape-upper', 'escape-lower', 'delete', 'insert', 'pad', 'quote'),
    fc.constantFrom('+', '/', '=', '%', '.', '~', '!', '*', '\u00e9', '\u0410', '\u00a0', '\uff21'),
    fc.constantFrom(...ALPHABET),
  )
  .map(([token, i, edit, confusable, extra]) => {
    const before = token.slice(0, i);
    const after = token.slice(i + 1);
    const hex = token.charCodeAt(i).toString(16);
    switch (edit) {
      case 'confusable':
        return before + confusable + after;
      case 'escape-upper':
        return `${before}%${hex.toUpperCase()}${after}`;
      case 'escape-lower':
        return `${before}%${hex}${after}`;
      case 'delete':
        return before + after;
      case 'insert':
        return before + extra + token.slice(i);
      case 'pad':
        return `${token}=`;
      case 'quote':
        return `"${token}"`;
    }
  });

function checkReading(reading: TokenReading): void {
  expect(['none', 'malformed', 'token']).toContain(reading.kind);
  if (reading.kind === 'token') expect(isWellFormedToken(reading.token)).toBe(true);
}

describe('token parsing properties', () => {
  it('arbitrary Cookie headers never make the cookie transport throw, and any token read is well-formed', () => {
    fc.assert(
      fc.property(fc.oneof(latin1Arb, anyStringArb, cookieishArb(tokenArb)), (header) => {
        checkReading(cookies.read({ headers: { cookie: header } }));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('arbitrary Cookie header arrays never make the cookie transport throw', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(latin1Arb, cookieishArb(tokenArb)), { maxLength: 4 }), (headers) => {
        checkReading(cookies.read({ headers: { cookie: headers } }));
      }),
      { numRuns: NUM_RUNS / 4 },
    );
  });

  it('arbitrary Authorization headers never make the bearer transport throw, and any token read is well-formed', () => {
    const authorizationArb = fc.oneof(
      latin1Arb,
      anyStringArb,
      cookieishArb(tokenArb),
      fc
        .tuple(
          fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'Bearer\t', 'Bearer '),
          fc.string({ unit: 'binary', maxLength: 60 }),
        )
        .map(([scheme, rest]) => `${scheme} ${rest}`),
    );
    fc.assert(
      fc.property(fc.oneof(authorizationArb, fc.array(authorizationArb, { maxLength: 3 })), (authorization) => {
        checkReading(bearer.read({ headers: { authorization } }));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a generated token is always read back exactly, by both transports', () => {
    fc.assert(
      fc.property(tokenArb, (token) => {
        expect(isWellFormedToken(token)).toBe(true);
        expect(cookies.read({ headers: { cookie: `a=1; __Host-sid=${token}` } })).toEqual({ kind: 'token', token });
        expect(bearer.read({ headers: { authorization: `Bearer ${token}` } })).toEqual({ kind: 'token', token });
      }),
      { numRuns: TOKEN_RUNS },
    );
  });

  it('a value that is not exactly the shape of a generated token is never read as a token', () => {
    // Values without ';' or edge whitespace, so the whole string is the cookie value / the credential.
    const candidateArb = fc
      .oneof(editedTokenArb, nearTokenArb, anyStringArb, latin1Arb, cookieishArb(tokenArb))
      .filter((s) => !s.includes(';') && !s.includes(',') && s === s.trim() && !/\s/.test(s));
    fc.assert(
      fc.property(candidateArb, (value) => {
        const generatedShape =
          /^[A-Za-z0-9_-]{43}$/.test(value) &&
          Buffer.from(value, 'base64url').length === TOKEN_BYTES &&
          Buffer.from(value, 'base64url').toString('base64url') === value;
        const fromCookie = cookies.read({ headers: { cookie: `__Host-sid=${value}` } });
        const fromBearer = bearer.read({ headers: { authorization: `Bearer ${value}` } });
        if (generatedShape) {
          expect(fromCookie).toEqual({ kind: 'token', token: value });
          expect(fromBearer).toEqual({ kind: 'token', token: value });
        } else {
          expect(fromCookie.kind).not.toBe('token');
          expect(fromBearer.kind).not.toBe('token');
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a non-canonical spelling of a token (low bits of the last character set) is never read', () => {
    fc.assert(
      fc.property(tokenArb, fc.integer({ min: 1, max: 3 }), (token, lowBits) => {
        const lastIndex = ALPHABET.indexOf(token[TOKEN_LENGTH - 1]!);
        const nonCanonical = `${token.slice(0, -1)}${ALPHABET[lastIndex + lowBits]}`;
        // Decodes to the same 32 bytes, yet is a different string: it must not name the same session.
        expect(Buffer.from(nonCanonical, 'base64url').equals(Buffer.from(token, 'base64url'))).toBe(true);
        expect(isWellFormedToken(nonCanonical)).toBe(false);
        expect(cookies.read({ headers: { cookie: `__Host-sid=${nonCanonical}` } })).toEqual({ kind: 'malformed' });
        expect(bearer.read({ headers: { authorization: `Bearer ${nonCanonical}` } })).toEqual({ kind: 'malformed' });
      }),
      { numRuns: TOKEN_RUNS },
    );
  });

  it('a token with one character changed to another valid one is handed over as it is, never normalised', () => {
    fc.assert(
      fc.property(
        tokenArb,
        fc.nat({ max: TOKEN_LENGTH - 1 }),
        fc.nat({ max: ALPHABET.length - 1 }),
        (token, index, pick) => {
          const choices = index === TOKEN_LENGTH - 1 ? CANONICAL_LAST : ALPHABET;
          const replacement = [...choices].filter((c) => c !== token[index])[pick % (choices.length - 1)]!;
          const mutated = token.slice(0, index) + replacement + token.slice(index + 1);
          expect(mutated).not.toBe(token);
          expect(isWellFormedToken(mutated)).toBe(true);
          expect(cookies.read({ headers: { cookie: `__Host-sid=${mutated}` } })).toEqual({
            kind: 'token',
            token: mutated,
          });
          expect(bearer.read({ headers: { authorization: `bearer ${mutated}` } })).toEqual({
            kind: 'token',
            token: mutated,
          });
        },
      ),
      { numRuns: TOKEN_RUNS },
    );
  });

  it('two copies of the session cookie are never read as a token, whatever surrounds them', () => {
    const otherArb = fc.array(fc.constantFrom('a=1', 'theme=dark', 'sid=x', '__HOST-sid=y', ''), { maxLength: 3 });
    fc.assert(
      fc.property(tokenArb, tokenArb, otherArb, otherArb, otherArb, (first, second, before, between, after) => {
        const header = [...before, `__Host-sid=${first}`, ...between, `__Host-sid=${second}`, ...after].join('; ');
        expect(cookies.read({ headers: { cookie: header } })).toEqual({ kind: 'malformed' });
      }),
      { numRuns: TOKEN_RUNS },
    );
  });
});
