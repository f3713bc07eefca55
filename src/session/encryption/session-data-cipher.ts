import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { printable } from '../printable.js';

// One envelope per top-level value: `v1.<keyId>.<iv>.<ciphertext+tag>`, base64url. A value is a
// jsonb string on its own, so `data || patch` still merges per key in one statement.
const VERSION = 'v1';
const IV_BYTES = 12; // 96 bits: GCM's native nonce size; random per value
const TAG_BYTES = 16;
/** The shape of an envelope: iv of 16 base64url characters, ciphertext+tag of at least 22. */
export const ENVELOPE = /^v1\.([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$/;

export interface DataCipherKey {
  id: string;
  key: KeyObject;
}

/** Why a stored value was refused; never carries the value. */
export type UnreadableCause = 'unknown_key' | 'failed_authentication' | 'plaintext';

/** A value that did not decrypt: tampered, moved, truncated, under a key no longer configured, or plain while plain is refused. */
export class SessionDataUnreadableError extends Error {
  override name = 'SessionDataUnreadableError';
  constructor(
    readonly sessionId: string,
    /** The data key (top-level name) whose value was refused; key names are not secret (docs/encryption.md). */
    readonly dataKey: string,
    readonly reason: UnreadableCause,
  ) {
    super(`session ${sessionId}: the value of data key ${printable(dataKey, 64)} is unreadable (${reason})`);
  }
}

/**
 * AES-256-GCM per top-level value of session data. The additional data binds each ciphertext to
 * its session id (stable across rotation) and its key name, so a value copied to another session
 * or another key fails authentication like a tampered one.
 */
export class SessionDataCipher {
  private readonly byId: ReadonlyMap<string, KeyObject>;
  private readonly writer: DataCipherKey;

  constructor(
    keys: readonly DataCipherKey[],
    private readonly options: { encryptWrites: boolean; readPlaintext: boolean } = {
      encryptWrites: true,
      readPlaintext: false,
    },
  ) {
    if (keys.length === 0) throw new TypeError('SessionDataCipher: at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
    this.writer = keys[0];
  }

  /**
   * Each value of `data` as an envelope under the first key. With encryptWrites off, values stay
   * plain except a string shaped like an envelope: stored plain, it would be read back as one.
   */
  seal(sessionId: string, data: Record<string, unknown>): Record<string, unknown> {
    const sealed: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(data)) {
      const plain = !this.options.encryptWrites && !looksSealed(value);
      own(sealed, name, plain ? value : this.sealValue(sessionId, name, value));
    }
    return sealed;
  }

  /** The plain data of a stored row; throws SessionDataUnreadableError on the first value that does not open. */
  open(sessionId: string, data: Record<string, unknown>): Record<string, unknown> {
    // Only SQL written by hand can store a non-object; refused, not a TypeError (a 500 on every request).
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      throw new SessionDataUnreadableError(sessionId, '', 'failed_authentication');
    const opened: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(data)) own(opened, name, this.openValue(sessionId, name, value));
    return opened;
  }

  sealValue(sessionId: string, name: string, value: unknown): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.writer.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(sessionId, name));
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${this.writer.id}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  openValue(sessionId: string, name: string, value: unknown): unknown {
    const parts = looksSealed(value) ? ENVELOPE.exec(value) : null;
    if (!parts) {
      // Plain JSON: a row written before encryption was on, or while encryptWrites is off.
      if (this.options.readPlaintext || !this.options.encryptWrites) return value;
      throw new SessionDataUnreadableError(sessionId, name, 'plaintext');
    }
    const key = this.byId.get(parts[1]);
    if (!key) throw new SessionDataUnreadableError(sessionId, name, 'unknown_key');
    const iv = Buffer.from(parts[2], 'base64url');
    const body = Buffer.from(parts[3], 'base64url');
    // Re-encoding must give back the text: base64url has several spellings of the last character.
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES || body.toString('base64url') !== parts[3])
      throw new SessionDataUnreadableError(sessionId, name, 'failed_authentication');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(additionalData(sessionId, name));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
      return JSON.parse(plain.toString('utf8'));
    } catch {
      throw new SessionDataUnreadableError(sessionId, name, 'failed_authentication');
    }
  }
}

/** Version, session id and key name, NUL-separated (neither a uuid nor a data key can hold NUL). */
function additionalData(sessionId: string, name: string): Buffer {
  return Buffer.from(`${VERSION}\u0000${sessionId}\u0000${name}`, 'utf8');
}

/** Whether a stored value is read as an envelope (the one test that decides it, on write and on read). */
function looksSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith('v1.') && ENVELOPE.test(value);
}

/** `target[name] = value` as an own property: assigning a "__proto__" key would set the prototype instead. */
function own(target: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
}
