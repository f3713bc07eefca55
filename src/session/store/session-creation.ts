import { randomUUID } from 'node:crypto';
import type { DataAtRest } from '../encryption/data-at-rest.js';
import { toSessionLookup, type SessionLookup } from './session-row.js';
import { SESSION_SQL as SQL } from './session.sql.js';
import type { CreateSessionParams } from './session-store.types.js';
import type { StatementRunner } from './statement-runner.js';

/** A login refused by the per-user session limit (policy 'reject'). */
export class SessionLimitExceededError extends Error {
  override name = 'SessionLimitExceededError';
  constructor(readonly limit: number) {
    super(`session limit of ${limit} reached`);
  }
}

/**
 * A login's new session for SessionStore: one statement, or a transaction when the per-user
 * limit or a guest's data carried over must be read first (session-create.sql.ts).
 */
export class SessionCreation {
  constructor(
    private readonly db: StatementRunner,
    private readonly dataAtRest: DataAtRest,
  ) {}

  async create(p: CreateSessionParams): Promise<SessionLookup> {
    const evictBeyond = p.limit?.policy === 'evict-oldest' ? p.limit.maxSessionsPerUser : null;
    // The id is chosen here, so the data can be sealed to it before the insert.
    const id = randomUUID();
    let data = p.data;
    const values = [
      p.replacesTokenHash,
      p.tokenHash,
      p.userId,
      this.dataAtRest.sealed(id, data, p.maxDataBytes),
      p.idleTimeoutMs,
      p.absoluteTimeoutMs,
      p.ip,
      p.userAgent,
      evictBeyond,
      p.lifetime ?? (p.userId === null ? 'guest' : 'default'),
      id,
      p.secondFactorPending === true,
      p.maxPendingPerUser ?? 1,
      this.db.notify,
    ];
    const limit = p.userId === null ? undefined : p.limit;
    const carryGuest = p.replacesTokenHash === null ? undefined : p.carryGuest;
    const [row] =
      limit === undefined && carryGuest === undefined
        ? await this.db.run(SQL.create, values)
        : await this.db.transaction(async (run) => {
            if (limit) {
              // Serialise this user's logins, so counting and inserting see each other (READ COMMITTED:
              // every later statement of the transaction takes its snapshot after the lock is granted).
              await run(SQL.lockUserSessions, [p.userId]);
              if (limit.policy === 'reject') {
                const [live] = await run(SQL.countLiveForUser, [p.userId, p.replacesTokenHash]);
                if (live.count >= limit.maxSessionsPerUser)
                  throw new SessionLimitExceededError(limit.maxSessionsPerUser);
              }
            }
            if (carryGuest) {
              const [guest] = await run(SQL.lockGuestByToken, [p.replacesTokenHash]);
              if (guest) {
                data = carryGuest(
                  this.dataAtRest.openOrEmpty(guest.id, guest.data, 'not carried into the new session'),
                );
                values[3] = this.dataAtRest.sealed(id, data, p.maxDataBytes);
              }
            }
            return run(SQL.create, values);
          });
    this.db.committed(row);
    return this.dataAtRest.withPlain(toSessionLookup(row, true), data);
  }
}
