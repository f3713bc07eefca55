import { describe, expect, it } from '@jest/globals';
import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import {
  ENVELOPE,
  SessionDataCipher,
  SessionDataUnreadableError,
} from '../../src/session/encryption/session-data-cipher.js';

const key = (id: string) => ({ id, key: createSecretKey(randomBytes(32)) });
const [OLD, NEW, OTHER] = [key('2026-06'), key('2026-12'), key('elsewhere')];
const SESSION = randomUUID();
const DATA = { cart: [{ sku: 'A-1', quantity: 2 }], locale: 'fr', note: 'éé 😀', count: 0, flag: null };

/** The cause a value is refused with, or 'opened'. */
function refusal(cipher: SessionDataCipher, sessionId: string, name: string, value: unknown): string {
  try {
    cipher.openValue(sessionId, name, value);
    return 'opened';
  } catch (error) {
    expect(error).toBeInstanceOf(SessionDataUnreadableError);
    if (typeof value === 'string') expect((error as Error).message).not.toContain(value); // never the value
    return (error as SessionDataUnreadableError).reason;
  }
}

/** Flips one bit of the base64url field `field` (2: iv, 3: ciphertext+tag) at byte `at` (negative: from the end). */
function flip(envelope: string, field: 2 | 3, at: number): string {
  const parts = envelope.split('.');
  const bytes = Buffer.from(parts[field], 'base64url');
  bytes[(at + bytes.length) % bytes.length] ^= 0x01;
  parts[field] = bytes.toString('base64url');
  return parts.join('.');
}

