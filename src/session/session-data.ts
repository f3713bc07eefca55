import { BadRequestException, PayloadTooLargeException } from '@nestjs/common';

const MAX_DEPTH = 32;

/**
 * Checks that session data is JSON that Postgres jsonb will store: plain objects, arrays,
 * strings, finite numbers, booleans and null; no NUL characters or lone surrogates
 * (jsonb refuses both); bounded depth and size. Throws a 400/413 naming the problem, so a
 * bad patch never reaches the database as a 500.
 */
export function assertStorableData(value: unknown, maxBytes: number): asserts value is Record<string, unknown> {
  if (!isPlainObject(value)) throw new BadRequestException('session data must be a JSON object');
  checkValue(value, '$', 0);
  const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
  if (bytes > maxBytes)
    throw new PayloadTooLargeException(`session data of ${bytes} bytes exceeds the ${maxBytes}-byte limit`);
}

/**
 * Freezes session data in place, all the way down, and returns it. Handlers get it frozen
 * because only SessionService.patch() persists a change: an assignment fails at once instead
 * of being lost silently (or, with the cache on, being served to the session's later
 * requests, which now share one copy).
 */
export function freezeData<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const item of Object.values(value)) freezeData(item);
  return value;
}

function checkValue(value: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new BadRequestException(`session data nests deeper than ${MAX_DEPTH} levels at ${path}`);
  switch (typeof value) {
    case 'string':
      return checkString(value, path);
    case 'number':
      if (!Number.isFinite(value)) throw new BadRequestException(`session data holds a non-finite number at ${path}`);
      return;
    case 'boolean':
      return;
    case 'object':
      if (value === null) return;
      if (Array.isArray(value)) {
        value.forEach((item, i) => checkValue(item, `${path}[${i}]`, depth + 1));
        return;
      }
      if (!isPlainObject(value)) throw new BadRequestException(`session data holds a non-plain object at ${path}`);
      for (const [key, item] of Object.entries(value)) {
        checkString(key, `${path} (key)`);
        checkValue(item, `${path}.${key.slice(0, 40)}`, depth + 1);
      }
      return;
    default:
      throw new BadRequestException(`session data holds a ${typeof value} at ${path}, which JSON cannot store`);
  }
}

function checkString(value: string, path: string): void {
  if (value.includes('\u0000')) throw new BadRequestException(`session data holds a NUL character at ${path}`);
  if (!value.isWellFormed()) throw new BadRequestException(`session data holds invalid Unicode at ${path}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
