import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeCursor, encodeCursor } from '../../src/session/audit/audit-cursor.js';

const KEY = JSON.stringify(['u-1', null, null, null, null, null, null]);

describe('audit cursors', () => {
  it('round-trip any position for the same filters', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }),
        fc.bigInt({ min: 1n, max: 2n ** 63n - 1n }),
        (us, id) => {
          const position = { occurredUs: String(us), id: String(id) };
          const cursor = encodeCursor(position, KEY);
          expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
          expect(cursor.length).toBeLessThanOrEqual(128);
          expect(decodeCursor(cursor, KEY)).toEqual(position);
          expect(decodeCursor(cursor, JSON.stringify(['u-2']))).toEqual({
            error: expect.stringMatching(/does not belong/),
          });
        },
      ),
    );
  });

  it('refuse every single-character edit of a valid cursor', () => {
    const cursor = encodeCursor({ occurredUs: '1740787200123456', id: '42' }, KEY);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let i = 0; i < cursor.length; i++) {
      for (const c of alphabet) {
        if (c === cursor[i]) continue;
        const edited = cursor.slice(0, i) + c + cursor.slice(i + 1);
        expect(decodeCursor(edited, KEY)).toHaveProperty('error');
      }
    }
  });

  it('never throw, and never accept arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        expect(decodeCursor(text, KEY)).toHaveProperty('error');
      }),
    );
  });
});
