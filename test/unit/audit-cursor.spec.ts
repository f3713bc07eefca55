import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { CURSOR_REFUSED, decodeCursor, encodeCursor } from '../../src/session/audit/audit-cursor.js';

const FILTERS = JSON.stringify(['u-1', null, null, null, null, null, null]);
const KEY = randomBytes(32);
const refused = { error: CURSOR_REFUSED };
const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

describe('audit cursors', () => {
  it('round-trip any position for the same filters and key', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
        fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }),
        (us, id) => {
          const position = { occurredUs: String(us), id: String(id) };
          const cursor = encodeCursor(position, FILTERS, KEY);
          expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
          expect(cursor.length).toBeLessThanOrEqual(128);
          expect(decodeCursor(cursor, FILTERS, KEY)).toEqual(position);
          expect(decodeCursor(cursor, JSON.stringify(['u-2']), KEY)).toEqual(refused);
        },
      ),
    );
  });

  it('refuse a cursor made under another key (another deployment, or a key that was replaced)', () => {
    const cursor = encodeCursor({ occurredUs: '1740787200123456', id: '42' }, FILTERS, KEY);
    expect(decodeCursor(cursor, FILTERS, randomBytes(32))).toEqual(refused);
  });

  it('refuse every single-character edit of a valid cursor', () => {
    const cursor = encodeCursor({ occurredUs: '1740787200123456', id: '42' }, FILTERS, KEY);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const accepted: string[] = []; // one expect over thousands of edits: matcher calls cost seconds
    let edits = 0;
    for (let i = 0; i < cursor.length; i++) {
      for (const c of alphabet) {
        if (c === cursor[i]) continue;
        const edited = cursor.slice(0, i) + c + cursor.slice(i + 1);
        edits++;
        if (!('error' in decodeCursor(edited, FILTERS, KEY))) accepted.push(edited);
      }
    }
    expect(edits).toBe(cursor.length * (alphabet.length - 1));
    expect(accepted).toEqual([]);
  });

  it('refuse an edited position with the MAC left as it was', () => {
    const [, , mac] = Buffer.from(encodeCursor({ occurredUs: '1740787200123456', id: '42' }, FILTERS, KEY), 'base64url')
      .toString()
      .split('.');
    expect(decodeCursor(encode(`1740787200123456.41.${mac}`), FILTERS, KEY)).toEqual(refused);
    expect(decodeCursor(encode(`1740787200123457.42.${mac}`), FILTERS, KEY)).toEqual(refused);
  });

  it('refuse forgeries that need no key: the unkeyed SHA-256 check of before, a MAC under a guessable key', () => {
    const body = '1740787200123456.42';
    const sha = createHash('sha256').update(`nps-audit-cursor\0${body}\0${FILTERS}`).digest('base64url');
    expect(decodeCursor(encode(`${body}.${sha}`), FILTERS, KEY)).toEqual(refused);
    expect(decodeCursor(encode(`${body}.${sha.slice(0, 16)}`), FILTERS, KEY)).toEqual({ error: 'cursor is malformed' });
    for (const guess of [Buffer.alloc(32), Buffer.from('nps-audit-cursor')]) {
      const mac = createHmac('sha256', guess).update(`nps-audit-cursor\0${body}\0${FILTERS}`).digest('base64url');
      expect(decodeCursor(encode(`${body}.${mac}`), FILTERS, KEY)).toEqual(refused);
    }
  });

  it('refuse a truncated or extended MAC, and a non-canonical spelling of the right one', () => {
    const text = Buffer.from(
      encodeCursor({ occurredUs: '1740787200123456', id: '42' }, FILTERS, KEY),
      'base64url',
    ).toString();
    for (const cut of [1, 2, 11, 21, 42])
      expect(decodeCursor(encode(text.slice(0, -cut)), FILTERS, KEY)).toEqual({ error: 'cursor is malformed' });
    expect(decodeCursor(encode(`${text}A`), FILTERS, KEY)).toEqual({ error: 'cursor is malformed' });
    // The last of 43 characters carries 2 unused bits: setting them spells the same bytes differently.
    const last = text.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = alphabet[alphabet.indexOf(last) ^ 1];
    expect(decodeCursor(encode(text.slice(0, -1) + twin), FILTERS, KEY)).toEqual({ error: 'cursor is malformed' });
  });

  it('never throw, and never accept arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        expect(decodeCursor(text, FILTERS, KEY)).toHaveProperty('error');
      }),
    );
  });
});
