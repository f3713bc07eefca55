import { createHmac, timingSafeEqual } from 'node:crypto';

/** A page boundary: the last row's exact time (microseconds since the epoch) and id. */
export interface AuditPosition {
  occurredUs: string;
  id: string;
}

/** `<µs>.<id>.<mac>`: the whole HMAC-SHA-256, 43 base64url characters (107 once encoded, within the 128 allowed). */
const CURSOR = /^(\d{1,16})\.(\d{1,19})\.([A-Za-z0-9_-]{43})$/;
const MAX_US = 2n ** 53n; // exact through float8 in the keyset condition; that is the year 2255
const MAX_ID = 2n ** 63n - 1n;

export const CURSOR_REFUSED =
  'cursor does not belong to this query (it was altered or forged, or the filters changed): start again without a cursor';

/**
 * Cursors are opaque to clients: base64url of `<µs>.<id>.<mac>`, where the mac is an
 * HMAC-SHA-256 of the position and the query's filters under the module's 'audit-cursor' key
 * (keys/module-key.store.ts: generated once, shared by every instance, kept across restarts).
 * Only the module can make a cursor that verifies, so an edited or forged cursor, or one
 * reused with other filters, is refused (400) rather than silently giving a wrong page. A
 * cursor is still only a position: every filter is applied again on every page, so even a
 * cursor made with the key cannot reach rows outside the query.
 */
export function encodeCursor(position: AuditPosition, filterKey: string, key: Buffer): string {
  const body = `${position.occurredUs}.${position.id}`;
  return Buffer.from(`${body}.${mac(body, filterKey, key).toString('base64url')}`, 'utf8').toString('base64url');
}

/** The position, or a reason the cursor is refused. */
export function decodeCursor(cursor: string, filterKey: string, key: Buffer): AuditPosition | { error: string } {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(cursor)) return { error: 'cursor is malformed' };
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Canonical form only: the same bytes must encode back to the same cursor.
  if (Buffer.from(text, 'utf8').toString('base64url') !== cursor) return { error: 'cursor is malformed' };
  const match = CURSOR.exec(text);
  if (!match) return { error: 'cursor is malformed' };
  const [, occurredUs, id, given] = match;
  const givenMac = Buffer.from(given, 'base64url');
  // 43 characters carry 258 bits: the last two must be zero, or two spellings would verify.
  if (givenMac.toString('base64url') !== given) return { error: 'cursor is malformed' };
  if (
    BigInt(occurredUs) >= MAX_US ||
    BigInt(id) > MAX_ID ||
    String(BigInt(occurredUs)) !== occurredUs ||
    String(BigInt(id)) !== id
  ) {
    return { error: 'cursor is malformed' };
  }
  // Both 32 bytes (the pattern fixes the length), compared in constant time.
  if (!timingSafeEqual(givenMac, mac(`${occurredUs}.${id}`, filterKey, key))) return { error: CURSOR_REFUSED };
  return { occurredUs, id };
}

function mac(body: string, filterKey: string, key: Buffer): Buffer {
  return createHmac('sha256', key).update(`nps-audit-cursor\0${body}\0${filterKey}`).digest();
}
