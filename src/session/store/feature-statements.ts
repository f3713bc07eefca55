import { randomBytes } from 'node:crypto';
import type { DataAtRest } from '../encryption/data-at-rest.js';
import { IMPERSONATION_SQL } from '../impersonation/impersonation.sql.js';
import { PRIVACY_SQL } from '../privacy/privacy.sql.js';
import type { SocketSessionState } from '../socket/socket-session.registry.js';
import { SOCKET_SQL } from '../socket/socket.sql.js';
import {
  isSessionId,
  RETIRED_TOKENS_KEPT,
  toSessionLookup,
  toSessionRow,
  type SessionLookup,
  type SessionRow,
} from './session-row.js';
import type { StartImpersonationParams, StopImpersonationParams } from './session-store.types.js';
import type { StatementRunner } from './statement-runner.js';

/**
 * The session statements of the features' own SQL sets (impersonation, sockets, privacy
 * export; the second factor's are in second-factor.store.ts), for SessionStore, which runs SESSION_SQL and hands these here.
 */
export class FeatureStatements {
  constructor(
    private readonly db: StatementRunner,
    private readonly dataAtRest: DataAtRest,
  ) {}

  /**
   * The impersonation session; undefined when the admin's session is not live, or is itself an
   * impersonation. The admin's own token is retired in the same statement.
   */
  async startImpersonation(p: StartImpersonationParams): Promise<SessionLookup | undefined> {
    const [row] = await this.db.run(IMPERSONATION_SQL.startImpersonation, [
      p.impersonatorSessionId,
      p.tokenHash,
      p.userId,
      p.idleTimeoutMs,
      p.maxDurationMs,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      p.reason,
      randomBytes(32), // the admin's session's hash while impersonating: the hash of no token anyone holds
      RETIRED_TOKENS_KEPT,
      this.db.notify,
    ]);
    if (!row) return undefined;
    this.db.committed(row);
    return this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
  }

  /**
   * Ends impersonation session `id` and gives the admin's own session the new token, in one
   * statement. `ended`: it was a live impersonation session; `returnedTo`: the admin's session,
   * undefined when that is no longer live.
   */
  async stopImpersonation(p: StopImpersonationParams): Promise<{ ended: boolean; returnedTo?: SessionLookup }> {
    if (!isSessionId(p.id)) return { ended: false };
    const [row] = await this.db.run(IMPERSONATION_SQL.stopImpersonation, [
      p.id,
      p.newTokenHash,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      p.idleTimeoutMs,
      RETIRED_TOKENS_KEPT,
      this.db.notify,
    ]);
    this.db.committed(row);
    if (row.id !== null) this.db.metrics?.rotation('manual');
    const returnedTo = row.id === null ? undefined : await this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
    return { ended: row.ended, returnedTo };
  }

  /** The sessions of open sockets, in one read (socket/socket-session.registry.ts). Deleted ones are absent. */
  async socketSessionStates(ids: string[]): Promise<SocketSessionState[]> {
    const rows = await this.db.run(SOCKET_SQL.socketSessionStates, [ids]);
    return rows.map((r) => ({
      id: r.id,
      revokedAt: r.revoked_at,
      revokeReason: r.revoke_reason,
      lastSeenAt: r.last_seen_at,
      idleExpiresAt: r.idle_expires_at,
      absoluteExpiresAt: r.absolute_expires_at,
      dbNow: r.db_now,
    }));
  }

  /** Every session row holding the user's personal data (privacy.sql.ts), newest first, for the export. Never tokens. */
  async sessionsOfUser(userId: string, limit: number): Promise<Array<SessionRow & { revokeReason: string | null }>> {
    const rows = await this.db.run(PRIVACY_SQL.sessionsOfUser, [userId, limit]);
    return rows.map((row) => {
      const session = { ...toSessionRow(row), revokeReason: row.revoke_reason ?? null };
      // An export has no side effects: data that does not open (docs/encryption.md) is left out, not revoked.
      return { ...session, data: this.dataAtRest.openOrEmpty(session.id, session.data, 'left out of the export') };
    });
  }
}
