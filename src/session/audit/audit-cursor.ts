import { createHash, timingSafeEqual } from 'node:crypto';

/** A page boundary: the last row's exact time (microseconds since the epoch) and id. */
export interface AuditPosition {
  occurredUs: string;
  id: string;
}

const CURSOR = /^(\d{1,16})\.(\d{1,19})\.([A-Za-z0-9_-]{16})$/;
const MAX_US = 2n ** 53n; // exact through float8 in the keyset condition; that is the year 2255
const MAX_ID = 2n ** 63n - 1n;

/**
 * Cursors are opaque to clients: base64url of `<µs>.<id>.<check>`, where the check is a hash
 * of the position and the query's filters. A cursor is only a position: every filter is
 * applied again on every page, so even a forged one cannot reach rows outside the query.
 * The check catches edited cursors and cursors reused with other filters; both are refused
 * rather than silently giving a wrong page.
 */
export function encodeCursor(position: AuditPosition, filterKey: string): string {
  const body = `${position.occurredUs}.${position.id}`;
  return Buffer.from(`${body}.${check(body, filterKey)}`, 'utf8').toString('base64url');
}

/** The position, or a reason the cursor is refused. */
export function decodeCursor(cursor: string, filterKey: string): AuditPosition | { error: string } {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(cursor)) return { error: 'cursor is malformed' };
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Canonical form only: the same bytes must encode back to the same cursor.
  if (Buffer.from(text, 'utf8').toString('base64url') !== cursor) return { error: 'cursor is malformed' };
  const match = CURSOR.exec(text);
  if (!match) return { error: 'cursor is malformed' };
  const [, occurredUs, id, given] = match;
  if (
    BigInt(occurredUs) >= MAX_US ||
    BigInt(id) > MAX_ID ||
    String(BigInt(occurredUs)) !== occurredUs ||
    String(BigInt(id)) !== id
  ) {
    return { error: 'cursor is malformed' };
  }
  const expected = check(`${occurredUs}.${id}`, filterKey);
  if (!timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
    return { error: 'cursor does not belong to this query (it was altered, or the filters changed)' };
  }
  return { occurredUs, id };
}

function check(body: string, filterKey: string): string {
  return createHash('sha256').update(`nps-audit-cursor\0${body}\0${filterKey}`).digest('base64url').slice(0, 16);
}
