import { createSecretKey, KeyObject } from 'node:crypto';
import { IsOptional, ValidateBy } from 'class-validator';
import * as is from '../option-schema.js';

/** One data-encryption key: `id` is written beside every value it encrypts. */
export interface SessionEncryptionKey {
  /** 1..32 letters, digits, '_' or '-', e.g. '2026-12'; unique in the list. Not secret. */
  id: string;
  /**
   * 32 random bytes: base64 (`openssl rand -base64 32`) or base64url text, a Buffer/Uint8Array,
   * or a secret KeyObject (`crypto.createSecretKey`). Never printed.
   */
  key: string | Uint8Array | KeyObject;
}

export const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const KEY_BYTES = 32;
/** Enough to overlap a few rotations; each key costs nothing until a value names it. */
const MAX_KEYS = 16;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$|^[A-Za-z0-9_-]{43}$/;

/**
 * What is wrong with a `keys` list, key material never included: an error message or log line
 * holding a key would leak it to whoever reads the logs.
 */
export function keyListProblems(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0)
    return ['must be a non-empty array of { id, key } (the first key encrypts, every key decrypts)'];
  if (value.length > MAX_KEYS) return [`must hold at most ${MAX_KEYS} keys; got ${value.length}`];
  const problems: string[] = [];
  const seen = new Set<string>();
  value.forEach((entry: unknown, i) => {
    const at = `[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      return problems.push(`${at}: must be an object { id, key }`);
    const { id, key, ...rest } = entry as Record<string, unknown>;
    for (const extra of Object.keys(rest)) problems.push(`${at}.${extra}: property ${extra} should not exist`);
    if (typeof id !== 'string' || !KEY_ID.test(id))
      problems.push(`${at}.id: must be 1..32 letters, digits, '_' or '-'; got ${shownId(id)}`);
    else if (seen.has(id)) problems.push(`${at}.id: '${id}' is used by an earlier key; ids must be unique`);
    else seen.add(id);
    const problem = keyMaterialProblem(key);
    if (problem) problems.push(`${at}.key: ${problem}`);
  });
  return problems;
}

/**
 * A refused id as it may be printed: an id is not secret, but a refused one may be a key put in
 * the wrong place (id and key swapped), so anything longer than an id or made only of base64
 * characters is described by its length.
 */
function shownId(id: unknown): string {
  if (typeof id !== 'string') return is.quoted(id);
  if (id.length > 32 || /^[A-Za-z0-9+/=_-]+$/.test(id)) return `a string of ${id.length} characters (not shown)`;
  return is.quoted(id);
}

/** Describes a bad key by its shape only (type, length), never its content. */
function keyMaterialProblem(key: unknown): string | undefined {
  const expected =
    'must be 32 random bytes: base64 text of 44 characters (`openssl rand -base64 32`), base64url of 43, ' +
    'a 32-byte Buffer or a secret KeyObject of 32 bytes';
  if (typeof key === 'string')
    return BASE64_KEY.test(key) ? undefined : `${expected}; got a string of ${key.length} characters (not shown)`;
  if (key instanceof Uint8Array)
    return key.length === KEY_BYTES ? undefined : `${expected}; got ${key.length} bytes (not shown)`;
  if (key instanceof KeyObject) {
    if (key.type !== 'secret') return `${expected}; got a ${key.type} KeyObject`;
    return key.symmetricKeySize === KEY_BYTES
      ? undefined
      : `${expected}; got a secret KeyObject of ${key.symmetricKeySize} bytes`;
  }
  return `${expected}; got ${key === null ? 'null' : typeof key}`;
}

/** The key as a KeyObject; only called on a key keyListProblems accepted. */
export function toKeyObject(key: SessionEncryptionKey['key']): KeyObject {
  if (key instanceof KeyObject) return key;
  if (typeof key === 'string') return createSecretKey(Buffer.from(key, key.length === 44 ? 'base64' : 'base64url'));
  return createSecretKey(Buffer.from(key)); // a copy: the caller may zero or reuse its buffer
}

/** A keys list as class-validator checks it, its messages free of key material (Check's would quote the value). */
const KeyList = () => (target: object, property: string) => {
  IsOptional()(target, property);
  ValidateBy({
    name: 'encryptionKeys',
    validator: {
      validate: (value) => keyListProblems(value).length === 0,
      defaultMessage: (args) => keyListProblems(args?.value).join('; '),
    },
  })(target, property);
};

/**
 * Session data encrypted at rest (off by default): every top-level value of `data` is stored as
 * AES-256-GCM ciphertext bound to its session and key name. See docs/encryption.md.
 */
export class SessionEncryptionOptions {
  /**
   * The data-encryption keys, newest first: the first encrypts every value written, all of them
   * decrypt. Rotate by putting a new key first; drop an old one once no session written under it can
   * still be live (docs/encryption.md).
   */
  @KeyList() keys?: SessionEncryptionKey[];
  /**
   * false: new values are written in plain JSON while the keys still decrypt what was encrypted
   * (the way to turn encryption off without logging anyone out).
   */
  @is.Bool() encryptWrites?: boolean;
  /**
   * Serve values that are not encrypted (rows written before encryption was turned on). Off:
   * such a value is refused like a tampered one. Turn on for one absolute timeout when enabling.
   */
  @is.Bool() readPlaintext?: boolean;
}