describe('SessionDataCipher: one AES-256-GCM envelope per top-level value', () => {
  const cipher = new SessionDataCipher([NEW, OLD]);

  it('round-trips every JSON value; each value is an envelope under the first key that names no plaintext', () => {
    const sealed = cipher.seal(SESSION, DATA);
    expect(Object.keys(sealed)).toEqual(Object.keys(DATA));
    for (const value of Object.values(sealed)) {
      expect(value).toMatch(ENVELOPE);
      expect(String(value).split('.')[1]).toBe('2026-12');
    }
    expect(JSON.stringify(sealed)).not.toMatch(/A-1|fr|quantity/);
    expect(cipher.open(SESSION, sealed)).toEqual(DATA);
  });

  it('draws a fresh 96-bit IV for every value: the same value sealed twice differs', () => {
    const [a, b] = [cipher.sealValue(SESSION, 'k', 'same'), cipher.sealValue(SESSION, 'k', 'same')];
    expect(a).not.toBe(b);
    expect(Buffer.from(a.split('.')[2], 'base64url')).toHaveLength(12);
  });

  it('reads values of an older key after rotation (new key first, old one second)', () => {
    const before = new SessionDataCipher([OLD]).seal(SESSION, DATA);
    expect(cipher.open(SESSION, before)).toEqual(DATA);
  });

  it('refuses a value whose key is no longer configured', () => {
    const sealed = new SessionDataCipher([OTHER]).sealValue(SESSION, 'cart', DATA.cart);
    expect(refusal(cipher, SESSION, 'cart', sealed)).toBe('unknown_key');
  });

  it('refuses a value under a configured id but a different key (wrong key)', () => {
    const impostor = new SessionDataCipher([{ id: NEW.id, key: OTHER.key }]).sealValue(SESSION, 'cart', DATA.cart);
    expect(refusal(cipher, SESSION, 'cart', impostor)).toBe('failed_authentication');
  });

  it('refuses a value whose key id was relabelled to another configured key', () => {
    const sealed = cipher.sealValue(SESSION, 'cart', DATA.cart).replace('.2026-12.', '.2026-06.');
    expect(refusal(cipher, SESSION, 'cart', sealed)).toBe('failed_authentication');
  });

  it.each([
    ['the iv', (e: string) => flip(e, 2, 0)],
    ['the ciphertext', (e: string) => flip(e, 3, 0)],
    ['the tag', (e: string) => flip(e, 3, -1)],
    ['a truncated tag', (e: string) => e.slice(0, -4)],
    ['a truncated ciphertext+tag', (e: string) => e.slice(0, e.lastIndexOf('.') + 23)],
    ['a non-canonical base64url spelling', (e: string) => e.slice(0, -1) + (e.endsWith('A') ? 'B' : 'A')],
  ])('refuses a value with %s tampered', (_what, tamper) => {
    const sealed = cipher.sealValue(SESSION, 'cart', DATA.cart);
    expect(refusal(cipher, SESSION, 'cart', sealed)).toBe('opened');
    expect(refusal(cipher, SESSION, 'cart', tamper(sealed))).toBe('failed_authentication');
  });

  it('refuses a value moved to another session or to another data key', () => {
    const sealed = cipher.sealValue(SESSION, 'role', 'user');
    expect(refusal(cipher, randomUUID(), 'role', sealed)).toBe('failed_authentication');
    expect(refusal(cipher, SESSION, 'locale', sealed)).toBe('failed_authentication');
  });

  it('refuses plain values unless readPlaintext (rows from before encryption) or while writes are plain', () => {
    expect(refusal(cipher, SESSION, 'role', 'admin')).toBe('plaintext');
    expect(refusal(cipher, SESSION, 'count', 3)).toBe('plaintext');
    const reading = new SessionDataCipher([NEW], { encryptWrites: true, readPlaintext: true });
    expect(reading.open(SESSION, { role: 'admin', n: 3 })).toEqual({ role: 'admin', n: 3 });
    const plainWrites = new SessionDataCipher([NEW, OLD], { encryptWrites: false, readPlaintext: false });
    expect(plainWrites.seal(SESSION, DATA)).toEqual(DATA);
    // ... and it still decrypts what was encrypted before.
    expect(plainWrites.open(SESSION, { ...cipher.seal(SESSION, { a: 1 }), b: 2 })).toEqual({ a: 1, b: 2 });
  });

  it('names a refused data key escaped and cut, so a key name cannot forge a log line', () => {
    const name = `cart\n[Nest] 1 - LOG forged ${'x'.repeat(100)}`;
    const error = (() => {
      try {
        cipher.openValue(SESSION, name, 'plain');
      } catch (caught) {
        return caught as Error;
      }
    })();
    expect(error?.message).toContain('"cart\\u000a[Nest] 1 - LOG forged');
    expect(error?.message).not.toContain('\n');
    expect(error?.message).not.toContain('x'.repeat(80));
  });

  it('never takes a plain string shaped like an envelope for one, whatever the options', () => {
    // What a user can type into a field the app keeps in its session: a well-formed envelope of a
    // configured key, and one of a key that does not exist.
    const lookalikes = {
      nick: cipher.sealValue(SESSION, 'nick', 'admin'),
      bio: 'v1.x.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA',
    };
    for (const options of [
      { encryptWrites: true, readPlaintext: false },
      { encryptWrites: true, readPlaintext: true },
      { encryptWrites: false, readPlaintext: false },
      { encryptWrites: false, readPlaintext: true },
    ]) {
      const configured = new SessionDataCipher([NEW, OLD], options);
      const stored = configured.seal(SESSION, { ...lookalikes, plain: 'v1.2.3' });
      // Written plain only when writes are plain and the string cannot be read as an envelope.
      expect(stored.plain).toEqual(options.encryptWrites ? expect.stringMatching(ENVELOPE) : 'v1.2.3');
      expect(stored.nick).not.toBe(lookalikes.nick);
      expect(stored.bio).not.toBe(lookalikes.bio);
      expect(configured.open(SESSION, stored)).toEqual({ ...lookalikes, plain: 'v1.2.3' });
    }
  });

  it('refuses stored data that is no object (null, an array, a string) as unreadable, not with a TypeError', () => {
    for (const data of [null, [cipher.sealValue(SESSION, '0', 1)], 'text', 3])
      expect(() => cipher.open(SESSION, data as never)).toThrow(SessionDataUnreadableError);
  });

  it('opens a stored __proto__ key as an own property, never as the prototype', () => {
    // JSON.parse (as the pg driver reads jsonb) makes "__proto__" an ordinary own key.
    const stored = cipher.seal(SESSION, JSON.parse('{"__proto__": {"isAdmin": true}, "locale": "fr"}'));
    expect(Object.keys(stored)).toEqual(['__proto__', 'locale']);
    const opened = cipher.open(SESSION, JSON.parse(JSON.stringify(stored)));
    expect(Object.getPrototypeOf(opened)).toBe(Object.prototype);
    expect((opened as { isAdmin?: unknown }).isAdmin).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(opened, '__proto__')?.value).toEqual({ isAdmin: true });
    expect(JSON.stringify(opened)).toBe('{"__proto__":{"isAdmin":true},"locale":"fr"}');
    const plainWrites = new SessionDataCipher([NEW], { encryptWrites: false, readPlaintext: false });
    expect(Object.keys(plainWrites.seal(SESSION, JSON.parse('{"__proto__": 1}')))).toEqual(['__proto__']);
  });
});
