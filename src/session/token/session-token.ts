import { hash, randomBytes } from 'node:crypto';

/**
 * Session tokens: 32 bytes from the CSPRNG (256 bits, far past the 64 bits OWASP asks for),
 * base64url without padding, so always exactly 43 characters. The database only ever sees
 * SHA-256(token): a leaked table or backup holds nothing a client could present.
 */
export const TOKEN_BYTES = 32;
export const TOKEN_LENGTH = 43;

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * Cheap syntactic check run before any hashing or database work. The last character of a
 * 43-char base64url string carries only 4 data bits; a canonical encoding has its low 2 bits
 * zero, so we also reject non-canonical spellings (two strings must never name one token).
 */
export function isWellFormedToken(value: unknown): value is string {
  if (typeof value !== 'string' || !TOKEN_PATTERN.test(value)) return false;
  return 'AEIMQUYcgkosw048'.includes(value[TOKEN_LENGTH - 1]);
}

export function hashToken(token: string): Buffer {
  // One call, no Hash object; the digest as a latin1 string and then bytes from Buffer's pool
  // costs about half of a digest Buffer allocated by the native side on every request.
  return Buffer.from(hash('sha256', token, 'binary'), 'binary'); // 'binary': latin1
}
