import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import {
  digestBytes,
  generateToken,
  hashToken,
  isWellFormedToken,
  TOKEN_LENGTH,
  tokenDigest,
} from '../../src/session/token/session-token.js';

describe('session tokens', () => {
  it('are 43 base64url characters (32 random bytes) and never repeat', () => {
    const tokens = new Set(Array.from({ length: 10_000 }, generateToken));
    expect(tokens.size).toBe(10_000);
    // One expect over the list: 30,000 matcher calls cost seconds, the checks themselves microseconds.
    const malformed = [...tokens].filter(
      (token) =>
        !/^[A-Za-z0-9_-]{43}$/.test(token) ||
        Buffer.from(token, 'base64url').length !== 32 ||
        !isWellFormedToken(token),
    );
    expect(malformed).toEqual([]);
  });

  it('hash to SHA-256 of the token text', () => {
    const token = generateToken();
    expect(hashToken(token).equals(createHash('sha256').update(token).digest())).toBe(true);
    expect(hashToken(token)).toHaveLength(32);
  });

  it('digest to the same 32 bytes as a 32-character string (the cache key), and back', () => {
    for (let i = 0; i < 200; i++) {
      // every byte value turns up, 0x80-0xff included
      const token = generateToken();
      const digest = tokenDigest(token);
      expect(digest).toHaveLength(32);
      expect(digestBytes(digest).equals(hashToken(token))).toBe(true);
      expect(Buffer.from(digest, 'latin1').toString('latin1')).toBe(digest);
    }
  });

  it.each([
    ['empty', ''],
    ['too short', 'a'.repeat(TOKEN_LENGTH - 1)],
    ['too long', 'A'.repeat(TOKEN_LENGTH + 1)],
    ['standard base64 alphabet', `${'A'.repeat(41)}+A`],
    ['padding', `${'A'.repeat(42)}=`],
    ['percent-encoding', `%41${'A'.repeat(40)}`],
    ['NUL', `${'A'.repeat(42)}\u0000`],
    ['non-canonical last character', `${'A'.repeat(42)}B`],
    ['SQL', `' OR 1=1 --${'A'.repeat(32)}`],
  ])('rejects %s', (_, value) => {
    expect(isWellFormedToken(value)).toBe(false);
  });

  it('rejects non-strings', () => {
    for (const value of [undefined, null, 42, {}, ['x'], Buffer.alloc(32)])
      expect(isWellFormedToken(value)).toBe(false);
  });
});
