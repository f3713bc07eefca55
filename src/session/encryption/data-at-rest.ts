import { Logger } from '@nestjs/common';
import type { SessionLookup } from '../store/session-row.js';
import { SessionDataUnreadableError, type SessionDataCipher } from './session-data-cipher.js';

/** Sealed data over the stored bound (maxDataBytes bounds data as stored: docs/encryption.md). */
export class SessionDataTooLargeError extends Error {
  override name = 'SessionDataTooLargeError';
  constructor(
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(`session data of ${bytes} bytes once encrypted exceeds the ${maxBytes}-byte limit`);
  }
}

/** A row of user_sessions as far as its data is concerned. */
interface WithData {
  id: string;
  data: Record<string, unknown>;
}

/**
 * Where session data crosses the store's boundary: sealed on its way into a statement, opened on
 * its way out of one. Plaintext exists only in the process; a value that does not open revokes its
 * session (audited `revoked`, reason `data_unreadable`, with the data key's name and why, never the
 * value), and the request that read it is told 'revoked'.
 */
export class DataAtRest {
  private readonly logger = new Logger('SessionEncryption');

  constructor(
    private readonly cipher: SessionDataCipher | undefined,
    private readonly revoke: (sessionId: string, details: Record<string, unknown>) => Promise<unknown>,
  ) {}

  /** The JSON text to store for session `id`; with encryption on, refused beyond `maxBytes` once sealed. */
  sealed(id: string, data: Record<string, unknown>, maxBytes?: number): string {
    if (!this.cipher) return JSON.stringify(data);
    const text = JSON.stringify(this.cipher.seal(id, data));
    const bytes = Buffer.byteLength(text, 'utf8');
    if (maxBytes !== undefined && bytes > maxBytes) throw new SessionDataTooLargeError(bytes, maxBytes);
    return text;
  }

  /**
   * The row with its data in plain: the one function every read of `user_sessions.data` goes
   * through. Throws SessionDataUnreadableError for a value that does not open. Without the
   * encryption option, data is plain and never inspected (docs/encryption.md, "Turning it off").
   */
  open<T extends WithData>(row: T): T {
    if (!this.cipher) return row;
    return { ...row, data: this.cipher.open(row.id, row.data) };
  }

  /** open(), or, for data that does not open, the session revoked and undefined. */
  async openOrRevoke<T extends WithData>(row: T): Promise<T | undefined> {
    try {
      return this.open(row);
    } catch (error) {
      await this.refuse(error);
      return undefined;
    }
  }

  /** The hot path's open(): synchronous when the data opens; otherwise the row as revoked, with no data. */
  openLookup(row: SessionLookup): SessionLookup | Promise<SessionLookup> {
    try {
      return this.open(row);
    } catch (error) {
      return this.refuse(error).then(() => ({ ...row, data: {}, revokedAt: row.revokedAt ?? row.dbNow }));
    }
  }

  /**
   * open()'s data, or {} (logged: `leftOut` says where it was left out) for data that does not
   * open, with no revocation: for reads that must not write, e.g. a guest's data at its login,
   * under the guest row's lock (the insert revokes the guest anyway), or an export.
   */
  openOrEmpty(id: string, data: Record<string, unknown>, leftOut: string): Record<string, unknown> {
    try {
      return this.open({ id, data }).data;
    } catch (error) {
      if (!(error instanceof SessionDataUnreadableError)) throw error;
      this.logger.warn(`${error.message}: ${leftOut}`);
      return {};
    }
  }

  /** The same data as a freshly written row's, in plain (the caller sealed it). */
  withPlain<T extends WithData>(row: T, data: Record<string, unknown>): T {
    return this.cipher ? { ...row, data } : row;
  }

  private async refuse(error: unknown): Promise<void> {
    if (!(error instanceof SessionDataUnreadableError)) throw error;
    this.logger.warn(`${error.message}: session revoked`);
    await this.revoke(error.sessionId, { dataKey: error.dataKey.slice(0, 64), cause: error.reason });
  }
}
