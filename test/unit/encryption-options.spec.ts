import { describe, expect, it } from '@jest/globals';
import { createSecretKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { resolveSessionOptions, SessionOptionsError } from '../../src/session/session.options.js';

const B64 = randomBytes(32).toString('base64');
const B64URL = randomBytes(32).toString('base64url');

/** The start-up error's message for these encryption options. */
function problem(encryption: unknown): string {
  try {
    resolveSessionOptions({ encryption } as never);
  } catch (error) {
    expect(error).toBeInstanceOf(SessionOptionsError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('the encryption option', () => {
  it('is off by default', () => {
    expect(resolveSessionOptions({}).encryption).toBeUndefined();
  });

  it('accepts base64, base64url, a Buffer and a secret KeyObject, keeping their order (the first encrypts)', () => {
    const resolved = resolveSessionOptions({
      encryption: {
        keys: [
          { id: '2026-12', key: B64 },
          { id: '2026_06', key: B64URL },
          { id: 'buf', key: randomBytes(32) },
          { id: 'obj', key: createSecretKey(randomBytes(32)) },
        ],
      },
    }).encryption!;
    expect(resolved.keys.map((k) => k.id)).toEqual(['2026-12', '2026_06', 'buf', 'obj']);
    expect(resolved.keys[0].key.export().toString('base64')).toBe(B64);
    expect(resolved.keys[1].key.export().toString('base64url')).toBe(B64URL);
    expect(resolved).toMatchObject({ encryptWrites: true, readPlaintext: false });
    // Resolved options printed (a debug log, an error report) show no key material.
    expect(inspect(resolved, { depth: 5 })).not.toContain(B64);
  });

  it.each([
    ['no keys', { keys: [] }, 'encryption.keys: must be a non-empty array'],
    ['keys that are no array', { keys: B64 }, 'encryption.keys: must be a non-empty array'],
    [
      'a short key',
      { keys: [{ id: 'a', key: randomBytes(16).toString('base64') }] },
      '[0].key: must be 32 random bytes',
    ],
    ['a long key', { keys: [{ id: 'a', key: randomBytes(33).toString('base64') }] }, 'got a string of 44'],
    ['a 31-byte Buffer', { keys: [{ id: 'a', key: randomBytes(31) }] }, 'got 31 bytes'],
    ['a 16-byte KeyObject', { keys: [{ id: 'a', key: createSecretKey(randomBytes(16)) }] }, 'secret KeyObject of 16'],
    [
      'a private key',
      { keys: [{ id: 'a', key: generateKeyPairSync('ed25519').privateKey }] },
      'got a private KeyObject',
    ],
    ['a number', { keys: [{ id: 'a', key: 42 }] }, 'got number'],
    [
      'duplicate ids',
      {
        keys: [
          { id: 'a', key: B64 },
          { id: 'a', key: B64URL },
        ],
      },
      "[1].id: 'a' is used by an earlier key",
    ],
    ['an id with a dot', { keys: [{ id: 'a.b', key: B64 }] }, "[0].id: must be 1..32 letters, digits, '_' or '-'"],
    ['a long id', { keys: [{ id: 'x'.repeat(33), key: B64 }] }, '[0].id: must be 1..32'],
    ['an unknown property', { keys: [{ id: 'a', key: B64, alg: 'aes' }] }, '[0].alg: property alg should not exist'],
    ['encryptWrites without keys', { encryptWrites: false }, 'encryption.keys: must be given'],
    ['a non-boolean readPlaintext', { keys: [{ id: 'a', key: B64 }], readPlaintext: 'yes' }, 'readPlaintext: must be'],
  ])('refuses %s at start-up, naming the option', (_what, encryption, expected) => {
    expect(problem(encryption)).toContain(expected);
  });

  it('never prints a key in its errors, whatever is wrong with it', () => {
    const almost = B64.slice(0, 40);
    const message = problem({
      keys: [
        { id: 'ok', key: B64 },
        { id: 'ok', key: almost },
        { id: 'bad id!', key: B64URL + 'x' },
      ],
    });
    for (const secret of [B64, almost, B64URL]) expect(message).not.toContain(secret);
    expect(message).toContain('not shown');
  });

  it.each([
    ['id and key swapped', { keys: [{ id: B64, key: '2026-12' }] }],
    ['a key instead of the option', B64],
    ['a key instead of the list', { keys: B64 }],
    ['a key instead of an entry', { keys: [B64] }],
    ['a key with an extra character', { keys: [{ id: '2026', key: B64 + 'x' }] }],
  ])('prints no part of a key put in the wrong place: %s', (_what, encryption) => {
    const message = problem(encryption);
    // 12 characters of a random key are enough to tell it apart: none of its 12-character runs may show.
    for (let i = 0; i + 12 <= B64.length; i++) expect(message).not.toContain(B64.slice(i, i + 12));
  });

  it('names a refused id by its length when it could be key material, and quotes an ordinary mistake', () => {
    expect(problem({ keys: [{ id: B64, key: '2026-12' }] })).toContain('[0].id: must be 1..32');
    expect(problem({ keys: [{ id: B64, key: '2026-12' }] })).toContain('got a string of 44 characters (not shown)');
    expect(problem({ keys: [{ id: 'a+b', key: B64 }] })).toContain('got a string of 3 characters (not shown)');
    expect(problem({ keys: [{ id: '2026.12', key: B64 }] })).toContain(`got '2026.12'`);
    expect(problem({ keys: [{ id: 7, key: B64 }] })).toContain('got 7');
  });
});
