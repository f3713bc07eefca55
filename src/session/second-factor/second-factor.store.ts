import type { QueryResultRow } from 'pg';
import type { AuditContext } from '../audit/audit-event.js';
import type { DataAtRest } from '../encryption/data-at-rest.js';
import { SessionLimitExceededError } from '../store/session-creation.js';
import { RETIRED_TOKENS_KEPT, toSessionLookup, type SessionLookup } from '../store/session-row.js';
import type { CompleteSecondFactorParams, FailSecondFactorParams } from '../store/session-store.types.js';
import { SESSION_SQL as SQL } from '../store/session.sql.js';
import type { StatementRunner } from '../store/statement-runner.js';
import { SECOND_FACTOR_SQL } from './second-factor.sql.js';

/** The second-factor statements (second-factor.sql.ts), for SessionStore, which hands them here. */
export class SecondFactorStatements {
  constructor(
    private readonly db: StatementRunner,
    private readonly dataAtRest: DataAtRest,
  ) {}

  /** The full session under its new token; undefined when `p.id` with `p.tokenHash` is no live pending session. */
  async complete(p: CompleteSecondFactorParams): Promise<SessionLookup | undefined> {
    const limit = p.limit;
    const values = [
      p.id,
      p.tokenHash,
      p.newTokenHash,
      p.idleTimeoutMs,
      p.absoluteTimeoutMs,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      RETIRED_TOKENS_KEPT,
      p.maxAttempts,
      limit?.policy === 'evict-oldest' ? limit.maxSessionsPerUser : null,
      this.db.notify,
    ];
    if (!limit) return this.completed((await this.db.run(SECOND_FACTOR_SQL.completeSecondFactor, values))[0]);
    // As a login: the user's lock serialises counting/evicting with their logins and completions.
    const outcome = await this.db.transaction(async (run) => {
      await run(SQL.lockUserSessions, [p.userId]);
      if (limit.policy === 'reject') {
        const [live] = await run(SQL.countLiveForUser, [p.userId, null]);
        if (live.count >= limit.maxSessionsPerUser) {
          const ctx = p.context;
          const [ended] = await run(SECOND_FACTOR_SQL.endPending, [
            p.id,
            p.tokenHash,
            'limit_rejected',
            ctx.ip ?? null,
            ctx.userAgent ?? null,
            this.db.notify,
          ]);
          return { ended };
        }
      }
      return { row: (await run(SECOND_FACTOR_SQL.completeSecondFactor, values))[0] };
    });
    if ('ended' in outcome) {
      if (outcome.ended) this.db.committed(outcome.ended);
      // Refused as a login would be; the pending session ended with it (log in again later).
      if (outcome.ended?.count === 1) throw new SessionLimitExceededError(limit.maxSessionsPerUser);
      return undefined;
    }
    return this.completed(outcome.row);
  }

  private async completed(row: QueryResultRow | undefined): Promise<SessionLookup | undefined> {
    if (!row) return undefined;
    this.db.committed(row);
    return this.dataAtRest.openOrRevoke(toSessionLookup(row, true));
  }

  /** Ends a live pending session (reason `reason`, audited); false when it was no live pending one. */
  async endPending(id: string, tokenHash: Buffer, reason: string, context: AuditContext): Promise<boolean> {
    const [row] = await this.db.run(SECOND_FACTOR_SQL.endPending, [
      id,
      tokenHash,
      reason,
      context.ip ?? null,
      context.userAgent ?? null,
      this.db.notify,
    ]);
    this.db.committed(row);
    return row.count === 1;
  }

  /** Whether the user's second-factor failures fill `limit` within `windowMs` (see reserveAttempt). */
  async userLock(userId: string, limit: number, windowMs: number): Promise<{ locked: boolean; retryAfterMs: number }> {
    const [row] = await this.db.run(SECOND_FACTOR_SQL.userSecondFactorLock, [userId, limit, windowMs]);
    return { locked: row.locked, retryAfterMs: Number(row.retry_after_ms) };
  }

  /**
   * Takes one attempt of a live pending session under the user's lock (see the statement):
   * `attempts` undefined when none is left or it is not live; `locked` with `retryAfterMs` when
   * the user's failures fill `userFailureLimit` within the window.
   */
  async reserveAttempt(p: ReserveAttemptParams): Promise<{ attempts?: number; locked: boolean; retryAfterMs: number }> {
    const [row] = await this.db.transaction(async (run) => {
      await run(SQL.lockUserSessions, [p.userId]);
      return run(SECOND_FACTOR_SQL.reserveSecondFactorAttempt, [
        p.id,
        p.tokenHash,
        p.maxAttempts,
        p.userId,
        p.userFailureLimit,
        p.userFailureWindowMs,
      ]);
    });
    return { attempts: row.attempts ?? undefined, locked: row.locked, retryAfterMs: Number(row.retry_after_ms) };
  }

  /** Records a failed attempt (`counted`: not reserved before); undefined when it was no live pending session. */
  async fail(p: FailSecondFactorParams): Promise<{ attempts: number; revoked: boolean } | undefined> {
    const [row] = await this.db.run(SECOND_FACTOR_SQL.failSecondFactor, [
      p.id,
      p.tokenHash,
      p.counted ? 1 : 0,
      p.maxAttempts,
      p.context.ip ?? null,
      p.context.userAgent ?? null,
      this.db.notify,
    ]);
    this.db.committed(row);
    return row.attempts === null ? undefined : { attempts: row.attempts, revoked: row.revoked };
  }
}

export interface ReserveAttemptParams {
  id: string;
  tokenHash: Buffer;
  userId: string;
  maxAttempts: number;
  userFailureLimit: number;
  userFailureWindowMs: number;
}
