import { hash, randomBytes } from 'node:crypto';

/**
 * Session tokens: 32 bytes from the CSPRNG (256 bits, far past the 64 bits OWASP asks for),
 * base64url without padding, so always exactly 43 characters. The database only ever sees
 * SHA-256(token): a leaked table or backup holds nothing a client could present.
 */
export const TOKEN_BYTES = 32;
export const TOKEN_LENGTH = 43;

/**
 * 43 base64url characters. The last one carries only 4 data bits; a canonical encoding has
 * its low 2 bits zero (one of 16 characters), so non-canonical spellings fail too: two
 * strings must never name one token.
 */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Cheap syntactic check run before any hashing or database work (TOKEN_PATTERN). */
export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_PATTERN.test(value);
}

/**
 * SHA-256(token) as a 32-character string, one latin1 character per byte: what the session
 * cache is keyed by (never the token itself, so a heap dump holds no token a client could
 * present). A string straight from the native call: no Buffer on a request the cache answers.
 */
export function tokenDigest(token: string): string {
  return hash('sha256', token, 'binary'); // 'binary' is latin1
}

/** A digest's 32 bytes, as the database stores them (`token_hash`). */
export function digestBytes(digest: string): Buffer {
  return Buffer.from(digest, 'latin1');
}

/** SHA-256(token) as bytes: what `token_hash` holds. */
export function hashToken(token: string): Buffer {
  return digestBytes(tokenDigest(token));
}
