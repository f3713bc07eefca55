import type { Pool, PoolClient } from 'pg';
import type { AuditContext } from '../audit/audit-event.js';
import { toAuditRecord, type SessionAuditRecord } from '../audit/audit-record.js';
import type { AuditEventSink } from '../audit/session-events.js';
import { ModuleKeyStore } from '../keys/module-key.store.js';
import { storeQuery, within } from '../store/bounded-wait.js';
import { asStoreError, StoreUnavailableError } from '../store/pg-errors.js';
import { SESSION_SQL } from '../store/session.sql.js';
import type { SessionChangeSink } from '../store/session.store.js';
import { inTransaction, type RunInTransaction } from '../store/transaction.js';
import { PRIVACY_SQL } from './privacy.sql.js';
import { userPseudonym } from './pseudonym.js';

/** How erasure treats the user's audit rows: keep them without personal data (default), or delete them. */
export type ErasureMode = 'anonymise' | 'delete';

/** What one erasure did, as recorded in its `personal_data_erased` row. */
export interface ErasureCounts {
  sessionsDeleted: number;
  retiredTokensDeleted: number;
  auditRowsAnonymised: number;
  auditRowsDeleted: number;
}

export interface ErasureParams {
  userId: string;
  mode: ErasureMode;
  /** Who erased: the row's actor, always the real one (the pseudonym when users erase themselves: that id is erased too). */
  actorId: string;
  /** The eraser's request address and user agent, for the erasure's own row (empty when users erase themselves). */
  context: AuditContext;
}

export interface SessionPrivacyStoreOptions {
  keys?: ModuleKeyStore;
  /** The local cache: drops the deleted sessions at once (others hear the NOTIFY). */
  changes?: SessionChangeSink;
  /** Receives the `personal_data_erased` row once committed (SessionEvents). */
  events?: AuditEventSink;
  /** Announce the deleted sessions on the invalidation channel (`cache.notify`). Default true. */
  notify?: boolean;
  /** Bound on each statement and on the wait for a connection. Default 30 s: an erasure touches every row of a user. */
  queryTimeoutMs?: number;
}

/** Erasure (one transaction) and the reads of the export, on the module's pool (privacy.sql.ts). */
export class SessionPrivacyStore {
  private readonly keys: ModuleKeyStore;
  private readonly queryTimeoutMs: number;

  constructor(
    private readonly pool: Pool,
    private readonly options: SessionPrivacyStoreOptions = {},
  ) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 30_000;
    this.keys = options.keys ?? new ModuleKeyStore(pool, this.queryTimeoutMs);
  }

  /** The user's stand-in in the audit log (pseudonym.ts), under the module's 'user-pseudonym' key. */
  async pseudonymOf(userId: string): Promise<string> {
    return userPseudonym(await this.keys.key('user-pseudonym'), userId);
  }

  /**
   * Deletes the user's sessions (and their retired token hashes), anonymises or deletes their
   * audit rows, and records `personal_data_erased`: all or nothing. The user's advisory lock
   * (the one logins under a session limit take) serialises it with those logins and with itself.
   */
  async erase(p: ErasureParams): Promise<{ counts: ErasureCounts; pseudonym: string; record: SessionAuditRecord }> {
    const pseudonym = await this.pseudonymOf(p.userId);
    const notify = this.options.notify ?? true;
    const { counts, record, deletedIds } = await this.transaction(async (run) => {
      await run(SESSION_SQL.lockUserSessions, [p.userId]);
      await run(PRIVACY_SQL.endImpersonationsOfUser, [p.userId]);
      const ids = (await run(PRIVACY_SQL.sessionIdsOfUser, [p.userId])).map((row) => row.id as string);
      const [retired] = await run(PRIVACY_SQL.deleteRetiredTokens, [ids]);
      const [sessions] = await run(PRIVACY_SQL.deleteSessions, [p.userId, ids, notify]);
      const [audit] = await run(p.mode === 'delete' ? PRIVACY_SQL.deleteAudit : PRIVACY_SQL.anonymiseAudit, [
        p.userId,
        pseudonym,
      ]);
      // A login that committed after deleteSessions (its `created` row now pseudonymised) must
      // not leave a live session: READ COMMITTED, this last statement sees and deletes it.
      const [late] = await run(PRIVACY_SQL.deleteSessions, [p.userId, [], notify]);
      const deletedIds = [...(sessions.ids as string[]), ...(late.ids as string[])];
      const counts: ErasureCounts = {
        sessionsDeleted: deletedIds.length,
        retiredTokensDeleted: retired.count,
        auditRowsAnonymised: audit.anonymised,
        auditRowsDeleted: audit.deleted,
      };
      const [row] = await run(PRIVACY_SQL.recordErasure, [
        pseudonym,
        p.actorId === p.userId ? pseudonym : p.actorId,
        p.context.ip ?? null,
        p.context.userAgent ?? null,
        JSON.stringify({ mode: p.mode, ...counts }),
      ]);
      return { counts, record: toAuditRecord(row), deletedIds };
    });
    for (const id of deletedIds) this.options.changes?.evictSession(String(id));
    this.options.events?.publish(record);
    return { counts, pseudonym, record };
  }

  /** Audit rows about the user (the set erase() anonymises), newest first, at most `limit`. */
  async auditOfUser(userId: string, limit: number): Promise<SessionAuditRecord[]> {
    const rows = await storeQuery(this.pool, PRIVACY_SQL.auditOfUser, [userId, limit], this.queryTimeoutMs);
    return rows.map(toAuditRecord);
  }

  /** `work` in one transaction on one connection (store/transaction.ts). */
  private async transaction<T>(work: (run: RunInTransaction) => Promise<T>): Promise<T> {
    const client = await this.connect();
    return inTransaction(
      client,
      (statement, values) => storeQuery(client, statement, values, this.queryTimeoutMs),
      work,
    );
  }

  private async connect(): Promise<PoolClient> {
    const connecting = this.pool.connect();
    try {
      return await within(connecting, this.queryTimeoutMs, () => {
        throw new StoreUnavailableError(`no connection within ${this.queryTimeoutMs} ms`);
      });
    } catch (error) {
      connecting.then(
        (late) => late.release(),
        () => undefined,
      ); // one that comes too late goes straight back
      throw asStoreError(error);
    }
  }
}
