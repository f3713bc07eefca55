import { describe, expect, it } from '@jest/globals';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { PSEUDONYM_PATTERN, userPseudonym } from '../../src/session/privacy/pseudonym.js';

describe('userPseudonym: the erased user in the audit log', () => {
  const key = randomBytes(32);

  it('is HMAC-SHA256 of the user id under the key, 128 bits in hex behind anon:', () => {
    const expected = createHmac('sha256', key).update('u-42').digest('hex').slice(0, 32);
    expect(userPseudonym(key, 'u-42')).toBe(`anon:${expected}`);
    expect(userPseudonym(key, 'u-42')).toMatch(PSEUDONYM_PATTERN);
  });

  it('is stable per user and key, differs between users, and cannot be recomputed without the key', () => {
    expect(userPseudonym(key, 'u-42')).toBe(userPseudonym(key, 'u-42'));
    expect(userPseudonym(key, 'u-42')).not.toBe(userPseudonym(key, 'u-43'));
    expect(userPseudonym(randomBytes(32), 'u-42')).not.toBe(userPseudonym(key, 'u-42'));
    // Not a plain hash: whoever guesses the id cannot confirm it without the key.
    expect(userPseudonym(key, 'u-42')).not.toContain(createHash('sha256').update('u-42').digest('hex').slice(0, 32));
  });

  it('treats ids as UTF-8 text, so look-alike ids stay apart', () => {
    expect(userPseudonym(key, 'é')).not.toBe(userPseudonym(key, 'e\u0301'));
  });
});
